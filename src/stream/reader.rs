//! [`RestoreReader`]: authenticates and decrypts a stream, sequentially or at random offsets.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::header::Header;
use super::parallel::{self, Pipeline, Segment};
use super::segment::SegmentCipher;
use super::{StreamError, TAG_LEN};
use crate::key::DataKey;

/// How many bytes past a full-size segment the reader looks before deciding whether that segment
/// is the last one: the shortest segment that may follow a full one (1 byte of plaintext and its
/// tag). Fewer bytes than this after a full segment cannot be a segment, so that segment must be
/// the last one and those bytes are trailing data.
const LOOKAHEAD: usize = TAG_LEN + 1;

/// The most segments one `read` opens straight into the caller's buffer with several threads
/// (the threads start once per `read`): 64 MiB with the default segment size.
const MAX_DIRECT_SEGMENTS: usize = 1024;

/// With several threads, a `read` of at least this many segments (4 MiB with the default
/// segment size) opens them straight into the caller's buffer, on threads started for that
/// `read`; a smaller one is served from segments opened ahead by the reader's own threads.
const DIRECT_READ_SEGMENTS: usize = 64;

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
    inner: R,
    header: Header,
    cipher: Arc<SegmentCipher>,
    segment_size: usize,
    threads: NonZeroUsize,
    /// One ciphertext segment plus the lookahead, laid out as in the stream (or, after a large
    /// read with several threads, up to two segments and the lookahead). Replaced (never
    /// reallocated in place) only to grow; zeroized on drop.
    buf: Zeroizing<Vec<u8>>,
    /// Ciphertext bytes of segment `index` (and the following ones) already read into
    /// `buf[..filled]`.
    filled: usize,
    /// Lookahead bytes (the start of segment `index`) waiting at `buf[ahead_at..ahead_at + ahead]`.
    ahead: usize,
    ahead_at: usize,
    /// Authenticated plaintext not yet returned: `buf[plain_start..plain_end]`, then segments
    /// `seg_next..seg_count` of `buf` (at `j * full`, each a full segment except the last, which
    /// has `last_len` bytes).
    plain_start: usize,
    plain_end: usize,
    seg_next: usize,
    seg_count: usize,
    last_len: usize,
    /// With several threads and small reads: the threads opening segments ahead, once started.
    ahead_of_reads: Option<ReadAhead>,
    /// The plaintext of the segment opened ahead that is being returned, not yet returned:
    /// `opened[opened_start..opened_end]`. It comes before any plaintext pending in `buf`.
    /// Zeroized on drop.
    opened: Zeroizing<Vec<u8>>,
    opened_start: usize,
    opened_end: usize,
    /// Index of the next segment to load.
    index: u64,
    state: State,
    /// Plaintext offset of the next byte `read` returns.
    offset: u64,
    /// Plaintext bytes to drop from the start of the next segment (after a seek).
    skip: usize,
    /// Bytes read from `inner` since the start of the stream (header included).
    consumed: u64,
    /// Position of the start of the stream in `inner` (known after the first seek).
    base: Option<u64>,
    /// The plaintext length, once the last segment has been authenticated.
    plain_len: Option<u64>,
    /// Copy of a full-size candidate last segment, to tell truncation from corruption.
    scratch: Zeroizing<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Reading,
    /// The last segment has been loaded; nothing follows.
    Done,
    Failed(Failure),
}

/// A permanent failure, repeated by every later `read` until a successful seek.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Corrupt(u64),
    Truncated,
    Trailing,
    TooManySegments,
    /// A seek failed part way, or a thread holding segments opened ahead panicked: the position
    /// is unknown until the next successful seek.
    Unpositioned,
}

impl Failure {
    fn of(err: &StreamError) -> Option<Failure> {
        match err {
            StreamError::CorruptSegment { index } => Some(Failure::Corrupt(*index)),
            StreamError::Truncated => Some(Failure::Truncated),
            StreamError::TrailingData => Some(Failure::Trailing),
            StreamError::TooManySegments => Some(Failure::TooManySegments),
            _ => None,
        }
    }

