//! Verifying backups without restoring them ([`verify`], [`VerifyConfig`]), and streaming a
//! logical chain into an engine's importer ([`import_chain`]).

use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::path::PathBuf;

use super::BackupError;
use super::input::BackupInput;
use super::keys::MasterKeys;
use super::manifest::{BackupKind, Manifest};
use super::policy::{Authentication, Channel};
use super::restore::{
    Member, Payload, ReadOptions, Reading, check_request, open_members, refuse_snapshots,
    shared_options,
};
use crate::key::DataKey;

/// What to verify or import, and with which key: a [`RestoreConfig`](super::RestoreConfig)
/// without the target directory ([`verify`], [`import_chain`]).
///
/// - `backup_files`: one snapshot, or a logical chain in order (a full backup, then its
///   incremental backups): paths ([`new`](Self::new)), or any mix of paths and readers
///   ([`from_inputs`](Self::from_inputs)).
/// - The key: [`with_key`](Self::with_key), else a wrapped copy opened with the current or a
///   recovery master key.
/// - Integrity-only members of a keyed verification are refused unless
///   [`dangerously_allow_unauthenticated_members`](Self::dangerously_allow_unauthenticated_members).
/// - Decompression is limited to [`DEFAULT_MAX_EXPANSION_RATIO`](super::DEFAULT_MAX_EXPANSION_RATIO)
///   unless [`with_max_expansion_ratio`](Self::with_max_expansion_ratio) says otherwise.
/// - [`with_progress`](Self::with_progress) counts the bytes read and can cancel.
///
/// `Debug` never shows the key.
#[derive(Debug)]
pub struct VerifyConfig {
    backup_files: Vec<BackupInput>,
    encryption_key: Option<DataKey>,
    options: ReadOptions,
}

impl VerifyConfig {
    /// Verify `backup_files`: one snapshot, or a logical chain in order.
    pub fn new<I, P>(backup_files: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self::from_inputs(backup_files.into_iter().map(BackupInput::path))
    }

    /// Verify or import `inputs` (files or readers): one snapshot, or a logical chain in order.
    pub fn from_inputs(inputs: impl IntoIterator<Item = BackupInput>) -> Self {
        Self {
            backup_files: inputs.into_iter().collect(),
            encryption_key: None,
            options: ReadOptions::default(),
        }
    }

    shared_options!("verification", "Verify", "VerifyReport");
}

/// What a successful [`verify`] checked.
#[derive(Debug)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The manifests of the verified backups, in order.
    pub manifests: Vec<Manifest>,
    /// What vouches for each backup, in the order of `manifests`: the key that authenticated
    /// it, or only integrity tags.
    pub authentication: Vec<Authentication>,
    /// Number of files in the snapshot's archive, or of exports in a logical chain.
    pub files: u64,
    /// Number of payload bytes: the snapshot's file contents, or the exports' bytes.
    pub bytes: u64,
}

/// Checks a snapshot or a logical chain as [`restore`](super::restore()) would, writing nothing.
///
/// The same steps as a restore (`docs/BACKUP.md`, section 6), in the same order, with the same
/// errors: each header authenticated with the given key or a wrapped copy opened by `keys`, the
/// manifests, the chain, the restore policy (an integrity-only member of a keyed chain is
/// [`BackupError::IntegrityOnlyMember`] unless allowed), then every payload read to its end
/// through the same decompression limit; a snapshot's archive is checked entry by entry by the
/// restore's rules (entry types, paths, the key file, duplicates, the end marker) and its file
/// contents are discarded. What a restore does besides is not checked: the target directory,
/// and storing the database key under the current master key.
///
/// It succeeds exactly when a restore of the same files with the same key, master keys and
/// options into a new directory would, errors of the target aside (it exists, a write fails,
/// or a file system that folds letter case takes two names of an archive as one).
///
/// ```
/// use std::io::Write;
/// use std::sync::Arc;
/// use strongbox::{DataKey, LogicalBackup};
/// use strongbox::backup::{
///     Authentication, BackupEncryptionSettings, Channel, MasterKeys, VerifyConfig, verify,
/// };
/// use strongbox::keys::FileProvider;
/// # let tmp = tempfile::tempdir()?;
/// # let db = tmp.path().join("orders");
/// # std::fs::create_dir(&db)?;
/// # let master_path = tmp.path().join("master.key");
/// # std::fs::write(&master_path, [7u8; 32])?;
/// # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
/// # std::fs::set_permissions(&master_path, std::fs::Permissions::from_mode(0o600))?; }
/// let keys = MasterKeys::new(Arc::new(FileProvider::new(master_path)));
/// let key = DataKey::generate()?;
/// let key_id = key.id();
/// let mut full = LogicalBackup::full(&db)
///     .encryption(BackupEncryptionSettings::provided_key(key))
///     .create(tmp.path().join("0.full"), &keys, Channel::Authenticated)?;
/// full.write_all(b"export: everything")?;
/// full.finish()?;
///
/// // No key given: the backup's copy wrapped under the master key opens it.
/// let config = VerifyConfig::new([tmp.path().join("0.full")]);
/// let report = verify(&config, &keys, Channel::Authenticated)?;
/// assert_eq!(report.bytes, 18);
/// assert!(matches!(report.authentication[..], [Authentication::Key(id)] if id == key_id));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Over [`Channel::Unauthenticated`], verifying with a key or verifying an encrypted backup is
/// refused.
pub fn verify(
    config: &VerifyConfig,
    keys: &MasterKeys,
    channel: Channel,
) -> Result<VerifyReport, BackupError> {
    let reading = config.reading();
    let (members, mut report) = open_chain(&reading, keys, channel)?;
    for m in &members {
        let payload = Payload::open(&reading, m)?;
        if m.manifest.kind() == BackupKind::Snapshot {
            let totals = payload.unpack(None)?;
            report.files += totals.files;
            report.bytes += totals.bytes;
        } else {
            report.bytes += payload.read_all(|_| Ok(()))?;
            report.files += 1;
        }
    }
    Ok(report)
}

