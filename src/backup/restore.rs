//! Restoring backups ([`restore`], [`RestoreConfig`]), the steps a verification shares with a
//! restore, and reading a backup's description without a key ([`inspect`]).

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::Deserialize;

use super::archive::{self, Totals, UnpackError};
use super::files::{
    RESTORE_TREE, Tap, TapSlot, exists, parent_of, remove_stale_restores, restore_workdir, sync_dir,
};
use super::input::{BackupInput, Metered, Place};
use super::keys::{MasterKeys, open_wrapped, parse_wrapped};
use super::manifest::{BackupKind, Compression, Manifest};
use super::policy::{
    Authentication, Channel, EncryptionMode, SecretOperation, check_restore, deserialize_key,
    deserialize_paths,
};
use super::{BackupError, EXT_MANIFEST, EXT_RECIPIENT_SLOTS, EXT_WRAPPED_KEYS, Progress, store};
use crate::key::{DataKey, KeyId};
use crate::keys::envelope::ProtectedKey;
use crate::stream::{Header, RestoreReader};

/// By default a compressed backup may decompress to at most this many bytes per byte of its
/// file, or 16 MiB, whichever is more ([`RestoreConfig::with_max_expansion_ratio`]).
pub const DEFAULT_MAX_EXPANSION_RATIO: u64 = 1024;

/// What a compressed backup may always decompress to, whatever its size and the ratio.
const MIN_EXPANSION_ALLOWANCE: u64 = 16 << 20;

/// What to restore, where, and with which key (RavenDB's `RestoreBackupConfiguration`).
///
/// - `backup_files`: one snapshot, or a logical chain in order (a full backup, then its
///   incremental backups): paths ([`new`](Self::new)), or any mix of paths and readers
///   ([`from_inputs`](Self::from_inputs)).
/// - `target_dir`: the directory to create. It must not exist; its parent must.
/// - `encryption_key`: the backup key as base64 (RavenDB's `EncryptionKey`). Optional: without
///   it, the key is unwrapped from the backup with the current or a recovery master key.
/// - Integrity-only (unencrypted) backups in a restore that a key protects are refused unless
///   [`dangerously_allow_unauthenticated_members`](Self::dangerously_allow_unauthenticated_members)
///   (never read from JSON).
/// - Decompression is limited to [`DEFAULT_MAX_EXPANSION_RATIO`] unless
///   [`with_max_expansion_ratio`](Self::with_max_expansion_ratio) says otherwise.
/// - [`with_progress`](Self::with_progress) counts the bytes read and can cancel the restore.
///
/// Deserializes from JSON with the field names `BackupFiles`, `TargetDirectory` and
/// `EncryptionKey` (or their snake_case forms). `Debug` never shows the key.
///
/// ```
/// use strongbox::backup::RestoreConfig;
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
#[derive(Debug, Deserialize)]
pub struct RestoreConfig {
    #[serde(
        rename = "BackupFiles",
        alias = "backup_files",
        deserialize_with = "deserialize_inputs"
    )]
    backup_files: Vec<BackupInput>,
    #[serde(rename = "TargetDirectory", alias = "target_dir")]
    target_dir: PathBuf,
    #[serde(rename = "EncryptionKey", alias = "encryption_key")]
    #[serde(default, deserialize_with = "deserialize_key")]
    encryption_key: Option<DataKey>,
    #[serde(skip)]
    options: ReadOptions,
}

/// The options [`RestoreConfig`] and `VerifyConfig` share besides the key, set by the methods
/// of [`shared_options`] (never read from JSON).
#[derive(Debug)]
pub(super) struct ReadOptions {
    pub(super) threads: NonZeroUsize,
    pub(super) allow_unauthenticated_members: bool,
    pub(super) max_expansion_ratio: Option<u64>,
    pub(super) progress: Progress,
    #[cfg(feature = "recipients")]
    pub(super) identities: super::Identities,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            threads: NonZeroUsize::MIN,
            allow_unauthenticated_members: false,
            max_expansion_ratio: Some(DEFAULT_MAX_EXPANSION_RATIO),
            progress: Progress::new(),
            #[cfg(feature = "recipients")]
            identities: super::Identities::new(),
        }
    }
}

