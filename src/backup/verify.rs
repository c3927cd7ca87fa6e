//! Verifying backups without restoring them ([`verify`], [`VerifyConfig`]).

use std::num::NonZeroUsize;
use std::path::PathBuf;

use super::BackupError;
use super::keys::MasterKeys;
use super::manifest::{BackupKind, Manifest};
use super::policy::{Authentication, Channel};
use super::restore::{
    Payload, Reading, check_request, default_ratio, one_thread, open_members, shared_options,
};
use crate::key::DataKey;

/// What to verify, and with which key: a [`RestoreConfig`](super::RestoreConfig) without the
/// target directory.
///
/// - `backup_files`: one snapshot, or a logical chain in order (a full backup, then its
///   incremental backups).
/// - The key: [`with_key`](Self::with_key), else a wrapped copy opened with the current or a
///   recovery master key.
/// - Integrity-only members of a keyed verification are refused unless
///   [`dangerously_allow_unauthenticated_members`](Self::dangerously_allow_unauthenticated_members).
/// - Decompression is limited to [`DEFAULT_MAX_EXPANSION_RATIO`](super::DEFAULT_MAX_EXPANSION_RATIO)
///   unless [`with_max_expansion_ratio`](Self::with_max_expansion_ratio) says otherwise.
///
/// `Debug` never shows the key.
#[derive(Debug)]
pub struct VerifyConfig {
    backup_files: Vec<PathBuf>,
    encryption_key: Option<DataKey>,
    threads: NonZeroUsize,
    allow_unauthenticated_members: bool,
    max_expansion_ratio: Option<u64>,
}

impl VerifyConfig {
    /// Verify `backup_files`: one snapshot, or a logical chain in order.
    pub fn new<I, P>(backup_files: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self {
            backup_files: backup_files.into_iter().map(Into::into).collect(),
            encryption_key: None,
            threads: one_thread(),
            allow_unauthenticated_members: false,
            max_expansion_ratio: default_ratio(),
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

/// Checks a snapshot or a logical chain as [`restore`](super::restore) would, writing nothing.
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
/// use strongbox::keys::UnixHomeFileProvider;
/// # let tmp = tempfile::tempdir()?;
/// # let db = tmp.path().join("orders");
/// # std::fs::create_dir(&db)?;
/// let keys = MasterKeys::new(Arc::new(UnixHomeFileProvider::at(tmp.path().join("mk/secret.key"))));
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
    check_request(&reading, channel)?;
    let (members, authentication) = open_members(&reading, keys, channel)?;
    let mut report = VerifyReport {
        manifests: members.iter().map(|m| m.manifest.clone()).collect(),
        authentication,
        files: 0,
        bytes: 0,
    };
    for (position, m) in members.iter().enumerate() {
        let payload = Payload::open(&reading, m, position)?;
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
