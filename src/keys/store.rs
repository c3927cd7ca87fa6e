//! Database keys at rest: one protected key file per database directory.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

use crate::fs::Replace;
use crate::key::{DataKey, KeyError, KeyId};
use crate::keys::envelope::{EnvelopeError, ProtectedKey};
use crate::keys::provider::{MasterKeyProvider, ProviderError};

/// The name of a database's protected key file, in the database directory.
pub const KEY_FILE_NAME: &str = "secret.key.encrypted";

/// The name of the (empty) lock file that serializes changes to a database's key file, in the
/// database directory, where directories cannot be locked (not Unix). See [`KeyFileLock`].
/// Snapshots never pack it.
#[cfg(any(windows, feature = "backup"))]
pub(crate) const KEY_LOCK_FILE_NAME: &str = ".secret.key.lock";

/// What [`DatabaseKeyStore::put`] / [`DatabaseKeyStore::put_base64`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The database already had this key, and the current provider opens it: nothing written.
    Unchanged,
    /// The key was written under the current provider, and no other key was lost: the database
    /// had no key file, or had this same key protected by something the current provider cannot
    /// open (the "password reset" case).
    Stored,
    /// A different key was replaced (only with `overwrite`).
    Replaced,
}

/// What [`DatabaseKeyStore::rotate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// Directories whose key was re-protected under the new provider.
    pub rotated: Vec<PathBuf>,
    /// Directories whose key the new provider already opened (left untouched).
    pub already_current: Vec<PathBuf>,
}

/// Why a database key could not be created, loaded, stored or rotated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database has no key file.
    #[error("no database key at {}", path.display())]
    NotFound {
        /// The key file's path.
        path: PathBuf,
    },
    /// The database already has a key file (create never replaces one).
    #[error("a database key already exists at {}", path.display())]
    AlreadyExists {
        /// The key file's path.
        path: PathBuf,
    },
    /// The key file holds another database's key.
    #[error("the key at {} is key {found}, not the expected key {expected} (the key file of another database?)", path.display())]
    KeyIdMismatch {
        /// The key file's path.
        path: PathBuf,
        /// The key id asked for.
        expected: KeyId,
        /// The key id in the file.
        found: KeyId,
    },
    /// A different key is stored and `overwrite` was not asked for.
    #[error(
        "the database at {} already has a different key ({existing}, not {given}); \
         replacing it makes everything encrypted with it unreadable: ask for overwrite explicitly",
        path.display()
    )]
    DifferentKeyExists {
        /// The key file's path.
        path: PathBuf,
        /// The key id in the file.
        existing: KeyId,
        /// The key id of the key given.
        given: KeyId,
    },
    /// The key file could not be parsed, or opened with the provider, or a key not protected.
    #[error("{}: {source}", path.display())]
    Envelope {
        /// The key file's path.
        path: PathBuf,
        /// What went wrong.
        source: EnvelopeError,
    },
    /// Neither the current nor the previous provider opens the key file.
    #[error(
        "{}: neither master key opens this database key; current: {current}; previous: {previous}",
        path.display()
    )]
    NoProviderOpens {
        /// The key file's path.
        path: PathBuf,
        /// The current provider's answer.
        current: Box<EnvelopeError>,
        /// The previous provider's answer.
        previous: Box<EnvelopeError>,
    },
    /// The provider failed before any database was touched.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The base64 key given is not a 256-bit key.
    #[error("invalid key: {0}")]
    InvalidKey(KeyError),
    /// A new key could not be generated.
    #[error("could not generate a key: {0}")]
    Generate(KeyError),
    /// Reading or writing a key file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Rotation stopped at a database; the ones before it are done, and rotating again resumes.
    #[error(
        "master-key rotation stopped at {} after {completed} database(s); every key is still \
         readable with the old or the new master key, and rotating again resumes: {source}",
        dir.display()
    )]
    Rotation {
        /// The database directory that failed.
        dir: PathBuf,
        /// How many databases were done (rotated or already current) before it.
        completed: usize,
        /// Why it failed.
        source: Box<StoreError>,
    },
}

