//! Sealing and opening segments on several threads, without a pool shared with the host.
//!
//! - [`Pipeline`]: a [`Crew`] of threads owned by a writer or reader for as long as it lives
//!   (joined when it is finished or dropped), sealing or opening segments in buffers of their
//!   own, handed back in stream order: the segments of small writes as they fill, and the
//!   segments a reader opens ahead of small reads.
//! - [`with_helpers`]: scoped threads for one large `read`, which opens segments straight in the
//!   caller's buffer while the calling thread loads the next ones; joined before it returns.
//!
//! Work is handed out one segment at a time to whichever thread is free, so a thread that the
//! OS schedules late takes fewer segments instead of holding up the others.

use std::collections::VecDeque;
use std::io;
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;

use zeroize::Zeroizing;

/// Plaintext bytes per thread in flight when sealing or opening on several threads: large
/// enough that handing segments between threads costs a few percent of the work, small enough
/// to keep the buffers near the caches.
const BYTES_PER_THREAD: usize = 1 << 20;

/// How long a thread waiting for a task, or for a result, polls (yielding its core between
/// polls) before it sleeps: about the time to seal a few 64 KiB segments. Handing segments
/// between threads one at a time wakes a sleeping thread per segment otherwise, and waking
/// one takes longer than sealing a small segment (measured: +24 % on reads of 64 MiB with two
/// threads, +17 % on 64 KiB reads; docs/PERFORMANCE.md).
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Segments a [`Pipeline`] with `threads` threads may have in flight (being processed, or
/// processed and waiting for their turn): enough that no thread waits for a free one, few
/// enough to stay in the caches; at most about [`BYTES_PER_THREAD`] per thread for large
/// segments, but at least one per thread and one more.
pub(crate) fn in_flight(threads: NonZeroUsize, segment_size: usize) -> usize {
    let n = threads.get();
    (n * BYTES_PER_THREAD / segment_size).clamp(n + 1, 4 * n)
}

/// A segment on its way through a [`Pipeline`].
pub(crate) struct Segment {
    /// Its index in the stream.
    pub(crate) index: u64,
    /// Whether it is the stream's last segment.
    pub(crate) last: bool,
    /// Bytes of `buf` in the segment (ciphertext and tag once sealed, before opening).
    pub(crate) len: usize,
    /// Its bytes; zeroized on drop.
    pub(crate) buf: Zeroizing<Vec<u8>>,
    /// Whether the work succeeded (for opening: whether the segment authenticated).
    pub(crate) ok: bool,
}

/// Consecutive segments handed to helper threads (a [`Crew`], or the scoped helpers of
/// [`with_helpers`]) and handed back in stream order. The calling thread pushes segments (doing
/// the I/O) and pops them in order, running queued work itself while the one it needs is not
/// ready. Buffers are recycled, so a long stream allocates nothing per segment; memory is
/// bounded by [`in_flight`] buffers.
pub(crate) struct InOrder {
    /// Segments pushed and not yet popped, in stream order (`None` while being processed); the
    /// first one is segment `first`.
    pending: VecDeque<Option<Segment>>,
    first: u64,
    /// How many segments may be pending now: one per thread at first, doubling with every
    /// segment popped up to `max` (so a short stream, or a short read after a seek, processes
    /// little ahead).
    limit: usize,
    max: usize,
    spare: Vec<Zeroizing<Vec<u8>>>,
    buf_len: usize,
}

impl InOrder {
    /// For `threads` threads and segments of up to `segment_size` plaintext bytes, in buffers
    /// of `buf_len` bytes.
    pub(crate) fn new(threads: NonZeroUsize, segment_size: usize, buf_len: usize) -> Self {
        InOrder {
            pending: VecDeque::new(),
            first: 0,
            limit: threads.get(),
            max: in_flight(threads, segment_size),
            spare: Vec::new(),
            buf_len,
        }
    }

    /// A buffer for the next segment (a recycled one if there is one).
    pub(crate) fn spare(&mut self) -> Zeroizing<Vec<u8>> {
        let len = self.buf_len;
        self.spare
            .pop()
            .unwrap_or_else(|| Zeroizing::new(vec![0; len]))
    }

    /// Keeps `buf` for a later segment (if it is one of this size, and fewer than the most
    /// segments in flight are pending or kept).
    pub(crate) fn recycle(&mut self, buf: Zeroizing<Vec<u8>>) {
        if buf.len() == self.buf_len && self.spare.len() + self.pending.len() < self.max {
            self.spare.push(buf);
        }
    }

    /// Segments pushed and not yet popped.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// How many segments may be pending now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether as many segments are pending as may be now.
    pub(crate) fn is_full(&self) -> bool {
        self.pending.len() >= self.limit
    }

    /// Hands `task`, the work on segment `index`, to `helpers`; it must be the segment after
    /// the last one pushed.
    pub(crate) fn push<T>(&mut self, helpers: &Helpers<'_, T, Segment>, index: u64, task: T) {
        if self.pending.is_empty() {
            self.first = index;
        }
        debug_assert_eq!(index, self.first + self.pending.len() as u64);
        helpers.push(task);
        self.pending.push_back(None);
    }

    /// The first pending segment, if it is ready.
    pub(crate) fn pop_ready<T>(&mut self, helpers: &Helpers<'_, T, Segment>) -> Option<Segment> {
        while let Some(segment) = helpers.try_done() {
            self.place(segment);
        }
        let segment = self.pending.front_mut()?.take()?;
        self.pending.pop_front();
        self.first += 1;
        self.limit = (self.limit * 2).min(self.max);
        Some(segment)
    }

    /// The first pending segment, waiting for it (and meanwhile processing queued ones on the
    /// calling thread); `None` if none is pending. Fails if a thread panicked.
    pub(crate) fn pop<T>(
        &mut self,
        helpers: &Helpers<'_, T, Segment>,
    ) -> io::Result<Option<Segment>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        loop {
            if let Some(segment) = self.pop_ready(helpers) {
                return Ok(Some(segment));
            }
            let segment = helpers.help().or_else(|| helpers.done());
            let segment =
                segment.ok_or_else(|| io::Error::other("a strongbox worker thread panicked"))?;
            self.place(segment);
        }
    }

    fn place(&mut self, segment: Segment) {
        let at = usize::try_from(segment.index - self.first).expect("pending");
        self.pending[at] = Some(segment);
    }
}

