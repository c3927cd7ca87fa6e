//! [`RestoreReader`]: authenticates and decrypts a stream, sequentially or at random offsets.
//!
//! The segment rules live in a [`Cursor`]; with several threads, segments are opened ahead of
//! small reads ([`ReadAhead`]) or straight in the buffer of a large one
//! ([`read_large`](large_read::read_large)), both loading through the cursor.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::num::NonZeroUsize;

use super::StreamError;
use super::cursor::{Cursor, LOOKAHEAD, State};
use super::header::Header;
use super::large_read;
use super::read_ahead::{Next, ReadAhead};
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
/// Over a [`Seek`]able reader it also implements [`Seek`] on plaintext offsets, decrypting only
/// the segments needed. The first seek authenticates the last segment (so the plaintext length,
/// and `SeekFrom::End`, can be trusted); the stream must extend to the end of the inner reader.
///
/// ```
/// use std::io::{Cursor, Read, Seek, SeekFrom, Write};
/// use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};
///
/// let key = DataKey::generate()?;
/// let config = StreamConfig::default().segment_size(4096)?;
/// let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, Vec::new())?;
/// writer.write_all(&(0..50_000u32).map(|i| i as u8).collect::<Vec<_>>())?;
/// let backup = writer.finish()?;
///
/// let mut reader = RestoreReader::new(Cursor::new(backup), &key)?;
/// assert_eq!(reader.seek(SeekFrom::End(0))?, 50_000);
/// reader.seek(SeekFrom::Start(40_000))?;
/// let mut byte = [0u8; 1];
/// reader.read_exact(&mut byte)?;
/// assert_eq!(byte[0], 40_000u32 as u8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RestoreReader<R: Read> {
    cursor: Cursor<R>,
    header: Header,
    threads: NonZeroUsize,
    /// With several threads and small reads: the threads opening segments ahead, once started.
    /// The plaintext it holds comes before any pending in the cursor.
    ahead: Option<ReadAhead>,
    /// Plaintext offset of the next byte `read` returns.
    offset: u64,
    /// Position of the start of the stream in the inner reader (known after the first seek).
    base: Option<u64>,
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
        let cipher = header.open(key)?;
        let consumed = header.encoded_len() as u64;
        Ok(RestoreReader {
            cursor: Cursor::new(inner, cipher, header.segment_size(), consumed),
            header,
            threads: NonZeroUsize::MIN,
            ahead: None,
            offset: 0,
            base: None,
        })
    }

    /// Opens segments on `threads` threads of the reader's own (the default is 1: the calling
    /// thread only).
    ///
    /// With `threads > 1` the reader authenticates and decrypts consecutive segments in
    /// parallel (no global pool is used), and returns exactly what a one-thread reader returns,
    /// including the error and the point where it occurs: no plaintext of a segment that
    /// failed, or of any later segment, is ever returned. Its threads never outlive it: they are
    /// joined when it reaches the end of the stream, seeks, or is dropped.
    ///
    /// `threads` is capped at the number of cores ([`std::thread::available_parallelism`]); a
    /// thread that cannot be started is an I/O error ([`StreamError::Io`]) that leaves the
    /// reader as it was, so a later `read` may retry.
    ///
    /// Performance note, not part of the contract (how the work is currently split; see
    /// `docs/PERFORMANCE.md`):
    /// - A `read` of at least 64 segments (4 MiB with the default segment size) opens them
    ///   straight in the caller's buffer, on scoped threads that never outlive the call (no
    ///   more than it has segments), while the calling thread loads the next ones.
    /// - Smaller reads are served from segments opened ahead by `threads - 1` threads of the
    ///   reader's own (named `strongbox-open`), started by the first such read. The calling
    ///   thread reads the input and hands each segment over; at most about 1 MiB per thread
    ///   (and at least one segment per thread, and one more) is opened ahead, starting at one
    ///   segment per thread, so a short stream or a short read after a seek decrypts little
    ///   more than it needs.
    ///
    /// May be called at any point; it applies from the next `read` (segments already being
    /// opened ahead keep their threads until the reader reaches the end, seeks or is dropped).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::num::NonZeroUsize;
    /// use strongbox::{BackupWriter, DataKey, RestoreReader};
    ///
    /// let key = DataKey::generate()?;
    /// let mut writer = BackupWriter::new(Vec::new(), &key)?;
    /// writer.write_all(&vec![7; 1_000_000])?;
    /// let backup = writer.finish()?;
    ///
    /// let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    /// let mut reader = RestoreReader::new(&backup[..], &key)?.with_threads(threads);
    /// let mut restored = Vec::new();
    /// reader.read_to_end(&mut restored)?;
    /// assert_eq!(restored, vec![7; 1_000_000]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
        self.threads = super::capped_threads(threads);
        self
    }

    /// Writes the rest of the plaintext to `out`, one segment at a time straight from the
    /// buffer it was opened in (no buffer of the caller's, no copy but the writes themselves);
    /// returns the bytes written. What is written is exactly what `read` would return, and
    /// errors are the same: `out` receives the plaintext of every segment before a failed one,
    /// and nothing of it or after it.
    ///
    /// Performance note, not part of the contract: with several threads the segments are
    /// currently opened ahead on the reader's own threads (started once, however long the
    /// stream) while the calling thread reads and writes.
    ///
    /// An error of `out` is returned as it is; the reader stays where it was (the segment
    /// being written is written again by the next call, in full).
    pub fn copy_to<W: io::Write + ?Sized>(&mut self, out: &mut W) -> io::Result<u64> {
        let mut total = 0;
        loop {
            let pending = self.pending();
            if !pending.is_empty() {
                out.write_all(pending)?;
                let n = pending.len();
                self.consume(n);
                total += n as u64;
                continue;
            }
            if self.at_end()? {
                return Ok(total);
            }
            let loaded =
                if self.ahead_busy() || (self.threads.get() > 1 && self.cursor.at_boundary()) {
                    self.load_ahead(true)
                } else {
                    self.cursor.load()
                };
            loaded.map_err(|err| self.cursor.fail(err))?;
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

    /// Whether the stream has been read to its end; the failure that stopped it, if one did.
    fn at_end(&self) -> io::Result<bool> {
        match self.cursor.state() {
            State::Done => Ok(true),
            State::Failed(failure) => Err(failure.error().into_io()),
            State::Reading => Ok(false),
        }
    }

    /// Whether reads must go through the segments opened ahead.
    fn ahead_busy(&self) -> bool {
        self.ahead.as_ref().is_some_and(ReadAhead::busy)
    }

    /// Loads the next plaintext for a `read` into `out`: straight into it (one segment with one
    /// thread, a run with several), or as pending plaintext (from the segments opened ahead, or
    /// through the cursor's buffer). Returns the bytes placed in `out`.
    fn load_for(&mut self, out: &mut [u8]) -> Result<usize, StreamError> {
        let large = super::is_large_io(out.len(), self.cursor.segment_size());
        if self.ahead_busy() {
            // A large read only takes what is ahead, then goes straight into its buffer.
            return self.load_ahead(!large).map(|()| 0);
        }
        if !self.cursor.at_boundary() {
            return self.cursor.load().map(|()| 0);
        }
        if self.threads.get() == 1 {
            if out.len() < self.cursor.full() {
                return self.cursor.load().map(|()| 0);
            }
            return self.load_direct(out);
        }
        if large {
            large_read::read_large(&mut self.cursor, self.threads, out)
        } else {
            self.load_ahead(true).map(|()| 0)
        }
    }

    /// Loads the next segment straight into `out` (at least one full ciphertext segment long)
    /// and authenticates it there; returns its plaintext length (0 if it is the last, whose
    /// plaintext is then pending in the cursor).
    fn load_direct(&mut self, out: &mut [u8]) -> Result<usize, StreamError> {
        let segment = &mut out[..self.cursor.full()];
        let Some(index) = self.cursor.load_into(segment)? else {
            return self.cursor.open_end().map(|()| 0);
        };
        self.cursor
            .cipher
            .open(index, false, segment)
            .map_err(|_| StreamError::CorruptSegment { index })?;
        Ok(self.cursor.segment_size())
    }

    /// With several threads: makes the next segment opened ahead the pending plaintext,
    /// starting the threads on first need and, if `more`, loading segments for them first. At
    /// the end of the input, ends the stream through the cursor; an error is returned once the
    /// segments before it have been.
    fn load_ahead(&mut self, more: bool) -> Result<(), StreamError> {
        if self.ahead.is_none() {
            self.ahead = Some(ReadAhead::start(&self.cursor, self.threads)?);
        }
        let ahead = self.ahead.as_mut().expect("started above");
        if more {
            ahead.refill(&mut self.cursor);
        }
        match ahead.next() {
            Next::Opened => Ok(()),
            Next::Deferred(err) => Err(err),
            Next::Ended => {
                self.ahead = None;
                self.cursor.open_end()
            }
            Next::Corrupt(err) => {
                // Nothing after the failed segment may be released: drop (and zeroize) it all.
                self.ahead = None;
                Err(err)
            }
            Next::Lost(err) => {
                self.ahead = None;
                self.cursor.unposition();
                Err(err)
            }
        }
    }

    /// Segments handed to the threads and not yet returned (for tests).
    #[cfg(test)]
    pub(crate) fn segments_opened_ahead(&self) -> usize {
        self.ahead.as_ref().map_or(0, ReadAhead::len)
    }
}

impl<R: Read> Read for RestoreReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let pending = self.pending();
            let n = pending.len().min(out.len());
            if n > 0 {
                out[..n].copy_from_slice(&pending[..n]);
                self.consume(n);
                return Ok(n);
            }
            if self.at_end()? {
                return Ok(0);
            }
            match self.load_for(out) {
                Ok(0) => {}
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(err) => return Err(self.cursor.fail(err)),
            }
        }
    }
}