/// The protected keys of databases, one [`KEY_FILE_NAME`] file per database directory, under a
/// current [`MasterKeyProvider`] (and optionally a previous one, tried when the current one does
/// not open a key: the state during and after a master-key rotation).
///
/// Key files are owner-only (`0600` on Unix) and always replaced atomically: a new file is
/// written and synced beside the old one, renamed over it, and the directory synced, so a key
/// file is never half-written.
///
/// Changes to one database's key file (`create`, `put`, each database of `rotate`) hold an
/// exclusive OS lock: on Unix on the database directory itself, elsewhere on an empty file
/// `.secret.key.lock` in it (created on first use and left in place). Two processes (or threads)
/// changing the same key take turns, the second waiting for the first, and a crashed process
/// releases its lock. Loading takes no lock.
///
/// ```
/// use std::sync::Arc;
/// use strongbox::DatabaseKeyStore;
/// use strongbox::keys::FileProvider;
/// # let tmp = tempfile::tempdir()?;
/// # let master_path = tmp.path().join("master.key");
/// # std::fs::write(&master_path, [7u8; 32])?;
/// # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
/// # std::fs::set_permissions(&master_path, std::fs::Permissions::from_mode(0o600))?; }
/// # let db = tmp.path().join("db"); std::fs::create_dir(&db)?;
///
/// let store = DatabaseKeyStore::new(Arc::new(FileProvider::new(master_path)));
/// let key = store.create(&db)?;               // a new random key, protected, written
/// assert_eq!(store.load(&db)?.id(), key.id());
/// assert_eq!(store.load_expecting(&db, key.id())?.id(), key.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DatabaseKeyStore {
    current: Arc<dyn MasterKeyProvider>,
    previous: Option<Arc<dyn MasterKeyProvider>>,
}

impl DatabaseKeyStore {
    /// A store protecting keys with `provider`.
    pub fn new(provider: Arc<dyn MasterKeyProvider>) -> Self {
        Self {
            current: provider,
            previous: None,
        }
    }

    /// Also tries `previous` to open a key that `provider` does not open (after or during a
    /// master-key rotation). New keys are always protected with the current provider.
    pub fn with_previous(mut self, previous: Arc<dyn MasterKeyProvider>) -> Self {
        self.previous = Some(previous);
        self
    }

    /// The current provider.
    pub fn provider(&self) -> &Arc<dyn MasterKeyProvider> {
        &self.current
    }

    /// The path of the key file of the database in `dir`.
    pub fn key_path(dir: impl AsRef<Path>) -> PathBuf {
        dir.as_ref().join(KEY_FILE_NAME)
    }

