//! Backups written to and read from object storage: Amazon S3 and S3-compatible stores,
//! Google Cloud Storage, Azure Blob Storage and local files (feature `object-store`).
//!
//! - [`ObjectUrl`]: `s3://bucket/key`, `gs://bucket/key`, `az://container/key`,
//!   `file:///path`, validated, safe to show ([`is_object_url`] tells an object from a path).
//! - [`ObjectWriter`]: a `Write` that streams an object up as a multipart upload, parts sent
//!   in parallel, memory bounded by [`UploadOptions`]; the object appears only when
//!   [`finish`](ObjectWriter::finish) succeeds, is never overwritten, and any failure, drop or
//!   [`abort_running_uploads`](ObjectWriter::abort_running_uploads) aborts the upload.
//! - [`ObjectReader`]: a `Read + Seek` over ranged GETs, for
//!   [`BackupInput::reader`](crate::backup::BackupInput::reader) and
//!   [`RestoreReader`](crate::RestoreReader)'s random access.
//! - [`list`]: the objects under a prefix.
//! - [`ObjectError`]: every failure, naming the object, never a credential.
//!
//! ```no_run
//! use std::io::Write as _;
//! use strongbox::backup::{BackupInput, Channel, MasterKeys, VerifyConfig, verify};
//! use strongbox::object::{ObjectReader, ObjectUrl, ObjectWriter};
//! # fn run(keys: &MasterKeys, db: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! let url = ObjectUrl::parse("s3://backups/orders/2026-12-07.snapshot")?;
//! let mut upload = ObjectWriter::create(&url)?;
//! strongbox::SnapshotBackup::of_directory(db).write_to(&mut upload, keys, Channel::Authenticated)?;
//! upload.finish()?; // without it, no object
//!
//! let input = BackupInput::reader(url.to_string(), ObjectReader::open(&url)?);
//! verify(&VerifyConfig::from_inputs([input]), keys, Channel::Authenticated)?;
//! # Ok(()) }
//! ```
//!
//! Credentials, regions and endpoints are read the way `object_store` reads them, from the
//! environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_ALLOW_HTTP`, `AZURE_STORAGE_*`,
//! `GOOGLE_*`; `docs/OBJECT_STORE.md`). Transient failures (5xx, 429, timeouts, refused
//! connections) are retried by `object_store` within a bounded time
//! ([`UploadOptions::retries`]).
//!
//! ## Threading
//!
//! The API is blocking. Requests run on a multi-thread tokio runtime this module owns (two
//! worker threads, started on first use, kept for the life of the process); a call hands its
//! request to that runtime and waits for the answer on a channel. It can be called from any
//! thread, including from inside another tokio runtime without a panic; on tokio, call it from
//! `spawn_blocking`, as every blocking API, so as not to stall the caller's runtime. An engine
//! that is itself asynchronous can instead drive
//! [`AsyncBackupWriter`](crate::stream::AsyncBackupWriter) over `object_store`'s own
//! `buffered::BufWriter` (an `AsyncWrite`), on its own runtime.
//!
//! ## TLS: a process-wide effect
//!
//! HTTPS is reqwest with rustls on ring (the crate's cryptography). reqwest takes the
//! process's default rustls `CryptoProvider`: before building a store this module installs
//! ring's as that default (`CryptoProvider::install_default`), unless the process already
//! installed one, which is then kept. Any other rustls user in the process sees that default.

mod error;
mod list;
mod options;
mod reader;
mod url;
mod writer;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use object_store::ObjectStore;
use object_store::path::Path;

pub use error::ObjectError;
pub use list::{ObjectEntry, list};
pub use options::UploadOptions;
pub use reader::ObjectReader;
pub use url::{ObjectUrl, is_object_url};
pub use writer::ObjectWriter;

use url::Scheme;

/// Worker threads of the module's runtime: requests mostly wait on the network.
const WORKER_THREADS: usize = 2;

/// The runtime every request runs on; `None` if it could not be built (the system refused
/// its threads), which every request then reports as a store error.
fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .thread_name("strongbox-object")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
}

/// Runs `future` on the module's runtime and waits for its output on a channel (never
/// `block_on`, which panics inside a runtime); `None` if its task panicked.
fn run<F>(future: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().ok()
}

/// [`run`], with a panicked task reported as a store error about `url`.
fn run_for<F, T>(url: &ObjectUrl, future: F) -> Result<T, ObjectError>
where
    F: Future<Output = Result<T, ObjectError>> + Send + 'static,
    T: Send + 'static,
{
    run(future).unwrap_or_else(|| Err(ObjectError::store(url, "the request's task failed")))
}

/// The store `url` is in, configured from the environment with `retry`, and the object's
/// path in it.
fn open_store(
    url: &ObjectUrl,
    retry: object_store::RetryConfig,
) -> Result<(Arc<dyn ObjectStore>, Path), ObjectError> {
    // rustls deprecates ring's provider for lacking post-quantum key exchange; ring is still
    // the crate's cryptography, and aws-lc-rs (which has it) is kept out of the build.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let failed = |e: object_store::Error| ObjectError::from_store(url, e);
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        Scheme::S3 => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.store_root())
                .with_retry(retry)
                .build()
                .map_err(failed)?,
        ),
        Scheme::Gcs => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.store_root())
                .with_retry(retry)
                .build()
                .map_err(failed)?,
        ),
        Scheme::Azure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.store_root())
                .with_retry(retry)
                .build()
                .map_err(failed)?,
        ),
        Scheme::File => Arc::new(object_store::local::LocalFileSystem::new()),
    };
    let path = Path::parse(url.key()).map_err(|e| failed(e.into()))?;
    Ok((store, path))
}
