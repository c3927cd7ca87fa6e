//! [`ObjectWriter`]: an object streamed up as a multipart upload that appears only complete.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt as _, PutMode, PutPayload};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{ObjectError, ObjectUrl, UploadOptions, open_store, run, run_for, runtime};

/// Why a request could not run: the module's runtime could not be built.
const NO_RUNTIME: &str = "the object store's runtime could not start its threads";
/// How long aborting an upload may take (the abort request, retries included).
const ABORT_WAIT: Duration = Duration::from_secs(10);
/// How long a dropped writer or [`ObjectWriter::abort_running_uploads`] waits for the aborts.
const ABORTS_WAIT: Duration = Duration::from_secs(15);

/// An object written as a stream: a [`Write`] whose bytes are sent as a multipart upload, up
/// to [`UploadOptions::parts_in_flight`] parts at once while the caller keeps writing, in
/// memory bounded by the options whatever the object's size.
///
/// - The object appears only when [`finish`](Self::finish) succeeds. Dropping the writer
///   unfinished, any failure, or [`abort_running_uploads`](Self::abort_running_uploads)
///   aborts the multipart upload: no object and no unfinished upload are left (unless the
///   process dies first; `docs/OBJECT_STORE.md`).
/// - An existing object is never replaced: [`create`](Self::create) refuses it
///   ([`ObjectError::AlreadyExists`]), an object smaller than one part is sent with a
///   conditional put (where the store supports one), and a multipart upload checks again
///   just before completing (the remaining window is described in `docs/OBJECT_STORE.md`).
/// - Errors come out of `write` and `flush` as `io::Error`s holding an [`ObjectError`].
///   `flush` sends nothing: parts go when full.
pub struct ObjectWriter {
    url: ObjectUrl,
    store: Arc<dyn ObjectStore>,
    path: Path,
    options: UploadOptions,
    buffer: Vec<u8>,
    upload: Option<Upload>,
    failed: Option<ObjectError>,
}

/// A multipart upload in progress: the task that drives it, fed through `parts`, and where
/// its outcome arrives.
struct Upload {
    parts: mpsc::Sender<Message>,
    outcome: std::sync::mpsc::Receiver<Result<(), ObjectError>>,
}

enum Message {
    Part(PutPayload),
    Finish,
}

impl ObjectWriter {
    /// A writer of the object `url` names, with the default [`UploadOptions`].
    pub fn create(url: &ObjectUrl) -> Result<Self, ObjectError> {
        Self::create_with(url, UploadOptions::default())
    }

    /// A writer of the object `url` names: fails with [`ObjectError::AlreadyExists`] if it
    /// exists. Nothing is created in the store until the first part is full.
    pub fn create_with(url: &ObjectUrl, options: UploadOptions) -> Result<Self, ObjectError> {
        if url.file_name().is_none() {
            return Err(ObjectError::InvalidUrl {
                url: url.to_string(),
                reason: "names a bucket, not an object",
            });
        }
        let (store, path) = open_store(url, options.retry_config())?;
        refuse_existing(url, &store, &path)?;
        Ok(Self {
            url: url.clone(),
            store,
            path,
            buffer: Vec::new(),
            options,
            upload: None,
            failed: None,
        })
    }

    /// The object being written.
    pub fn url(&self) -> &ObjectUrl {
        &self.url
    }

