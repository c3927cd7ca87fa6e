//! Database backup and restore: snapshots and logical (full / incremental) backups, the
//! encryption policy, the manifest, restore and verification.

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};

use crate::key::{Fingerprint, KeyError, KeyId};
use crate::keys::envelope::EnvelopeError;
use crate::keys::store::StoreError;
use crate::stream::StreamError;

mod archive;
#[cfg(feature = "tokio")]
mod bridge;
mod create;
mod files;
mod input;
mod keys;
mod manifest;
mod policy;
mod progress;
#[cfg(feature = "recipients")]
mod recipients;
mod restore;
#[cfg(feature = "recipients")]
mod rewrap;
mod store;
#[cfg(test)]
mod vectors;
mod verify;

#[cfg(feature = "tokio")]
pub use bridge::{
    BRIDGE_QUEUE, BridgeReader, BridgeWriter, ReadPump, WritePump, bridge_from, bridge_to,
};
pub use create::{LogicalBackup, LogicalBackupWriter, SnapshotBackup};
pub use files::BackupFile;
pub use input::BackupInput;
pub use keys::{MAX_KEY_COPIES, MasterKeys};
pub use manifest::{BackupId, BackupKind, Compression, MAX_DATABASE_NAME_LEN, Manifest};
pub use policy::{
    Authentication, BackupEncryptionSettings, Channel, EncryptionMode, SecretOperation,
};
pub use progress::Progress;
#[cfg(feature = "recipients")]
pub use recipients::{
    Identities, MAX_RECIPIENT_SLOTS, Recipients, key_from_slots, parse_slots, slot_stanzas,
    slots_extension,
};
pub use restore::{
    BackupInfo, DEFAULT_MAX_EXPANSION_RATIO, RestoreConfig, RestoreReport, inspect, inspect_reader,
    restore,
};
#[cfg(feature = "recipients")]
pub use rewrap::{Rewrap, RewrapReport, rewrap};
pub use verify::{VerifyConfig, VerifyReport, import_chain, verify};

