//! Watching a backup, restore or verification from another thread, and stopping it:
//! [`Progress`].

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A handle on a running backup, restore or verification: how many bytes it has processed, and
/// a way to stop it cleanly.
///
/// Clone it, give one clone to the operation (`progress(..)` on the backup builders,
/// `with_progress(..)` on the restore and verify configurations) and keep the other: read
/// [`bytes`](Self::bytes) from any thread to show progress, call [`cancel`](Self::cancel) to
/// stop. The operation checks for cancellation between blocks of at most a few hundred KiB and
/// then fails with [`BackupError::Cancelled`](super::BackupError::Cancelled), leaving exactly
/// what it leaves on any other error: no backup file, no restored directory, no temporary file
/// (a backup into a caller's writer leaves there an incomplete backup that every reader refuses
/// as truncated).
///
/// What is counted is the operation's input: for a backup, the bytes read from the database's
/// files or the engine's export (before compression); for a restore or a verification, the
/// bytes read from the backup files (headers included), which a caller can compare with the
/// files' sizes. Cancelling a finished operation does nothing.
///
/// ```
/// use strongbox::backup::Progress;
///
/// let progress = Progress::new();
/// let watcher = progress.clone();
/// progress.add(4096);
/// assert_eq!(watcher.bytes(), 4096);
/// watcher.cancel();
/// assert!(progress.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct Progress {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    bytes: AtomicU64,
    cancelled: AtomicBool,
}

impl Progress {
    /// A new handle: nothing counted, not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes processed so far (see the type's documentation for what is counted).
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Asks the operation to stop at its next check.
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called on this handle or a clone of it.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::Relaxed)
    }

    /// Counts `bytes` more bytes processed. The operations call it themselves; it is public so
    /// that code wrapping an operation can count its own work on the same handle.
    pub fn add(&self, bytes: u64) {
        self.shared.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("bytes", &self.bytes())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The `io::Error` of a read or write that found its operation cancelled: its inner error is
/// [`BackupError::Cancelled`](super::BackupError::Cancelled), as callers of a
/// `LogicalBackupWriter`'s `write` see it.
pub(crate) fn cancelled() -> io::Error {
    io::Error::other(super::BackupError::Cancelled)
}

/// Whether `err` is [`cancelled`]'s error.
pub(crate) fn is_cancelled(err: &io::Error) -> bool {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<super::BackupError>())
        .is_some_and(|e| matches!(e, super::BackupError::Cancelled))
}
