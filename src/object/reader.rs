//! [`ObjectReader`]: an object read as a stream, with random access, over ranged GETs.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt as _};

use super::{ObjectError, ObjectUrl, UploadOptions, open_store, run, run_for};

/// Most bytes one GET asks for: each GET is a request of its own, with the client's
/// per-request timeout (`object_store`'s default: 30 s) and retries, so a slow reader of a
/// large object is not cut off by a timeout counted from the first byte.
const WINDOW: u64 = 16 << 20;

/// The body of a GET in progress.
type Body = BoxStream<'static, object_store::Result<Bytes>>;

/// An object read as a [`Read`] + [`Seek`]: its length comes from one HEAD request at
/// [`open`](Self::open); reading streams a ranged GET from the current position, a chunk at a
/// time (the object is never held whole in memory), each GET asking for at most 16 MiB, the
/// next one sent when it is used up; a [`seek`](Seek::seek) to another position drops the
/// GET in progress, and the next read starts a new one there.
///
/// Every GET is conditional on the entity tag the HEAD saw: an object replaced while being
/// read fails the read instead of mixing two objects. Errors come out of `read` as
/// `io::Error`s holding an [`ObjectError`]; a body that ends before the object's length is
/// an [`UnexpectedEof`](io::ErrorKind::UnexpectedEof).
pub struct ObjectReader {
    url: ObjectUrl,
    store: Arc<dyn ObjectStore>,
    path: Path,
    len: u64,
    e_tag: Option<String>,
    position: u64,
    /// Where the GET in progress ends.
    window_end: u64,
    body: Option<Body>,
    chunk: Bytes,
}

impl ObjectReader {
    /// Opens the object `url` names: [`ObjectError::NotFound`] if it does not exist.
    pub fn open(url: &ObjectUrl) -> Result<Self, ObjectError> {
        let (store, path) = open_store(url, UploadOptions::default().retry_config())?;
        let (head_store, head_path, head_url) = (store.clone(), path.clone(), url.clone());
        let meta = run_for(url, async move {
            let head = head_store.head(&head_path).await;
            head.map_err(|e| ObjectError::from_store(&head_url, e))
        })?;
        Ok(Self {
            url: url.clone(),
            store,
            path,
            len: meta.size,
            e_tag: meta.e_tag,
            position: 0,
            window_end: 0,
            body: None,
            chunk: Bytes::new(),
        })
    }

    /// The object's length in bytes, as it was when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the object is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The object being read.
    pub fn url(&self) -> &ObjectUrl {
        &self.url
    }

    /// Starts a GET from the current position, of at most [`WINDOW`] bytes.
    fn get(&mut self) -> Result<Body, ObjectError> {
        let (store, path, url) = (self.store.clone(), self.path.clone(), self.url.clone());
        self.window_end = self.len.min(self.position.saturating_add(WINDOW));
        let options = GetOptions {
            range: Some(GetRange::Bounded(self.position..self.window_end)),
            if_match: self.e_tag.clone(),
            ..GetOptions::default()
        };
        run_for(&self.url, async move {
            match store.get_opts(&path, options).await {
                Ok(result) => Ok(result.into_stream()),
                Err(object_store::Error::Precondition { .. }) => Err(changed(&url)),
                Err(e) => Err(ObjectError::from_store(&url, e)),
            }
        })
    }

    /// The next chunk of the current GET (started if needed), or `None` at its end.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, ObjectError> {
        let body = match self.body.take() {
            Some(body) => body,
            None => self.get()?,
        };
        let (body, item) = run(async move {
            let mut body = body;
            let item = body.next().await;
            (body, item)
        })
        .ok_or_else(|| ObjectError::store(&self.url, "the request's task failed"))?;
        match item {
            None => Ok(None),
            Some(Ok(chunk)) => {
                self.body = Some(body);
                Ok(Some(chunk))
            }
            Some(Err(object_store::Error::Precondition { .. })) => Err(changed(&self.url)),
            Some(Err(e)) => Err(ObjectError::from_store(&self.url, e)),
        }
    }
}

/// The error of an object replaced while being read.
fn changed(url: &ObjectUrl) -> ObjectError {
    ObjectError::store(url, "the object changed while being read")
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.position >= self.len {
            return Ok(0);
        }
        while self.chunk.is_empty() {
            match self.next_chunk()? {
                Some(chunk) => self.chunk = chunk,
                // A GET used up: the next turn starts the next one.
                None if self.position == self.window_end => {}
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        ObjectError::store(&self.url, "the object ended before its length"),
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for ObjectReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the object",
            )
        })?;
        if target != self.position {
            self.body = None;
            self.chunk = Bytes::new();
            self.position = target;
        }
        Ok(target)
    }
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("url", &self.url)
            .field("len", &self.len)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}