impl<R: Read + Seek> RestoreReader<R> {
    /// The authenticated plaintext length. The first call authenticates the last segment (as
    /// the last one); the length is never taken from the unauthenticated size of the input.
    /// The read position is kept.
    pub fn plaintext_len(&mut self) -> Result<u64, StreamError> {
        if let Some(len) = self.cursor.plain_len() {
            return Ok(len);
        }
        let offset = self.offset;
        let result = self.find_plaintext_len().and_then(|len| {
            self.jump(offset, len)?;
            Ok(len)
        });
        if let Err(err) = &result {
            self.cursor.lose(err);
        }
        result
    }

    /// Moves to plaintext offset `target` of a stream of `len` bytes; segments load lazily.
    fn jump(&mut self, target: u64, len: u64) -> Result<(), StreamError> {
        self.ahead = None;
        if target >= len {
            self.cursor.finish();
        } else {
            let size = self.cursor.segment_size() as u64;
            self.position_at_segment(target / size, (target % size) as usize)?;
        }
        self.offset = target;
        Ok(())
    }

    fn find_plaintext_len(&mut self) -> Result<u64, StreamError> {
        let base = self.base()?;
        let header_len = self.header.encoded_len() as u64;
        let end = self.cursor.inner.seek(SeekFrom::End(0))?;
        let body = end
            .checked_sub(base + header_len)
            .filter(|&len| len > 0)
            .ok_or(StreamError::Truncated)?;
        let full = self.cursor.full() as u64;
        let last = (body - 1) / full;
        let tail = body - last * full;
        // Fewer than LOOKAHEAD bytes after a full segment cannot be a segment: then the segment
        // before them must be the last one (and they are trailing data).
        let candidate = if tail < LOOKAHEAD as u64 && last > 0 {
            last - 1
        } else {
            last
        };
        self.position_at_segment(candidate, 0)?;
        self.cursor.load()?;
        self.cursor.plain_len().ok_or(StreamError::Truncated)
    }