/// An [`InOrder`] queue of segments on a [`Crew`] of its own, which runs the same work on every
/// segment: the engine of a writer or reader with several threads. It dereferences to its
/// queue; segments are pushed and popped through its own methods.
pub(crate) struct Pipeline {
    crew: Crew<Segment, Segment>,
    order: InOrder,
}

impl Pipeline {
    /// Starts `threads - 1` threads named `name` (the calling thread is the last one) that run
    /// `work` on segments of up to `segment_size` plaintext bytes, in buffers of `buf_len`
    /// bytes.
    pub(crate) fn new(
        threads: NonZeroUsize,
        segment_size: usize,
        buf_len: usize,
        name: &str,
        work: impl Fn(&mut Segment) + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let crew = Crew::new(threads.get() - 1, name, move |mut segment: Segment| {
            work(&mut segment);
            segment
        })?;
        Ok(Pipeline {
            crew,
            order: InOrder::new(threads, segment_size, buf_len),
        })
    }

    /// Hands `segment` to the threads; it must be the one after the last one pushed.
    pub(crate) fn push(&mut self, segment: Segment) {
        self.order.push(&self.crew, segment.index, segment);
    }

    /// The first pending segment, waiting for it; `None` if none is pending.
    pub(crate) fn pop(&mut self) -> io::Result<Option<Segment>> {
        self.order.pop(&self.crew)
    }

    /// Its queue and its threads, for the functions of [`InOrder`] that take both.
    pub(crate) fn split(&mut self) -> (&mut InOrder, &Helpers<'static, Segment, Segment>) {
        (&mut self.order, &self.crew)
    }
}

impl std::ops::Deref for Pipeline {
    type Target = InOrder;

    fn deref(&self) -> &InOrder {
        &self.order
    }
}

impl std::ops::DerefMut for Pipeline {
    fn deref_mut(&mut self) -> &mut InOrder {
        &mut self.order
    }
}

