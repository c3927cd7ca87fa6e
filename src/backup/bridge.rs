//! [`bridge_to`] and [`bridge_from`]: a backup written to a tokio [`AsyncWrite`], or read from
//! an [`AsyncRead`], by the synchronous backup code on a thread of the caller's (feature
//! `tokio`).
//!
//! The backup code packs and unpacks with the synchronous `tar` and `zstd` crates, so it runs
//! on a thread that may block (`tokio::task::spawn_blocking`, or a thread of its own); a
//! pump future ([`WritePump`], [`ReadPump`]) on the runtime moves the bytes between that thread
//! and the asynchronous writer or reader through a bounded queue: at most [`BRIDGE_QUEUE`] bytes are
//! held, whatever the backup's size. No runtime is needed by the crate itself.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes moved at a time.
const CHUNK: usize = 64 << 10;

/// The most bytes held between the blocking side and the pump (256 KiB).
pub const BRIDGE_QUEUE: usize = 4 * CHUNK;

/// The queue between the blocking side and the pump.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes in `chunks`.
    held: usize,
    /// The blocking side is done (its writer or reader was dropped).
    sync_done: bool,
    /// The pump is done: the input ended (reading), or it failed or was dropped.
    pump_done: bool,
    /// The input ended (reading): `pump_done` with no error.
    ended: bool,
    /// The pump's task, waiting for the queue to change.
    waker: Option<Waker>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing that can panic runs under the lock; recover the data anyway.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks the calling thread until `ready` holds for the queue.
    fn wait_until(&self, ready: impl Fn(&Queue) -> bool) -> MutexGuard<'_, Queue> {
        let queue = self.lock();
        self.changed
            .wait_while(queue, |q| !ready(q))
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The next chunk to write, or `None` if the writer is done; registers the task to be woken
    /// if there is nothing yet.
    fn next_chunk(&self, cx: &Context<'_>) -> Poll<Option<Vec<u8>>> {
        let mut queue = self.lock();
        if let Some(chunk) = queue.chunks.pop_front() {
            queue.held -= chunk.len();
            drop(queue);
            self.changed.notify_all();
            return Poll::Ready(Some(chunk));
        }
        if queue.sync_done {
            return Poll::Ready(None);
        }
        queue.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Marks one side done and tells the other.
    fn close(&self, pump: bool) {
        let mut queue = self.lock();
        if pump {
            queue.pump_done = true;
        } else {
            queue.sync_done = true;
        }
        let waker = queue.waker.take();
        drop(queue);
        self.changed.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The error the blocking side gets once the pump stopped without an end of input.
fn pump_stopped() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the asynchronous side stopped (failed or dropped)",
    )
}

/// Starts a backup into `output`: write it to the [`BridgeWriter`] on a thread that may block
/// (for example with [`SnapshotBackup::write_to`](super::SnapshotBackup::write_to) or
/// [`LogicalBackup::create_to`](super::LogicalBackup::create_to) in
/// `tokio::task::spawn_blocking`), and await the [`WritePump`] on the runtime: it writes the bytes to
/// `output` as they come, and once the writer is dropped, flushes `output` and returns it (not
/// shut down).
///
/// If the pump fails or is dropped, the writer's next write fails, so the backup fails; as with
/// any output, what was written is the beginning of a backup that every reader refuses.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use std::sync::Arc;
/// use strongbox::SnapshotBackup;
/// use strongbox::backup::{Channel, MasterKeys, bridge_to};
/// use strongbox::keys::FileProvider;
/// # let tmp = tempfile::tempdir()?;
/// # let db = tmp.path().join("orders");
/// # std::fs::create_dir(&db)?;
/// # std::fs::write(db.join("data.db"), b"rows")?;
/// let keys = MasterKeys::new(Arc::new(FileProvider::create_new(tmp.path().join("master.key"))?));
///
/// let (writer, pump) = bridge_to(Vec::new());
/// let backup = std::thread::spawn(move || {
///     SnapshotBackup::of_directory(&db).write_to(writer, &keys, Channel::Authenticated)
/// });
/// let upload: Vec<u8> = pump.await?;
/// let manifest = backup.join().expect("backup thread")?;
/// assert!(upload.len() > 4 && manifest.database_name() == "orders");
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # }).map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bridge_to<W: AsyncWrite + Unpin>(output: W) -> (BridgeWriter, WritePump<W>) {
    let shared = Arc::new(Shared::default());
    let writer = BridgeWriter(Arc::clone(&shared));
    let pump = WritePump {
        output: Some(output),
        shared,
        current: None,
    };
    (writer, pump)
}

