//! File plumbing shared by backups and restores: the backup file that appears only when
//! complete, the compress-then-encrypt writer, restore working directories, and the read side's
//! [`Tap`] (errors are attributed by [`Place`](super::input::Place)).

use std::cell::RefCell;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

use super::manifest::Compression;
use super::progress::{cancelled, is_cancelled};
use super::{BackupError, Progress};
use crate::fs::{
    Replace, TempDir, TempFile, abandoned, remove_stale, temp_names, temp_prefix, try_lock,
};
use crate::stream::{BackupWriter, StreamError};

/// zstd level of logical backups (the library's default: fast, good ratio).
const ZSTD_LEVEL: i32 = 3;

pub(crate) use crate::fs::{parent_dir as parent_of, sync_dir};

/// Whether anything (even a dangling symlink) exists at `path`.
pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Suffix of a backup file being written.
const PARTIAL_SUFFIX: &str = ".partial";
/// Name of the lock file inside a restore's working directory.
const RESTORE_LOCK: &str = "lock";
/// Name of the directory being built inside a restore's working directory.
pub(crate) const RESTORE_TREE: &str = "tree";

/// Prefix of the working directories of a restore to `target`: `.<name>.restoring-` (the name
/// cut as in temporary file names, see [`crate::fs`]).
fn restore_prefix(target: &Path) -> String {
    let prefix = temp_prefix(target).unwrap_or_else(|| "..".to_owned());
    format!("{prefix}restoring-")
}

/// Removes the working directories that killed restores to `target` left beside it:
/// directories named exactly `.<name>.restoring-XXXXXX` whose `lock` file nobody holds (a running
/// restore holds it until it ends), and empty ones without a `lock` file (a restore killed
/// before it made one). Best effort: what cannot be removed stays.
pub(crate) fn remove_stale_restores(target: &Path) {
    for dir in temp_names(parent_of(target), &restore_prefix(target), "") {
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let lock = dir.join(RESTORE_LOCK);
        if let Some(_held) = abandoned(&lock) {
            let _ = fs::remove_dir_all(&dir);
        } else if !exists(&lock) {
            // Only succeeds if it is empty.
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// Creates a restore's working directory beside `target` and takes its lock: the directory
/// holds the `lock` file, locked while the returned handle lives, and the empty directory
/// `tree` (owner-only on Unix) in which the result is built.
pub(crate) fn restore_workdir(target: &Path) -> io::Result<(TempDir, fs::File)> {
    let work = TempDir::new_in(parent_of(target), &restore_prefix(target))?;
    let lock = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(work.path().join(RESTORE_LOCK))?;
    // Until it is locked, another restore to the same target may take the directory for a
    // killed restore's and hold the lock while it removes it.
    if !try_lock(&lock) {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another restore to the same target took the new working directory for a leftover",
        ));
    }
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(work.path().join(RESTORE_TREE))?;
    Ok((work, lock))
}

/// A backup file being written: the output of the path forms
/// ([`SnapshotBackup::write`](super::SnapshotBackup::write),
/// [`LogicalBackup::create`](super::LogicalBackup::create)).
///
/// It is a temporary file `.<name>.XXXXXX.partial` in the destination's directory (owner-only,
/// locked while it lives, so that a later backup to the same destination can tell a killed
/// backup's leftover from a running one and remove it). Completing the backup fsyncs it, renames
/// it to the destination (never replacing an existing file) and fsyncs the directory; dropped
/// before that (an error, a cancellation, a writer dropped without `finish`), it is deleted. It
/// cannot be made or read outside the crate.
pub struct BackupFile {
    tmp: TempFile,
}

impl BackupFile {
    /// Removes what killed backups to `dest` left, refuses an existing `dest`, and creates the
    /// temporary file.
    pub(crate) fn create(dest: &Path) -> Result<Self, BackupError> {
        let io_err = |source| BackupError::Io {
            path: dest.to_path_buf(),
            source,
        };
        if let Some(prefix) = temp_prefix(dest) {
            remove_stale(parent_of(dest), &prefix, PARTIAL_SUFFIX);
        }
        if exists(dest) {
            return Err(BackupError::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
        let tmp = TempFile::beside(dest, PARTIAL_SUFFIX).map_err(io_err)?;
        Ok(Self { tmp })
    }

    /// The final path.
    pub(crate) fn dest(&self) -> &Path {
        self.tmp.dest()
    }

    /// fsyncs the file, renames it to its destination (never replacing a file) and fsyncs the
    /// directory.
    pub(crate) fn commit(self) -> Result<(), BackupError> {
        let dest = self.tmp.dest().to_path_buf();
        self.tmp.commit(Replace::Never).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                BackupError::DestinationExists { path: dest }
            } else {
                BackupError::Io { path: dest, source }
            }
        })
    }
}