    fn error(self) -> StreamError {
        match self {
            Failure::Corrupt(index) => StreamError::CorruptSegment { index },
            Failure::Truncated => StreamError::Truncated,
            Failure::Trailing => StreamError::TrailingData,
            Failure::TooManySegments => StreamError::TooManySegments,
            Failure::Unpositioned => StreamError::InvalidSeek,
        }
    }
}

/// Segments opened ahead of small reads by a reader with several threads.
struct ReadAhead {
    /// Segments read from the input and handed to the threads, in stream order; the first one
    /// is the next plaintext to return.
    pipeline: Pipeline,
    /// The input ended (what is left of it is in `buf`): it is not read again.
    ended: bool,
    /// An error that stopped loading the next segment, returned once the segments before it
    /// have been (as a one-thread reader would).
    deferred: Option<StreamError>,
}

impl ReadAhead {
    /// Whether reads must go through it (until what it holds, or knows, has been returned).
    fn busy(&self) -> bool {
        self.pipeline.len() > 0 || self.ended || self.deferred.is_some()
    }
}

/// What authenticating one segment found.
enum Opened {
    NonFinal,
    Final { plain_len: usize },
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
        let segment_size = header.segment_size();
        Ok(RestoreReader {
            inner,
            consumed: header.encoded_len() as u64,
            header,
            cipher: Arc::new(cipher),
            segment_size,
            threads: NonZeroUsize::MIN,
            buf: Zeroizing::new(vec![0; segment_size + TAG_LEN + LOOKAHEAD]),
            filled: 0,
            ahead: 0,
            ahead_at: 0,
            plain_start: 0,
            plain_end: 0,
            seg_next: 0,
            seg_count: 0,
            last_len: 0,
            ahead_of_reads: None,
            opened: Zeroizing::new(Vec::new()),
            opened_start: 0,
            opened_end: 0,
            index: 0,
            state: State::Reading,
            offset: 0,
            skip: 0,
            base: None,
            plain_len: None,
            scratch: Zeroizing::new(Vec::new()),
        })
    }

    /// Opens segments on `threads` threads of the reader's own (the default is 1: the calling
    /// thread only).
    ///
    /// With `threads > 1` the reader authenticates and decrypts consecutive segments in
    /// parallel (no global pool is used), and returns exactly what a one-thread reader returns,
    /// including the error and the point where it occurs: no plaintext of a segment that
    /// failed, or of any later segment, is ever returned.
    /// - A `read` of at least 64 segments (4 MiB with the default segment size) opens them
    ///   straight in the caller's buffer, on scoped threads that never outlive the call, while
    ///   the calling thread loads the next ones.
    /// - Smaller reads are served from segments opened ahead by `threads - 1` threads of the
    ///   reader's own (named `strongbox-open`), started by the first such read and joined when
    ///   the reader reaches the end of the stream, seeks, or is dropped. The calling
    ///   thread reads the input and hands each segment over; at most about 1 MiB per thread
    ///   (and at least one segment per thread, and one more) is opened ahead, starting at one
    ///   segment per thread, so a short stream or a short read after a seek decrypts little
    ///   more than it needs.
    ///
    /// `threads` is capped at the number of cores ([`std::thread::available_parallelism`]), and
    /// a large `read` starts no more threads than it has segments; a thread that cannot be
    /// started is an I/O error ([`StreamError::Io`]) that leaves the reader as it was, so a
    /// later `read` may retry.
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
    /// With several threads the segments are opened ahead on the reader's own threads (started
    /// once, however long the stream) while the calling thread reads and writes.
    ///
    /// An error of `out` is returned as it is; the reader stays where it was (the segment
    /// being written is written again by the next call, in full).
    pub fn copy_to<W: io::Write + ?Sized>(&mut self, out: &mut W) -> io::Result<u64> {
        let mut total = 0;
        loop {
            let (from, start, end) = if self.opened_start < self.opened_end {
                (&self.opened, &mut self.opened_start, self.opened_end)
            } else {
                (&self.buf, &mut self.plain_start, self.plain_end)
            };
            if *start < end {
                out.write_all(&from[*start..end])?;
                let n = end - std::mem::replace(start, end);
                self.offset += n as u64;
                total += n as u64;
                continue;
            }
            if self.next_segment() {
                continue;
            }
            match self.state {
                State::Done => return Ok(total),
                State::Failed(failure) => return Err(failure.error().into_io()),
                State::Reading => {}
            }
            let buffered = if self.ahead > 0 {
                self.ahead
            } else {
                self.filled
            };
            let ahead = self.ahead_of_reads.as_ref().is_some_and(ReadAhead::busy)
                || (self.threads.get() > 1 && self.skip == 0 && buffered < self.full());
            let loaded = if ahead {
                self.load_ahead(true).map(drop)
            } else {
                self.load_buffered()
            };
            if let Err(err) = loaded {
                return Err(self.fail(err));
            }
        }
    }

    /// The stream's header (authenticated).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Returns the inner reader, positioned somewhere after what has been returned.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Length of a full ciphertext segment.
    fn full(&self) -> usize {
        self.segment_size + TAG_LEN
    }

    /// Records a stream error as permanent (I/O errors stay retryable) and converts it.
    fn fail(&mut self, err: StreamError) -> io::Error {
        if let Some(failure) = Failure::of(&err) {
            self.state = State::Failed(failure);
        }
        err.into_io()
    }

    /// Moves waiting lookahead bytes to the front of `buf`, where segment `index` starts.
    fn take_lookahead(&mut self) {
        if self.ahead > 0 {
            let at = self.ahead_at;
            self.buf.copy_within(at..at + self.ahead, 0);
            self.filled = self.ahead;
            self.ahead = 0;
        }
    }

    /// Loads segment `index` (and the lookahead after it) into `buf` and authenticates it; or
    /// the two segments `buf` already holds part of after an interrupted large read. A segment
    /// followed by at least [`LOOKAHEAD`] bytes is not the last; if the input ends within the
    /// load, the segment where it ends is handled as the last one.
    fn load_buffered(&mut self) -> Result<(), StreamError> {
        self.take_lookahead();
        let full = self.full();
        let segments = self.filled.saturating_sub(LOOKAHEAD).div_ceil(full).max(1);
        let want = segments * full + LOOKAHEAD;
        let got = fill(&mut self.inner, &mut self.buf[..want], self.filled);
        self.consumed += (got.0 - self.filled) as u64;
        self.filled = got.0;
        got.1?;
        self.open_loaded(want, segments)
    }

    /// Authenticates the segments loaded in `buf[..filled]`: `segments` non-final ones if the
    /// load is complete (`filled == want`), else the input ended within them (they are at most
    /// two segments: a full one before the end, then the one the end is in).
    fn open_loaded(&mut self, want: usize, segments: usize) -> Result<(), StreamError> {
        let full = self.full();
        let filled = std::mem::take(&mut self.filled);
        let nonfinal = (filled.saturating_sub(LOOKAHEAD) / full).min(segments);
        let index = self.index;
        if index.checked_add(nonfinal as u64).is_none() {
            return Err(StreamError::TooManySegments);
        }
        let failed = self.buf[..nonfinal * full]
            .chunks_mut(full)
            .enumerate()
            .position(|(j, segment)| self.cipher.open(index + j as u64, false, segment).is_err());
        let (ready, last_len, error) = if let Some(j) = failed {
            // Nothing after the failed segment may be released, nor kept in clear.
            self.buf[(j + 1) * full..nonfinal * full].fill(0);
            let index = index + j as u64;
            (
                j,
                full - TAG_LEN,
                Some(StreamError::CorruptSegment { index }),
            )
        } else if filled == want {
            self.index = index + nonfinal as u64;
            self.ahead = LOOKAHEAD;
            self.ahead_at = nonfinal * full;
            (nonfinal, full - TAG_LEN, None)
        } else {
            // The input ends within segment `nonfinal` (or right after it): it is the last.
            self.index = index + nonfinal as u64;
            let start = nonfinal * full;
            let seg_len = (filled - start).min(full);
            let extra = filled - start - seg_len;
            match authenticate(
                &self.cipher,
                &mut self.scratch,
                self.index,
                full,
                &mut self.buf[start..start + seg_len],
                extra,
            )
            .and_then(|opened| self.accept(opened, extra))
            {
                Ok(plain_len) => (nonfinal + 1, plain_len, None),
                Err(err) => (nonfinal, full - TAG_LEN, Some(err)),
            }
        };
        self.seg_count = ready;
        self.seg_next = 0;
        self.last_len = last_len;
        let skip = std::mem::take(&mut self.skip);
        if self.next_segment() {
            self.plain_start += skip.min(self.plain_end - self.plain_start);
        }
        match error {
            Some(err) if ready == 0 => Err(err),
            Some(err) => {
                // Reported once the segments before it have been read.
                let _ = self.fail(err);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Makes the next authenticated segment of the batch the pending plaintext, if there is one.
    fn next_segment(&mut self) -> bool {
        if self.seg_next >= self.seg_count {
            return false;
        }
        let j = self.seg_next;
        self.seg_next += 1;
        self.plain_start = j * self.full();
        self.plain_end = self.plain_start
            + if self.seg_next == self.seg_count {
                self.last_len
            } else {
                self.segment_size
            };
        true
    }

    /// Loads segment `index` straight into `out` (at least one full ciphertext segment long) and
    /// authenticates it there; returns its plaintext length. Used only when no plaintext is
    /// pending and nothing is to be skipped.
    fn load_direct(&mut self, out: &mut [u8]) -> Result<usize, StreamError> {
        self.take_lookahead();
        let full = self.full();
        let out = &mut out[..full];
        let have = self.filled;
        out[..have].copy_from_slice(&self.buf[..have]);
        let (got, result) = fill(&mut self.inner, out, have);
        self.consumed += (got - have) as u64;
        if let Err(err) = result {
            self.buf[..got].copy_from_slice(&out[..got]);
            self.filled = got;
            return Err(err.into());
        }
        let mut extra = 0;
        if got == full {
            let (ahead, result) = fill(&mut self.inner, &mut self.buf[full..full + LOOKAHEAD], 0);
            self.consumed += ahead as u64;
            if let Err(err) = result {
                // Keep everything in `buf` (the lookahead already is), as the buffered path would.
                self.buf[..full].copy_from_slice(out);
                self.filled = full + ahead;
                return Err(err.into());
            }
            extra = ahead;
        }
        self.filled = 0;
        let opened = authenticate(
            &self.cipher,
            &mut self.scratch,
            self.index,
            full,
            &mut out[..got],
            extra,
        )?;
        self.accept(opened, extra)
    }

    /// With several threads: loads whole non-final segments straight into `out` (each segment's
    /// ciphertext at its plaintext offset, its tag aside) and opens them there on the threads
    /// while the calling thread loads the next ones; returns the plaintext length released.
    /// A segment is handed to the threads once the bytes after it show it is not the last.
    ///
    /// If the input ends within these segments, the segments before the end are released and
    /// the rest (at most two segments) goes back to `buf`, to [`open_loaded`](Self::open_loaded),
    /// which knows how to end a stream (the input is never read again past its end). An I/O
    /// error keeps the unopened bytes in `buf` for a retry; it is returned at once if nothing
    /// was released, else by the next `read`, which retries the inner reader. Used only when no
    /// plaintext is pending and nothing is to be skipped, with `out` at least one segment long.
    fn load_direct_batch(&mut self, out: &mut [u8]) -> Result<usize, StreamError> {
        self.take_lookahead();
        let size = self.segment_size;
        let full = self.full();
        let count = (out.len() / size).min(MAX_DIRECT_SEGMENTS);
        let index = self.index;
        if index.checked_add(count as u64).is_none() {
            return Err(StreamError::TooManySegments);
        }
        // Bytes of the first segment already read.
        let have = std::mem::take(&mut self.filled);
        let (inner, buf, cipher) = (&mut self.inner, &mut self.buf, &self.cipher);
        // The result of a task: `usize::MAX`, or the segment that failed.
        let open = |(j, segment, tag): (usize, &mut [u8], [u8; TAG_LEN])| match cipher
            .open_detached(index + j as u64, false, segment, &tag)
        {
            Ok(()) => usize::MAX,
            Err(_) => j,
        };
        // Segments of `out` written to (the rest is left as it was, untouched).
        let mut touched = 0;
        let threads = self
            .threads
            .min(NonZeroUsize::new(count).expect("count >= 1"));
        let loaded = parallel::with_helpers(threads, open, |helpers| {
            let mut failed = usize::MAX;
            let (mut sent, mut finished) = (0, 0);
            // A whole segment not yet known to be non-final.
            let mut held: Option<(usize, &mut [u8], [u8; TAG_LEN])> = None;
            // A segment the input stopped in: its ciphertext and tag bytes so far.
            let mut partial: Option<(&mut [u8], usize, [u8; TAG_LEN], usize)> = None;
            let mut read = 0;
            let mut result = Ok(());
            for (j, segment) in out[..count * size].chunks_mut(size).enumerate() {
                touched = j + 1;
                let mut tag = [0; TAG_LEN];
                let (mut got, mut tag_got) = (0, 0);
                if j == 0 {
                    got = have.min(size);
                    tag_got = have - got;
                    segment[..got].copy_from_slice(&buf[..got]);
                    tag[..tag_got].copy_from_slice(&buf[got..have]);
                }
                let before = got + tag_got;
                (got, result) = fill(inner, segment, got);
                if got == size && result.is_ok() {
                    (tag_got, result) = fill(inner, &mut tag, tag_got);
                }
                read += got + tag_got - before;
                if got + tag_got < full {
                    partial = Some((segment, got, tag, tag_got));
                    break;
                }
                // A whole segment follows `held`: it is not the last.
                if let Some(previous) = held.replace((j, segment, tag)) {
                    helpers.push(previous);
                    sent += 1;
                }
                while let Some(done) = helpers.try_done() {
                    finished += 1;
                    failed = failed.min(done);
                }
                if failed != usize::MAX {
                    break;
                }
            }
            let mut ahead = 0;
            if partial.is_none() && result.is_ok() && failed == usize::MAX {
                (ahead, result) = fill(inner, &mut buf[..LOOKAHEAD], 0);
                read += ahead;
                if ahead == LOOKAHEAD {
                    helpers.push(held.take().expect("count >= 1"));
                    sent += 1;
                }
            }
            while let Some(done) = helpers.help() {
                finished += 1;
                failed = failed.min(done);
            }
            while finished < sent {
                let Some(done) = helpers.done() else { break };
                finished += 1;
                failed = failed.min(done);
            }
            // Put what was not handed out back in `buf`, in stream order.
            let complete = partial.is_none() && held.is_none();
            let mut tail = 0;
            if !complete {
                let need = 2 * full + LOOKAHEAD;
                if buf.len() < need {
                    let mut grown = Zeroizing::new(vec![0; need]);
                    grown[..ahead].copy_from_slice(&buf[..ahead]);
                    *buf = grown;
                }
                let held_len = if held.is_some() { full } else { 0 };
                buf.copy_within(..ahead, held_len);
                if let Some((_, segment, tag)) = &held {
                    buf[..size].copy_from_slice(segment);
                    buf[size..full].copy_from_slice(tag);
                }
                tail = held_len + ahead;
                if let Some((segment, got, tag, tag_got)) = &partial {
                    buf[tail..tail + got].copy_from_slice(&segment[..*got]);
                    buf[tail + got..tail + got + tag_got].copy_from_slice(&tag[..*tag_got]);
                    tail += got + tag_got;
                }
            }
            (sent, failed, complete, tail, read, result)
        });
        let (sent, failed, complete, tail, read, result) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                // No thread to open them on: nothing was read, the next `read` may retry.
                self.filled = have;
                return Err(err.into());
            }
        };
        self.consumed += read as u64;
        if failed != usize::MAX {
            // Nothing after the failed segment may be released, nor left in clear.
            out[failed * size..touched * size].fill(0);
            let err = StreamError::CorruptSegment {
                index: index + failed as u64,
            };
            if failed == 0 {
                return Err(err);
            }
            let _ = self.fail(err);
            return Ok(failed * size);
        }
        out[sent * size..touched * size].fill(0);
        self.index = index + sent as u64;
        if complete {
            // Every segment handed out, and the lookahead waits at the start of `buf`.
            self.ahead = LOOKAHEAD;
            self.ahead_at = 0;
            return Ok(sent * size);
        }
        self.filled = tail;
        if let Err(err) = result {
            return if sent == 0 {
                Err(err.into())
            } else {
                Ok(sent * size)
            };
        }
        // The input ended here: never read past that end (as the one-thread reader).
        match self.open_loaded(usize::MAX, 2) {
            Ok(()) => Ok(sent * size),
            Err(err) if sent > 0 => {
                // Reported once the segments before it have been read.
                let _ = self.fail(err);
                Ok(sent * size)
            }
            Err(err) => Err(err),
        }
    }

    /// Forgets the segments opened ahead (and stops their threads): a seek reads from elsewhere.
    fn drop_read_ahead(&mut self) {
        self.ahead_of_reads = None;
        self.opened_start = 0;
        self.opened_end = 0;
    }

    /// Segments handed to the threads and not yet returned (for tests).
    #[cfg(test)]
    pub(crate) fn segments_opened_ahead(&self) -> usize {
        self.ahead_of_reads
            .as_ref()
            .map_or(0, |ahead| ahead.pipeline.len())
    }

    /// With several threads, for a small read: reads the next segments from the input and
    /// hands them to the reader's threads (started on first need), up to a few per thread
    /// ahead (none more unless `more`: a large read only takes what is ahead, then goes
    /// straight into its buffer), then makes the first of them, once opened, the pending
    /// plaintext in `opened`. Returns 0. At the end of the input, ends the stream in `buf` as
    /// a one-thread reader would; an error is returned once the segments before it have been.
    fn load_ahead(&mut self, more: bool) -> Result<usize, StreamError> {
        if self.ahead_of_reads.is_none() {
            let cipher = Arc::clone(&self.cipher);
            let pipeline = Pipeline::new(
                self.threads,
                self.segment_size,
                self.full() + LOOKAHEAD,
                "strongbox-open",
                move |segment| {
                    segment.ok = cipher
                        .open(segment.index, false, &mut segment.buf[..segment.len])
                        .is_ok();
                },
            )?;
            self.ahead_of_reads = Some(ReadAhead {
                pipeline,
                ended: false,
                deferred: None,
            });
        }
        self.take_lookahead();
        let full = self.full();
        let ahead = self.ahead_of_reads.as_mut().expect("started above");
        while more && !ahead.ended && ahead.deferred.is_none() && !ahead.pipeline.is_full() {
            // Read the segment straight into a buffer of the threads, with the lookahead after
            // it, which shows that it is not the last one.
            let mut segment = ahead.pipeline.spare();
            let have = self.filled;
            segment[..have].copy_from_slice(&self.buf[..have]);
            let (got, result) = fill(&mut self.inner, &mut segment[..full + LOOKAHEAD], have);
            self.consumed += (got - have) as u64;
            let next = self.index.checked_add(1);
            if let (true, Some(next)) = (got == full + LOOKAHEAD, next) {
                self.buf[..LOOKAHEAD].copy_from_slice(&segment[full..]);
                self.filled = LOOKAHEAD;
                ahead.pipeline.push(Segment {
                    index: self.index,
                    last: false,
                    len: full,
                    buf: segment,
                    ok: false,
                });
                self.index = next;
                continue;
            }
            // The input ended, failed or holds too many segments: keep what was read in `buf`.
            self.buf[..got].copy_from_slice(&segment[..got]);
            self.filled = got;
            ahead.pipeline.recycle(segment);
            match result {
                Err(err) => ahead.deferred = Some(err.into()),
                Ok(()) if next.is_none() => ahead.deferred = Some(StreamError::TooManySegments),
                Ok(()) => ahead.ended = true,
            }
        }
        let segment = match ahead.pipeline.pop() {
            Ok(segment) => segment,
            Err(err) => {
                // The segments the threads held are lost with them.
                self.ahead_of_reads = None;
                self.state = State::Failed(Failure::Unpositioned);
                return Err(err.into());
            }
        };
        match segment {
            Some(segment) if segment.ok => {
                let done = std::mem::replace(&mut self.opened, segment.buf);
                ahead.pipeline.recycle(done);
                self.opened_start = 0;
                self.opened_end = self.segment_size;
                Ok(0)
            }
            Some(segment) => {
                // Nothing after the failed segment may be released: drop (and zeroize) it all.
                self.ahead_of_reads = None;
                Err(StreamError::CorruptSegment {
                    index: segment.index,
                })
            }
            None => {
                if let Some(err) = ahead.deferred.take() {
                    return Err(err);
                }
                // The input ended: what is left of it, in `buf`, ends the stream.
                self.ahead_of_reads = None;
                self.open_loaded(usize::MAX, 2).map(|()| 0)
            }
        }
    }

    /// Advances past an authenticated segment; returns its plaintext length.
    fn accept(&mut self, opened: Opened, extra: usize) -> Result<usize, StreamError> {
        match opened {
            Opened::NonFinal => {
                self.ahead = extra;
                self.ahead_at = self.full();
                self.index = self
                    .index
                    .checked_add(1)
                    .ok_or(StreamError::TooManySegments)?;
                Ok(self.segment_size)
            }
            Opened::Final { plain_len } => {
                self.state = State::Done;
                let len = self
                    .index
                    .checked_mul(self.segment_size as u64)
                    .and_then(|start| start.checked_add(plain_len as u64))
                    .ok_or(StreamError::TooManySegments)?;
                self.plain_len = Some(len);
                Ok(plain_len)
            }
        }
    }
}