fn deserialize_inputs<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Vec<BackupInput>, D::Error> {
    Ok(deserialize_paths(de)?
        .into_iter()
        .map(BackupInput::path)
        .collect())
}

/// What a restore and a verification read, and how: the part of their configurations that
/// steps 0 to 6 and the payload reading share.
pub(super) struct Reading<'a> {
    pub(super) files: &'a [BackupInput],
    pub(super) key: Option<&'a DataKey>,
    pub(super) allow_unauthenticated_members: bool,
    pub(super) max_expansion_ratio: Option<u64>,
    pub(super) threads: NonZeroUsize,
    pub(super) progress: &'a Progress,
    #[cfg(feature = "recipients")]
    pub(super) identities: &'a super::Identities,
}

/// The methods [`RestoreConfig`] and `VerifyConfig` share (over fields of the same names):
/// the options, the accessors, and the [`Reading`] they make. `$what` names the operation in
/// the docs, `$report` the type of its result.
macro_rules! shared_options {
    ($what:literal, $What:literal, $report:literal) => {
        #[doc = concat!("Also accept integrity-only (unencrypted) backups in a ", $what, " that a")]
        /// key protects (a key was given, or another backup of the chain is encrypted). Such a
        /// backup is only checked against corruption: anyone who can write the backup folder
        /// could have made it.
        #[doc = concat!("[`", $report, "::authentication`] says which backups only integrity")]
        /// tags checked. Set it only from an explicit operator decision.
        pub fn dangerously_allow_unauthenticated_members(mut self) -> Self {
            self.options.allow_unauthenticated_members = true;
            self
        }

        /// Limits how far a compressed backup may expand: at most `ratio` bytes of payload per
        /// byte of its file (or 16 MiB, whichever is more), else
        /// [`BackupError::ExpansionLimit`](crate::backup::BackupError::ExpansionLimit). `None`
        /// removes the limit. Default:
        /// [`DEFAULT_MAX_EXPANSION_RATIO`](crate::backup::DEFAULT_MAX_EXPANSION_RATIO).
        pub fn with_max_expansion_ratio(mut self, ratio: Option<u64>) -> Self {
            self.options.max_expansion_ratio = ratio;
            self
        }

        /// Decrypt with this many worker threads (default 1; see `StreamConfig::threads`).
        pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
            self.options.threads = threads;
            self
        }

        #[doc = concat!($What, " with this key instead of a wrapped copy from the backup.")]
        pub fn with_key(mut self, key: DataKey) -> Self {
            self.encryption_key = Some(key);
            self
        }

        #[doc = concat!("Counts the bytes the ", $what, " reads from the backups (headers")]
        /// included) on `progress`, and stops it with
        /// [`BackupError::Cancelled`](crate::backup::BackupError::Cancelled) when `progress` is
        /// cancelled (see [`Progress`](crate::backup::Progress)).
        pub fn with_progress(mut self, progress: crate::backup::Progress) -> Self {
            self.options.progress = progress;
            self
        }

        #[doc = concat!($What, " also with the key of a recipient slot these age identities open")]
        /// (tried after the master keys' wrapped copies). A backup whose key came from a slot
        /// is vouched for by that key alone (see `docs/BACKUP.md`, section 6, step 6).
        #[cfg(feature = "recipients")]
        pub fn with_identities(mut self, identities: crate::backup::Identities) -> Self {
            self.options.identities = identities;
            self
        }

        /// The backups, in order.
        pub fn backup_files(&self) -> &[crate::backup::BackupInput] {
            &self.backup_files
        }

        #[doc = concat!("The key given for the ", $what, ", if any.")]
        pub fn encryption_key(&self) -> Option<&DataKey> {
            self.encryption_key.as_ref()
        }

        pub(super) fn reading(&self) -> Reading<'_> {
            Reading {
                files: &self.backup_files,
                key: self.encryption_key.as_ref(),
                allow_unauthenticated_members: self.options.allow_unauthenticated_members,
                max_expansion_ratio: self.options.max_expansion_ratio,
                threads: self.options.threads,
                progress: &self.options.progress,
                #[cfg(feature = "recipients")]
                identities: &self.options.identities,
            }
        }
    };
}
pub(super) use shared_options;

