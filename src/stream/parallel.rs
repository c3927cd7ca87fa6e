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

/// Segment slots for a run of whole segments sealed or opened straight from the caller's
/// buffer on `threads` threads: enough that no thread waits for a free one, few enough to stay
/// in the caches.
pub(crate) fn slots(threads: NonZeroUsize) -> usize {
    4 * threads.get()
}

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
    let count = buf.len().div_ceil(full);
    if threads.get() == 1 || count <= 1 {
        return buf
            .chunks_mut(full)
            .enumerate()
            .position(|(j, segment)| !f(j, segment));
    }
    // Segments are handed out one at a time, in order, to whichever thread asks first: a
    // thread that the OS schedules late takes fewer segments instead of holding up the batch.
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
    thread::scope(|scope| {
        let helpers = (threads.get() - 1).min(count - 1);
        let workers: Vec<_> = (0..helpers).map(|_| scope.spawn(work)).collect();
        work();
        for worker in workers {
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
    });
    let failed = failed.into_inner();
    (failed != usize::MAX).then_some(failed)
}

/// Runs `work(j, slot)` for the tasks `j = 0..count` on up to `threads` threads (the calling
/// thread is one of them), and `output(slot)` on the calling thread for each task in order, as
/// soon as it and the ones before it are done. `buf` is cut into `full`-byte slots (the last
/// one may be shorter); task `j` works in slot `j % slots`, which goes on to task `j + slots`
/// once it has been output (so with more tasks than slots, all slots must be full). Stops at
/// the first output error and returns it.
pub(crate) fn ordered<E>(
    threads: NonZeroUsize,
    buf: &mut [u8],
    full: usize,
    count: usize,
    work: impl Fn(usize, &mut [u8]) + Sync,
    mut output: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let slots = buf.len().div_ceil(full);
    debug_assert!(count <= slots || buf.len() % full == 0);
    if threads.get() == 1 || count <= 1 {
        for j in 0..count {
            let start = j % slots * full;
            let end = (start + full).min(buf.len());
            let slot = &mut buf[start..end];
            work(j, slot);
            output(slot)?;
        }
        return Ok(());
    }
    with_helpers(threads, slot_work(work), |helpers| {
        for (j, slot) in buf.chunks_mut(full).take(count).enumerate() {
            helpers.push((j, slot));
        }
        // Finished tasks by slot: tasks next..next + slots are queued, running or done.
        let mut finished: Vec<Option<&mut [u8]>> = (0..slots).map(|_| None).collect();
        for next in 0..count {
            let slot = loop {
                if let Some(slot) = finished[next % slots].take() {
                    break slot;
                }
                let done = helpers.try_done().or_else(|| helpers.help());
                // `None` from `done`: a helper panicked, and its panic is resumed on return.
                let Some((j, slot)) = done.or_else(|| helpers.done()) else {
                    return Ok(());
                };
                finished[j % slots] = Some(slot);
            };
            output(slot)?;
            if next + slots < count {
                helpers.push((next + slots, slot));
            }
        }
        Ok(())
    })
}

/// A task of [`with_helpers`] on a slot of a buffer: runs `f` on the slot and hands the slot
/// back with its index.
fn slot_work<'a>(
    f: impl Fn(usize, &mut [u8]) + Sync,
) -> impl Fn((usize, &'a mut [u8])) -> (usize, &'a mut [u8]) + Sync {
    move |(j, slot)| {
        f(j, slot);
        (j, slot)
    }
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
