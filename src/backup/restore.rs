//! Restoring backups ([`restore`], [`RestoreConfig`]) and reading a backup's description without
//! a key ([`inspect`]).

use std::cell::RefCell;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::archive::{self, UnpackError};
use super::files::{
    RESTORE_TREE, Tap, TapSlot, exists, from_stream, parent_of, read_error, remove_stale_restores,
    restore_workdir, sync_dir,
};
use super::keys::{MasterKeys, Unwrapped, parse_wrapped, unwrap_any};
use super::manifest::{BackupKind, Compression, Manifest};
use super::policy::{Channel, EncryptionMode, SecretOperation, deserialize_key, deserialize_paths};
use super::{BackupError, EXT_MANIFEST, EXT_WRAPPED_KEYS, store};
use crate::key::DataKey;
use crate::{Header, ProtectedKey, RestoreReader};

/// What to restore, where, and with which key (RavenDB's `RestoreBackupConfiguration`).
///
/// - `backup_files`: one snapshot, or a logical chain in order (a full backup, then its
///   incremental backups).
/// - `target_dir`: the directory to create. It must not exist; its parent must.
/// - `encryption_key`: the backup key as base64 (RavenDB's `EncryptionKey`). Optional: without
///   it, the key is unwrapped from the backup with the current or a recovery master key.
///
/// Deserializes from JSON with the field names `BackupFiles`, `TargetDirectory` and
/// `EncryptionKey` (or their snake_case forms). `Debug` never shows the key.
///
/// ```
/// use strongbox::RestoreConfig;
///
/// let config: RestoreConfig = serde_json::from_str(r#"{
///     "BackupFiles": ["/backups/orders.snapshot"],
///     "TargetDirectory": "/db/orders-restored",
///     "EncryptionKey": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/// }"#)?;
/// assert!(config.encryption_key().is_some());
/// assert!(!format!("{config:?}").contains("AAECAw"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Deserialize)]
pub struct RestoreConfig {
    #[serde(
        rename = "BackupFiles",
        alias = "backup_files",
        deserialize_with = "deserialize_paths"
    )]
    backup_files: Vec<PathBuf>,
    #[serde(rename = "TargetDirectory", alias = "target_dir")]
    target_dir: PathBuf,
    #[serde(
        rename = "EncryptionKey",
        alias = "encryption_key",
        default,
        deserialize_with = "deserialize_key"
    )]
    encryption_key: Option<DataKey>,
    #[serde(skip, default = "one_thread")]
    threads: NonZeroUsize,
}

fn one_thread() -> NonZeroUsize {
    NonZeroUsize::MIN
}

impl RestoreConfig {
    /// Restore `backup_files` (one snapshot, or a logical chain in order) into the new directory
    /// `target_dir`.
    pub fn new<I, P>(backup_files: I, target_dir: impl Into<PathBuf>) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self {
            backup_files: backup_files.into_iter().map(Into::into).collect(),
            target_dir: target_dir.into(),
            encryption_key: None,
            threads: one_thread(),
        }
    }

    /// Decrypt with this many worker threads (default 1; see `StreamConfig::threads`).
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
        self.threads = threads;
        self
    }

    /// Restore with this key instead of a wrapped copy from the backup.
    pub fn with_key(mut self, key: DataKey) -> Self {
        self.encryption_key = Some(key);
        self
    }

    /// The backup files, in order.
    pub fn backup_files(&self) -> &[PathBuf] {
        &self.backup_files
    }

    /// The directory the restore creates.
    pub fn target_dir(&self) -> &Path {
        &self.target_dir
    }

    /// The key given for the restore, if any.
    pub fn encryption_key(&self) -> Option<&DataKey> {
        self.encryption_key.as_ref()
    }
}

impl fmt::Debug for RestoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestoreConfig")
            .field("backup_files", &self.backup_files)
            .field("target_dir", &self.target_dir)
            .field("encryption_key", &self.encryption_key)
            .finish()
    }
}