impl RestoreConfig {
    /// Restore `backup_files` (one snapshot, or a logical chain in order) into the new directory
    /// `target_dir`.
    pub fn new<I, P>(backup_files: I, target_dir: impl Into<PathBuf>) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self::from_inputs(backup_files.into_iter().map(BackupInput::path), target_dir)
    }

    /// Restore `inputs` (one snapshot, or a logical chain in order; files or readers) into the
    /// new directory `target_dir`.
    ///
    /// ```
    /// use std::io::Cursor;
    /// use strongbox::backup::{BackupInput, RestoreConfig};
    ///
    /// # let received: Vec<u8> = Vec::new();
    /// let config = RestoreConfig::from_inputs(
    ///     [BackupInput::reader("orders.snapshot (upload)", Cursor::new(received))],
    ///     "/db/orders-restored",
    /// );
    /// assert!(config.backup_files()[0].is_reader());
    /// ```
    pub fn from_inputs(
        inputs: impl IntoIterator<Item = BackupInput>,
        target_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            backup_files: inputs.into_iter().collect(),
            target_dir: target_dir.into(),
            encryption_key: None,
            options: ReadOptions::default(),
        }
    }

    shared_options!("restore", "Restore", "RestoreReport");

    /// The directory the restore creates.
    pub fn target_dir(&self) -> &Path {
        &self.target_dir
    }
}

/// What a successful [`restore`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The manifests of the restored backups, in order.
    pub manifests: Vec<Manifest>,
    /// What vouches for each restored backup, in the order of `manifests`: the key that
    /// authenticated it, or only integrity tags.
    pub authentication: Vec<Authentication>,
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
/// included) before it uses it. Use it to show what a backup is and which key it needs. Its
/// errors name the file as backup 0.
pub fn inspect(path: impl AsRef<Path>) -> Result<BackupInfo, BackupError> {
    let place = Place::new(0, path.as_ref());
    let file = File::open(&place.path).map_err(|e| place.io(e))?;
    inspect_from(&place, file)
}

/// [`inspect`] of a backup read from `reader` (an object in a store, a download, a pipe),
/// called `name` in errors: reads its header only, nothing after it.
///
/// **Nothing it returns is authenticated yet**, as for [`inspect`]. Its errors name the backup
/// as backup 0, by `name`.
///
/// ```
/// use std::io::Cursor;
/// use strongbox::backup::{BackupError, inspect_reader};
///
/// let raw = Cursor::new(b"not a strongbox backup".to_vec());
/// let err = inspect_reader("upload 1", raw).unwrap_err();
/// assert!(matches!(err, BackupError::InvalidStream { position: 0, .. }));
/// assert!(err.to_string().contains("upload 1"));
/// ```
pub fn inspect_reader(
    name: impl AsRef<Path>,
    reader: impl Read,
) -> Result<BackupInfo, BackupError> {
    inspect_from(&Place::new(0, name.as_ref()), reader)
}

fn inspect_from(place: &Place, mut input: impl Read) -> Result<BackupInfo, BackupError> {
    let header = Header::read_from(&mut input).map_err(|e| place.stream(e))?;
    let manifest = manifest_of(&header, place)?;
    let wrapped_keys = wrapped_keys(&header, place)?;
    Ok(BackupInfo {
        header,
        manifest,
        wrapped_keys,
    })
}

