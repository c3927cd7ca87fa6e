//! The segment rules of a [`RestoreReader`](super::RestoreReader) (`docs/FORMAT.md`, "Where
//! segments are, and which is last"). Read-ahead and parallel opening load through
//! [`Cursor::load_into`] and end through [`Cursor::open_end`]; they never decide these rules.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::segment::SegmentCipher;
use super::{StreamError, TAG_LEN, fill};

/// The bytes after a full segment that show it is not the last: the shortest segment.
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

/// Reads the segments of a stream in order from `inner`, one at a time, and authenticates them.
pub(super) struct Cursor<R> {
    pub(super) inner: R,
    pub(super) cipher: Arc<SegmentCipher>,
    pub(super) segment_size: usize,
    /// Length of a full ciphertext segment.
    pub(super) full: usize,
    /// One ciphertext segment and the lookahead after it, as in the stream; zeroized on drop.
    buf: Zeroizing<Vec<u8>>,
    /// Bytes read and not yet used, `buf[at..at + held]`: the start of segment `index`.
    at: usize,
    held: usize,
    /// Authenticated plaintext not yet returned: `buf[plain]`.
    plain: Range<usize>,
    /// Index of the next segment to load.
    pub(super) index: u64,
    /// Plaintext bytes to drop from the start of the next segment (after a seek).
    skip: usize,
    /// Bytes read from `inner` since the start of the stream (header included).
    pub(super) consumed: u64,
    pub(super) state: State,
    /// An I/O error met by a `read` that had already placed plaintext in the caller's buffer
    /// (several segments at once): the next `read` returns it, as a one-thread reader meets it,
    /// then reading resumes. A seek drops it.
    pub(super) interrupted: Option<StreamError>,
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
            full: segment_size + TAG_LEN,
            buf: Zeroizing::new(vec![0; segment_size + TAG_LEN + LOOKAHEAD]),
            at: 0,
            held: 0,
            plain: 0..0,
            index: 0,
            skip: 0,
            consumed,
            state: State::Reading,
            interrupted: None,
            plain_len: None,
        }
    }

    /// Whether the stream has been read to its end; the failure that stopped it, if one did, or
    /// the I/O error a `read` met after its plaintext (once).
    pub(super) fn at_end(&mut self) -> Result<bool, StreamError> {
        if let Some(err) = self.interrupted.take() {
            return Err(err);
        }
        match &self.state {
            State::Reading => Ok(false),
            State::Done => Ok(true),
            State::Failed(err) => Err(err.permanent().unwrap_or(StreamError::InvalidSeek)),
        }
    }

    /// Records a stream error as permanent (I/O errors stay retryable) and converts it.
    pub(super) fn fail(&mut self, err: StreamError) -> io::Error {
        if let Some(failure) = err.permanent() {
            self.state = State::Failed(failure);
        }
        err.into_io()
    }

    /// Restarts at segment `index`, `consumed` bytes into the stream, dropping `skip` plaintext
    /// bytes of it; the inner reader must be there.
    pub(super) fn restart(&mut self, index: u64, consumed: u64, skip: usize) {
        (self.index, self.consumed, self.skip) = (index, consumed, skip);
        (self.at, self.held, self.plain) = (0, 0, 0..0);
        (self.state, self.interrupted) = (State::Reading, None);
    }

    /// Authenticated plaintext not yet returned.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.plain.clone()]
    }

    /// Marks the first `n` pending bytes returned.
    pub(super) fn consume(&mut self, n: usize) {
        self.plain.start += n;
    }

    /// Whether the next segment may be loaded straight into a buffer of the caller's.
    pub(super) fn at_boundary(&self) -> bool {
        self.skip == 0 && self.held < self.full
    }

    /// Loads the next segment and authenticates it: straight into `out` if it is given, holds a
    /// full ciphertext segment and the cursor is [`at_boundary`](Self::at_boundary), returning
    /// its plaintext length; else into the cursor's buffer, returning 0. The last segment always
    /// ends here: its plaintext is pending.
    pub(super) fn load(&mut self, out: Option<&mut [u8]>) -> Result<usize, StreamError> {
        let full = self.full;
        let out = out.filter(|out| out.len() >= full && self.at_boundary());
        let body = out.map_or(&mut [][..], |out| &mut out[..full]);
        let Some(index) = self.load_into(body)? else {
            return self.open_end().map(|()| 0);
        };
        let direct = !body.is_empty();
        let segment = if direct { body } else { &mut self.buf[..full] };
        self.cipher
            .open(index, false, segment)
            .map_err(|_| StreamError::CorruptSegment { index })?;
        if direct {
            return Ok(self.segment_size);
        }
        self.release(self.segment_size);
        Ok(0)
    }

    /// Reads the next segment, its first `body.len()` bytes (at most a full segment; a
    /// non-empty `body` only [`at_boundary`](Self::at_boundary)) into `body`, the rest and the
    /// lookahead after it into the cursor's buffer. Returns its index if the lookahead followed
    /// (not the last): the caller opens it, its bytes past `body` are [`tail`](Self::tail).
    /// `None` if the input ended first: what was read is back in the cursor's buffer, for
    /// [`open_end`](Self::open_end), as after an error (for a retry).
    pub(super) fn load_into(&mut self, body: &mut [u8]) -> Result<Option<u64>, StreamError> {
        self.compact();
        let (split, want, have) = (body.len(), self.full + LOOKAHEAD, self.held);
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
            (self.index, self.at, self.held) = (next, self.full, LOOKAHEAD);
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
        &self.buf[from..self.full]
    }

    /// Authenticates what the cursor holds as the end of the input (never reading it again):
    /// the last segment, or a truncation or trailing data. Its plaintext becomes pending.
    pub(super) fn open_end(&mut self) -> Result<(), StreamError> {
        self.compact();
        let held = std::mem::take(&mut self.held);
        let seg_len = held.min(self.full);
        let segment = &mut self.buf[..seg_len];
        let plain_len = self.cipher.open_last(self.index, segment, held - seg_len)?;
        let len = self
            .index
            .checked_mul(self.segment_size as u64)
            .and_then(|start| start.checked_add(plain_len as u64))
            .ok_or(StreamError::TooManySegments)?;
        (self.state, self.plain_len) = (State::Done, Some(len));
        self.release(plain_len);
        Ok(())
    }

    /// Makes `buf[..len]` the pending plaintext, less what is to be skipped.
    fn release(&mut self, len: usize) {
        let skip = std::mem::take(&mut self.skip);
        self.plain = skip.min(len)..len;
    }

    /// Moves the bytes held to the front of `buf`, where segment `index` starts.
    fn compact(&mut self) {
        if self.at > 0 {
            self.buf.copy_within(self.at..self.at + self.held, 0);
            self.at = 0;
        }
    }
}
