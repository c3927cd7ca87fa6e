//! Sealing and opening one segment: the nonce layout, the segment counter and the per-segment
//! cipher. This is the only module that touches `ring::aead::LessSafeKey`.
//!
//! [`SegmentCipher::seal`] and [`SegmentCipher::open`] are pure functions of (key, index, last,
//! bytes), so segments can be processed in parallel without any change to the format.

use std::fmt;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::digest;
use zeroize::Zeroizing;

use super::{Algorithm, StreamError, TAG_LEN};

/// Label that starts the input of an integrity-only segment tag.
pub(crate) const INTEGRITY_SEGMENT_LABEL: &[u8] = b"strongbox/v1/integrity-segment";

/// The 12-byte segment nonce: 3 zero bytes, the segment index as u64 big-endian, and the
/// last-segment flag (1 for the last segment, else 0).
pub(crate) fn segment_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// The writer's segment counter: hands out each index once, in order, and refuses to go past the
/// last segment or to wrap.
#[derive(Debug)]
pub(crate) struct SegmentCounter {
    next: u64,
    exhausted: bool,
}

impl SegmentCounter {
    pub(crate) fn new() -> Self {
        SegmentCounter {
            next: 0,
            exhausted: false,
        }
    }

    /// The index of the next segment. After the last segment (or index `u64::MAX`) there is none.
    pub(crate) fn advance(&mut self, last: bool) -> Result<u64, StreamError> {
        if self.exhausted {
            return Err(StreamError::TooManySegments);
        }
        let index = self.next;
        match index.checked_add(1) {
            Some(next) if !last => self.next = next,
            _ => self.exhausted = true,
        }
        // The last usable index may only carry the last segment.
        if self.exhausted && !last {
            return Err(StreamError::TooManySegments);
        }
        Ok(index)
    }

    #[cfg(test)]
    pub(crate) fn starting_at(next: u64) -> Self {
        SegmentCounter {
            next,
            exhausted: false,
        }
    }
}

/// Seals and opens segments of one stream.
// One per stream, created once and never moved in a loop: boxing the key would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SegmentCipher {
    /// Encrypted: an AEAD key derived for this stream.
    Aead(LessSafeKey),
    /// Integrity-only: a truncated SHA-256 bound to this stream's salt.
    Integrity { salt: [u8; 32] },
}

impl fmt::Debug for SegmentCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentCipher::Aead(key) => write!(f, "Aead({:?})", key.algorithm()),
            SegmentCipher::Integrity { .. } => f.write_str("Integrity"),
        }
    }
}

/// A segment did not authenticate. Deliberately carries no detail.
#[derive(Debug)]
pub(crate) struct BadSegment;