    /// Sends what is left and completes the upload: the object exists once this returns
    /// `Ok`. On an error the upload is aborted and no object is left.
    pub fn finish(mut self) -> Result<(), ObjectError> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        let Some(upload) = self.upload.take() else {
            let payload = PutPayload::from(std::mem::take(&mut self.buffer));
            return put_new(&self.url, &self.store, &self.path, payload);
        };
        let last = std::mem::take(&mut self.buffer);
        if last.is_empty() || send(&upload, Message::Part(last.into())) {
            send(&upload, Message::Finish);
        }
        ended(&self.url, &upload)
    }

    /// Aborts every multipart upload of this process still in progress, waits (boundedly:
    /// about 15 s at most) for the aborts, and refuses every upload from then on: each
    /// writer's next call that would send something fails with [`ObjectError::Cancelled`].
    /// For a signal handler, before the process exits. A single-request upload (an object
    /// smaller than one part) already sent is not stopped: it is complete or nothing.
    pub fn abort_running_uploads() {
        let ids: Vec<u64> = {
            let mut running = registry();
            running.closed = true;
            for cancel in running.cancels.values() {
                cancel.send_replace(true);
            }
            running.cancels.keys().copied().collect()
        };
        let deadline = Instant::now() + ABORTS_WAIT;
        let mut running = registry();
        while ids.iter().any(|id| running.cancels.contains_key(id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            running = ENDED
                .wait_timeout(running, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sends the full buffer as the next part, starting the multipart upload first if needed.
    fn send_part(&mut self) -> Result<(), ObjectError> {
        let part = std::mem::take(&mut self.buffer);
        if self.upload.is_none() {
            self.upload = Some(self.start()?);
        }
        let Some(upload) = self.upload.as_ref() else {
            return Err(ObjectError::store(&self.url, "the upload did not start"));
        };
        match send(upload, Message::Part(part.into())) {
            true => Ok(()),
            false => Err(ended(&self.url, upload)
                .err()
                .unwrap_or_else(|| ObjectError::store(&self.url, "the upload stopped"))),
        }
    }

    /// Starts the task that creates and drives the multipart upload.
    fn start(&self) -> Result<Upload, ObjectError> {
        let (registered, cancel) = register().ok_or_else(|| ObjectError::Cancelled {
            url: self.url.clone(),
        })?;
        let (parts, received) = mpsc::channel(1);
        let (done, outcome) = std::sync::mpsc::sync_channel(1);
        let driver = Driver {
            url: self.url.clone(),
            store: self.store.clone(),
            path: self.path.clone(),
            in_flight: self.options.get_parts_in_flight(),
        };
        let runtime = runtime().ok_or_else(|| ObjectError::store(&self.url, NO_RUNTIME))?;
        runtime.spawn(async move {
            let result = driver.drive(received, cancel).await;
            drop(registered);
            let _ = done.send(result);
        });
        Ok(Upload { parts, outcome })
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(err) = &self.failed {
            return Err(err.clone().into());
        }
        let part_size = self.options.get_part_size();
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(part_size);
        }
        let n = buf.len().min(part_size - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == part_size
            && let Err(err) = self.send_part()
        {
            self.failed = Some(err.clone());
            return Err(err.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.failed {
            Some(err) => Err(err.clone().into()),
            None => Ok(()),
        }
    }
}

impl Drop for ObjectWriter {
    /// An unfinished upload is aborted: its channel closes, its task aborts it, and the drop
    /// waits for that (boundedly).
    fn drop(&mut self) {
        if let Some(Upload { parts, outcome }) = self.upload.take() {
            drop(parts);
            let _ = outcome.recv_timeout(ABORTS_WAIT);
        }
    }
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("url", &self.url)
            .field("options", &self.options)
            .field("uploading", &self.upload.is_some())
            .finish_non_exhaustive()
    }
}

/// Hands `message` to the upload's task; `false` if the task has ended (an error).
fn send(upload: &Upload, message: Message) -> bool {
    let parts = upload.parts.clone();
    run(async move { parts.send(message).await.is_ok() }).unwrap_or(false)
}

/// The outcome of an upload whose task has ended or is ending.
fn ended(url: &ObjectUrl, upload: &Upload) -> Result<(), ObjectError> {
    let outcome = upload.outcome.recv();
    outcome.unwrap_or_else(|_| Err(ObjectError::store(url, "the upload stopped")))
}

/// Fails with [`ObjectError::AlreadyExists`] if the object exists.
fn refuse_existing(
    url: &ObjectUrl,
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<(), ObjectError> {
    let (store, path, url2) = (store.clone(), path.clone(), url.clone());
    run_for(
        url,
        async move { absent(&url2, store.as_ref(), &path).await },
    )
}

/// `Ok` if the object does not exist.
async fn absent(url: &ObjectUrl, store: &dyn ObjectStore, path: &Path) -> Result<(), ObjectError> {
    match store.head(path).await {
        Ok(_) => Err(ObjectError::AlreadyExists { url: url.clone() }),
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(ObjectError::from_store(url, e)),
    }
}

/// Puts a whole (small) object, only if it does not exist: a conditional put, or, on a store
/// without one, a check just before a plain put.
fn put_new(
    url: &ObjectUrl,
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    payload: PutPayload,
) -> Result<(), ObjectError> {
    if registry().closed {
        return Err(ObjectError::Cancelled { url: url.clone() });
    }
    let (store, path, url2) = (store.clone(), path.clone(), url.clone());
    run_for(url, async move {
        let url = url2;
        let conditional = store.put_opts(&path, payload.clone(), PutMode::Create.into());
        match conditional.await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotImplemented { .. }) => {
                absent(&url, store.as_ref(), &path).await?;
                let put = store.put(&path, payload).await;
                put.map(drop).map_err(|e| ObjectError::from_store(&url, e))
            }
            Err(e) => Err(ObjectError::from_store(&url, e)),
        }
    })
}

/// What the task driving a multipart upload needs.
struct Driver {
    url: ObjectUrl,
    store: Arc<dyn ObjectStore>,
    path: Path,
    in_flight: usize,
}

impl Driver {
    /// Creates the multipart upload, uploads the parts received, then completes the upload
    /// when told to finish; aborts it on an error, a cancellation, or a writer gone without
    /// finishing.
    async fn drive(
        self,
        mut parts: mpsc::Receiver<Message>,
        cancel: watch::Receiver<bool>,
    ) -> Result<(), ObjectError> {
        let created = self.store.put_multipart(&self.path).await;
        let mut upload = created.map_err(|e| ObjectError::from_store(&self.url, e))?;
        let mut tasks = JoinSet::new();
        let pumped = tokio::select! {
            pumped = pump(upload.as_mut(), &mut tasks, &mut parts, self.in_flight) => {
                pumped.map_err(|e| ObjectError::from_store(&self.url, e))
            }
            () = cancelled(cancel) => Err(ObjectError::Cancelled { url: self.url.clone() }),
        };
        let result = match pumped {
            Ok(true) => self.complete(upload.as_mut()).await,
            Ok(false) => Err(ObjectError::Cancelled {
                url: self.url.clone(),
            }),
            Err(err) => Err(err),
        };
        if result.is_err() {
            tasks.shutdown().await;
            let _ = tokio::time::timeout(ABORT_WAIT, upload.abort()).await;
        }
        result
    }

    /// Checks again that the object does not exist, then completes the upload.
    async fn complete(&self, upload: &mut dyn MultipartUpload) -> Result<(), ObjectError> {
        absent(&self.url, self.store.as_ref(), &self.path).await?;
        match upload.complete().await {
            Ok(_) => Ok(()),
            Err(e) => Err(ObjectError::from_store(&self.url, e)),
        }
    }
}

/// Starts a part upload for each part received, at most `in_flight` at once (a part is taken
/// from the channel only when it can start); `Ok(true)` once told to finish and every part is
/// uploaded, `Ok(false)` if the writer went away.
async fn pump(
    upload: &mut dyn MultipartUpload,
    tasks: &mut JoinSet<object_store::Result<()>>,
    parts: &mut mpsc::Receiver<Message>,
    in_flight: usize,
) -> object_store::Result<bool> {
    loop {
        while tasks.len() >= in_flight {
            if let Some(done) = tasks.join_next().await {
                joined(done)?;
            }
        }
        let message = tokio::select! {
            message = parts.recv() => message,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                joined(done)?;
                continue;
            }
        };
        match message {
            None => return Ok(false),
            Some(Message::Finish) => {
                while let Some(done) = tasks.join_next().await {
                    joined(done)?;
                }
                return Ok(true);
            }
            Some(Message::Part(payload)) => {
                tasks.spawn(upload.put_part(payload));
            }
        }
    }
}

/// The result of a part upload's task.
fn joined(
    done: Result<object_store::Result<()>, tokio::task::JoinError>,
) -> object_store::Result<()> {
    done.map_err(|e| object_store::Error::Generic {
        store: "strongbox",
        source: Box::new(e),
    })?
}

/// Resolves once the upload is cancelled (never if the cancellation can no longer come).
async fn cancelled(mut cancel: watch::Receiver<bool>) {
    if cancel.wait_for(|cancelled| *cancelled).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The uploads in progress, each with its cancellation, and whether uploads are refused
/// ([`ObjectWriter::abort_running_uploads`] was called).
struct Running {
    next: u64,
    cancels: BTreeMap<u64, watch::Sender<bool>>,
    closed: bool,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    next: 0,
    cancels: BTreeMap::new(),
    closed: false,
});
/// Signalled each time an upload ends.
static ENDED: Condvar = Condvar::new();

fn registry() -> MutexGuard<'static, Running> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// An upload's place in [`RUNNING`], given up when dropped.
struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().cancels.remove(&self.0);
        ENDED.notify_all();
    }
}

/// Registers a new upload: its place and its cancellation; `None` once uploads are refused.
fn register() -> Option<(Registered, watch::Receiver<bool>)> {
    let (cancel, cancelled) = watch::channel(false);
    let mut running = registry();
    if running.closed {
        return None;
    }
    let id = running.next;
    running.next += 1;
    running.cancels.insert(id, cancel);
    Some((Registered(id), cancelled))
}