/// The wrapped copies of the key: present in every encrypted stream but one that has recipient
/// slots instead (none then), absent from an unencrypted one, and well formed.
pub(super) fn wrapped_keys(
    header: &Header,
    place: &Place,
) -> Result<Vec<ProtectedKey>, BackupError> {
    let reason = match (header.extension(EXT_WRAPPED_KEYS), header.is_encrypted()) {
        (None, false) => return Ok(Vec::new()),
        (Some(bytes), true) => match parse_wrapped(bytes) {
            Some(copies) => return Ok(copies),
            None => "is not a valid list of key blobs",
        },
        (None, true) if header.extension(EXT_RECIPIENT_SLOTS).is_some() => return Ok(Vec::new()),
        (None, true) => "is missing from an encrypted backup",
        (Some(_), false) => "is present in an unencrypted backup",
    };
    Err(place.malformed_wrapped_keys(reason))
}

fn no_manifest(place: &Place) -> BackupError {
    place.malformed(
        "the stream has no manifest: it is a raw strongbox stream, not a database backup",
    )
}

fn manifest_of(header: &Header, place: &Place) -> Result<Manifest, BackupError> {
    let bytes = header
        .extension(EXT_MANIFEST)
        .ok_or_else(|| no_manifest(place))?;
    let manifest = Manifest::from_json(bytes).map_err(|e| place.malformed(e.0))?;
    if manifest.key_id() != header.key_id() {
        return Err(place.malformed("the manifest and the stream header disagree about the key"));
    }
    Ok(manifest)
}

/// One backup whose header was authenticated. A regular file is closed again until its payload
/// is read (a restore holds one backup file open at a time); any other input is held.
pub(super) struct Member {
    pub(super) place: Place,
    header: Header,
    pub(super) manifest: Manifest,
    key: Option<DataKey>,
    /// The key came from a recipient slot: it vouches for this backup alone.
    own_key: bool,
    /// The authenticated reader of an input that cannot be opened twice (a reader, a pipe, a
    /// FIFO): read on from where the header ended instead of opening the file again.
    held: Cell<Option<RestoreReader<Metered>>>,
}

/// Steps 1 to 4 of a restore for one backup: the header, its key, its authentication, the
/// manifest and the wrapped-keys extension.
fn authenticate(
    input: &BackupInput,
    place: Place,
    reading: &Reading<'_>,
    keys: &MasterKeys,
    channel: Channel,
) -> Result<Member, BackupError> {
    let (mut source, again) = input.open(&place, reading.progress)?;
    let header = Header::read_from(&mut source).map_err(|e| place.stream(e))?;
    if header.extension(EXT_MANIFEST).is_none() {
        return Err(no_manifest(&place));
    }
    let (key, own_key) = match header.key_id() {
        None => (None, false),
        Some(key_id) => {
            channel.require(SecretOperation::RestoreEncrypted)?;
            match reading.key {
                Some(key) => (Some(key.try_clone()?), false),
                None => {
                    let (key, own) = unwrap_key(&header, &place, reading, keys, key_id)?;
                    (Some(key), own)
                }
            }
        }
    };
    let reader = RestoreReader::from_header(source, header.clone(), key.as_ref())
        .map_err(|e| place.stream(e))?;
    let manifest = manifest_of(&header, &place)?;
    wrapped_keys(&header, &place)?;
    #[cfg(feature = "recipients")]
    recipient_slots(&header, &place)?;
    Ok(Member {
        place,
        header,
        manifest,
        key,
        own_key,
        // A regular file is closed until its payload is read, so that a chain of any length
        // needs two file handles.
        held: Cell::new((!again).then_some(reader)),
    })
}

/// The backup key from a wrapped copy a master key opens, else (`true`) from a recipient slot
/// one of the given identities opens.
fn unwrap_key(
    header: &Header,
    place: &Place,
    reading: &Reading<'_>,
    keys: &MasterKeys,
    key_id: KeyId,
) -> Result<(DataKey, bool), BackupError> {
    let by_master = open_wrapped(&wrapped_keys(header, place)?, keys, key_id, place);
    #[cfg(feature = "recipients")]
    if matches!(by_master, Err(BackupError::KeyUnavailable { .. }))
        && !reading.identities.is_empty()
        && let Some(slots) = recipient_slots(header, place)?
    {
        return super::recipients::open_slots(&slots, reading.identities, key_id, place)
            .map(|key| (key, true));
    }
    #[cfg(not(feature = "recipients"))]
    let _ = reading;
    by_master.map(|key| (key, false))
}

