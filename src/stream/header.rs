//! The stream header: encoding, key-free parsing, and authentication (which also derives the
//! stream's segment cipher).

use std::fmt;
use std::io::Read;

use ring::{digest, hmac};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::segment::SegmentCipher;
use super::{Algorithm, Extension, StreamError, check_segment_size};
use crate::key::{DataKey, KeyId, hkdf_sha256};

/// The 8 magic bytes that open every stream (PNG style: a high-bit byte, the name, and line-ending
/// and EOF bytes that reveal text-mode mangling).
pub(crate) const MAGIC: [u8; 8] = *b"\x89SBX\r\n\x1a\n";
/// The only format version this library writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Algorithm id of the integrity-only (unencrypted) mode.
pub(crate) const ALGORITHM_NONE: u8 = 0;
/// Length of the fixed part of the header: magic, version, algorithm, segment size, key id,
/// salt and the extension-area length.
pub(crate) const FIXED_LEN: usize = 8 + 1 + 1 + 4 + 16 + 32 + 4;
/// Length of the header MAC (or integrity checksum) that closes the header.
pub(crate) const MAC_LEN: usize = 32;

/// The extension area's length that the fixed part at the start of `bytes` announces (not
/// checked); `None` if `bytes` is shorter than the fixed part.
#[cfg(feature = "tokio")]
pub(crate) fn area_len(bytes: &[u8]) -> Option<usize> {
    let field = bytes.get(FIXED_LEN - 4..FIXED_LEN)?;
    Some(u32::from_be_bytes(field.try_into().expect("4 bytes")) as usize)
}
/// Length of one extension entry's kind and length fields.
const ENTRY_PREFIX_LEN: usize = 2 + 4;

/// HKDF `info` of the header MAC key.
pub(crate) const HEADER_MAC_LABEL: &[u8] = b"strongbox/v1/header-mac";
/// HKDF `info` prefix of the payload key (followed by the algorithm id byte).
pub(crate) const PAYLOAD_LABEL: &[u8] = b"strongbox/v1/payload";
/// Label that starts the input of the integrity-only header checksum.
pub(crate) const INTEGRITY_HEADER_LABEL: &[u8] = b"strongbox/v1/integrity-header";

/// A parsed stream header.
///
/// [`Header::read_from`] parses a header without a key, for example to show what a backup is or
/// to find wrapped keys in its extensions. **Until a [`RestoreReader`](super::RestoreReader)
/// has accepted it, nothing in it is authenticated**: treat every field as a claim.
///
/// ```
/// use strongbox::{BackupWriter, DataKey, StreamConfig};
/// use strongbox::stream::{Extension, Header};
///
/// let key = DataKey::generate()?;
/// let config = StreamConfig::default();
/// let ext = vec![Extension::new(7, b"manifest".to_vec())];
/// let backup = BackupWriter::with_config(Vec::new(), &key, &config, ext)?.finish()?;
///
/// let header = Header::read_from(&mut &backup[..])?;
/// assert_eq!(header.key_id(), Some(key.id()));
/// assert_eq!(header.extension(7), Some(&b"manifest"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    algorithm_id: u8,
    segment_size: u32,
    key_id: [u8; 16],
    salt: [u8; 32],
    extensions: Vec<Extension>,
    /// The whole encoded header, MAC included.
    bytes: Vec<u8>,
}

/// Sorts `extensions` by kind and returns the length of their area; fails on a repeated kind or
/// an area over [`Extension::MAX_AREA_LEN`].
fn sorted_area_len(extensions: &mut [Extension]) -> Result<usize, StreamError> {
    extensions.sort_by_key(|e| e.kind);
    if extensions.windows(2).any(|w| w[0].kind == w[1].kind) {
        return Err(StreamError::InvalidExtensions(
            "an extension kind occurs more than once",
        ));
    }
    extensions
        .iter()
        .try_fold(0usize, |sum, e| {
            sum.checked_add(ENTRY_PREFIX_LEN + e.value.len())
        })
        .filter(|&len| len <= Extension::MAX_AREA_LEN)
        .ok_or(StreamError::InvalidExtensions(
            "the extensions take more than 1 MiB",
        ))
}

impl Header {
    /// The format version (always 1 for a header this library parsed).
    pub fn version(&self) -> u8 {
        VERSION
    }