/// Copies the start of `from[*start..end]` into `out` and advances `*start`; returns the count.
fn take(from: &[u8], start: &mut usize, end: usize, out: &mut [u8]) -> usize {
    let n = out.len().min(end - *start);
    out[..n].copy_from_slice(&from[*start..*start + n]);
    *start += n;
    n
}

/// Reads into `buf[filled..]` until `buf` is full or the input ends. Returns the new fill level
/// and the error that stopped it, if any (`Interrupted` is retried).
fn fill<R: Read>(inner: &mut R, buf: &mut [u8], mut filled: usize) -> (usize, io::Result<()>) {
    while filled < buf.len() {
        match inner.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Err(e)),
        }
    }
    (filled, Ok(()))
}

/// Authenticates segment `index` in place. `seg` holds the bytes that may form it (at most one
/// full ciphertext segment, `full` bytes) and `extra` counts the bytes that follow it before the
/// end of the input (at most [`LOOKAHEAD`]; `LOOKAHEAD` means "more data follows").
///
/// The segment is the last one exactly when fewer than `LOOKAHEAD` bytes follow it.
fn authenticate(
    cipher: &SegmentCipher,
    scratch: &mut Vec<u8>,
    index: u64,
    full: usize,
    seg: &mut [u8],
    extra: usize,
) -> Result<Opened, StreamError> {
    let corrupt = |_| StreamError::CorruptSegment { index };
    if extra >= LOOKAHEAD {
        cipher.open(index, false, seg).map_err(corrupt)?;
        return Ok(Opened::NonFinal);
    }
    // Only the last segment of an empty stream may be empty.
    let min_len = if index == 0 { TAG_LEN } else { TAG_LEN + 1 };
    if seg.len() < min_len {
        return Err(StreamError::Truncated);
    }
    if seg.len() < full {
        cipher.open(index, true, seg).map_err(corrupt)?;
        return Ok(Opened::Final {
            plain_len: seg.len() - TAG_LEN,
        });
    }
    // A full-size segment at the end: either the genuine last segment, or a non-last one whose
    // successors were cut off (or replaced by fewer than LOOKAHEAD bytes). Keep a copy to try
    // both; this happens at most once per pass over the stream.
    scratch.clear();
    scratch.extend_from_slice(seg);
    if cipher.open(index, true, seg).is_ok() {
        return if extra > 0 {
            Err(StreamError::TrailingData)
        } else {
            Ok(Opened::Final {
                plain_len: full - TAG_LEN,
            })
        };
    }
    if cipher.open(index, false, scratch).is_ok() {
        scratch.fill(0);
        return Err(StreamError::Truncated);
    }
    Err(StreamError::CorruptSegment { index })
}