/// Starts reading a backup from `input`: pass the [`BridgeReader`] to
/// [`BackupInput::reader`](super::BackupInput::reader) for a restore, a verification or an
/// import on a thread that may block, and await the [`ReadPump`] on the runtime: it reads `input`
/// as the reader asks, and returns it once it ended or the reader was dropped.
///
/// If the pump fails or is dropped, the reader's next read fails, so the restore fails as on any
/// read error (leaving no target directory) and no further plaintext is released.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # use std::sync::Arc;
/// # use strongbox::SnapshotBackup;
/// # use strongbox::keys::FileProvider;
/// use strongbox::backup::{BackupInput, Channel, MasterKeys, RestoreConfig, bridge_from, restore};
/// # let tmp = tempfile::tempdir()?;
/// # let db = tmp.path().join("orders");
/// # std::fs::create_dir(&db)?;
/// # std::fs::write(db.join("data.db"), b"rows")?;
/// # let keys = MasterKeys::new(Arc::new(FileProvider::create_new(tmp.path().join("master.key"))?));
/// # let mut upload = Vec::new();
/// # SnapshotBackup::of_directory(&db).write_to(&mut upload, &keys, Channel::Authenticated)?;
/// let download = &upload[..]; // any tokio AsyncRead
/// let (reader, pump) = bridge_from(download);
/// let target = tmp.path().join("restored");
/// let config = RestoreConfig::from_inputs([BackupInput::reader("download", reader)], &target);
/// let restoring = std::thread::spawn(move || restore(&config, &keys, Channel::Authenticated));
/// pump.await?;
/// restoring.join().expect("restore thread")?;
/// assert_eq!(std::fs::read(target.join("data.db"))?, b"rows");
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # }).map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bridge_from<R: AsyncRead + Unpin>(input: R) -> (BridgeReader, ReadPump<R>) {
    let shared = Arc::new(Shared::default());
    let reader = BridgeReader(Arc::clone(&shared));
    let pump = ReadPump {
        input: Some(input),
        shared,
    };
    (reader, pump)
}

/// The blocking side of [`bridge_to`]: a [`Write`] whose bytes the pump writes out. A
/// write blocks while the queue is full; `flush` blocks until the pump has taken every byte.
/// Drop it to end the output.
pub struct BridgeWriter(Arc<Shared>);

impl Write for BridgeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let mut queue = self
            .0
            .wait_until(|q| q.held + CHUNK <= BRIDGE_QUEUE || q.pump_done);
        if queue.pump_done {
            return Err(pump_stopped());
        }
        let n = data.len().min(CHUNK);
        queue.chunks.push_back(data[..n].to_vec());
        queue.held += n;
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let queue = self.0.wait_until(|q| q.held == 0 || q.pump_done);
        if queue.held > 0 {
            return Err(pump_stopped());
        }
        Ok(())
    }
}

impl Drop for BridgeWriter {
    fn drop(&mut self) {
        self.0.close(false);
    }
}

impl fmt::Debug for BridgeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeWriter").finish_non_exhaustive()
    }
}

/// The blocking side of [`bridge_from`]: a [`Read`] of the bytes the pump reads. A read
/// blocks until the pump has read something, or the input ended (`Ok(0)`), or the pump stopped
/// (an error).
pub struct BridgeReader(Arc<Shared>);