impl Write for BackupFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

impl fmt::Debug for BackupFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupFile")
            .field("destination", &self.dest())
            .finish_non_exhaustive()
    }
}

/// Most payload bytes a [`Sink`] with a [`Progress`] passes on between two checks for
/// cancellation.
const CANCEL_CHECK_BYTES: usize = 256 * 1024;

/// The compression layer of a [`Sink`].
enum Payload<W: Write> {
    Plain(BackupWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, BackupWriter<W>>),
}

/// Payload writer: optional zstd, then the backup stream, then the output. With a
/// [`Progress`], every write checks for cancellation first and passes on at most
/// [`CANCEL_CHECK_BYTES`]; a cancelled sink fails every write and its `finish` with
/// [`cancelled`].
pub(crate) struct Sink<W: Write> {
    payload: Payload<W>,
    progress: Option<Progress>,
}

impl<W: Write> Sink<W> {
    pub(crate) fn new(
        stream: BackupWriter<W>,
        compression: Compression,
        progress: Option<Progress>,
    ) -> io::Result<Self> {
        let payload = match compression {
            Compression::None => Payload::Plain(stream),
            Compression::Zstd => {
                Payload::Zstd(zstd::stream::write::Encoder::new(stream, ZSTD_LEVEL)?)
            }
        };
        Ok(Self { payload, progress })
    }

    /// The handle this sink checks for cancellation.
    pub(crate) fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    fn check_cancelled(&self) -> io::Result<()> {
        match &self.progress {
            Some(progress) if progress.is_cancelled() => Err(cancelled()),
            _ => Ok(()),
        }
    }

    /// Ends the compression frame and the stream (which flushes the output), and returns the
    /// output.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.check_cancelled()?;
        let stream = match self.payload {
            Payload::Plain(stream) => stream,
            Payload::Zstd(encoder) => encoder.finish()?,
        };
        Ok(stream.finish()?)
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let buf = match &self.progress {
            Some(_) => &buf[..buf.len().min(CANCEL_CHECK_BYTES)],
            None => buf,
        };
        self.check_cancelled()?;
        match &mut self.payload {
            Payload::Plain(w) => w.write(buf),
            Payload::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check_cancelled()?;
        match &mut self.payload {
            Payload::Plain(w) => w.flush(),
            Payload::Zstd(w) => w.flush(),
        }
    }
}

/// An error met while writing a backup to its output: the file at `dest` for the path forms,
/// the caller's writer (`None`) otherwise. A cancellation, a stream error and an error of the
/// output are told apart.
pub(crate) fn output_error(err: io::Error, dest: Option<&Path>) -> BackupError {
    if is_cancelled(&err) {
        return BackupError::Cancelled;
    }
    match (dest, err.downcast::<StreamError>()) {
        (Some(dest), Ok(stream)) => from_stream(stream, dest),
        (Some(dest), Err(source)) => BackupError::Io {
            path: dest.to_path_buf(),
            source,
        },
        (None, Ok(stream)) => BackupError::from(stream),
        (None, Err(source)) => BackupError::OutputWrite(source),
    }
}

/// A stream error met while writing or reading `path`.
pub(crate) fn from_stream(err: StreamError, path: &Path) -> BackupError {
    match err {
        StreamError::Io(source) => BackupError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => BackupError::from(other),
    }
}

/// Where a [`Tap`] keeps the first error of the reader it wraps.
pub(crate) type TapSlot = Rc<RefCell<Option<io::Error>>>;

/// Remembers the first error of the reader it wraps, so that a failure reported by a layer above
/// (zstd, tar) can be attributed: to the stream or the file if this reader failed, to the
/// payload's format otherwise ([`Place::read_error`](super::input::Place::read_error)).
pub(crate) struct Tap<R> {
    inner: R,
    failed: TapSlot,
}

impl<R> Tap<R> {
    pub(crate) fn new(inner: R) -> (Self, TapSlot) {
        let failed = Rc::new(RefCell::new(None));
        (
            Self {
                inner,
                failed: Rc::clone(&failed),
            },
            failed,
        )
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let kind = e.kind();
                self.failed.borrow_mut().get_or_insert(e);
                Err(io::Error::new(kind, "reading the backup stream failed"))
            }
            other => other,
        }
    }
}