impl<R: Read> Read for RestoreReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            // Plaintext opened ahead comes before plaintext pending in `buf`.
            let n = match take(&self.opened, &mut self.opened_start, self.opened_end, out) {
                0 => take(&self.buf, &mut self.plain_start, self.plain_end, out),
                n => n,
            };
            if n > 0 {
                self.offset += n as u64;
                return Ok(n);
            }
            if self.next_segment() {
                continue;
            }
            match self.state {
                State::Done => return Ok(0),
                State::Failed(failure) => return Err(failure.error().into_io()),
                State::Reading => {}
            }
            let full = self.full();
            let buffered = if self.ahead > 0 {
                self.ahead
            } else {
                self.filled
            };
            // Straight into `out`: one segment with one thread, a run with several (or, for a
            // smaller read, from the segments the reader's threads open ahead).
            let large = out.len() / DIRECT_READ_SEGMENTS >= self.segment_size;
            let direct = if self.ahead_of_reads.as_ref().is_some_and(ReadAhead::busy) {
                Some(self.load_ahead(!large))
            } else if self.skip > 0 || buffered >= full {
                None
            } else if self.threads.get() == 1 {
                (out.len() >= full).then(|| self.load_direct(out))
            } else if large {
                Some(self.load_direct_batch(out))
            } else {
                Some(self.load_ahead(true))
            };
            match direct {
                Some(Ok(0)) => continue,
                Some(Ok(n)) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Some(Err(err)) => return Err(self.fail(err)),
                None => {}
            }
            if let Err(err) = self.load_buffered() {
                return Err(self.fail(err));
            }
        }
    }
}