    /// Whether the database in `dir` has a key file.
    pub fn exists(&self, dir: impl AsRef<Path>) -> Result<bool, StoreError> {
        let dir = dir.as_ref();
        let path = Self::key_path(dir);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Creates a new random key for the database in `dir` (which must exist), protects it with
    /// the current provider and writes it. Refuses if the database has a key file already.
    pub fn create(&self, dir: impl AsRef<Path>) -> Result<DataKey, StoreError> {
        let dir = dir.as_ref();
        let path = Self::key_path(dir);
        let _lock = KeyFileLock::acquire(dir)?;
        if self.exists(dir)? {
            return Err(StoreError::AlreadyExists { path });
        }
        let key = DataKey::generate().map_err(StoreError::Generate)?;
        let blob = ProtectedKey::protect(&key, &*self.current)
            .map_err(|source| StoreError::Envelope { path, source })?;
        write_key_file(dir, blob.as_bytes(), Replace::Never)?;
        Ok(key)
    }

    /// The key of the database in `dir` (which must exist): loaded if the database has a key
    /// file, otherwise created as by [`DatabaseKeyStore::create`]. What an engine calls when it
    /// opens a database that is encrypted from its first byte.
    ///
    /// It holds the database's key-file lock from the check to the write, so two processes (or
    /// threads) opening a new database at once take turns: one creates the key, the other loads
    /// that same key; neither ever sees a half-written file, and no key is ever replaced.
    ///
    /// A key file that exists but cannot be read or opened is an error, never a reason to make
    /// a new key: a file this provider cannot open ([`StoreError::Envelope`],
    /// [`StoreError::NoProviderOpens`]), an unreadable or dangling entry ([`StoreError::Io`],
    /// [`StoreError::NotFound`]). Replacing it would make everything encrypted with the old key
    /// unreadable.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strongbox::DatabaseKeyStore;
    /// use strongbox::keys::FileProvider;
    /// # let tmp = tempfile::tempdir()?;
    /// # let master_path = tmp.path().join("master.key");
    /// # std::fs::write(&master_path, [7u8; 32])?;
    /// # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
    /// # std::fs::set_permissions(&master_path, std::fs::Permissions::from_mode(0o600))?; }
    /// # let db = tmp.path().join("db"); std::fs::create_dir(&db)?;
    ///
    /// let store = DatabaseKeyStore::new(Arc::new(FileProvider::new(master_path)));
    /// let key = store.load_or_create(&db)?;       // first open: a new key
    /// assert_eq!(store.load_or_create(&db)?.id(), key.id()); // then always that key
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_or_create(&self, dir: impl AsRef<Path>) -> Result<DataKey, StoreError> {
        let dir = dir.as_ref();
        let _lock = KeyFileLock::acquire(dir)?;
        if self.exists(dir)? {
            return self.load(dir);
        }
        let key = DataKey::generate().map_err(StoreError::Generate)?;
        let blob =
            ProtectedKey::protect(&key, &*self.current).map_err(|source| StoreError::Envelope {
                path: Self::key_path(dir),
                source,
            })?;
        write_key_file(dir, blob.as_bytes(), Replace::Never)?;
        Ok(key)
    }

    /// Loads (unprotects) the key of the database in `dir`.
    pub fn load(&self, dir: impl AsRef<Path>) -> Result<DataKey, StoreError> {
        let dir = dir.as_ref();
        let path = Self::key_path(dir);
        let blob = read_key_file(&path)?;
        self.unprotect(&path, &blob)
    }

    /// Loads the key of the database in `dir`, refusing (before any decryption) a key file that
    /// holds another key than `expected`: the engine's check that a key file belongs to the
    /// database it opens.
    pub fn load_expecting(
        &self,
        dir: impl AsRef<Path>,
        expected: KeyId,
    ) -> Result<DataKey, StoreError> {
        let dir = dir.as_ref();
        let path = Self::key_path(dir);
        let blob = read_key_file(&path)?;
        if blob.key_id() != expected {
            return Err(StoreError::KeyIdMismatch {
                path,
                expected,
                found: blob.key_id(),
            });
        }
        self.unprotect(&path, &blob)
    }

    /// The protected key of the database in `dir`, without opening it (its key id, scheme and
    /// fingerprint are readable without any key).
    pub fn protected_key(&self, dir: impl AsRef<Path>) -> Result<ProtectedKey, StoreError> {
        let dir = dir.as_ref();
        read_key_file(&Self::key_path(dir))
    }

    /// The offline "get-key": the key of the database in `dir` as plain base64, to keep
    /// somewhere safe before a change that would make the master key unavailable (a Windows
    /// password reset, a lost home directory). Handle the result as the secret it is.
    pub fn export_base64(&self, dir: impl AsRef<Path>) -> Result<SecretString, StoreError> {
        let dir = dir.as_ref();
        Ok(self.load(dir)?.to_base64())
    }

    /// The offline "put-key": stores the base64 key `key` for the database in `dir` under the
    /// current provider. See [`DatabaseKeyStore::put`].
    pub fn put_base64(
        &self,
        dir: impl AsRef<Path>,
        key: &str,
        overwrite: bool,
    ) -> Result<PutOutcome, StoreError> {
        let dir = dir.as_ref();
        let key = DataKey::from_base64(key).map_err(StoreError::InvalidKey)?;
        self.put(dir, &key, overwrite)
    }

    /// Stores `key` for the database in `dir` under the current provider.
    ///
    /// - No key file: written, [`PutOutcome::Stored`].
    /// - The same key (by key id, read from the file without opening it), which the current
    ///   provider opens: [`PutOutcome::Unchanged`], nothing written. The same key protected by
    ///   something the current provider cannot open (a Windows password reset): re-protected
    ///   under the current provider, [`PutOutcome::Stored`].
    /// - A different key, or an unreadable key file: [`StoreError::DifferentKeyExists`] (or the
    ///   read error) unless `overwrite`; with `overwrite`, replaced, [`PutOutcome::Replaced`].
    pub fn put(
        &self,
        dir: impl AsRef<Path>,
        key: &DataKey,
        overwrite: bool,
    ) -> Result<PutOutcome, StoreError> {
        let dir = dir.as_ref();
        let path = Self::key_path(dir);
        let _lock = KeyFileLock::acquire(dir)?;
        let outcome = match read_key_file(&path) {
            Err(StoreError::NotFound { .. }) => PutOutcome::Stored,
            Err(StoreError::Envelope { .. }) if overwrite => PutOutcome::Replaced,
            Err(e) => return Err(e),
            Ok(blob) if blob.key_id() == key.id() => match blob.unprotect(&*self.current) {
                Ok(_) => return Ok(PutOutcome::Unchanged),
                Err(_) => PutOutcome::Stored,
            },
            Ok(blob) if !overwrite => {
                return Err(StoreError::DifferentKeyExists {
                    path,
                    existing: blob.key_id(),
                    given: key.id(),
                });
            }
            Ok(_) => PutOutcome::Replaced,
        };
        let blob =
            ProtectedKey::protect(key, &*self.current).map_err(|source| StoreError::Envelope {
                path: path.clone(),
                source,
            })?;
        let replace = match outcome {
            PutOutcome::Stored if !self.exists(dir)? => Replace::Never,
            _ => Replace::Always,
        };
        write_key_file(dir, blob.as_bytes(), replace)?;
        Ok(outcome)
    }

    /// Master-key rotation: re-protects the key of every database in `dirs` under
    /// `new_provider`, opening each with the current provider or, failing that, the previous
    /// one. No backup or data file is touched: only the key files.
    ///
    /// Crash-safe and resumable: each key file is replaced atomically, and only after the new
    /// blob was read back with `new_provider`, so at every moment every key file opens with the
    /// old or the new master key (a store with `new_provider` as current and the old provider as
    /// previous opens them all). A key that `new_provider` already opens is left untouched, so
    /// running the rotation again after an interruption finishes it. It stops at the first
    /// database that fails ([`StoreError::Rotation`]).
    ///
    /// # Existing backups
    ///
    /// Backups are not rewritten. An encrypted backup taken before the rotation carries the
    /// database key wrapped only under the master keys of its time (the old current one and
    /// the recovery ones), so a restore whose [`MasterKeys`] hold only the new master key fails
    /// with [`BackupError::KeyUnavailable`], which lists the old master key's fingerprint among
    /// those the backup was wrapped for. Keep the old master key for as long as such backups
    /// are kept, and give it as a recovery master key when restoring them
    /// ([`MasterKeys::with_recovery`]). Backups taken after the rotation wrap the key under the
    /// new one. Restoring with the database key itself
    /// ([`RestoreConfig::with_key`](crate::backup::RestoreConfig::with_key)) works either way.
    ///
    /// To move an old backup to the new master key without re-encrypting it, rewrap it:
    /// `strongbox backup rewrap FILE` (library: `strongbox::backup::rewrap`, feature
    /// `recipients`) adds a copy of its key wrapped under the new master key, and can remove
    /// the old one, rewriting only the backup's header.
    ///
    /// [`MasterKeys`]: crate::backup::MasterKeys
    /// [`MasterKeys::with_recovery`]: crate::backup::MasterKeys::with_recovery
    /// [`BackupError::KeyUnavailable`]: crate::backup::BackupError::KeyUnavailable
    pub fn rotate<I, P>(
        &self,
        dirs: I,
        new_provider: impl MasterKeyProvider,
    ) -> Result<RotationReport, StoreError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let new_provider: &dyn MasterKeyProvider = &new_provider;
        // Fail before touching anything if the new master key cannot be had.
        new_provider.protection()?;
        each_key(dirs, |dir| self.rotate_one(dir, new_provider))
    }