impl Read for BridgeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut queue = self.0.wait_until(|q| !q.chunks.is_empty() || q.pump_done);
        let Some(front) = queue.chunks.front_mut() else {
            return if queue.ended {
                Ok(0)
            } else {
                Err(pump_stopped())
            };
        };
        let n = front.len().min(out.len());
        out[..n].copy_from_slice(&front[..n]);
        front.drain(..n);
        if front.is_empty() {
            queue.chunks.pop_front();
        }
        queue.held -= n;
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(n)
    }
}

impl Drop for BridgeReader {
    fn drop(&mut self) {
        self.0.close(false);
    }
}

impl fmt::Debug for BridgeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeReader").finish_non_exhaustive()
    }
}

/// The asynchronous side of [`bridge_to`]: a future that writes the bytes of the
/// [`BridgeWriter`] to `W`, and once the writer is dropped, flushes `W` and returns it. It must
/// be awaited (or polled) for the writer to progress; dropping it before it completed makes the
/// writer's next write fail.
pub struct WritePump<W> {
    output: Option<W>,
    shared: Arc<Shared>,
    /// The chunk being written and how much of it was.
    current: Option<(Vec<u8>, usize)>,
}

impl<W: AsyncWrite + Unpin> WritePump<W> {
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(output) = self.output.as_mut() else {
            return Poll::Ready(Err(pump_stopped()));
        };
        loop {
            if let Some((chunk, written)) = &mut self.current {
                while *written < chunk.len() {
                    let n = ready!(Pin::new(&mut *output).poll_write(cx, &chunk[*written..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *written += n;
                }
                self.current = None;
            }
            let Some(chunk) = ready!(self.shared.next_chunk(cx)) else {
                return Pin::new(output).poll_flush(cx);
            };
            self.current = Some((chunk, 0));
        }
    }
}

impl<W: AsyncWrite + Unpin> Future for WritePump<W> {
    type Output = io::Result<W>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<W>> {
        let this = self.get_mut();
        let written = ready!(this.poll_out(cx));
        this.shared.close(true);
        Poll::Ready(written.and_then(|()| this.output.take().ok_or_else(pump_stopped)))
    }
}

/// The asynchronous side of [`bridge_from`]: a future that reads `R` as the [`BridgeReader`]
/// takes the bytes (at most [`BRIDGE_QUEUE`] ahead), and returns `R` once it ended or the reader was
/// dropped. It must be awaited (or polled) for the reader to progress; dropping it before it
/// completed makes the reader's next read fail.
pub struct ReadPump<R> {
    input: Option<R>,
    shared: Arc<Shared>,
}

impl<R: AsyncRead + Unpin> ReadPump<R> {
    fn poll_in(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(input) = self.input.as_mut() else {
            return Poll::Ready(Err(pump_stopped()));
        };
        loop {
            {
                let mut queue = self.shared.lock();
                if queue.sync_done {
                    return Poll::Ready(Ok(()));
                }
                if queue.held + CHUNK > BRIDGE_QUEUE {
                    queue.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
            let mut chunk = vec![0; CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut *input).poll_read(cx, &mut buf))?;
            let got = buf.filled().len();
            let mut queue = self.shared.lock();
            if got == 0 {
                queue.ended = true;
                return Poll::Ready(Ok(()));
            }
            chunk.truncate(got);
            queue.chunks.push_back(chunk);
            queue.held += got;
            drop(queue);
            self.shared.changed.notify_all();
        }
    }
}

impl<R: AsyncRead + Unpin> Future for ReadPump<R> {
    type Output = io::Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let this = self.get_mut();
        let read = ready!(this.poll_in(cx));
        this.shared.close(true);
        Poll::Ready(read.and_then(|()| this.input.take().ok_or_else(pump_stopped)))
    }
}

impl<W> Drop for WritePump<W> {
    fn drop(&mut self) {
        self.shared.close(true);
    }
}

impl<R> Drop for ReadPump<R> {
    fn drop(&mut self) {
        self.shared.close(true);
    }
}

impl<W> fmt::Debug for WritePump<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WritePump").finish_non_exhaustive()
    }
}

impl<R> fmt::Debug for ReadPump<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadPump").finish_non_exhaustive()
    }
}
