//! Segments opened ahead of small reads, on threads of a reader's own.

use std::io::Read;
use std::num::NonZeroUsize;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::StreamError;
use super::cursor::Cursor;
use super::parallel::{Pipeline, Segment};

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
            cursor.segment_size(),
            cursor.full(),
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
            segment_size: cursor.segment_size(),
        })
    }

    /// Whether reads must go through it (until what it holds, or knows, has been returned).
    pub(super) fn busy(&self) -> bool {
        self.pipeline.len() > 0 || self.ended || self.deferred.is_some()
    }

    /// Segments handed to the threads and not yet returned.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.pipeline.len()
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
        let full = cursor.full();
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