    /// Rotates one key; `Ok(false)` if the new provider already opens it.
    fn rotate_one(&self, dir: &Path, new: &dyn MasterKeyProvider) -> Result<bool, StoreError> {
        let path = Self::key_path(dir);
        let envelope = |source| StoreError::Envelope {
            path: path.clone(),
            source,
        };
        let _lock = KeyFileLock::acquire(dir)?;
        let blob = read_key_file(&path)?;
        if blob.is_protected_by(new)? && blob.unprotect(new).is_ok() {
            return Ok(false);
        }
        let key = self.unprotect(&path, &blob)?;
        let rotated = ProtectedKey::protect(&key, new).map_err(envelope)?;
        let check = rotated.unprotect(new).map_err(envelope)?;
        if check.id() != key.id() {
            return Err(envelope(EnvelopeError::Corrupt));
        }
        write_key_file(dir, rotated.as_bytes(), Replace::Always)?;
        Ok(true)
    }

    /// Re-seals the key of every database in `dirs` under the newest version of the current
    /// provider's key, without the sealed secret leaving the service
    /// ([`ProtectedKey::rewrap`]: Vault Transit's `rewrap`, after a Transit key rotation). Keys
    /// already under the newest version, and master-key blobs, are reported in
    /// [`RotationReport::already_current`]; the rest in [`RotationReport::rotated`].
    ///
    /// Crash-safe and resumable as [`DatabaseKeyStore::rotate`] is: each key file is replaced
    /// atomically by a blob that opens with the same provider; it stops at the first database
    /// that fails ([`StoreError::Rotation`]).
    pub fn rewrap<I, P>(&self, dirs: I) -> Result<RotationReport, StoreError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        each_key(dirs, |dir| self.rewrap_one(dir))
    }

    /// Rewraps one key; `Ok(false)` if it is already under the newest key version.
    fn rewrap_one(&self, dir: &Path) -> Result<bool, StoreError> {
        let path = Self::key_path(dir);
        let _lock = KeyFileLock::acquire(dir)?;
        let blob = read_key_file(&path)?;
        let rewrapped = blob
            .rewrap(&*self.current)
            .map_err(|source| StoreError::Envelope {
                path: path.clone(),
                source,
            })?;
        let Some(rewrapped) = rewrapped else {
            return Ok(false);
        };
        write_key_file(dir, rewrapped.as_bytes(), Replace::Always)?;
        Ok(true)
    }

    /// Opens `blob` with the current provider, or the previous one if the current one cannot.
    fn unprotect(&self, path: &Path, blob: &ProtectedKey) -> Result<DataKey, StoreError> {
        let current = match blob.unprotect(&*self.current) {
            Ok(key) => return Ok(key),
            Err(e) => e,
        };
        // A blob that is the current provider's but fails to authenticate is corrupt whoever
        // opens it; only "not mine" or a failing provider is worth a second try.
        let retry = current.is_not_mine() || matches!(current, EnvelopeError::Provider(_));
        let previous = match &self.previous {
            Some(previous) if retry => previous,
            _ => {
                return Err(StoreError::Envelope {
                    path: path.to_path_buf(),
                    source: current,
                });
            }
        };
        match blob.unprotect(&**previous) {
            Ok(key) => Ok(key),
            Err(previous)
                if previous.is_not_mine() || matches!(previous, EnvelopeError::Provider(_)) =>
            {
                Err(StoreError::NoProviderOpens {
                    path: path.to_path_buf(),
                    current: Box::new(current),
                    previous: Box::new(previous),
                })
            }
            Err(source) => Err(StoreError::Envelope {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// Runs `one` on the key of each database in `dirs` in order, stopping at the first failure;
/// `one` says whether it changed the key file.
fn each_key<I, P>(
    dirs: I,
    mut one: impl FnMut(&Path) -> Result<bool, StoreError>,
) -> Result<RotationReport, StoreError>
where
    I: IntoIterator<Item = P>,
    P: AsRef<Path>,
{
    let mut report = RotationReport::default();
    for dir in dirs {
        let dir = dir.as_ref();
        match one(dir) {
            Ok(true) => report.rotated.push(dir.to_path_buf()),
            Ok(false) => report.already_current.push(dir.to_path_buf()),
            Err(e) => {
                return Err(StoreError::Rotation {
                    dir: dir.to_path_buf(),
                    completed: report.rotated.len() + report.already_current.len(),
                    source: Box::new(e),
                });
            }
        }
    }
    Ok(report)
}

impl fmt::Debug for DatabaseKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseKeyStore")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .finish()
    }
}

fn read_key_file(path: &Path) -> Result<ProtectedKey, StoreError> {
    let io_err = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::fs::open_regular(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound {
            path: path.to_path_buf(),
        },
        _ => io_err(e),
    })?;
    let mut bytes = Vec::new();
    file.take(ProtectedKey::MAX_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    ProtectedKey::from_bytes(&bytes).map_err(|source| StoreError::Envelope {
        path: path.to_path_buf(),
        source,
    })
}

/// An exclusive lock on the key file of one database, held while it is read, changed and
/// replaced ([`DatabaseKeyStore::create`], [`DatabaseKeyStore::put`], and each database of
/// [`DatabaseKeyStore::rotate`]), so that two such changes never interleave: without it, a
/// rotation could read a key, another process `put` a new key, and the rotation then write the
/// old key back over it.
///
/// It is an advisory OS lock taken through std's `File::lock`: on Unix, `flock` on the database directory
/// itself (so nothing is added to the directory); elsewhere, `LockFileEx` on the empty file
/// `.secret.key.lock` ([`KEY_FILE_NAME`]'s neighbour), created on first use and never deleted (deleting
/// a lock file lets two processes lock two different files). Every open is a separate lock, so
/// it serializes threads of one process as well as processes. The lock is released when the
/// guard is dropped, and by the OS when the process dies, so a crash never leaves a database
/// locked. A second writer waits for the first. Reads ([`DatabaseKeyStore::load`]) take no
/// lock: key files are replaced atomically.
struct KeyFileLock {
    file: File,
}

impl KeyFileLock {
    fn acquire(dir: &Path) -> Result<KeyFileLock, StoreError> {
        #[cfg(unix)]
        let (path, file) = (dir.to_path_buf(), File::open(dir));
        #[cfg(not(unix))]
        let (path, file) = {
            let path = dir.join(KEY_LOCK_FILE_NAME);
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path);
            (path, file)
        };
        let io_err = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let file = file.map_err(io_err)?;
        crate::fs::lock(&file).map_err(io_err)?;
        Ok(KeyFileLock { file })
    }
}

impl Drop for KeyFileLock {
    fn drop(&mut self) {
        crate::fs::unlock(&self.file);
    }
}

/// Writes a key file atomically (see [`crate::fs`]): a temporary file
/// `.secret.key.encrypted.XXXXXX.tmp` in `dir` (owner-only, locked while it lives), written and
/// synced, renamed into place (without replacing, for `Replace::Never`), then the directory
/// synced. Stale temporaries of that pattern whose lock is free are removed first.
fn write_key_file(dir: &Path, bytes: &[u8], replace: Replace) -> Result<(), StoreError> {
    let path = dir.join(KEY_FILE_NAME);
    match crate::fs::write_atomic(&path, bytes, replace) {
        Ok(()) => Ok(()),
        Err(e) if replace == Replace::Never && e.kind() == io::ErrorKind::AlreadyExists => {
            Err(StoreError::AlreadyExists { path })
        }
        Err(source) => Err(StoreError::Io { path, source }),
    }
}