/// What a successful [`restore`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The manifests of the restored backups, in order.
    pub manifests: Vec<Manifest>,
    /// The directory that was created.
    pub target_dir: PathBuf,
    /// For a logical chain, the export files written into `target_dir`, in chain order (see
    /// [`restore`]); empty for a snapshot.
    pub exports: Vec<PathBuf>,
    /// Number of files written (snapshot files or exports).
    pub files: u64,
    /// Number of payload bytes written.
    pub bytes: u64,
    /// Whether the database key was stored in `target_dir/secret.key.encrypted` (a snapshot of
    /// an encrypted database).
    pub key_stored: bool,
}

/// A backup file's description, read without a key by [`inspect`].
#[derive(Debug)]
pub struct BackupInfo {
    header: Header,
    manifest: Manifest,
    wrapped_keys: Vec<ProtectedKey>,
}

impl BackupInfo {
    /// The stream header: format version, algorithm, segment size, key id.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The wrapped copies of the key the backup carries (each names the master key that can
    /// open it); empty for an unencrypted backup.
    pub fn wrapped_keys(&self) -> &[ProtectedKey] {
        &self.wrapped_keys
    }
}

/// Reads a backup file's header and manifest without a key.
///
/// **Nothing it returns is authenticated yet**: a restore authenticates the header (manifest
/// included) before it uses it. Use it to show what a backup is and which key it needs.
pub fn inspect(path: impl AsRef<Path>) -> Result<BackupInfo, BackupError> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(|source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let header = Header::read_from(&mut file).map_err(|e| from_stream(e, path))?;
    let manifest = manifest_of(&header)?;
    let wrapped_keys = match header.extension(EXT_WRAPPED_KEYS) {
        None => Vec::new(),
        Some(bytes) => parse_wrapped(bytes)
            .ok_or_else(|| BackupError::Malformed("invalid wrapped-keys extension".into()))?,
    };
    Ok(BackupInfo {
        header,
        manifest,
        wrapped_keys,
    })
}

fn manifest_of(header: &Header) -> Result<Manifest, BackupError> {
    let bytes = header.extension(EXT_MANIFEST).ok_or_else(|| {
        BackupError::Malformed(
            "the stream has no manifest: it is a raw strongbox stream, not a database backup"
                .into(),
        )
    })?;
    let manifest = Manifest::from_json(bytes).map_err(|e| BackupError::Malformed(e.0))?;
    if manifest.key_id() != header.key_id() {
        return Err(BackupError::Malformed(
            "the manifest and the stream header disagree about the key".into(),
        ));
    }
    Ok(manifest)
}

/// One backup file whose header was authenticated.
struct Opened {
    path: PathBuf,
    manifest: Manifest,
    reader: RestoreReader<File>,
    key: Option<DataKey>,
}