/// The recipient slots: only in an encrypted stream, and well formed.
#[cfg(feature = "recipients")]
pub(super) fn recipient_slots(
    header: &Header,
    place: &Place,
) -> Result<Option<Vec<Vec<u8>>>, BackupError> {
    let Some(bytes) = header.extension(EXT_RECIPIENT_SLOTS) else {
        return Ok(None);
    };
    let reason = if !header.is_encrypted() {
        "is present in an unencrypted backup"
    } else if let Some(slots) = super::recipients::parse_slots(bytes) {
        return Ok(Some(slots));
    } else {
        "is not a valid list of age files"
    };
    Err(BackupError::MalformedRecipientSlots {
        position: place.position,
        path: place.path.clone(),
        reason,
    })
}

/// Opens an authenticated member's file again to read its payload (its header must not have
/// changed; the header is not counted twice), or takes its held reader.
fn reopen(m: &Member, reading: &Reading<'_>) -> Result<RestoreReader<Metered>, BackupError> {
    if let Some(reader) = m.held.take() {
        return Ok(reader.with_threads(reading.threads));
    }
    let place = &m.place;
    let mut file = File::open(&place.path).map_err(|e| place.io(e))?;
    let header = Header::read_from(&mut file).map_err(|e| place.stream(e))?;
    if header != m.header {
        return Err(place.io(io::Error::other("the file was replaced during the restore")));
    }
    let source = Metered::new(Box::new(file), reading.progress);
    let reader = RestoreReader::from_header(source, header, m.key.as_ref())
        .map_err(|e| place.stream(e))?
        .with_threads(reading.threads);
    Ok(reader)
}

/// Restores a snapshot or a logical chain into a new directory.
///
/// - **Snapshot** (one file): its files are unpacked into `target_dir`. If the snapshot is of an
///   encrypted database (mode `UseDatabaseKey`), the database key is stored under the current
///   master key in `target_dir/secret.key.encrypted`, so the restored database opens with it.
/// - **Logical chain** (a full backup, then its incremental backups in order): the chain is
///   checked (complete, in order, one database), then each backup's export is written to
///   `target_dir/NNNN-<kind>.export` (`0000-logical-full.export`,
///   `0001-logical-incremental.export`, ...) for the engine to import in that order. To stream
///   the exports straight into the engine's importer instead, use
///   [`import_chain`](super::import_chain).
///
/// The backups are files or readers ([`RestoreConfig::from_inputs`]); errors about one of them
/// name it by position and path (or the reader's name).
///
/// The key: `config.encryption_key` if given (it must be the backup's key), else a wrapped copy
/// from the backup opened with the current or a recovery provider of `keys`.
///
/// A restore is as strong as its weakest backup: when a key was given or any backup is
/// encrypted, every encrypted backup must use the same key, and an integrity-only one is refused
/// ([`BackupError::IntegrityOnlyMember`]) unless the configuration explicitly allows it.
/// [`RestoreReport::authentication`] says what vouched for each backup. A compressed backup
/// that expands beyond the configured ratio is refused ([`BackupError::ExpansionLimit`]).
/// Backup files are opened one at a time, so a chain of any length needs two file handles.
///
/// The target is built in a temporary directory beside it and renamed into place only after
/// every byte of every backup was authenticated: on any error, a cancellation through the
/// configuration's [`Progress`] included, nothing is left behind, and an existing `target_dir`
/// is never touched.
///
/// Over [`Channel::Unauthenticated`], restoring with a key or restoring an encrypted backup is
/// refused. [`verify`](super::verify()) makes the same checks without writing anything.
pub fn restore(
    config: &RestoreConfig,
    keys: &MasterKeys,
    channel: Channel,
) -> Result<RestoreReport, BackupError> {
    let reading = config.reading();
    check_request(&reading, channel)?;
    let target = &config.target_dir;
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
    let (members, authentication) = open_members(&reading, keys, channel)?;
    let mut report = RestoreReport {
        manifests: members.iter().map(|m| m.manifest.clone()).collect(),
        authentication,
        target_dir: target.clone(),
        exports: Vec::new(),
        files: 0,
        bytes: 0,
        key_stored: false,
    };
    build_target(config, &members, keys, &mut report)?;
    sync_dir(parent).map_err(|source| BackupError::Io {
        path: target.clone(),
        source,
    })?;
    Ok(report)
}