impl<R: Read + Seek> RestoreReader<R> {
    /// The authenticated plaintext length. The first call authenticates the last segment (as
    /// the last one); the length is never taken from the unauthenticated size of the input.
    /// The read position is kept.
    pub fn plaintext_len(&mut self) -> Result<u64, StreamError> {
        if let Some(len) = self.plain_len {
            return Ok(len);
        }
        let offset = self.offset;
        let result = self.find_plaintext_len().and_then(|len| {
            self.jump(offset, len)?;
            Ok(len)
        });
        if let Err(err) = &result {
            self.state = State::Failed(Failure::of(err).unwrap_or(Failure::Unpositioned));
        }
        result
    }

    /// Moves to plaintext offset `target` of a stream of `len` bytes; segments load lazily.
    fn jump(&mut self, target: u64, len: u64) -> Result<(), StreamError> {
        self.drop_read_ahead();
        if target >= len {
            self.plain_start = 0;
            self.plain_end = 0;
            self.seg_count = 0;
            self.state = State::Done;
        } else {
            let size = self.segment_size as u64;
            self.position_at_segment(target / size, (target % size) as usize)?;
        }
        self.offset = target;
        Ok(())
    }

    fn find_plaintext_len(&mut self) -> Result<u64, StreamError> {
        let base = self.base()?;
        let header_len = self.header.encoded_len() as u64;
        let end = self.inner.seek(SeekFrom::End(0))?;
        let body = end
            .checked_sub(base + header_len)
            .filter(|&len| len > 0)
            .ok_or(StreamError::Truncated)?;
        let full = self.full() as u64;
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
        self.load_buffered()?;
        self.plain_len.ok_or(StreamError::Truncated)
    }