impl SegmentCipher {
    /// A cipher for `algorithm` keyed with the 32-byte payload key.
    pub(crate) fn aead(algorithm: Algorithm, key: &[u8; 32]) -> Self {
        let algorithm = match algorithm {
            Algorithm::Aes256Gcm => &aead::AES_256_GCM,
            Algorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        let key = UnboundKey::new(algorithm, key).expect("both algorithms take 32-byte keys");
        SegmentCipher::Aead(LessSafeKey::new(key))
    }

    /// Seals segment `index` in place: `buf` holds the plaintext followed by [`TAG_LEN`] bytes
    /// of room, which receive the tag.
    pub(crate) fn seal(&self, index: u64, last: bool, buf: &mut [u8]) {
        let (plain, tag_out) = buf.split_at_mut(buf.len() - TAG_LEN);
        match self {
            SegmentCipher::Aead(key) => {
                let nonce = Nonce::assume_unique_for_key(segment_nonce(index, last));
                let tag = key
                    .seal_in_place_separate_tag(nonce, Aad::empty(), plain)
                    .expect("a segment is far below the AEAD length limit");
                tag_out.copy_from_slice(tag.as_ref());
            }
            SegmentCipher::Integrity { salt } => {
                tag_out.copy_from_slice(&integrity_tag(salt, index, last, plain));
            }
        }
    }

    /// Opens segment `index` in place: `buf` holds the ciphertext and its tag. On success the
    /// plaintext is `buf[..buf.len() - TAG_LEN]`; on failure that range is zeroed.
    pub(crate) fn open(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<(), BadSegment> {
        if buf.len() < TAG_LEN {
            return Err(BadSegment);
        }
        let ok = match self {
            SegmentCipher::Aead(key) => {
                let nonce = Nonce::assume_unique_for_key(segment_nonce(index, last));
                key.open_in_place(nonce, Aad::empty(), buf).is_ok()
            }
            SegmentCipher::Integrity { salt } => {
                let (plain, tag) = buf.split_at(buf.len() - TAG_LEN);
                integrity_tag(salt, index, last, plain) == tag
            }
        };
        if ok {
            Ok(())
        } else {
            let plain_len = buf.len() - TAG_LEN;
            buf[..plain_len].fill(0);
            Err(BadSegment)
        }
    }
}

impl SegmentCipher {
    /// Like [`open`](Self::open), for a segment whose tag is stored apart from its ciphertext:
    /// `plain` holds the ciphertext and becomes the plaintext; on failure it is zeroed.
    pub(crate) fn open_detached(
        &self,
        index: u64,
        last: bool,
        plain: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), BadSegment> {
        let ok = match self {
            SegmentCipher::Aead(key) => {
                let nonce = Nonce::assume_unique_for_key(segment_nonce(index, last));
                key.open_in_place_separate_tag(
                    nonce,
                    Aad::empty(),
                    aead::Tag::from(*tag),
                    plain,
                    0..,
                )
                .is_ok()
            }
            SegmentCipher::Integrity { salt } => integrity_tag(salt, index, last, plain) == *tag,
        };
        if ok {
            Ok(())
        } else {
            plain.fill(0);
            Err(BadSegment)
        }
    }

    /// Opens segment `index`, the last one before the end of the input, in place, and returns
    /// its plaintext length; else the error `docs/FORMAT.md` names ("Where segments are, and
    /// which is last"). `seg` holds at most a full ciphertext segment; `extra` bytes (fewer than
    /// a segment's minimum, only after a full segment) follow it.
    pub(crate) fn open_last(
        &self,
        index: u64,
        seg: &mut [u8],
        extra: usize,
    ) -> Result<usize, StreamError> {
        // Only the last segment of an empty stream may be empty.
        if seg.len() < TAG_LEN + usize::from(index > 0) {
            return Err(StreamError::Truncated);
        }
        if extra == 0 {
            self.open(index, true, seg)
                .map_err(|_| StreamError::Truncated)?;
            return Ok(seg.len() - TAG_LEN);
        }
        // The last segment and trailing data, or a segment whose successor was cut to these
        // bytes: a copy lets both be tried (at most once per pass: every outcome is an error).
        let mut copy = Zeroizing::new(seg.to_vec());
        if self.open(index, true, seg).is_ok() {
            return Err(StreamError::TrailingData);
        }
        if self.open(index, false, &mut copy).is_ok() {
            return Err(StreamError::Truncated);
        }
        Err(StreamError::CorruptSegment { index })
    }
}

/// The integrity-only tag: the first 16 bytes of
/// SHA-256(label || salt || nonce || plaintext).
fn integrity_tag(salt: &[u8; 32], index: u64, last: bool, plain: &[u8]) -> [u8; TAG_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(INTEGRITY_SEGMENT_LABEL);
    ctx.update(salt);
    ctx.update(&segment_nonce(index, last));
    ctx.update(plain);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&ctx.finish().as_ref()[..TAG_LEN]);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout() {
        assert_eq!(
            segment_nonce(0x0102_0304_0506_0708, true),
            [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1]
        );
        assert_eq!(segment_nonce(0, false), [0; 12]);
    }

    #[test]
    fn counter_never_wraps_and_stops_after_last() {
        let mut c = SegmentCounter::new();
        assert_eq!(c.advance(false).unwrap(), 0);
        assert_eq!(c.advance(true).unwrap(), 1);
        assert!(matches!(c.advance(true), Err(StreamError::TooManySegments)));

        let mut c = SegmentCounter::starting_at(u64::MAX - 1);
        assert_eq!(c.advance(false).unwrap(), u64::MAX - 1);
        // Index u64::MAX can only be the last segment.
        assert!(matches!(
            c.advance(false),
            Err(StreamError::TooManySegments)
        ));
        let mut c = SegmentCounter::starting_at(u64::MAX);
        assert_eq!(c.advance(true).unwrap(), u64::MAX);
        assert!(matches!(c.advance(true), Err(StreamError::TooManySegments)));
    }

    #[test]
    fn open_checks_index_flag_and_zeroes_on_failure() {
        for cipher in [
            SegmentCipher::aead(Algorithm::Aes256Gcm, &[7; 32]),
            SegmentCipher::aead(Algorithm::ChaCha20Poly1305, &[7; 32]),
            SegmentCipher::Integrity { salt: [7; 32] },
        ] {
            let mut buf = b"plaintext!".to_vec();
            buf.resize(10 + TAG_LEN, 0);
            cipher.seal(5, false, &mut buf);
            for (index, last) in [(4, false), (6, false), (5, true)] {
                let mut copy = buf.clone();
                assert!(cipher.open(index, last, &mut copy).is_err());
                assert!(copy[..10].iter().all(|&b| b == 0), "{cipher:?}");
            }
            let (ciphertext, tag) = buf.split_at(10);
            let tag: [u8; TAG_LEN] = tag.try_into().unwrap();
            for (index, last) in [(4, false), (6, false), (5, true)] {
                let mut copy = ciphertext.to_vec();
                assert!(cipher.open_detached(index, last, &mut copy, &tag).is_err());
                assert!(copy.iter().all(|&b| b == 0), "{cipher:?}");
            }
            let mut detached = ciphertext.to_vec();
            cipher.open_detached(5, false, &mut detached, &tag).unwrap();
            assert_eq!(detached, b"plaintext!");
            cipher.open(5, false, &mut buf).unwrap();
            assert_eq!(&buf[..10], b"plaintext!");
        }
    }

    #[test]
    fn only_an_empty_stream_ends_in_an_empty_segment() {
        // Even sealed with the key, an empty last segment after the first is a format error.
        let cipher = SegmentCipher::aead(Algorithm::Aes256Gcm, &[7; 32]);
        for index in [0, 1, 2] {
            let mut seg = vec![0u8; TAG_LEN];
            cipher.seal(index, true, &mut seg);
            let opened = cipher.open_last(index, &mut seg, 0);
            if index == 0 {
                assert_eq!(opened.unwrap(), 0);
            } else {
                assert!(matches!(opened, Err(StreamError::Truncated)), "{opened:?}");
            }
        }
    }
}
