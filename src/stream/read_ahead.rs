//! A [`RestoreReader`] on several threads: segments opened ahead of small reads on threads of
//! the reader's own ([`ReadAhead`]), or straight in the buffer of a large read
//! ([`read_large`](large_read::read_large)). Both load through the reader's cursor, which alone
//! decides where segments end, which is the last, and what a failure is called.

use std::io::Read;
use std::num::NonZeroUsize;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::cursor::{Cursor, State};
use super::parallel::{Pipeline, Segment};
use super::reader::RestoreReader;
use super::{StreamError, large_read};

impl<R: Read> RestoreReader<R> {
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
    ///   more than it needs. [`copy_to`](Self::copy_to) is served the same way, however long
    ///   the stream.
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

    /// Segments handed to the threads and not yet returned (for tests).
    #[cfg(test)]
    pub(crate) fn segments_opened_ahead(&self) -> usize {
        self.ahead.as_ref().map_or(0, |ahead| ahead.pipeline.len())
    }
}

/// With several threads, loads the next plaintext for a read into `out` (if given): a large one
/// straight into it, else the next segment opened ahead becomes the pending plaintext (a large
/// read first takes what is already ahead). Returns the bytes placed in `out`.
pub(super) fn load<R: Read>(
    ahead: &mut Option<ReadAhead>,
    cursor: &mut Cursor<R>,
    threads: NonZeroUsize,
    out: Option<&mut [u8]>,
) -> Result<usize, StreamError> {
    let busy = ahead.as_ref().is_some_and(ReadAhead::busy);
    match out {
        Some(out) if super::is_large_io(out.len(), cursor.segment_size) => {
            if busy {
                next(ahead, cursor, threads, false).map(|()| 0)
            } else {
                large_read::read_large(cursor, threads, out)
            }
        }
        _ => next(ahead, cursor, threads, true).map(|()| 0),
    }
}

/// Makes the next segment opened ahead the pending plaintext, starting the threads on first
/// need and, if `more`, loading segments for them first. At the end of the input, ends the
/// stream through the cursor; an error is returned once the segments before it have been.
fn next<R: Read>(
    ahead: &mut Option<ReadAhead>,
    cursor: &mut Cursor<R>,
    threads: NonZeroUsize,
    more: bool,
) -> Result<(), StreamError> {
    let running = match ahead {
        Some(running) => running,
        None => ahead.insert(ReadAhead::start(cursor, threads)?),
    };
    if more {
        running.refill(cursor);
    }
    match running.next() {
        Next::Opened => Ok(()),
        Next::Deferred(err) => Err(err),
        Next::Ended => {
            *ahead = None;
            cursor.open_end()
        }
        Next::Corrupt(err) => {
            // Nothing after the failed segment may be released: drop (and zeroize) it all.
            *ahead = None;
            Err(err)
        }
        Next::Lost(err) => {
            *ahead = None;
            cursor.state = State::Failed(StreamError::InvalidSeek);
            Err(err)
        }
    }
}

/// Segments read through a [`Cursor`] and opened ahead by a reader's threads.
pub(super) struct ReadAhead {
    /// Segments handed to the threads, in stream order; the first one is the next plaintext
    /// to return.
    pipeline: Pipeline,
    /// The input ended (what is left of it is in the cursor): it is not read again.
    ended: bool,
    /// An error that stopped loading the next segment, returned once the segments before it
    /// have been (as a one-thread reader would).
    deferred: Option<StreamError>,
    /// The plaintext of the segment being returned, not yet returned: `opened[start..end]`.
    /// Zeroized on drop.
    opened: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
    segment_size: usize,
}

/// What [`ReadAhead::next`] found.
pub(super) enum Next {
    /// The next segment's plaintext is pending.
    Opened,
    /// The input ended: what is left of it, in the cursor, ends the stream.
    Ended,
    /// An error of the cursor, after the segments before it were returned (it may be retried).
    Deferred(StreamError),
    /// A segment failed to authenticate: nothing after it may be released.
    Corrupt(StreamError),
    /// A thread panicked: the segments it held are lost.
    Lost(StreamError),
}

impl ReadAhead {
    /// Starts `threads - 1` threads (named `strongbox-open`) opening the segments of `cursor`.
    pub(super) fn start<R: Read>(
        cursor: &Cursor<R>,
        threads: NonZeroUsize,
    ) -> Result<Self, StreamError> {
        let cipher = Arc::clone(&cursor.cipher);
        let pipeline = Pipeline::new(
            threads,
            cursor.segment_size,
            cursor.full,
            "strongbox-open",
            move |segment| {
                segment.ok = cipher
                    .open(segment.index, false, &mut segment.buf[..segment.len])
                    .is_ok();
            },
        )?;
        Ok(ReadAhead {
            pipeline,
            ended: false,
            deferred: None,
            opened: Zeroizing::new(Vec::new()),
            start: 0,
            end: 0,
            segment_size: cursor.segment_size,
        })
    }

    /// Whether reads must go through it (until what it holds, or knows, has been returned).
    pub(super) fn busy(&self) -> bool {
        self.pipeline.len() > 0 || self.ended || self.deferred.is_some()
    }

    /// The opened plaintext not yet returned.
    pub(super) fn pending(&self) -> &[u8] {
        &self.opened[self.start..self.end]
    }

    /// Marks the first `n` pending bytes returned.
    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Loads the next segments through `cursor` and hands them to the threads, up to a few
    /// per thread ahead, until the input ends or fails.
    pub(super) fn refill<R: Read>(&mut self, cursor: &mut Cursor<R>) {
        let full = cursor.full;
        while !self.ended && self.deferred.is_none() && !self.pipeline.is_full() {
            let mut buf = self.pipeline.spare();
            match cursor.load_into(&mut buf[..full]) {
                Ok(Some(index)) => self.pipeline.push(Segment {
                    index,
                    last: false,
                    len: full,
                    buf,
                    ok: false,
                }),
                Ok(None) => {
                    self.pipeline.recycle(buf);
                    self.ended = true;
                }
                Err(err) => {
                    self.pipeline.recycle(buf);
                    self.deferred = Some(err);
                }
            }
        }
    }

    /// Makes the first segment handed out, once opened, the pending plaintext.
    pub(super) fn next(&mut self) -> Next {
        let segment = match self.pipeline.pop() {
            Ok(segment) => segment,
            Err(err) => return Next::Lost(err.into()),
        };
        match segment {
            Some(segment) if segment.ok => {
                let done = std::mem::replace(&mut self.opened, segment.buf);
                self.pipeline.recycle(done);
                self.start = 0;
                self.end = self.segment_size;
                Next::Opened
            }
            Some(segment) => Next::Corrupt(StreamError::CorruptSegment {
                index: segment.index,
            }),
            None => match self.deferred.take() {
                Some(err) => Next::Deferred(err),
                None => Next::Ended,
            },
        }
    }
}
