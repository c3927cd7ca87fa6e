//! The sequential segment rules of a [`RestoreReader`](super::RestoreReader): where a segment
//! ends, which one is the last, truncation and trailing data. Read-ahead and parallel opening
//! are built on [`Cursor::load_into`] and [`Cursor::open_end`]; they never decide these rules.

use std::io::{self, Read};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::segment::SegmentCipher;
use super::{StreamError, TAG_LEN, fill};

/// How many bytes past a full segment decide that it is not the last one: the shortest segment
/// that may follow it (1 byte of plaintext and its tag). Fewer bytes cannot be a segment.
pub(super) const LOOKAHEAD: usize = TAG_LEN + 1;

/// Where a cursor stands.
#[derive(Debug)]
pub(super) enum State {
    Reading,
    /// The last segment has been loaded; nothing follows.
    Done,
    /// Every later `read` repeats this error, until a successful seek. `InvalidSeek`: the
    /// position is unknown (a seek failed part way, or a thread opening segments ahead panicked).
    Failed(StreamError),
}

/// A copy of `err` if it stops a cursor for good; `None` for errors worth retrying (I/O).
pub(super) fn permanent(err: &StreamError) -> Option<StreamError> {
    Some(match *err {
        StreamError::CorruptSegment { index } => StreamError::CorruptSegment { index },
        StreamError::Truncated => StreamError::Truncated,
        StreamError::TrailingData => StreamError::TrailingData,
        StreamError::TooManySegments => StreamError::TooManySegments,
        _ => return None,
    })
}

/// Reads the segments of a stream in order from `inner`, one at a time, and authenticates them.
pub(super) struct Cursor<R> {
    pub(super) inner: R,
    pub(super) cipher: Arc<SegmentCipher>,
    pub(super) segment_size: usize,
    /// One ciphertext segment and the lookahead after it, as in the stream; zeroized on drop.
    buf: Zeroizing<Vec<u8>>,
    /// Bytes read and not yet used, `buf[at..at + held]`: the start of segment `index`.
    at: usize,
    held: usize,
    /// Authenticated plaintext not yet returned: `buf[plain_start..plain_end]`.
    plain_start: usize,
    plain_end: usize,
    /// Index of the next segment to load.
    pub(super) index: u64,
    /// Plaintext bytes to drop from the start of the next segment (after a seek).
    skip: usize,
    /// Bytes read from `inner` since the start of the stream (header included).
    pub(super) consumed: u64,
    pub(super) state: State,
    /// The plaintext length, once the last segment has been authenticated.
    pub(super) plain_len: Option<u64>,
}

impl<R: Read> Cursor<R> {
    /// A cursor at the first segment; `consumed` bytes (the header) have been read.
    pub(super) fn new(inner: R, cipher: SegmentCipher, segment_size: usize, consumed: u64) -> Self {
        Cursor {
            inner,
            cipher: Arc::new(cipher),
            segment_size,
            buf: Zeroizing::new(vec![0; segment_size + TAG_LEN + LOOKAHEAD]),
            at: 0,
            held: 0,
            plain_start: 0,
            plain_end: 0,
            index: 0,
            skip: 0,
            consumed,
            state: State::Reading,
            plain_len: None,
        }
    }

    /// Length of a full ciphertext segment.
    pub(super) fn full(&self) -> usize {
        self.segment_size + TAG_LEN
    }

    /// Records a stream error as permanent (I/O errors stay retryable) and converts it.
    pub(super) fn fail(&mut self, err: StreamError) -> io::Error {
        if let Some(failure) = permanent(&err) {
            self.state = State::Failed(failure);
        }
        err.into_io()
    }

    /// Marks the position unknown (until [`restart`](Self::restart)).
    pub(super) fn unposition(&mut self) {
        self.state = State::Failed(StreamError::InvalidSeek);
    }

    /// Restarts at segment `index`, `consumed` bytes into the stream, dropping `skip` plaintext
    /// bytes of it; the inner reader must be there.
    pub(super) fn restart(&mut self, index: u64, consumed: u64, skip: usize) {
        (self.index, self.consumed, self.skip) = (index, consumed, skip);
        (self.at, self.held, self.plain_start, self.plain_end) = (0, 0, 0, 0);
        self.state = State::Reading;
    }

