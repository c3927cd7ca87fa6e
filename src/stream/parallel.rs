//! Sealing or opening a batch of consecutive segments on several threads.
//!
//! The writer and the reader hold one batch of segments in their buffer, laid out exactly as in
//! the stream (each segment followed by its tag). With more than one thread, the segments of a
//! batch are handed out in order, one at a time, to the calling thread and its helpers, which run
//! under [`std::thread::scope`]:
//! every worker is joined before [`for_each_segment`] returns, so no thread outlives the call and
//! a reader or writer never owns a thread between calls (dropping one mid-stream leaves none
//! behind). No pool is shared with the host.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

/// Plaintext bytes per thread in a batch when sealing or opening on several threads: large
/// enough that starting the scoped workers (tens of microseconds) costs a few percent of the
/// work, small enough to keep the buffers near the caches.
const BYTES_PER_THREAD: usize = 1 << 20;

/// The number of segments in the first batch with `threads` threads: one per thread. After
/// each batch of non-final segments the batch doubles, up to [`max_batch`]: so a short stream
/// (or a random read after a seek) processes and allocates little, a long one soon runs at
/// full batches.
pub(crate) fn first_batch(threads: NonZeroUsize) -> usize {
    threads.get()
}

/// The largest batch, in segments of `segment_size` plaintext bytes: one segment with one thread
/// (sealed or opened in place, as they come), else about [`BYTES_PER_THREAD`] (and at least one
/// segment) per thread.
pub(crate) fn max_batch(threads: NonZeroUsize, segment_size: usize) -> usize {
    match threads.get() {
        1 => 1,
        n => n * (BYTES_PER_THREAD / segment_size).max(1),
    }
}

/// The batch after one of `batch` segments.
pub(crate) fn next_batch(batch: usize, threads: NonZeroUsize, segment_size: usize) -> usize {
    batch
        .saturating_mul(2)
        .clamp(first_batch(threads), max_batch(threads, segment_size))
}

/// Calls `f(j, segment_j)` for every segment of `buf`, cut into `full`-byte segments (the last
/// one may be shorter), on up to `threads` threads (the calling thread is one of them). Returns
/// the smallest `j` for which `f` returned `false`, if any. Segments after a failed one may or
/// may not have been processed.
pub(crate) fn for_each_segment<F>(
    threads: NonZeroUsize,
    buf: &mut [u8],
    full: usize,
    f: F,
) -> Option<usize>
where
    F: Fn(usize, &mut [u8]) -> bool + Sync,
{
    split(threads, buf, full, f, None::<fn()>).0
}

/// Like [`for_each_segment`], but the calling thread first runs `alongside` (the writer's output
/// of the previous batch) while its helpers start on the segments, so I/O and sealing overlap;
/// then it takes segments too. With one thread (or one segment) `alongside` runs first, then
/// the segments, on the calling thread.
pub(crate) fn for_each_segment_alongside<F, T>(
    threads: NonZeroUsize,
    buf: &mut [u8],
    full: usize,
    f: F,
    alongside: impl FnOnce() -> T,
) -> (Option<usize>, T)
where
    F: Fn(usize, &mut [u8]) -> bool + Sync,
{
    let (failed, value) = split(threads, buf, full, f, Some(alongside));
    (failed, value.expect("`alongside` always runs"))
}

fn split<F, T>(
    threads: NonZeroUsize,
    buf: &mut [u8],
    full: usize,
    f: F,
    alongside: Option<impl FnOnce() -> T>,
) -> (Option<usize>, Option<T>)
where
    F: Fn(usize, &mut [u8]) -> bool + Sync,
{
    let count = buf.len().div_ceil(full);
    if threads.get() == 1 || count <= 1 {
        let value = alongside.map(|alongside| alongside());
        let failed = buf
            .chunks_mut(full)
            .enumerate()
            .position(|(j, segment)| !f(j, segment));
        return (failed, value);
    }
    // Segments are handed out one at a time, in order, to whichever thread asks first (the
    // calling thread too, once `alongside` is done): a thread that the OS schedules late takes
    // fewer segments instead of holding up the batch.
    let queue = Mutex::new(buf.chunks_mut(full).enumerate());
    let failed = AtomicUsize::new(usize::MAX);
    let work = || {
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((j, segment)) = next else { break };
            // Every segment before a failed one was handed out before it: stop there.
            if failed.load(Ordering::Relaxed) < j {
                break;
            }
            if !f(j, segment) {
                failed.fetch_min(j, Ordering::Relaxed);
            }
        }
    };
    let value = thread::scope(|scope| {
        let helpers = (threads.get() - 1).min(count - 1);
        let workers: Vec<_> = (0..helpers).map(|_| scope.spawn(work)).collect();
        let value = alongside.map(|alongside| alongside());
        work();
        for worker in workers {
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        value
    });
    let failed = failed.into_inner();
    ((failed != usize::MAX).then_some(failed), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn n(threads: usize) -> NonZeroUsize {
        NonZeroUsize::new(threads).unwrap()
    }

    #[test]
    fn visits_every_segment_once_with_its_index() {
        for threads in [1, 2, 3, 8] {
            for len in [0, 1, 10, 99, 100, 101, 1000] {
                let mut buf = vec![0u8; len];
                let calls = AtomicUsize::new(0);
                let failed = for_each_segment(n(threads), &mut buf, 10, |j, seg| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    seg.fill(j as u8 + 1);
                    true
                });
                assert_eq!(failed, None);
                assert_eq!(calls.into_inner(), len.div_ceil(10));
                for (i, b) in buf.iter().enumerate() {
                    assert_eq!(*b, (i / 10) as u8 + 1, "{threads} threads, len {len}");
                }
            }
        }
    }

    #[test]
    fn reports_the_first_failed_segment() {
        for threads in [1, 2, 3, 8] {
            let mut buf = vec![0u8; 1000];
            let failed = for_each_segment(n(threads), &mut buf, 10, |j, _| j != 37 && j != 80);
            assert_eq!(failed, Some(37), "{threads} threads");
        }
    }

    #[test]
    fn batch_sizes() {
        assert_eq!(first_batch(n(1)), 1);
        assert_eq!(next_batch(1, n(1), 4096), 1);
        assert_eq!(max_batch(n(1), 16 << 20), 1);
        assert_eq!(first_batch(n(2)), 2);
        assert_eq!(next_batch(2, n(2), 64 << 10), 4);
        assert_eq!(next_batch(16, n(2), 64 << 10), 32);
        assert_eq!(next_batch(32, n(2), 64 << 10), 32);
        assert_eq!(max_batch(n(4), 16 << 20), 4);
        assert_eq!(next_batch(4, n(4), 16 << 20), 4);
    }
}
