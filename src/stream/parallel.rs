//! Sealing or opening a batch of consecutive segments on several threads.
//!
//! The writer and the reader hold one batch of segments in their buffer, laid out exactly as in
//! the stream (each segment followed by its tag). With more than one thread, the segments of a
//! batch are handed out in order, one at a time, to the calling thread and its helpers, which run
//! under [`std::thread::scope`]:
//! every worker is joined before [`for_each_segment`] returns, so no thread outlives the call and
//! a reader or writer never owns a thread between calls (dropping one mid-stream leaves none
//! behind). No pool is shared with the host.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, mpsc};
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

/// Runs `body` with `threads - 1` scoped helper threads that take tasks from a queue, run
/// `work` on each and send the result back. The calling thread hands out tasks, runs queued
/// tasks itself when it has nothing else to do ([`Helpers::help`]) and collects results
/// ([`Helpers::done`]). The helpers stop when `body` returns and are joined before
/// `with_helpers` returns (a panic in one is resumed on the calling thread): no thread outlives
/// the call.
///
/// Unlike [`for_each_segment`], tasks flow through the queue for as long as `body` runs, so a
/// long `write` or `read` starts its threads once, not once per batch, and I/O on the calling
/// thread overlaps the work of the helpers.
pub(crate) fn with_helpers<T, U, R>(
    threads: NonZeroUsize,
    work: impl Fn(T) -> U + Sync,
    body: impl FnOnce(&mut Helpers<'_, T, U>) -> R,
) -> R
where
    T: Send,
    U: Send,
{
    let queue = Queue {
        tasks: Mutex::new((VecDeque::new(), false)),
        ready: Condvar::new(),
    };
    let (done_tx, done_rx) = mpsc::channel::<Option<U>>();
    let work = &work;
    thread::scope(|scope| {
        let workers: Vec<_> = (1..threads.get())
            .map(|_| {
                let (queue, done) = (&queue, done_tx.clone());
                scope.spawn(move || {
                    // A helper that panics says so, so that `done` never waits for it forever.
                    let _alarm = PanicAlarm(&done);
                    while let Some(task) = queue.wait() {
                        if done.send(Some(work(task))).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(done_tx);
        let mut helpers = Helpers {
            queue: &queue,
            done: done_rx,
            work,
        };
        let value = body(&mut helpers);
        // Closes the queue (also if `body` panics): the helpers stop after their current task.
        drop(helpers);
        for worker in workers {
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        value
    })
}

/// The tasks of [`with_helpers`] not taken yet, and whether more may come.
struct Queue<T> {
    tasks: Mutex<(VecDeque<T>, bool)>,
    ready: Condvar,
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, (VecDeque<T>, bool)> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next task, waiting for one; `None` once the queue is closed and empty.
    fn wait(&self) -> Option<T> {
        let mut tasks = self.lock();
        loop {
            if let Some(task) = tasks.0.pop_front() {
                return Some(task);
            }
            if tasks.1 {
                return None;
            }
            tasks = self
                .ready
                .wait(tasks)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_all();
    }
}

/// The calling thread's side of [`with_helpers`].
pub(crate) struct Helpers<'a, T, U> {
    queue: &'a Queue<T>,
    done: mpsc::Receiver<Option<U>>,
    work: &'a (dyn Fn(T) -> U + Sync),
}

impl<T, U> Helpers<'_, T, U> {
    /// Queues a task for the first thread free to take it.
    pub(crate) fn push(&self, task: T) {
        self.queue.lock().0.push_back(task);
        self.queue.ready.notify_one();
    }

    /// Runs the next queued task on the calling thread, if there is one; returns its result.
    pub(crate) fn help(&self) -> Option<U> {
        let task = self.queue.lock().0.pop_front()?;
        Some((self.work)(task))
    }

    /// A result from a helper, if one is ready.
    pub(crate) fn try_done(&self) -> Option<U> {
        self.done.try_recv().ok().flatten()
    }

    /// Waits for the next result from a helper. Call it only while a task is running on a
    /// helper (queued tasks are for [`help`](Self::help)). `None` if a helper panicked (the
    /// panic is resumed when `with_helpers` returns).
    pub(crate) fn done(&self) -> Option<U> {
        self.done.recv().ok().flatten()
    }
}

impl<T, U> Drop for Helpers<'_, T, U> {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Sends `None` if dropped while its thread panics.
struct PanicAlarm<'a, U>(&'a mpsc::Sender<Option<U>>);

impl<U> Drop for PanicAlarm<'_, U> {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self.0.send(None);
        }
    }
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
    fn helpers_run_every_task_once() {
        for threads in [1, 2, 4] {
            let results = with_helpers(
                n(threads),
                |x: u64| x * x,
                |helpers| {
                    for x in 0..1000 {
                        helpers.push(x);
                    }
                    let mut results = Vec::new();
                    while let Some(r) = helpers.help() {
                        results.push(r);
                    }
                    while results.len() < 1000 {
                        results.push(helpers.done().expect("no panic"));
                    }
                    assert_eq!(helpers.try_done(), None);
                    results
                },
            );
            let mut results = results;
            results.sort_unstable();
            assert_eq!(results, (0..1000).map(|x| x * x).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_panicking_helper_wakes_the_waiting_caller_and_the_panic_is_resumed() {
        let panicked = std::panic::catch_unwind(|| {
            with_helpers(
                n(2),
                |x: u32| {
                    assert_ne!(x, 7, "task 7 fails");
                    x
                },
                |helpers| {
                    helpers.push(7);
                    // Let the helper take it, then wait for its result: none comes.
                    while helpers.queue.lock().0.len() == 1 {
                        thread::yield_now();
                    }
                    helpers.done()
                },
            )
        });
        assert!(panicked.is_err());
    }

    #[test]
    fn a_panic_on_the_calling_thread_stops_the_helpers() {
        let panicked = std::panic::catch_unwind(|| {
            with_helpers(
                n(3),
                |x: u32| x,
                |helpers| {
                    helpers.push(1);
                    panic!("the caller fails");
                },
            )
        });
        assert!(panicked.is_err());
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