    /// Authenticated plaintext not yet returned.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.plain_start..self.plain_end]
    }

    /// Marks the first `n` pending bytes returned.
    pub(super) fn consume(&mut self, n: usize) {
        self.plain_start += n;
    }

    /// Whether the next segment may be loaded straight into a buffer of the caller's (with
    /// [`load_into`](Self::load_into)): no plaintext is to be skipped and less than a segment
    /// is held.
    pub(super) fn at_boundary(&self) -> bool {
        self.skip == 0 && self.held < self.full()
    }

    /// Loads the next segment into the cursor's buffer and authenticates it; its plaintext
    /// becomes pending.
    pub(super) fn load(&mut self) -> Result<(), StreamError> {
        let Some(index) = self.load_into(&mut [])? else {
            return self.open_end();
        };
        let full = self.full();
        self.cipher
            .open(index, false, &mut self.buf[..full])
            .map_err(|_| StreamError::CorruptSegment { index })?;
        self.release(self.segment_size);
        Ok(())
    }

    /// Loads the next segment straight into `out` (at least one full ciphertext segment long)
    /// and authenticates it there; returns its plaintext length (0 if it is the last, whose
    /// plaintext is then pending here). Used only [`at_boundary`](Self::at_boundary).
    pub(super) fn load_direct(&mut self, out: &mut [u8]) -> Result<usize, StreamError> {
        let segment = &mut out[..self.full()];
        let Some(index) = self.load_into(segment)? else {
            return self.open_end().map(|()| 0);
        };
        self.cipher
            .open(index, false, segment)
            .map_err(|_| StreamError::CorruptSegment { index })?;
        Ok(self.segment_size)
    }

    /// Reads the next segment, its first `body.len()` bytes (at most a full segment) into
    /// `body`, the rest into the cursor's buffer, then the lookahead after it. Returns the
    /// segment's index when whole and followed by the lookahead (so not the last): the caller
    /// opens it, its bytes past `body` are [`tail`](Self::tail). `None` when the input ended
    /// within it or its lookahead: what was read is back in the cursor's buffer, for
    /// [`open_end`](Self::open_end). An error leaves it there too, for a retry. With a non-empty
    /// `body`, used only [`at_boundary`](Self::at_boundary).
    pub(super) fn load_into(&mut self, body: &mut [u8]) -> Result<Option<u64>, StreamError> {
        self.compact();
        let (split, want, have) = (body.len(), self.full() + LOOKAHEAD, self.held);
        let in_body = have.min(split);
        body[..in_body].copy_from_slice(&self.buf[..in_body]);
        let (mut got, mut result) = fill(&mut self.inner, body, in_body);
        if got == split && result.is_ok() {
            let (rest, more) = fill(&mut self.inner, &mut self.buf[split..want], have - in_body);
            (got, result) = (split + rest, more);
        }
        self.consumed += (got.max(have) - have) as u64;
        let next = self.index.checked_add(1);
        if let (true, Some(next)) = (got == want, next) {
            self.index = next;
            self.at = self.full();
            self.held = LOOKAHEAD;
            return Ok(Some(next - 1));
        }
        let in_body = got.min(split);
        self.buf[..in_body].copy_from_slice(&body[..in_body]);
        self.held = got.max(have);
        result?;
        match next {
            None if got == want => Err(StreamError::TooManySegments),
            _ => Ok(None),
        }
    }

    /// The bytes of the segment just loaded by [`load_into`](Self::load_into) past its body.
    pub(super) fn tail(&self, from: usize) -> &[u8] {
        &self.buf[from..self.full()]
    }

    /// Authenticates what the cursor holds as the end of the input (never reading it again):
    /// the last segment, or a truncation or trailing data. Its plaintext becomes pending.
    pub(super) fn open_end(&mut self) -> Result<(), StreamError> {
        self.compact();
        let held = std::mem::take(&mut self.held);
        let seg_len = held.min(self.full());
        let segment = &mut self.buf[..seg_len];
        let plain_len = authenticate(&self.cipher, self.index, segment, held - seg_len)?;
        let len = self
            .index
            .checked_mul(self.segment_size as u64)
            .and_then(|start| start.checked_add(plain_len as u64))
            .ok_or(StreamError::TooManySegments)?;
        self.state = State::Done;
        self.plain_len = Some(len);
        self.release(plain_len);
        Ok(())
    }

    /// Makes `buf[..len]` the pending plaintext, less what is to be skipped.
    fn release(&mut self, len: usize) {
        let skip = std::mem::take(&mut self.skip);
        self.plain_start = skip.min(len);
        self.plain_end = len;
    }

    /// Moves the bytes held to the front of `buf`, where segment `index` starts.
    fn compact(&mut self) {
        if self.at > 0 {
            self.buf.copy_within(self.at..self.at + self.held, 0);
            self.at = 0;
        }
    }
}

/// Authenticates segment `index`, the last one before the end of the input, in place; returns
/// its plaintext length. `seg` holds the bytes that may form it (at most one full ciphertext
/// segment) and `extra` counts the bytes after it (fewer than [`LOOKAHEAD`], and only after a
/// full segment).
///
/// A segment that fails and ends where the input ends is the cut or altered end of the stream
/// ([`StreamError::Truncated`]); one that fails with bytes after it is
/// [`StreamError::CorruptSegment`].
fn authenticate(
    cipher: &SegmentCipher,
    index: u64,
    seg: &mut [u8],
    extra: usize,
) -> Result<usize, StreamError> {
    // Only the last segment of an empty stream may be empty.
    let min_len = if index == 0 { TAG_LEN } else { TAG_LEN + 1 };
    if seg.len() < min_len {
        return Err(StreamError::Truncated);
    }
    if extra == 0 {
        cipher
            .open(index, true, seg)
            .map_err(|_| StreamError::Truncated)?;
        return Ok(seg.len() - TAG_LEN);
    }
    // A full segment followed by fewer than LOOKAHEAD bytes: the last segment and trailing data,
    // or a segment whose successor was cut to those bytes. Every outcome is an error, met at
    // most once per pass: a copy lets both be tried.
    let mut copy = Zeroizing::new(seg.to_vec());
    if cipher.open(index, true, seg).is_ok() {
        return Err(StreamError::TrailingData);
    }
    if cipher.open(index, false, &mut copy).is_ok() {
        return Err(StreamError::Truncated);
    }
    Err(StreamError::CorruptSegment { index })
}
