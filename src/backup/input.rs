//! The backups a restore, a verification or an import reads ([`BackupInput`]: a file or any
//! `Read`), how their bytes are counted and cancelled ([`Progress`]), and which backup an error
//! is about ([`Place`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::files::TapSlot;
use super::progress::{cancelled, is_cancelled};
use super::{BackupError, Progress};
use crate::stream::StreamError;

/// One backup to read: a file, opened when it is read (and again for its payload, see
/// `docs/BACKUP.md`, section 6), or a reader, read once from its first byte to its last.
///
/// A reader is named by the name the caller gives it: errors about it carry that name in their
/// `path` field. It is taken by the first restore, verification or import that reads it; a
/// configuration holding it cannot be read a second time (the second attempt fails with
/// [`BackupError::BackupRead`]).
///
/// ```
/// use std::io::Cursor;
/// use strongbox::backup::BackupInput;
///
/// let from_disk = BackupInput::path("/backups/orders.0.full");
/// let from_memory = BackupInput::reader("upload 1", Cursor::new(Vec::<u8>::new()));
/// assert!(!from_disk.is_reader() && from_memory.is_reader());
/// assert_eq!(from_memory.name().to_str(), Some("upload 1"));
/// ```
pub struct BackupInput {
    name: PathBuf,
    reader: Option<Mutex<Option<Box<dyn Read + Send>>>>,
}

impl BackupInput {
    /// The backup file at `path`.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self {
            name: path.into(),
            reader: None,
        }
    }

    /// The backup read from `reader`, called `name` in errors and reports.
    pub fn reader(name: impl Into<PathBuf>, reader: impl Read + Send + 'static) -> Self {
        Self {
            name: name.into(),
            reader: Some(Mutex::new(Some(Box::new(reader)))),
        }
    }

    /// The backup stored as the object `url` names, read with ranged GETs
    /// ([`ObjectReader`](crate::object::ObjectReader)), named by its URL in errors and reports.
    /// Fails if the object does not exist or cannot be reached.
    #[cfg(feature = "object-store")]
    pub fn object(url: &crate::object::ObjectUrl) -> Result<Self, crate::object::ObjectError> {
        let reader = crate::object::ObjectReader::open(url)?;
        Ok(Self::reader(url.to_string(), reader))
    }

    /// The file's path, or the name given to the reader.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Whether it is a reader (not a path).
    pub fn is_reader(&self) -> bool {
        self.reader.is_some()
    }

    /// Opens it for reading from its first byte, counted on `progress`. The flag says whether
    /// it can be opened again (a regular file) or must be read on (a reader, a pipe, a FIFO).
    pub(crate) fn open(
        &self,
        place: &Place,
        progress: &Progress,
    ) -> Result<(Metered, bool), BackupError> {
        let (inner, again): (Box<dyn Read + Send>, bool) = match &self.reader {
            None => {
                let file = File::open(&self.name).map_err(|e| place.io(e))?;
                let regular = file.metadata().is_ok_and(|m| m.is_file());
                (Box::new(file), regular)
            }
            Some(slot) => {
                let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                let reader = taken.ok_or_else(|| {
                    place.io(io::Error::other(
                        "this reader was already read by an earlier restore or verification",
                    ))
                })?;
                (reader, false)
            }
        };
        Ok((Metered::new(inner, progress), again))
    }
}

impl fmt::Debug for BackupInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_reader() { "reader" } else { "path" };
        f.debug_struct("BackupInput")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish()
    }
}

/// Most bytes one read of a backup input takes, so that a cancellation is seen at least that
/// often.
const METER_STEP: usize = 256 << 10;

/// A backup input whose bytes are counted on a [`Progress`], and which fails with
/// [`cancelled`]'s error once the progress is cancelled.
pub(crate) struct Metered {
    inner: Box<dyn Read + Send>,
    progress: Progress,
}

impl Metered {
    pub(crate) fn new(inner: Box<dyn Read + Send>, progress: &Progress) -> Self {
        Self {
            inner,
            progress: progress.clone(),
        }
    }
}

impl Read for Metered {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.progress.is_cancelled() {
            return Err(cancelled());
        }
        let len = buf.len().min(METER_STEP);
        let n = self.inner.read(&mut buf[..len])?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Which backup of a restore, a verification or an import something is about: its position
/// (0 is the first given) and its path, or the name given to a reader input.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    pub(crate) position: usize,
    pub(crate) path: PathBuf,
}

impl Place {
    pub(crate) fn new(position: usize, path: &Path) -> Self {
        Self {
            position,
            path: path.to_path_buf(),
        }
    }

    /// A stream error met reading this backup.
    pub(crate) fn stream(&self, err: StreamError) -> BackupError {
        let (position, path) = (self.position, self.path.clone());
        match err {
            StreamError::WrongKey { expected, provided } => BackupError::WrongKey {
                position,
                path,
                expected,
                provided,
            },
            StreamError::CorruptSegment { index } => BackupError::Tampered {
                position,
                path,
                segment: Some(index),
            },
            StreamError::HeaderAuthentication => BackupError::Tampered {
                position,
                path,
                segment: None,
            },
            StreamError::Truncated => BackupError::Truncated { position, path },
            StreamError::Io(source) => self.io(source),
            source => BackupError::InvalidStream {
                position,
                path,
                source,
            },
        }
    }

    /// An `io::Error` met reading this backup: a cancellation, a wrapped stream error, or a
    /// failure of the input.
    pub(crate) fn io(&self, err: io::Error) -> BackupError {
        if is_cancelled(&err) {
            return BackupError::Cancelled;
        }
        if StreamError::from_io(&err).is_some() {
            let inner = err
                .into_inner()
                .and_then(|e| e.downcast::<StreamError>().ok())
                .expect("checked above");
            return self.stream(*inner);
        }
        BackupError::BackupRead {
            position: self.position,
            path: self.path.clone(),
            source: err,
        }
    }

    /// This backup's authenticated content breaks a rule.
    pub(crate) fn malformed(&self, reason: impl Into<String>) -> BackupError {
        BackupError::Malformed {
            position: self.position,
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The wrapped-keys extension breaks a rule.
    pub(crate) fn malformed_wrapped_keys(&self, reason: &'static str) -> BackupError {
        BackupError::MalformedWrappedKeys {
            position: self.position,
            path: self.path.clone(),
            reason,
        }
    }

    /// Attributes a failure reported by a layer above the stream (zstd, tar, the importer's
    /// reader): the tapped stream's error if it failed, else a malformed payload described by
    /// `what` and the kind of `err`. The text of `err` is left out: the archive and
    /// decompression libraries quote the (decrypted) payload bytes they choke on.
    pub(crate) fn read_error(&self, err: io::Error, tap: &TapSlot, what: &str) -> BackupError {
        match tap.borrow_mut().take() {
            Some(stream_err) => self.io(stream_err),
            None => self.malformed(format!("{what} ({})", err.kind())),
        }
    }
}