    /// Where the stream starts in the inner reader.
    fn base(&mut self) -> Result<u64, StreamError> {
        if let Some(base) = self.base {
            return Ok(base);
        }
        let position = self.cursor.inner.stream_position()?;
        let base = position
            .checked_sub(self.cursor.consumed())
            .ok_or(StreamError::InvalidSeek)?;
        self.base = Some(base);
        Ok(base)
    }

    /// Positions the inner reader at the start of segment `index`, to drop `skip` plaintext
    /// bytes.
    fn position_at_segment(&mut self, index: u64, skip: usize) -> Result<(), StreamError> {
        let base = self.base()?;
        let header_len = self.header.encoded_len() as u64;
        let start = index
            .checked_mul(self.cursor.full() as u64)
            .and_then(|offset| offset.checked_add(header_len))
            .ok_or(StreamError::InvalidSeek)?;
        let target = base.checked_add(start).ok_or(StreamError::InvalidSeek)?;
        // Mark the position unknown until the seek has succeeded.
        self.cursor.unposition();
        self.cursor.inner.seek(SeekFrom::Start(target))?;
        self.cursor.restart(index, start, skip);
        self.ahead = None;
        Ok(())
    }
}

impl<R: Read + Seek> Seek for RestoreReader<R> {
    /// Seeks to a plaintext offset. The first seek authenticates the last segment, so the
    /// length behind `SeekFrom::End` is trusted. Seeking past the end is allowed (reads then
    /// return 0). After a failed seek the position is unknown: seek again before reading.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let len = self.plaintext_len().map_err(StreamError::into_io)?;
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(delta) => len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.offset.checked_add_signed(delta),
        }
        .ok_or_else(|| StreamError::InvalidSeek.into_io())?;
        self.jump(target, len).map_err(|e| self.cursor.fail(e))?;
        Ok(target)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.offset)
    }
}

impl<R: Read> fmt::Debug for RestoreReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestoreReader")
            .field("header", &self.header)
            .field("cipher", &self.cursor.cipher)
            .field("next_segment", &self.cursor.index())
            .field("threads", &self.threads)
            .field("offset", &self.offset)
            .field("state", &self.cursor.state())
            .finish_non_exhaustive()
    }
}