/// Streams a logical chain into the engine's importer: after every backup's header was
/// authenticated and the chain and the restore policy were checked (the steps [`verify`] and
/// [`restore`](super::restore()) take first), calls `import` once per backup, in chain order, with
/// its manifest and a `Read` of its export.
///
/// - The `Read` returns only authenticated plaintext: a segment is handed out only after it
///   authenticated, and nothing after a segment that failed. When it fails, `import` sees an
///   error, and `import_chain` reports the backup's own error (for example
///   [`BackupError::Tampered`]), whatever `import` returned.
/// - What `import` leaves unread is read and authenticated anyway, before the next backup is
///   handed out; a failure there fails the import like any other.
/// - An error that `import` returns on its own is [`BackupError::Import`], naming the backup.
/// - A snapshot is refused ([`BackupError::UnexpectedKind`]): restore it with
///   [`restore`](super::restore()).
///
/// **Import transactionally.** The end of a backup is authenticated only when it is read: a
/// backup whose tail was altered or cut fails the import *after* `import` took in its earlier
/// bytes, and the backups before it. The engine must be able to discard everything imported
/// by a call that fails (import into a new database, or in one transaction committed after
/// `import_chain` returns `Ok`).
///
/// Why a callback rather than an iterator of readers: the library keeps the order of the work
/// (it drains and authenticates each backup before handing out the next, whatever the
/// importer did), and each `Read` lives only for its call, so it cannot be kept past the point
/// where its backup is checked.
///
/// Returns what [`verify`] returns: the manifests, what vouched for each backup, the number of
/// backups and of export bytes.
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use strongbox::{DataKey, LogicalBackup};
/// use strongbox::backup::{
///     BackupEncryptionSettings, Channel, MasterKeys, VerifyConfig, import_chain,
/// };
/// use strongbox::keys::FileProvider;
/// # let tmp = tempfile::tempdir()?;
/// # let db = tmp.path().join("orders");
/// # std::fs::create_dir(&db)?;
/// # let master_path = tmp.path().join("master.key");
/// # std::fs::write(&master_path, [7u8; 32])?;
/// # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
/// # std::fs::set_permissions(&master_path, std::fs::Permissions::from_mode(0o600))?; }
/// let keys = MasterKeys::new(Arc::new(FileProvider::new(master_path)));
/// let settings = BackupEncryptionSettings::provided_key(DataKey::generate()?);
/// let mut full = LogicalBackup::full(&db)
///     .encryption(settings)
///     .create(tmp.path().join("0.full"), &keys, Channel::Authenticated)?;
/// full.write_all(b"INSERT 1; INSERT 2;")?;
/// full.finish()?;
///
/// let mut imported = Vec::new();
/// let config = VerifyConfig::new([tmp.path().join("0.full")]);
/// import_chain(&config, &keys, Channel::Authenticated, |manifest, export| {
///     let mut statements = Vec::new();
///     export.read_to_end(&mut statements)?;
///     imported.push((manifest.backup_id(), statements));
///     Ok(())
/// })?;
/// assert_eq!(imported[0].1, b"INSERT 1; INSERT 2;");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Over [`Channel::Unauthenticated`], importing with a key or importing an encrypted backup is
/// refused.
pub fn import_chain(
    config: &VerifyConfig,
    keys: &MasterKeys,
    channel: Channel,
    mut import: impl FnMut(&Manifest, &mut dyn Read) -> io::Result<()>,
) -> Result<VerifyReport, BackupError> {
    let reading = config.reading();
    let (members, mut report) = open_chain(&reading, keys, channel)?;
    refuse_snapshots(&members)?;
    for m in &members {
        let payload = Payload::open(&reading, m)?;
        report.bytes += payload.import(|export| import(&m.manifest, export))?;
        report.files += 1;
    }
    Ok(report)
}

/// The members of the chain `reading` names, opened and checked as a restore opens them, and
/// a report listing them with nothing counted yet.
fn open_chain(
    reading: &Reading<'_>,
    keys: &MasterKeys,
    channel: Channel,
) -> Result<(Vec<Member>, VerifyReport), BackupError> {
    check_request(reading, channel)?;
    let (members, authentication) = open_members(reading, keys, channel)?;
    let report = VerifyReport {
        manifests: members.iter().map(|m| m.manifest.clone()).collect(),
        authentication,
        files: 0,
        bytes: 0,
    };
    Ok((members, report))
}