/// Step 0 without the target: a given key needs a channel that permits keys, and there must be
/// a file.
pub(super) fn check_request(reading: &Reading<'_>, channel: Channel) -> Result<(), BackupError> {
    if reading.key.is_some() {
        channel.require(SecretOperation::RestoreWithKey)?;
    }
    if reading.files.is_empty() {
        return Err(BackupError::NoBackupFiles);
    }
    Ok(())
}

/// Steps 1 to 6: each file's header authenticated, then the kinds, the chain and the restore
/// policy. Returns the members and what vouches for each.
pub(super) fn open_members(
    reading: &Reading<'_>,
    keys: &MasterKeys,
    channel: Channel,
) -> Result<(Vec<Member>, Vec<Authentication>), BackupError> {
    let members = reading
        .files
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let place = Place::new(i, input.name());
            authenticate(input, place, reading, keys, channel)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let authentication = check_members(reading, &members)?;
    Ok((members, authentication))
}

/// Steps 5 and 6: the kinds and the chain, then the restore policy.
fn check_members(
    reading: &Reading<'_>,
    members: &[Member],
) -> Result<Vec<Authentication>, BackupError> {
    if members.len() > 1 {
        refuse_snapshots(members)?;
    }
    if members[0].manifest.kind() != BackupKind::Snapshot {
        check_chain(members)?;
    }
    // A member whose key came from a recipient slot is vouched for by its own key: the
    // same-key rule holds among the others.
    let shared = members
        .iter()
        .filter(|m| !m.own_key)
        .chain(members)
        .find_map(|m| m.header.key_id());
    let ids: Vec<_> = members
        .iter()
        .map(|m| {
            let id = if m.own_key { shared } else { m.header.key_id() };
            (m.place.path.as_path(), id)
        })
        .collect();
    let mut authentication = check_restore(
        &ids,
        reading.key.is_some(),
        reading.allow_unauthenticated_members,
    )?;
    for (auth, m) in authentication.iter_mut().zip(members) {
        if let (true, Some(id)) = (m.own_key, m.header.key_id()) {
            *auth = Authentication::Key(id);
        }
    }
    Ok(authentication)
}

/// A snapshot among the members is [`BackupError::UnexpectedKind`].
pub(super) fn refuse_snapshots(members: &[Member]) -> Result<(), BackupError> {
    match members
        .iter()
        .find(|m| m.manifest.kind() == BackupKind::Snapshot)
    {
        Some(m) => Err(BackupError::UnexpectedKind {
            position: m.place.position,
            path: m.place.path.clone(),
            kind: BackupKind::Snapshot,
        }),
        None => Ok(()),
    }
}

/// Steps 7 and 8 up to the rename: builds the tree in a working directory and moves it to the
/// target.
fn build_target(
    config: &RestoreConfig,
    members: &[Member],
    keys: &MasterKeys,
    report: &mut RestoreReport,
) -> Result<(), BackupError> {
    let target = &config.target_dir;
    let (work, lock) = restore_workdir(target).map_err(|source| BackupError::Io {
        path: target.clone(),
        source,
    })?;
    let tree = work.path().join(RESTORE_TREE);
    let reading = config.reading();
    for m in members {
        let payload = Payload::open(&reading, m)?;
        if m.manifest.kind() == BackupKind::Snapshot {
            restore_snapshot(payload, m, &tree, keys, report)?;
        } else {
            let name = format!("{:04}-{}.export", m.place.position, m.manifest.kind());
            restore_export(payload, &tree.join(&name), report)?;
            report.exports.push(target.join(name));
        }
    }
    sync_tree(&tree).map_err(|source| BackupError::Io {
        path: target.clone(),
        source,
    })?;
    if reading.progress.is_cancelled() {
        return Err(BackupError::Cancelled);
    }
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
    drop(lock);
    drop(work);
    Ok(())
}