fn open(
    path: &Path,
    given: Option<&DataKey>,
    keys: &MasterKeys,
    channel: Channel,
    threads: NonZeroUsize,
) -> Result<Opened, BackupError> {
    let mut file = File::open(path).map_err(|source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let header = Header::read_from(&mut file).map_err(|e| from_stream(e, path))?;
    let key = match header.key_id() {
        None => None,
        Some(key_id) => {
            channel.require(SecretOperation::RestoreEncrypted)?;
            Some(match given {
                Some(key) => key.try_clone()?,
                None => {
                    let copies = match header.extension(EXT_WRAPPED_KEYS) {
                        None => Vec::new(),
                        Some(bytes) => {
                            parse_wrapped(bytes).ok_or(BackupError::Tampered { segment: None })?
                        }
                    };
                    match unwrap_any(&copies, keys, key_id) {
                        Unwrapped::Key(key) => key,
                        Unwrapped::None { corrupt: true, .. } => {
                            return Err(BackupError::Tampered { segment: None });
                        }
                        Unwrapped::None {
                            corrupt: false,
                            failure,
                        } => {
                            return Err(BackupError::KeyUnavailable {
                                key_id,
                                copies: copies.len(),
                                cause: failure,
                            });
                        }
                    }
                }
            })
        }
    };
    let reader = RestoreReader::from_header(file, header, key.as_ref())
        .map_err(|e| from_stream(e, path))?
        .with_threads(threads);
    let manifest = manifest_of(reader.header())?;
    Ok(Opened {
        path: path.to_path_buf(),
        manifest,
        reader,
        key,
    })
}

/// Restores a snapshot or a logical chain into a new directory.
///
/// - **Snapshot** (one file): its files are unpacked into `target_dir`. If the snapshot is of an
///   encrypted database (mode `UseDatabaseKey`), the database key is stored under the current
///   master key in `target_dir/secret.key.encrypted`, so the restored database opens with it.
/// - **Logical chain** (a full backup, then its incremental backups in order): the chain is
///   checked (complete, in order, one database), then each backup's export is written to
///   `target_dir/NNNN-<kind>.export` (`0000-logical-full.export`,
///   `0001-logical-incremental.export`, ...) for the engine to import in that order.
///
/// The key: `config.encryption_key` if given (it must be the backup's key), else a wrapped copy
/// from the backup opened with the current or a recovery provider of `keys`.
///
/// The target is built in a temporary directory beside it and renamed into place only after
/// every byte of every backup was authenticated: on any error nothing is left behind, and an
/// existing `target_dir` is never touched.
///
/// Over [`Channel::Unauthenticated`], restoring with a key or restoring an encrypted backup is
/// refused.
pub fn restore(
    config: &RestoreConfig,
    keys: &MasterKeys,
    channel: Channel,
) -> Result<RestoreReport, BackupError> {
    let given = config.encryption_key.as_ref();
    if given.is_some() {
        channel.require(SecretOperation::RestoreWithKey)?;
    }
    let target = &config.target_dir;
    if config.backup_files.is_empty() {
        return Err(BackupError::NoBackupFiles);
    }
    remove_stale_restores(target);
    if exists(target) {
        return Err(BackupError::TargetExists {
            path: target.clone(),
        });
    }
    let parent = parent_of(target);
    if !parent.is_dir() {
        return Err(BackupError::Io {
            path: target.clone(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                "the target's parent directory does not exist",
            ),
        });
    }
    let opened = config
        .backup_files
        .iter()
        .map(|p| open(p, given, keys, channel, config.threads))
        .collect::<Result<Vec<_>, _>>()?;
    if given.is_some() && opened.iter().all(|o| !o.manifest.is_encrypted()) {
        return Err(BackupError::KeyForUnencryptedBackup);
    }
    if opened.len() > 1 {
        if let Some(o) = opened
            .iter()
            .find(|o| o.manifest.kind() == BackupKind::Snapshot)
        {
            return Err(BackupError::UnexpectedKind {
                path: o.path.clone(),
                kind: BackupKind::Snapshot,
            });
        }
    }
    if opened[0].manifest.kind() != BackupKind::Snapshot {
        check_chain(&opened.iter().map(|o| &o.manifest).collect::<Vec<_>>())?;
    }

    let (work, lock) = restore_workdir(target).map_err(|source| BackupError::Io {
        path: target.clone(),
        source,
    })?;
    let tree = work.path().join(RESTORE_TREE);
    let mut report = RestoreReport {
        manifests: opened.iter().map(|o| o.manifest.clone()).collect(),
        target_dir: target.clone(),
        exports: Vec::new(),
        files: 0,
        bytes: 0,
        key_stored: false,
    };
    for (index, o) in opened.into_iter().enumerate() {
        if o.manifest.kind() == BackupKind::Snapshot {
            restore_snapshot(o, &tree, keys, &mut report)?;
        } else {
            let name = format!("{index:04}-{}.export", o.manifest.kind());
            restore_export(o, &tree.join(&name), &mut report)?;
            report.exports.push(target.join(name));
        }
    }
    sync_tree(&tree).map_err(|source| BackupError::Io {
        path: target.clone(),
        source,
    })?;
    if exists(target) {
        return Err(BackupError::TargetExists {
            path: target.clone(),
        });
    }
    // A directory that appeared at the target since the check above makes the rename fail
    // (Windows; or Unix, unless it is empty, in which case nothing is lost). On any error the
    // working directory is removed when `work` drops; after the rename it holds only the lock.
    if let Err(source) = work.rename_out(&tree, target) {
        return Err(if exists(target) {
            BackupError::TargetExists {
                path: target.clone(),
            }
        } else {
            BackupError::Io {
                path: target.clone(),
                source,
            }
        });
    }
    sync_dir(parent).map_err(|source| BackupError::Io {
        path: target.clone(),
        source,
    })?;
    drop(lock);
    drop(work);
    Ok(report)
}

/// The checks of a logical chain: a full backup first, then incremental backups that each
/// follow the one before, all of one database.
pub(crate) fn check_chain(chain: &[&Manifest]) -> Result<(), BackupError> {
    for (position, m) in chain.iter().enumerate() {
        if m.database_name() != chain[0].database_name() {
            return Err(BackupError::ChainDatabaseMismatch { position });
        }
        if chain[..position]
            .iter()
            .any(|p| p.backup_id() == m.backup_id())
        {
            return Err(BackupError::ChainOutOfOrder { position });
        }
        let expected = position.checked_sub(1).map(|p| chain[p].backup_id());
        match (m.previous_backup_id(), expected) {
            (None, None) => {}
            (Some(missing), None) => {
                return Err(BackupError::ChainIncomplete { position, missing });
            }
            (None, Some(_)) => return Err(BackupError::ChainOutOfOrder { position }),
            (Some(prev), Some(expected)) if prev == expected => {}
            (Some(prev), Some(_)) => {
                return Err(if chain.iter().any(|c| c.backup_id() == prev) {
                    BackupError::ChainOutOfOrder { position }
                } else {
                    BackupError::ChainIncomplete {
                        position,
                        missing: prev,
                    }
                });
            }
        }
    }
    Ok(())
}

/// The decrypted, decompressed payload of one backup, with the tap that attributes errors.
fn payload(o: Opened) -> Result<(Box<dyn Read>, TapSlot), BackupError> {
    let (tap, failed) = Tap::new(o.reader);
    // Large reads let a reader with several threads open runs of segments in place, in the
    // buffer, while it loads the next ones (small reads gain nothing from threads).
    let buffered = io::BufReader::with_capacity(8 << 20, tap);
    let reader: Box<dyn Read> = match o.manifest.compression() {
        Compression::None => Box::new(buffered),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| read_error(e, &failed, &o.path, "invalid zstd stream"))?,
        ),
    };
    Ok((reader, failed))
}