/// Header extension kind of the manifest (UTF-8 JSON, see `docs/BACKUP.md`).
pub(crate) const EXT_MANIFEST: u16 = 0x0001;
/// Header extension kind of the wrapped copies of the backup key (see `docs/BACKUP.md`).
pub(crate) const EXT_WRAPPED_KEYS: u16 = 0x0002;
/// Header extension kind of the recipient slots: the backup key wrapped to age recipients (see
/// `docs/BACKUP.md`).
pub const EXT_RECIPIENT_SLOTS: u16 = 0x0003;

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
    #[error("cannot read {}: {source}", printable_path(path))]
    SourceRead {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading the engine's logical export failed.
    #[error("reading the logical export failed: {0}")]
    ExportRead(#[source] io::Error),
    /// Writing a backup to the caller's output ([`SnapshotBackup::write_to`],
    /// [`LogicalBackup::create_to`]) failed. What the output received is an incomplete backup
    /// that every reader refuses; discard it. (A backup written to a path reports
    /// [`BackupError::Io`] with the path instead.)
    #[error("writing the backup failed: {0}")]
    OutputWrite(#[source] io::Error),
    /// A source entry cannot be backed up.
    #[error("cannot back up {}: {reason}", printable_path(path))]
    UnsupportedSource {
        /// The entry.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A file's length changed while it was backed up (the engine must keep the files still
    /// during a snapshot).
    #[error("{} changed while it was being backed up", printable_path(path))]
    SourceChanged {
        /// The file.
        path: PathBuf,
    },
    /// The reader of a snapshot member added with [`SnapshotBackup::with_entry`] yielded fewer
    /// or more bytes than the length given for it.
    #[error(
        "the reader of {} yielded fewer or more bytes than its length, {len}",
        printable_path(path)
    )]
    EntryLength {
        /// The member's name.
        path: PathBuf,
        /// The length given.
        len: u64,
    },
    /// The backup file already exists; backups never overwrite.
    #[error("the backup file {} already exists", printable_path(path))]
    DestinationExists {
        /// The path.
        path: PathBuf,
    },
    /// The backup file would be inside the directory being backed up.
    #[error(
        "the backup file {} is inside the database directory it backs up",
        printable_path(path)
    )]
    DestinationInsideSource {
        /// The path.
        path: PathBuf,
    },

    /// The database key could not be loaded (or, in a restore, stored).
    #[error("database key: {0}")]
    DatabaseKey(#[source] StoreError),
    /// The key could not be wrapped under one of the master keys.
    #[error("could not wrap the backup key under a master key: {0}")]
    KeyWrap(#[source] EnvelopeError),
    /// More than [`MAX_KEY_COPIES`] master keys (current and recovery) were configured.
    #[error("at most {MAX_KEY_COPIES} master keys (current and recovery) can hold a backup key")]
    TooManyKeyCopies,

    // ----- recipients -----
    /// A recipient is not an age X25519 (`age1...`) or SSH (`ssh-ed25519`, `ssh-rsa`) public
    /// key, or a recipients file holds none. `what` shows the recipient (public) or the file
    /// and line.
    #[error("invalid recipient: {what}")]
    InvalidRecipient {
        /// The recipient's text, or the file and line.
        what: String,
    },
    /// A file given as an identity holds no age or SSH identity (its content is never shown).
    #[error(
        "{} is not an age identity file or an SSH private key",
        printable_path(path)
    )]
    InvalidIdentity {
        /// The file.
        path: PathBuf,
    },
    /// The key could not be wrapped to a recipient.
    #[error("could not wrap the backup key to a recipient: {reason}")]
    RecipientWrap {
        /// The age library's reason.
        reason: String,
    },
    /// Recipients were given for a backup that is not encrypted (an unencrypted database and
    /// no encryption settings): there is no key to wrap.
    #[error("recipients were given, but the backup is not encrypted")]
    RecipientsForUnencryptedBackup,
    /// A write-only backup (a fresh key, wrapped only to recipients) was asked of a snapshot,
    /// with encryption settings, or without any recipient.
    #[error("a write-only backup is a logical backup with recipients and no encryption settings")]
    InvalidWriteOnly,
    /// No recipient slot of the backup opens with the given identities (and no master key
    /// opened a wrapped copy). Names the key id and the number of slots, never a key.
    #[error(
        "backup {position} ({}) is encrypted with key {key_id}, and none of its {slots} \
         recipient slots opens with the given identities{}",
        printable_path(path),
        cause.as_ref().map(|c| format!(" ({})", printable(c))).unwrap_or_default()
    )]
    NoMatchingIdentity {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The key the backup needs.
        key_id: KeyId,
        /// How many recipient slots the backup carries.
        slots: usize,
        /// The first failure of an identity other than "not mine" (a passphrase that was
        /// refused or could not be asked for), if one failed.
        cause: Option<String>,
    },
    /// The recipient-slots extension breaks its rules (`docs/BACKUP.md`, section 3a): present
    /// in an unencrypted backup, or not a valid list of age files.
    #[error(
        "backup {position} ({}) is malformed: the recipient-slots extension {reason}",
        printable_path(path)
    )]
    MalformedRecipientSlots {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A rewrap would leave the backup with neither a wrapped copy nor a recipient slot: no
    /// way to open it without its key.
    #[error(
        "refusing to remove the last way to open the backup (no wrapped copy or recipient slot would remain)"
    )]
    NoWayIn,
    /// A rewrap names a recipient slot the backup does not have.
    #[error("the backup has {slots} recipient slot(s): there is no slot {index}")]
    NoSuchSlot {
        /// The index given.
        index: usize,
        /// How many slots the backup has.
        slots: usize,
    },

    // ----- restoring -----
    //
    // Every error about one backup of a restore, a verification or an import names it:
    // `position` (0 is the first backup given) and `path` (the file, or the name given to a
    // reader input, see [`BackupInput`]).
    /// An encrypted backup was to be restored without a key given, and none of its wrapped
    /// copies opens with the current or a recovery master key of the [`MasterKeys`]: every
    /// copy is protected by a master key (or a sealer key) that was not given, or a provider
    /// failed (`cause`).
    ///
    /// The usual reason is a master-key rotation after the backup was taken
    /// ([`DatabaseKeyStore::rotate`](crate::keys::DatabaseKeyStore::rotate) re-protects key files,
    /// never backups): the backup's key is wrapped only under the old master key, which must be
    /// given as a recovery master key ([`MasterKeys::with_recovery`]), or the backup's key
    /// given. Compare `wrapped_for` with `tried` to see which master key is missing.
    ///
    /// A copy that names one of the given master keys but does not authenticate, or opens to
    /// another key than the header names, is not this error but
    /// [`BackupError::Tampered`]` { segment: None, .. }`.
    #[error(
        "backup {position} ({}) is encrypted with key {key_id}, no key was given, and none of \
         its {copies} wrapped copies opens with the configured master keys: it was wrapped for \
         master key(s) {}, and master key(s) {} were tried{}",
        printable_path(path),
        fingerprint_list(wrapped_for),
        fingerprint_list(tried),
        cause.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    KeyUnavailable {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The key the backup needs.
        key_id: KeyId,
        /// How many wrapped copies the backup carries.
        copies: usize,
        /// The fingerprints of the master keys the copies are wrapped under, in the backup's
        /// order (a copy sealed by a service such as DPAPI has none, and is only counted in
        /// `copies`). Read from the header before it is authenticated. Fingerprints are public
        /// identifiers: they reveal nothing of the keys.
        wrapped_for: Box<[Fingerprint]>,
        /// The fingerprints of the given master keys that were tried: the current one, then
        /// the recovery ones (a sealer, or a provider that failed, has none).
        tried: Box<[Fingerprint]>,
        /// The first failure of a master-key provider, if one failed.
        #[source]
        cause: Option<Box<EnvelopeError>>,
    },
    /// The key given is not the backup's key: the backup's header names another key id.
    /// Reported after the header was read and before any of the backup's payload is.
    #[error(
        "backup {position} ({}): wrong key: it needs key {expected}, but key {provided} was given",
        printable_path(path)
    )]
    WrongKey {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The backup's key id.
        expected: KeyId,
        /// The given key's id.
        provided: KeyId,
    },
    /// A key was given for an unencrypted backup (a restore never encrypts what was not).
    #[error(
        "a key was given, but the backup is not encrypted: cannot encrypt a non-encrypted backup during restore"
    )]
    KeyForUnencryptedBackup,
    /// The backup was altered or corrupted where data follows the change: its header failed
    /// authentication (`segment: None`: the header, manifest or wrapped keys were changed, or a
    /// wrapped copy addressed to a given master key does not open to the header's key), or
    /// segment `segment` failed it with the stream going on after it (changed, reordered,
    /// duplicated, or copied from another backup). No byte of that segment or after it was
    /// used. A stream that ends early, or whose end was altered so that it cannot be told from
    /// an early end, is [`BackupError::Truncated`].
    #[error("backup {position} ({}) was altered or corrupted ({})", printable_path(path), match segment {
        Some(i) => format!("segment {i} failed authentication"),
        None => "its header failed authentication".to_string(),
    })]
    Tampered {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The segment that failed, if it was not the header.
        segment: Option<u64>,
    },
    /// The backup ends before its authenticated end, or its final part was altered: the
    /// stream stops at a segment boundary before the segment marked last, or inside a segment
    /// (what an interrupted copy or backup looks like), or its header is cut short. Everything
    /// before the end was authenticated; what is missing cannot be checked.
    #[error(
        "backup {position} ({}) is truncated: it ends before its authenticated end (an \
         interrupted copy), or its final part was altered",
        printable_path(path)
    )]
    Truncated {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
    },
    /// The backup's authenticated content is malformed: no manifest, a manifest that breaks
    /// its rules, an invalid compressed stream or archive, data after a snapshot's archive.
    #[error(
        "backup {position} ({}) is malformed: {}",
        printable_path(path),
        printable(reason)
    )]
    Malformed {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The wrapped-keys header extension breaks its rules (`docs/BACKUP.md`, section 3): it is
    /// missing from an encrypted backup, present in an unencrypted one, or not a valid list of
    /// key blobs. Reported after the header authenticated when a key was given.
    #[error(
        "backup {position} ({}) is malformed: the wrapped-keys extension {reason}",
        printable_path(path)
    )]
    MalformedWrappedKeys {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The backup is not a stream this library reads, or breaks a stream rule other than the
    /// above: not a strongbox stream ([`StreamError::NotStrongbox`]), an unsupported version or
    /// algorithm, an invalid header, data after its last segment
    /// ([`StreamError::TrailingData`]), an unencrypted backup read with a key or an encrypted
    /// one without.
    #[error("backup {position} ({}): {source}", printable_path(path))]
    InvalidStream {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The stream's error.
        source: StreamError,
    },
    /// Reading a backup failed: the file could not be opened or read, the reader input
    /// failed, a reader input was already consumed by an earlier operation, or a file was
    /// replaced between the check of its header and the reading of its payload.
    #[error(
        "reading backup {position} ({}) failed: {source}",
        printable_path(path)
    )]
    BackupRead {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The engine's importer ([`import_chain`]) returned an error for this backup. The
    /// importer may already have taken in earlier backups and part of this one.
    #[error(
        "importing backup {position} ({}) failed: {source}",
        printable_path(path)
    )]
    Import {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The importer's error.
        source: io::Error,
    },
    /// An integrity-only (unencrypted) backup in a restore that a key protects (a key was
    /// given, or another backup of the chain is encrypted). Its content is only checked against
    /// corruption, so anyone who can write the backup folder could have made it; it is refused
    /// unless the caller allows integrity-only members
    /// ([`RestoreConfig::dangerously_allow_unauthenticated_members`]).
    #[error(
        "backup {position} ({}) is not encrypted: nothing authenticates it, in a restore that a \
         key protects; refusing it (allow integrity-only members explicitly to restore it anyway)",
        printable_path(path)
    )]
    IntegrityOnlyMember {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
    },
    /// A backup of the chain is encrypted with another key than the first encrypted one (every
    /// member of a restore must be authenticated by the same key).
    #[error(
        "backup {position} ({}) is encrypted with key {found}, but the restore is authenticated \
         by key {expected}: every backup of a chain must use the same key",
        printable_path(path)
    )]
    MemberKeyMismatch {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The key of the first encrypted backup.
        expected: KeyId,
        /// This backup's key.
        found: KeyId,
    },
    /// A compressed payload expands beyond the restore's limit (see
    /// [`RestoreConfig::with_max_expansion_ratio`]).
    #[error(
        "backup {position} ({}) decompresses to more than {limit} bytes, the limit for its size; \
         raise the maximum expansion ratio if the backup is genuine",
        printable_path(path)
    )]
    ExpansionLimit {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The number of decompressed bytes allowed when it was exceeded (the ratio times the
        /// compressed payload read by then, at least 16 MiB).
        limit: u64,
    },
    /// Writing a backup's stream failed other than by I/O (the stream would need too many
    /// segments, the writer failed earlier, ...). A backup that is read reports its stream's
    /// failures as [`BackupError::InvalidStream`] and the variants above, naming the backup.
    #[error(transparent)]
    Stream(StreamError),
    /// No backup file was given.
    #[error("no backup file to restore")]
    NoBackupFiles,
    /// The restore target exists (a restore never touches an existing directory).
    #[error("the restore target {} already exists", printable_path(path))]
    TargetExists {
        /// The target.
        path: PathBuf,
    },
    /// A snapshot among several backups (a snapshot is restored alone), or a snapshot given
    /// to [`import_chain`] (which imports logical backups only).
    #[error(
        "backup {position} ({}) is a {kind}, which cannot be part of a logical chain",
        printable_path(path)
    )]
    UnexpectedKind {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// Its kind.
        kind: BackupKind,
    },
    /// The logical chain misses a backup: the one at `position` follows `missing`, which is
    /// not the backup before it nor anywhere in the chain (a chain starting with an incremental
    /// backup misses its full backup).
    #[error(
        "incomplete backup chain: backup {position} ({}) follows backup {missing}, which was not \
         given",
        printable_path(path)
    )]
    ChainIncomplete {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
        /// The id of the backup it follows.
        missing: BackupId,
    },
    /// The logical chain is out of order: the backup at `position` does not follow the one
    /// before it (it follows another given backup, appears twice, or is a full backup after the
    /// first position).
    #[error(
        "backup chain out of order at position {position} ({})",
        printable_path(path)
    )]
    ChainOutOfOrder {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
    },
    /// The backup at `position` is of another database than the first.
    #[error(
        "backup {position} ({}) of the chain is of another database",
        printable_path(path)
    )]
    ChainDatabaseMismatch {
        /// Index of the backup (0 is the first given).
        position: usize,
        /// The file, or the reader input's name.
        path: PathBuf,
    },

    // ----- shared -----
    /// The operation was stopped through its [`Progress`] handle ([`Progress::cancel`]). It
    /// left what any failed operation leaves: no backup file, no restored directory, no
    /// temporary file.
    #[error("cancelled")]
    Cancelled,
    /// The random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Reading or writing a file failed.
    #[error("{}: {source}", printable_path(path))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl From<StreamError> for BackupError {
    fn from(err: StreamError) -> Self {
        BackupError::Stream(err)
    }
}

impl From<KeyError> for BackupError {
    fn from(_: KeyError) -> Self {
        // The only key operation here that can fail without input is drawing random bytes.
        BackupError::Random
    }
}

/// `text` with every control character (C0, DEL, C1) and every Unicode bidirectional control
/// written as a `\u{..}` escape, so that text taken from a backup (a database name, a path in an
/// archive) cannot move the cursor, recolour or rewrite an operator's terminal when it is
/// printed. Other characters, backslashes included, are kept as they are.
///
/// ```
/// assert_eq!(strongbox::backup::printable("db\u{1b}[2J\n"), "db\\u{1b}[2J\\u{a}");
/// assert_eq!(strongbox::backup::printable("orders"), "orders");
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    let escaped = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Fingerprints as comma-separated hexadecimal, or `none`.
fn fingerprint_list(fingerprints: &[Fingerprint]) -> String {
    if fingerprints.is_empty() {
        return "none".to_string();
    }
    let hex: Vec<String> = fingerprints.iter().map(Fingerprint::to_string).collect();
    hex.join(", ")
}

/// A path as [`printable`] text (lossy for bytes that are not UTF-8).
pub(crate) fn printable_path(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}