    /// Where the stream starts in `inner`.
    fn base(&mut self) -> Result<u64, StreamError> {
        if let Some(base) = self.base {
            return Ok(base);
        }
        let position = self.inner.stream_position()?;
        let base = position
            .checked_sub(self.consumed)
            .ok_or(StreamError::InvalidSeek)?;
        self.base = Some(base);
        Ok(base)
    }

    /// Positions `inner` at the start of segment `index`, to drop `skip` plaintext bytes.
    fn position_at_segment(&mut self, index: u64, skip: usize) -> Result<(), StreamError> {
        let base = self.base()?;
        let header_len = self.header.encoded_len() as u64;
        let start = index
            .checked_mul(self.full() as u64)
            .and_then(|offset| offset.checked_add(header_len))
            .ok_or(StreamError::InvalidSeek)?;
        let target = base.checked_add(start).ok_or(StreamError::InvalidSeek)?;
        // Mark the position unknown until the seek has succeeded.
        self.state = State::Failed(Failure::Unpositioned);
        self.inner.seek(SeekFrom::Start(target))?;
        self.consumed = start;
        self.index = index;
        self.skip = skip;
        self.filled = 0;
        self.ahead = 0;
        self.plain_start = 0;
        self.plain_end = 0;
        self.seg_next = 0;
        self.seg_count = 0;
        self.drop_read_ahead();
        self.state = State::Reading;
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
        self.jump(target, len).map_err(|e| self.fail(e))?;
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
            .field("cipher", &self.cipher)
            .field("next_segment", &self.index)
            .field("threads", &self.threads)
            .field("offset", &self.offset)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