/// The checks of a logical chain: a full backup first, then incremental backups that each
/// follow the one before, all of one database.
fn check_chain(chain: &[Member]) -> Result<(), BackupError> {
    for (position, member) in chain.iter().enumerate() {
        let m = &member.manifest;
        let path = member.place.path.clone();
        if m.database_name() != chain[0].manifest.database_name() {
            return Err(BackupError::ChainDatabaseMismatch { position, path });
        }
        let id_at = |p: usize| chain[p].manifest.backup_id();
        if (0..position).any(|p| id_at(p) == m.backup_id()) {
            return Err(BackupError::ChainOutOfOrder { position, path });
        }
        let expected = position.checked_sub(1).map(id_at);
        match (m.previous_backup_id(), expected) {
            (None, None) => {}
            (Some(prev), Some(expected)) if prev == expected => {}
            (Some(prev), expected)
                if expected.is_none() || !(0..chain.len()).any(|p| id_at(p) == prev) =>
            {
                return Err(BackupError::ChainIncomplete {
                    position,
                    path,
                    missing: prev,
                });
            }
            _ => return Err(BackupError::ChainOutOfOrder { position, path }),
        }
    }
    Ok(())
}

/// The decrypted, decompressed payload of one backup, with what attributes its read errors:
/// the stream's tap, and the expansion limit.
pub(super) struct Payload {
    reader: Box<dyn Read>,
    failed: TapSlot,
    /// The limit that was exceeded, if one was.
    exceeded: Rc<Cell<Option<u64>>>,
    place: Place,
}

impl Payload {
    /// Step 7's start for one member: opens it again, with the expansion limit.
    pub(super) fn open(reading: &Reading<'_>, m: &Member) -> Result<Self, BackupError> {
        let reader = reopen(m, reading)?;
        Self::new(reader, m, reading.max_expansion_ratio)
    }

    fn new(
        reader: RestoreReader<Metered>,
        m: &Member,
        ratio: Option<u64>,
    ) -> Result<Self, BackupError> {
        let (tap, failed) = Tap::new(reader);
        let consumed = Rc::new(Cell::new(0));
        let counted = Counted {
            inner: tap,
            count: Rc::clone(&consumed),
        };
        // Large reads let a reader with several threads open runs of segments in place, in the
        // buffer, while it loads the next ones (small reads gain nothing from threads).
        let buffered = io::BufReader::with_capacity(8 << 20, counted);
        let exceeded = Rc::new(Cell::new(None));
        let reader: Box<dyn Read> = match m.manifest.compression() {
            Compression::None => Box::new(buffered),
            Compression::Zstd => Box::new(Limited {
                inner: zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(|e| m.place.read_error(e, &failed, "invalid zstd stream"))?,
                out: 0,
                ratio: ratio.unwrap_or(u64::MAX),
                consumed,
                exceeded: Rc::clone(&exceeded),
            }),
        };
        Ok(Self {
            reader,
            failed,
            exceeded,
            place: m.place.clone(),
        })
    }

    /// Attributes a read error: the expansion limit, the stream, or a malformed payload.
    fn error(&self, err: io::Error, what: &str) -> BackupError {
        if let Some(limit) = self.exceeded.get() {
            return BackupError::ExpansionLimit {
                position: self.place.position,
                path: self.place.path.clone(),
                limit,
            };
        }
        self.place.read_error(err, &self.failed, what)
    }

    /// A snapshot's archive unpacked into `dir` (`None`: checked by the same rules and
    /// discarded), and the payload read to its end.
    pub(super) fn unpack(mut self, dir: Option<&Path>) -> Result<Totals, BackupError> {
        let reader = std::mem::replace(&mut self.reader, Box::new(io::empty()));
        let (mut rest, totals) = archive::unpack(reader, dir).map_err(|e| match e {
            UnpackError::Read(e) => self.error(e, "invalid snapshot archive"),
            UnpackError::Write { path, source } => BackupError::Io { path, source },
            UnpackError::Malformed(what) => self.place.malformed(what),
        })?;
        drain_zeros(&mut rest, &self)?;
        Ok(totals)
    }