fn restore_snapshot(
    o: Opened,
    dir: &Path,
    keys: &MasterKeys,
    report: &mut RestoreReport,
) -> Result<(), BackupError> {
    let path = o.path.clone();
    let store_key = match o.manifest.encryption() {
        EncryptionMode::UseDatabaseKey => o.key.as_ref().map(DataKey::try_clone).transpose()?,
        _ => None,
    };
    let (reader, failed) = payload(o)?;
    let (mut rest, totals) = archive::unpack(reader, dir).map_err(|e| match e {
        UnpackError::Read(e) => read_error(e, &failed, &path, "invalid snapshot archive"),
        UnpackError::Write { path, source } => BackupError::Io { path, source },
        UnpackError::Malformed(what) => BackupError::Malformed(what),
    })?;
    drain_zeros(&mut rest, &failed, &path)?;
    report.files += totals.files;
    report.bytes += totals.bytes;
    if let Some(key) = store_key {
        store::save(dir, &key, keys.current())?;
        report.key_stored = true;
    }
    Ok(())
}

/// Reads the payload to its end (which authenticates the last segment); after the tar
/// end-of-archive marker only zero padding may follow.
fn drain_zeros(
    rest: &mut dyn Read,
    failed: &RefCell<Option<io::Error>>,
    path: &Path,
) -> Result<(), BackupError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) if buf[..n].iter().all(|&b| b == 0) => {}
            Ok(_) => {
                return Err(BackupError::Malformed(
                    "data after the end of the snapshot archive".into(),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e, failed, path, "invalid snapshot payload")),
        }
    }
}

fn restore_export(o: Opened, out: &Path, report: &mut RestoreReport) -> Result<(), BackupError> {
    let path = o.path.clone();
    let (mut reader, failed) = payload(o)?;
    let write_err = |source| BackupError::Io {
        path: out.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(write_err)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e, &failed, &path, "invalid logical payload")),
        };
        file.write_all(&buf[..n]).map_err(write_err)?;
        report.bytes += n as u64;
    }
    file.sync_all().map_err(write_err)?;
    report.files += 1;
    Ok(())
}

/// fsyncs every directory of a tree (files are synced as they are written).
fn sync_tree(root: &Path) -> io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            }
        }
        sync_dir(&dir)?;
    }
    Ok(())
}
