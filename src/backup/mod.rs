//! Database backup and restore: snapshots and logical (full / incremental) backups, the
//! encryption policy, the manifest, and restore.

use std::io;
use std::path::PathBuf;

#[allow(dead_code)] // wired into snapshots with the stream module
mod archive;
mod manifest;
mod policy;

pub use manifest::{BackupId, BackupKind, Compression, MAX_DATABASE_NAME_LEN, Manifest};
pub use policy::{BackupEncryptionSettings, Channel, EncryptionMode, SecretOperation};

/// Why a backup, a restore or an inspection failed.
///
/// Each rule of the encryption policy and each way a restore can fail has its own variant.
/// Cryptographic failures say which backup part failed, never why in a way that helps an
/// attacker. No variant ever holds key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    // ----- encryption policy -----
    /// `EncryptionMode::UseProvidedKey` without a key.
    #[error("encryption mode UseProvidedKey needs a key, but none was given")]
    ProvidedKeyMissing,
    /// A key was given with a mode other than `UseProvidedKey`.
    #[error(
        "a key was given with encryption mode {mode}; a key is only allowed with UseProvidedKey"
    )]
    KeyWithoutProvidedKeyMode {
        /// The mode that was configured.
        mode: EncryptionMode,
    },
    /// Mode `None` for a snapshot of an encrypted database.
    #[error(
        "a snapshot of an encrypted database is always encrypted with the database's key; \
         encryption mode None is not allowed"
    )]
    EncryptedDatabaseSnapshotMustBeEncrypted,
    /// A provided key that is not the database's key, for a snapshot of an encrypted database.
    #[error("can't snapshot an encrypted database with a different key than the database's own")]
    SnapshotKeyIsNotDatabaseKey,
    /// `EncryptionMode::UseDatabaseKey` for a database that has no key.
    #[error(
        "encryption mode UseDatabaseKey, but the database is not encrypted (it has no \
         secret.key.encrypted)"
    )]
    DatabaseNotEncrypted,
    /// An operation that moves a key or an encrypted database's plaintext was requested over a
    /// channel that is not authenticated.
    #[error(
        "refusing {operation} over an unauthenticated channel: keys and plaintext must not \
         cross it (authenticate the connection, or set the explicit override)"
    )]
    UnauthenticatedChannel {
        /// What was refused.
        operation: SecretOperation,
    },

    // ----- taking a backup -----
    /// The database name is empty or longer than [`MAX_DATABASE_NAME_LEN`] bytes.
    #[error("the database name must be 1 to 255 bytes long")]
    InvalidDatabaseName,
    /// A source file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    SourceRead {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A source entry cannot be backed up.
    #[error("cannot back up {}: {reason}", path.display())]
    UnsupportedSource {
        /// The entry.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A file's length changed while it was backed up (the engine must keep the files still
    /// during a snapshot).
    #[error("{} changed while it was being backed up", path.display())]
    SourceChanged {
        /// The file.
        path: PathBuf,
    },
    /// The backup file already exists; backups never overwrite.
    #[error("the backup file {} already exists", path.display())]
    DestinationExists {
        /// The path.
        path: PathBuf,
    },
    /// The backup file would be inside the directory being backed up.
    #[error("the backup file {} is inside the database directory it backs up", path.display())]
    DestinationInsideSource {
        /// The path.
        path: PathBuf,
    },

    // ----- restoring -----
    /// The backup file holds no valid manifest: it is not a strongbox database backup, or its
    /// authenticated content is malformed.
    #[error("malformed backup: {0}")]
    Malformed(String),

    // ----- shared -----
    /// The random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl From<crate::KeyError> for BackupError {
    fn from(_: crate::KeyError) -> Self {
        // The only key operation here that can fail without input is drawing random bytes.
        BackupError::Random
    }
}