    /// A logical payload read to its end, each piece handed to `out`; returns its length.
    pub(super) fn read_all(
        mut self,
        mut out: impl FnMut(&[u8]) -> Result<(), BackupError>,
    ) -> Result<u64, BackupError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match self.reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error(e, "invalid logical payload")),
            };
            out(&buf[..n])?;
            total += n as u64;
        }
    }

    /// A logical payload handed to `import` as a `Read` of authenticated plaintext, then read
    /// to its end (what `import` left unread is authenticated and discarded); returns its
    /// length. A failure of the payload (even one `import` swallowed) is reported as such; an
    /// error of `import`'s own is [`BackupError::Import`].
    pub(super) fn import(
        mut self,
        import: impl FnOnce(&mut dyn Read) -> io::Result<()>,
    ) -> Result<u64, BackupError> {
        let mut handed = Handed {
            inner: &mut self.reader,
            bytes: 0,
            failed: None,
        };
        let outcome = import(&mut handed);
        let (bytes, failed) = (handed.bytes, handed.failed.take());
        if let Some(err) = failed {
            return Err(self.error(err, "invalid logical payload"));
        }
        if let Err(source) = outcome {
            return Err(BackupError::Import {
                position: self.place.position,
                path: self.place.path.clone(),
                source,
            });
        }
        Ok(bytes + self.read_all(|_| Ok(()))?)
    }
}

/// The payload as the importer reads it: counts what it returned, and keeps its first error
/// (after which it returns errors only, so that nothing past a failure is handed out).
struct Handed<'a> {
    inner: &'a mut Box<dyn Read>,
    bytes: u64,
    failed: Option<io::Error>,
}

impl Read for Handed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Err(io::Error::other("the backup payload failed earlier"));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.failed = Some(e);
                Err(io::Error::new(kind, "reading the backup payload failed"))
            }
        }
    }
}

/// Counts the bytes read through it (the compressed payload read so far).
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Decompressed output that may grow to `ratio` times the compressed payload read so far (at
/// least [`MIN_EXPANSION_ALLOWANCE`]); past that, an error, and `exceeded` holds the limit. The
/// size of the input need not be known (a pipe).
struct Limited<R> {
    inner: R,
    out: u64,
    ratio: u64,
    consumed: Rc<Cell<u64>>,
    exceeded: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let limit = self
            .ratio
            .saturating_mul(self.consumed.get())
            .max(MIN_EXPANSION_ALLOWANCE);
        if self.out > limit {
            self.exceeded.set(Some(limit));
            return Err(io::Error::other("the expansion limit was exceeded"));
        }
        Ok(n)
    }
}

fn restore_snapshot(
    payload: Payload,
    m: &Member,
    dir: &Path,
    keys: &MasterKeys,
    report: &mut RestoreReport,
) -> Result<(), BackupError> {
    let store_key = match m.manifest.encryption() {
        EncryptionMode::UseDatabaseKey => m.key.as_ref().map(DataKey::try_clone).transpose()?,
        _ => None,
    };
    let totals = payload.unpack(Some(dir))?;
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
fn drain_zeros(rest: &mut dyn Read, payload: &Payload) -> Result<(), BackupError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) if buf[..n].iter().all(|&b| b == 0) => {}
            Ok(_) => {
                return Err(payload
                    .place
                    .malformed("data after the end of the snapshot archive"));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(payload.error(e, "invalid snapshot payload")),
        }
    }
}

fn restore_export(
    payload: Payload,
    out: &Path,
    report: &mut RestoreReport,
) -> Result<(), BackupError> {
    let write_err = |source| BackupError::Io {
        path: out.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(write_err)?;
    report.bytes += payload.read_all(|chunk| file.write_all(chunk).map_err(write_err))?;
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
