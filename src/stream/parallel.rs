//! Sealing and opening segments on several threads, without a pool shared with the host.
//!
//! - [`Crew`]: threads owned by a writer for as long as it lives (joined when it is finished or
//!   dropped); segments of small writes are handed to them as they fill.
//! - [`with_helpers`]: scoped threads for one large `read`, which opens segments straight in the
//!   caller's buffer while the calling thread loads the next ones.
//! - [`for_each_segment`]: scoped threads for one batch of segments in the reader's own buffer.
//!
//! Scoped threads are joined before the call returns, so they never outlive it. Work is handed
//! out one segment at a time to whichever thread is free, so a thread that the OS schedules
//! late takes fewer segments instead of holding up the others.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;

/// Plaintext bytes per thread in a batch when sealing or opening on several threads: large
/// enough that starting the scoped workers (tens of microseconds) costs a few percent of the
/// work, small enough to keep the buffers near the caches.
const BYTES_PER_THREAD: usize = 1 << 20;

/// Segments a writer with `threads` threads may have in flight (being sealed, or sealed and
/// waiting for their turn to be written): enough that no thread waits for a free one, few
/// enough to stay in the caches; at most about [`BYTES_PER_THREAD`] per thread for large
/// segments, but at least one per thread and one more.
pub(crate) fn in_flight(threads: NonZeroUsize, segment_size: usize) -> usize {
    let n = threads.get();
    (n * BYTES_PER_THREAD / segment_size).clamp(n + 1, 4 * n)
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

/// Runs `body` with `threads - 1` scoped helper threads that take tasks from a queue, run
/// `work` on each and send the result back. The calling thread hands out tasks, runs queued
/// tasks itself when it has nothing else to do ([`Helpers::help`]) and collects results
/// ([`Helpers::done`]). The helpers stop when `body` returns and are joined before
/// `with_helpers` returns (a panic in one is resumed on the calling thread): no thread outlives
/// the call.
///
/// Unlike [`for_each_segment`], tasks flow through the queue for as long as `body` runs, so a
/// long `read` starts its threads once, not once per batch, and I/O on the calling thread
/// overlaps the work of the helpers.
pub(crate) fn with_helpers<'a, T, U, R>(
    threads: NonZeroUsize,
    work: impl Fn(T) -> U + Send + Sync + 'a,
    body: impl FnOnce(&Helpers<'a, T, U>) -> R,
) -> R
where
    T: Send,
    U: Send,
{
    let (helpers, done) = Helpers::new(work);
    thread::scope(|scope| {
        let workers: Vec<_> = (1..threads.get())
            .map(|_| scope.spawn(helpers.helper(&done)))
            .collect();
        drop(done);
        let value = body(&helpers);
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

/// Helper threads owned by a reader or writer, for as long as it lives: the same queue as
/// [`with_helpers`], for work that spans many calls (small `write`s). The work owns its data
/// (no borrowed buffers). Dropping the crew closes its queue and joins its threads.
pub(crate) struct Crew<T, U> {
    helpers: Helpers<'static, T, U>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl<T: Send + 'static, U: Send + 'static> Crew<T, U> {
    /// Starts `count` threads running `work`.
    pub(crate) fn new(
        count: usize,
        work: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let (helpers, done) = Helpers::new(work);
        let mut crew = Crew {
            helpers,
            workers: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let worker = thread::Builder::new()
                .name("strongbox-seal".into())
                .spawn(crew.helpers.helper(&done))?;
            crew.workers.push(worker);
        }
        Ok(crew)
    }
}

impl<T, U> std::ops::Deref for Crew<T, U> {
    type Target = Helpers<'static, T, U>;

    fn deref(&self) -> &Self::Target {
        &self.helpers
    }
}

impl<T, U> Drop for Crew<T, U> {
    fn drop(&mut self) {
        self.helpers.queue.close();
        for worker in self.workers.drain(..) {
            // A panic in a helper has already been reported to the caller as a failed task.
            let _ = worker.join();
        }
    }
}

/// The tasks not taken yet, and whether more may come.
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

/// The calling thread's side of [`with_helpers`] or a [`Crew`].
pub(crate) struct Helpers<'a, T, U> {
    queue: Arc<Queue<T>>,
    done: mpsc::Receiver<Option<U>>,
    work: Arc<dyn Fn(T) -> U + Send + Sync + 'a>,
}

impl<'a, T, U> Helpers<'a, T, U> {
    /// An open queue for `work`, and the sender for results.
    fn new(work: impl Fn(T) -> U + Send + Sync + 'a) -> (Self, mpsc::Sender<Option<U>>) {
        let (done_tx, done) = mpsc::channel();
        let queue = Arc::new(Queue {
            tasks: Mutex::new((VecDeque::new(), false)),
            ready: Condvar::new(),
        });
        let work = Arc::new(work);
        (Helpers { queue, done, work }, done_tx)
    }

    /// A helper thread's loop: runs tasks until the queue is closed, sending results to `done`.
    fn helper(&self, done: &mpsc::Sender<Option<U>>) -> impl FnOnce() + Send + 'a
    where
        T: Send + 'a,
        U: Send + 'a,
    {
        let (queue, work, done) = (self.queue.clone(), self.work.clone(), done.clone());
        move || {
            // A helper that panics says so, so that `done` never waits for it forever.
            let _alarm = PanicAlarm(&done);
            while let Some(task) = queue.wait() {
                if done.send(Some(work(task))).is_err() {
                    break;
                }
            }
        }
    }

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
    /// panic is resumed when `with_helpers` returns) or if there is no helper.
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
    fn a_crew_runs_tasks_across_calls_and_reports_a_panicking_helper() {
        let crew = Crew::new(2, |x: u32| {
            assert_ne!(x, 7, "task 7 fails");
            x + 1
        })
        .unwrap();
        for round in 0..3 {
            for x in 0..10 {
                crew.push(x * 100 + round);
            }
            let mut results: Vec<u32> = (0..10).map(|_| crew.done().expect("no panic")).collect();
            results.sort_unstable();
            assert_eq!(
                results,
                (0..10).map(|x| x * 100 + round + 1).collect::<Vec<_>>()
            );
        }
        crew.push(7);
        while crew.queue.lock().0.len() == 1 {
            thread::yield_now();
        }
        assert_eq!(crew.done(), None, "a helper panicked");
        // Dropping the crew joins the other helper and the one that panicked.
        drop(crew);
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