/// Runs `body` with `threads - 1` scoped helper threads that take tasks from a queue, run
/// `work` on each and send the result back. The calling thread hands out tasks, runs queued
/// tasks itself when it has nothing else to do ([`Helpers::help`]) and collects results
/// ([`Helpers::done`]). The helpers stop when `body` returns and are joined before
/// `with_helpers` returns (a panic in one is resumed on the calling thread): no thread outlives
/// the call. A helper that cannot be started is an error (`body` does not run; those started
/// are joined first).
///
/// Tasks flow through the queue for as long as `body` runs, so a long `read` starts its
/// threads once, and I/O on the calling thread overlaps the work of the helpers.
pub(crate) fn with_helpers<'a, T, U, R>(
    threads: NonZeroUsize,
    work: impl Fn(T) -> U + Send + Sync + 'a,
    body: impl FnOnce(&Helpers<'a, T, U>) -> R,
) -> io::Result<R>
where
    T: Send,
    U: Send,
{
    let (helpers, done) = Helpers::new(work);
    thread::scope(|scope| {
        let mut workers = Vec::with_capacity(threads.get() - 1);
        let mut started = Ok(());
        for _ in 1..threads.get() {
            match thread::Builder::new().spawn_scoped(scope, helpers.helper(&done)) {
                Ok(worker) => workers.push(worker),
                Err(err) => {
                    started = Err(not_started(err));
                    break;
                }
            }
        }
        drop(done);
        let value = started.map(|()| body(&helpers));
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

/// The error for a thread the OS did not start (out of threads, processes or memory).
fn not_started(err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("cannot start a worker thread: {err}"))
}

/// Helper threads owned by a reader or writer, for as long as it lives: the same queue as
/// [`with_helpers`], for work that spans many calls (small `write`s and `read`s). The work owns
/// its data (no borrowed buffers). Dropping the crew closes its queue (dropping the tasks not
/// taken yet) and joins its threads.
pub(crate) struct Crew<T, U> {
    helpers: Helpers<'static, T, U>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl<T: Send + 'static, U: Send + 'static> Crew<T, U> {
    /// Starts `count` threads named `name` running `work`.
    pub(crate) fn new(
        count: usize,
        name: &str,
        work: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let (helpers, done) = Helpers::new(work);
        let mut crew = Crew {
            helpers,
            workers: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let worker = thread::Builder::new()
                .name(name.into())
                .spawn(crew.helpers.helper(&done))
                .map_err(not_started)?;
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

/// The tasks not taken yet, whether more may come, and how many threads sleep waiting for one.
struct Queue<T> {
    tasks: Mutex<Tasks<T>>,
    ready: Condvar,
}

struct Tasks<T> {
    queue: VecDeque<T>,
    closed: bool,
    /// Threads asleep on `ready`: a task pushed while none is wakes nobody (a wake-up is a
    /// system call, and the threads mostly poll).
    sleeping: usize,
}

impl<T> Queue<T> {
    fn new() -> Self {
        Queue {
            tasks: Mutex::new(Tasks {
                queue: VecDeque::new(),
                closed: false,
                sleeping: 0,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tasks<T>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next task, waiting for one (polling for [`SPIN`], then asleep); `None` once the
    /// queue is closed and empty.
    fn wait(&self) -> Option<T> {
        let spin_until = std::time::Instant::now() + SPIN;
        let mut tasks = self.lock();
        loop {
            if let Some(task) = tasks.queue.pop_front() {
                return Some(task);
            }
            if tasks.closed {
                return None;
            }
            if std::time::Instant::now() < spin_until {
                drop(tasks);
                thread::yield_now();
                tasks = self.lock();
            } else {
                tasks.sleeping += 1;
                tasks = self
                    .ready
                    .wait(tasks)
                    .unwrap_or_else(PoisonError::into_inner);
                tasks.sleeping -= 1;
            }
        }
    }

    /// Queues `task`, waking a sleeping thread if there is one.
    fn push(&self, task: T) {
        let mut tasks = self.lock();
        tasks.queue.push_back(task);
        if tasks.sleeping > 0 {
            self.ready.notify_one();
        }
    }

    /// The next task, if there is one, without waiting.
    fn take(&self) -> Option<T> {
        self.lock().queue.pop_front()
    }

    /// Closes the queue and drops the tasks not taken yet (on the calling thread, outside the
    /// lock): a thread that waits gets `None`, and one that is working stops after its task.
    fn close(&self) {
        let mut tasks = self.lock();
        tasks.closed = true;
        let untaken = std::mem::take(&mut tasks.queue);
        drop(tasks);
        self.ready.notify_all();
        drop(untaken);
    }

    /// Tasks not taken yet (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().queue.len()
    }
}

/// The calling thread's side of [`with_helpers`] or a [`Crew`].
pub(crate) struct Helpers<'a, T, U> {
    queue: Arc<Queue<T>>,
    done: mpsc::Receiver<Option<U>>,
    /// Whether [`try_done`](Self::try_done) has received the news of a panicked helper (which
    /// [`done`](Self::done) then reports, instead of waiting for a result that may never come).
    panicked: std::cell::Cell<bool>,
    work: Arc<dyn Fn(T) -> U + Send + Sync + 'a>,
}

impl<'a, T, U> Helpers<'a, T, U> {
    /// An open queue for `work`, and the sender for results.
    fn new(work: impl Fn(T) -> U + Send + Sync + 'a) -> (Self, mpsc::Sender<Option<U>>) {
        let (done_tx, done) = mpsc::channel();
        let queue = Arc::new(Queue::new());
        let work = Arc::new(work);
        (
            Helpers {
                queue,
                done,
                panicked: std::cell::Cell::new(false),
                work,
            },
            done_tx,
        )
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
        self.queue.push(task);
    }

    /// Runs the next queued task on the calling thread, if there is one; returns its result.
    pub(crate) fn help(&self) -> Option<U> {
        let task = self.queue.take()?;
        Some((self.work)(task))
    }

    /// A result from a helper, if one is ready.
    pub(crate) fn try_done(&self) -> Option<U> {
        match self.done.try_recv() {
            Ok(Some(result)) => Some(result),
            Ok(None) => {
                self.panicked.set(true);
                None
            }
            Err(_) => None,
        }
    }

    /// Waits for the next result from a helper. Call it only while a task is running on a
    /// helper (queued tasks are for [`help`](Self::help)). `None` if a helper panicked (the
    /// panic is resumed when `with_helpers` returns) or if there is no helper.
    pub(crate) fn done(&self) -> Option<U> {
        if self.panicked.get() {
            return None;
        }
        let spin = std::time::Instant::now();
        while spin.elapsed() < SPIN {
            match self.done.try_recv() {
                Ok(result) => return result,
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => thread::yield_now(),
            }
        }
        let result = self.done.recv().ok().flatten();
        self.panicked.set(result.is_none());
        result
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

    fn n(threads: usize) -> NonZeroUsize {
        NonZeroUsize::new(threads).unwrap()
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
            let mut results = results.unwrap();
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
                    while helpers.queue.len() == 1 {
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
        let crew = Crew::new(2, "test", |x: u32| {
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
        while crew.queue.len() == 1 {
            thread::yield_now();
        }
        assert_eq!(crew.done(), None, "a helper panicked");
        // Dropping the crew joins the other helper and the one that panicked.
        drop(crew);
    }

    #[test]
    fn closing_a_queue_drops_the_tasks_not_taken() {
        // Dropping a crew or leaving `with_helpers` closes the queue: threads finish the task
        // in hand, never the queued ones (a dropped writer's plaintext is not sealed).
        struct Task(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Task {
            fn drop(&mut self) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queue = Queue::new();
        for _ in 0..3 {
            queue.push(Task(dropped.clone()));
        }
        queue.close();
        assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(queue.wait().is_none());
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
    fn several_threads_share_the_work() {
        // While one thread is held on segment 0, another takes the next ones (with one thread
        // this would wait out the 30 s and fail).
        let ids = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let turn = Arc::new(Condvar::new());
        let (seen, wake) = (ids.clone(), turn.clone());
        let mut pipeline = Pipeline::new(n(4), 4096, 1, "test", move |segment| {
            let mut ids = seen.lock().unwrap();
            ids.insert(thread::current().id());
            wake.notify_all();
            if segment.index == 0 {
                let _unused = wake
                    .wait_timeout_while(ids, std::time::Duration::from_secs(30), |ids| {
                        ids.len() < 2
                    })
                    .unwrap();
            }
        })
        .unwrap();
        for index in 0..4 {
            pipeline.push(segment(index, 0));
        }
        for index in 0..4 {
            assert_eq!(pipeline.pop().unwrap().map(|s| s.index), Some(index));
        }
        assert!(ids.lock().unwrap().len() >= 2);
    }

    #[test]
    fn recycled_buffers_are_kept_up_to_the_most_in_flight() {
        let max = in_flight(n(2), 16 << 20);
        let mut order = InOrder::new(n(2), 16 << 20, 64);
        for marker in 1..=max as u8 + 2 {
            let mut buf = order.spare();
            buf[0] = marker;
            order.recycle(buf);
        }
        // Each `spare` takes back the buffer recycled just before: one buffer goes round.
        assert_eq!(order.spare.len(), 1);
        let bufs: Vec<_> = (0..max + 2).map(|_| order.spare()).collect();
        assert_eq!(
            bufs[0][0],
            max as u8 + 2,
            "the recycled buffer comes back first"
        );
        assert!(bufs[1..].iter().all(|b| b.len() == 64 && b[0] == 0));
        for buf in bufs {
            order.recycle(buf);
        }
        assert_eq!(
            order.spare.len(),
            max,
            "no more than the most in flight are kept"
        );
        order.spare.clear();
        order.recycle(Zeroizing::new(vec![7; 65]));
        assert!(
            order.spare.is_empty(),
            "a buffer of another size is not kept"
        );
    }

    #[test]
    fn dropping_a_crew_joins_its_threads() {
        let work_alive = Arc::new(());
        let held = Arc::clone(&work_alive);
        let crew = Crew::new(2, "test", move |x: u64| {
            let _ = &held;
            x
        })
        .unwrap();
        crew.push(1);
        drop(crew);
        // The threads (and the work they shared) are gone once the crew is.
        assert_eq!(Arc::strong_count(&work_alive), 1);
    }

    #[test]
    fn a_task_pushed_while_the_helpers_sleep_wakes_one() {
        // A guard against a hang, not a time limit on the work: a helper never woken fails
        // here instead of blocking the suite.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let crew = Crew::new(1, "test", |x: u64| x + 1).unwrap();
        // The helper polls for a while, then falls asleep.
        while crew.queue.lock().sleeping == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the helper never slept"
            );
            thread::yield_now();
        }
        crew.push(41);
        // Only the woken helper can run it: the caller does not help here.
        let result = loop {
            if let Some(result) = crew.try_done() {
                break result;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the helper was never woken"
            );
            thread::yield_now();
        };
        assert_eq!(result, 42);
    }

    #[test]
    fn in_flight_bounds() {
        assert_eq!(in_flight(n(2), 64 << 10), 8);
        assert_eq!(in_flight(n(2), 16 << 20), 3);
        assert_eq!(in_flight(n(4), 4096), 16);
        // Between the bounds: about a MiB per thread.
        assert_eq!(in_flight(n(4), 512 << 10), 8);
    }

    fn segment(index: u64, byte: u8) -> Segment {
        Segment {
            index,
            last: false,
            len: 1,
            buf: Zeroizing::new(vec![byte]),
            ok: true,
        }
    }

    #[test]
    fn a_pipeline_hands_segments_back_in_order_and_ramps_up() {
        for threads in [1, 2, 4] {
            let mut pipeline = Pipeline::new(n(threads), 64 << 10, 1, "test", |segment| {
                // Later segments finish first.
                thread::sleep(std::time::Duration::from_micros(
                    200 - (segment.index % 4) * 50,
                ));
                segment.buf[0] = segment.buf[0].wrapping_mul(3);
                segment.ok = segment.index != 90;
            })
            .unwrap();
            assert_eq!(pipeline.pop().unwrap().map(|s| s.index), None);
            let (mut next_push, mut popped) = (10u64, Vec::new());
            while popped.len() < 100 {
                while next_push < 110 && !pipeline.is_full() {
                    let mut buf = pipeline.spare();
                    buf[0] = next_push as u8;
                    pipeline.push(Segment {
                        buf,
                        ..segment(next_push, 0)
                    });
                    next_push += 1;
                }
                assert!(pipeline.len() <= in_flight(n(threads), 64 << 10));
                let limit = pipeline.limit();
                let s = pipeline.pop().unwrap().expect("pending");
                // Each segment popped doubles how many may be pending, up to the most in flight.
                assert_eq!(pipeline.limit(), (2 * limit).min(pipeline.max));
                assert_eq!(s.buf[0], (s.index as u8).wrapping_mul(3));
                assert_eq!(s.ok, s.index != 90);
                popped.push(s.index);
                pipeline.recycle(s.buf);
                // Buffers kept plus pending stay within the segments in flight.
                assert!(pipeline.spare.len() + pipeline.len() <= pipeline.max);
            }
            assert_eq!(popped, (10..110).collect::<Vec<_>>(), "{threads} threads");
            assert_eq!(pipeline.limit(), in_flight(n(threads), 64 << 10));
        }
    }

    #[test]
    fn a_pipeline_reports_a_panicking_thread() {
        // Two threads besides the caller: the one left must not keep `pop` waiting.
        let mut pipeline = Pipeline::new(n(3), 4096, 1, "test", |segment| {
            assert_ne!(segment.index, 0, "segment 0 fails");
        })
        .unwrap();
        pipeline.push(segment(0, 0));
        // Let the thread take it (else the calling thread would run it, and panic).
        while pipeline.crew.queue.len() == 1 {
            thread::yield_now();
        }
        assert!(pipeline.pop().is_err());
    }
}
