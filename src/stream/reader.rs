//! [`RestoreReader`]: authenticates and decrypts a stream in order through a [`Cursor`]. Threads
//! (`read_ahead.rs`, `large_read.rs`) and random access (`seek.rs`) are built around it.

use std::fmt;
use std::io::{self, Read};
use std::num::NonZeroUsize;

use super::StreamError;
use super::cursor::Cursor;
use super::header::Header;
use super::read_ahead::{self, ReadAhead};
use crate::key::DataKey;

/// Decrypts a backup written by [`BackupWriter`](super::BackupWriter) from any [`Read`]er.
///
/// Construction reads the header and authenticates it: a wrong key is reported as
/// [`StreamError::WrongKey`] before any segment is read. `read` then returns only plaintext whose
/// segment has been authenticated, and fails (with an `io::Error` wrapping a [`StreamError`];
/// see [`StreamError::from_io`]) on any altered, reordered, duplicated or foreign segment, on
/// truncation at any byte and on trailing data. A restore is complete only when `read` has
/// returned `Ok(0)`: treat the output as unusable until then.
///
/// With [`with_threads`](Self::with_threads) it opens consecutive segments on several threads
/// (returning the same bytes, and the same error at the same point, as with one thread).
///
/// Over a seekable reader it also implements [`Seek`](std::io::Seek) on plaintext offsets,
/// decrypting only the segments needed. The first seek authenticates the last segment (so the
/// plaintext length, and `SeekFrom::End`, can be trusted); the stream must extend to the end of
/// the inner reader. See [`plaintext_len`](Self::plaintext_len).
pub struct RestoreReader<R> {
    pub(super) cursor: Cursor<R>,
    pub(super) header: Header,
    pub(super) threads: NonZeroUsize,
    /// With several threads and small reads: the threads opening segments ahead, once started.
    /// The plaintext it holds comes before any pending in the cursor.
    pub(super) ahead: Option<ReadAhead>,
    /// Plaintext offset of the next byte `read` returns.
    pub(super) offset: u64,
    /// Position of the start of the stream in the inner reader (known after the first seek).
    pub(super) base: Option<u64>,
}

impl<R: Read> RestoreReader<R> {
    /// Reads the header of an encrypted stream from `inner` and authenticates it with `key`.
    ///
    /// Fails with [`StreamError::WrongKey`] if the stream needs another key,
    /// [`StreamError::HeaderAuthentication`] if the header was altered, and
    /// [`StreamError::Unencrypted`] if the stream is unencrypted (a reader with a key never
    /// accepts one, so encryption cannot be stripped silently).
    pub fn new(mut inner: R, key: &DataKey) -> Result<Self, StreamError> {
        let header = Header::read_from(&mut inner)?;
        Self::from_header(inner, header, Some(key))
    }

    /// Reads the header of an unencrypted (integrity-only) stream from `inner` and checks it.
    /// Fails with [`StreamError::Encrypted`] if the stream is encrypted.
    pub fn unencrypted(mut inner: R) -> Result<Self, StreamError> {
        let header = Header::read_from(&mut inner)?;
        Self::from_header(inner, header, None)
    }

    /// Continues after [`Header::read_from`]: `inner` must be positioned just after the header.
    /// `key` must be `Some` for an encrypted stream (else [`StreamError::Encrypted`]) and `None`
    /// for an unencrypted one (else [`StreamError::Unencrypted`]).
    pub fn from_header(
        inner: R,
        header: Header,
        key: Option<&DataKey>,
    ) -> Result<Self, StreamError> {
        let (cipher, consumed) = (header.open(key)?, header.encoded_len() as u64);
        Ok(RestoreReader {
            cursor: Cursor::new(inner, cipher, header.segment_size(), consumed),
            header,
            threads: NonZeroUsize::MIN,
            ahead: None,
            offset: 0,
            base: None,
        })
    }

    /// Writes the rest of the plaintext to `out`, one segment at a time straight from the
    /// buffer it was opened in (no buffer of the caller's, no copy but the writes themselves);
    /// returns the bytes written. What is written is exactly what `read` would return, and
    /// errors are the same: `out` receives the plaintext of every segment before a failed one,
    /// and nothing of it or after it.
    ///
    /// An error of `out` is returned as it is; the reader stays where it was (the segment
    /// being written is written again by the next call, in full).
    pub fn copy_to<W: io::Write + ?Sized>(&mut self, out: &mut W) -> io::Result<u64> {
        let start = self.offset;
        loop {
            self.advance(None)?;
            let pending = self.pending();
            if pending.is_empty() {
                return Ok(self.offset - start);
            }
            out.write_all(pending)?;
            self.consume(pending.len());
        }
    }

    /// The stream's header (authenticated).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.cursor.inner
    }

    /// Returns the inner reader, positioned somewhere after what has been returned.
    pub fn into_inner(self) -> R {
        self.cursor.inner
    }

    /// Authenticated plaintext not yet returned: first what was opened ahead, then the cursor's.
    fn pending(&self) -> &[u8] {
        match &self.ahead {
            Some(ahead) if !ahead.pending().is_empty() => ahead.pending(),
            _ => self.cursor.pending(),
        }
    }

    /// Marks the first `n` pending bytes returned.
    fn consume(&mut self, n: usize) {
        match &mut self.ahead {
            Some(ahead) if !ahead.pending().is_empty() => ahead.consume(n),
            _ => self.cursor.consume(n),
        }
        self.offset += n as u64;
    }

    /// Loads until plaintext is pending or the stream has ended (or failed); a large enough
    /// `out` may receive plaintext straight away instead: returns the bytes placed there.
    /// Segments opened ahead, and with threads any at a boundary, go through [`read_ahead::load`].
    fn advance(&mut self, mut out: Option<&mut [u8]>) -> io::Result<usize> {
        while self.pending().is_empty() && !self.cursor.at_end()? {
            let out = out.as_deref_mut();
            let busy = self.ahead.as_ref().is_some_and(ReadAhead::busy);
            let loaded = if busy || (self.cursor.at_boundary() && self.threads.get() > 1) {
                read_ahead::load(&mut self.ahead, &mut self.cursor, self.threads, out)
            } else {
                self.cursor.load(out)
            };
            let direct = loaded.map_err(|err| self.cursor.fail(err))?;
            if direct > 0 {
                self.offset += direct as u64;
                return Ok(direct);
            }
        }
        Ok(0)
    }
}

impl<R: Read> Read for RestoreReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let direct = self.advance(Some(out))?;
        if direct > 0 {
            return Ok(direct);
        }
        let pending = self.pending();
        let n = pending.len().min(out.len());
        out[..n].copy_from_slice(&pending[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> fmt::Debug for RestoreReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestoreReader")
            .field("header", &self.header)
            .field("cipher", &self.cursor.cipher)
            .field("next_segment", &self.cursor.index)
            .field("threads", &self.threads)
            .field("offset", &self.offset)
            .field("state", &self.cursor.state)
            .finish_non_exhaustive()
    }
}