    /// The encryption algorithm, or `None` for an unencrypted (integrity-only) stream.
    pub fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_id(self.algorithm_id)
    }

    /// Whether the stream is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.algorithm_id != ALGORITHM_NONE
    }

    /// The plaintext segment size in bytes.
    pub fn segment_size(&self) -> usize {
        self.segment_size as usize
    }

    /// The id of the key the stream is encrypted with; `None` for an unencrypted stream.
    pub fn key_id(&self) -> Option<KeyId> {
        self.is_encrypted().then(|| KeyId::from_bytes(self.key_id))
    }

    /// All extensions, in ascending order of kind.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The value of the extension of `kind`, if the header has one.
    pub fn extension(&self, kind: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.value.as_slice())
    }

    /// The length of the encoded header in bytes: where segment 0 starts.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The encoded header, MAC included: the first [`encoded_len`](Self::encoded_len) bytes of
    /// the stream.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Authenticates this header with `key` (`None` for an unencrypted stream) and returns a
    /// new header with the same salt, algorithm, segment size and key but `extensions` instead
    /// of the current ones, sealed again.
    ///
    /// The segments of a stream depend only on the key, the salt and the algorithm, so the new
    /// header's bytes followed by the old stream's segments, unchanged, form a valid stream:
    /// this is how the extensions (for example wrapped copies of the key, after a master-key
    /// rotation) are replaced without re-encrypting the payload.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};
    /// use strongbox::stream::{Extension, Header};
    ///
    /// let key = DataKey::generate()?;
    /// let config = StreamConfig::default();
    /// let old_ext = vec![Extension::new(1, b"old".to_vec())];
    /// let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, old_ext)?;
    /// writer.write_all(b"payload")?;
    /// let backup = writer.finish()?;
    ///
    /// let header = Header::read_from(&mut &backup[..])?;
    /// let new = header.reseal(Some(&key), vec![Extension::new(1, b"new".to_vec())])?;
    /// let rewritten = [new.as_bytes(), &backup[header.encoded_len()..]].concat();
    ///
    /// let mut reader = RestoreReader::new(&rewritten[..], &key)?;
    /// assert_eq!(reader.header().extension(1), Some(&b"new"[..]));
    /// let mut out = Vec::new();
    /// reader.read_to_end(&mut out)?;
    /// assert_eq!(out, b"payload");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reseal(
        &self,
        key: Option<&DataKey>,
        extensions: Vec<Extension>,
    ) -> Result<Header, StreamError> {
        self.open(key)?;
        let key = key.zip(self.algorithm());
        Header::seal_new(key, self.segment_size(), extensions, self.salt).map(|(header, _)| header)
    }

    /// Reads and parses a header without a key, consuming exactly its bytes from `r`.
    ///
    /// It checks the magic, the version, the algorithm id, the segment size and the layout of
    /// the extension area (at most [`Extension::MAX_AREA_LEN`] bytes, so a hostile header cannot
    /// make it allocate more). It does **not** authenticate anything.
    pub fn read_from<R: Read>(r: &mut R) -> Result<Header, StreamError> {
        let mut bytes = vec![0u8; FIXED_LEN];

        let (got, result) = super::fill(r, &mut bytes[..MAGIC.len()], 0);
        result?;
        if bytes[..got] != MAGIC[..got] {
            return Err(StreamError::NotStrongbox);
        }
        if got < MAGIC.len() {
            return Err(StreamError::Truncated);
        }
        read_exact(r, &mut bytes[8..9])?;
        if bytes[8] != VERSION {
            return Err(StreamError::UnsupportedVersion(bytes[8]));
        }
        read_exact(r, &mut bytes[9..FIXED_LEN])?;

        let algorithm_id = bytes[9];
        if algorithm_id != ALGORITHM_NONE && Algorithm::from_id(algorithm_id).is_none() {
            return Err(StreamError::UnsupportedAlgorithm(algorithm_id));
        }
        let segment_size = u32::from_be_bytes(bytes[10..14].try_into().expect("4 bytes"));
        if check_segment_size(segment_size as usize).is_none() {
            return Err(StreamError::InvalidHeader(
                "segment size outside 4 KiB..=16 MiB",
            ));
        }
        let key_id: [u8; 16] = bytes[14..30].try_into().expect("16 bytes");
        if algorithm_id == ALGORITHM_NONE && key_id != [0; 16] {
            return Err(StreamError::InvalidHeader(
                "an unencrypted stream must have an all-zero key id",
            ));
        }
        let salt: [u8; 32] = bytes[30..62].try_into().expect("32 bytes");
        let area_len = u32::from_be_bytes(bytes[62..66].try_into().expect("4 bytes")) as usize;
        if area_len > Extension::MAX_AREA_LEN {
            return Err(StreamError::InvalidHeader(
                "extension area larger than 1 MiB",
            ));
        }

        // Grows only as data actually arrives, so a lying length allocates nothing extra.
        let read = r
            .take((area_len + MAC_LEN) as u64)
            .read_to_end(&mut bytes)?;
        if read != area_len + MAC_LEN {
            return Err(StreamError::Truncated);
        }
        let extensions = parse_extensions(&bytes[FIXED_LEN..FIXED_LEN + area_len])?;

        Ok(Header {
            algorithm_id,
            segment_size,
            key_id,
            salt,
            extensions,
            bytes,
        })
    }

    /// Builds and seals a new header. `key` is `None` for an unencrypted stream.
    pub(crate) fn seal_new(
        key: Option<(&DataKey, Algorithm)>,
        segment_size: usize,
        mut extensions: Vec<Extension>,
        salt: [u8; 32],
    ) -> Result<(Header, SegmentCipher), StreamError> {
        check_segment_size(segment_size)
            .ok_or(StreamError::InvalidSegmentSize { size: segment_size })?;
        let area_len = sorted_area_len(&mut extensions)?;
        let (algorithm_id, key_id) = match key {
            Some((key, algorithm)) => (algorithm.id(), *key.id().as_bytes()),
            None => (ALGORITHM_NONE, [0; 16]),
        };
        let mut bytes = Vec::with_capacity(FIXED_LEN + area_len + MAC_LEN);
        bytes.extend_from_slice(&MAGIC);
        bytes.push(VERSION);
        bytes.push(algorithm_id);
        bytes.extend_from_slice(&(segment_size as u32).to_be_bytes());
        bytes.extend_from_slice(&key_id);
        bytes.extend_from_slice(&salt);
        bytes.extend_from_slice(&(area_len as u32).to_be_bytes());
        for e in &extensions {
            bytes.extend_from_slice(&e.kind.to_be_bytes());
            bytes.extend_from_slice(&(e.value.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&e.value);
        }

        let cipher = match key {
            Some((key, algorithm)) => {
                let (mac_key, cipher) = derive_keys(key, &salt, algorithm);
                bytes.extend_from_slice(hmac::sign(&mac_key, &bytes).as_ref());
                cipher
            }
            None => {
                bytes.extend_from_slice(&integrity_checksum(&bytes));
                SegmentCipher::Integrity { salt }
            }
        };
        let header = Header {
            algorithm_id,
            segment_size: segment_size as u32,
            key_id,
            salt,
            extensions,
            bytes,
        };
        Ok((header, cipher))
    }

    /// Authenticates the header and derives the segment cipher. `key` must be given exactly when
    /// the stream is encrypted.
    pub(crate) fn open(&self, key: Option<&DataKey>) -> Result<SegmentCipher, StreamError> {
        let (body, mac) = self.bytes.split_at(self.bytes.len() - MAC_LEN);
        match (Algorithm::from_id(self.algorithm_id), key) {
            (None, Some(_)) => Err(StreamError::Unencrypted),
            (Some(_), None) => Err(StreamError::Encrypted {
                key_id: KeyId::from_bytes(self.key_id),
            }),
            (Some(algorithm), Some(key)) => {
                let provided = key.id();
                if *provided.as_bytes() != self.key_id {
                    return Err(StreamError::WrongKey {
                        expected: KeyId::from_bytes(self.key_id),
                        provided,
                    });
                }
                let (mac_key, cipher) = derive_keys(key, &self.salt, algorithm);
                hmac::verify(&mac_key, body, mac).map_err(|_| StreamError::HeaderAuthentication)?;
                Ok(cipher)
            }
            (None, None) => {
                if integrity_checksum(body) != mac {
                    return Err(StreamError::HeaderAuthentication);
                }
                Ok(SegmentCipher::Integrity { salt: self.salt })
            }
        }
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("version", &VERSION)
            .field("algorithm", &self.algorithm())
            .field("segment_size", &self.segment_size)
            .field("key_id", &self.key_id())
            .field(
                "extensions",
                &self
                    .extensions
                    .iter()
                    .map(|e| (e.kind, e.value.len()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Derives the header MAC key and the payload cipher of one stream:
/// PRK = HKDF-Extract(salt, data key); each key is HKDF-Expand(PRK, label, 32).
fn derive_keys(key: &DataKey, salt: &[u8; 32], algorithm: Algorithm) -> (hmac::Key, SegmentCipher) {
    let mut okm = Zeroizing::new([0u8; 32]);
    hkdf_sha256(salt, key.expose_secret(), &[HEADER_MAC_LABEL], &mut okm[..]);
    let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &okm[..]);
    hkdf_sha256(
        salt,
        key.expose_secret(),
        &[PAYLOAD_LABEL, &[algorithm.id()]],
        &mut okm[..],
    );
    (mac_key, SegmentCipher::aead(algorithm, &okm))
}

/// The integrity-only header checksum: SHA-256(label || header bytes before the checksum).
fn integrity_checksum(body: &[u8]) -> [u8; MAC_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(INTEGRITY_HEADER_LABEL);
    ctx.update(body);
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

fn parse_extensions(mut area: &[u8]) -> Result<Vec<Extension>, StreamError> {
    let mut extensions: Vec<Extension> = Vec::new();
    while !area.is_empty() {
        if area.len() < ENTRY_PREFIX_LEN {
            return Err(StreamError::InvalidHeader("truncated extension entry"));
        }
        let kind = u16::from_be_bytes([area[0], area[1]]);
        let len = u32::from_be_bytes(area[2..6].try_into().expect("4 bytes")) as usize;
        let rest = &area[ENTRY_PREFIX_LEN..];
        if len > rest.len() {
            return Err(StreamError::InvalidHeader(
                "an extension entry overruns the extension area",
            ));
        }
        if extensions.last().is_some_and(|prev| prev.kind >= kind) {
            return Err(StreamError::InvalidHeader(
                "extension kinds are not strictly increasing",
            ));
        }
        extensions.push(Extension::new(kind, &rest[..len]));
        area = &rest[len..];
    }
    Ok(extensions)
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), StreamError> {
    let (got, result) = super::fill(r, buf, 0);
    result?;
    if got < buf.len() {
        return Err(StreamError::Truncated);
    }
    Ok(())
}
