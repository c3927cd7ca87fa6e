//! The backup encryption policy: RavenDB-style [`BackupEncryptionSettings`], the rules that turn
//! them into the key a backup is encrypted with, the [`Channel`] rule for secrets, and the
//! restore policy (which backups a restore accepts, and what vouches for each).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use super::BackupError;
use crate::key::{DataKey, KeyId};

/// How a backup is encrypted (RavenDB's `EncryptionMode`; the serde names are RavenDB's).
///
/// Deserializing an unknown name fails without echoing it (a key pasted into the wrong field
/// must not end up in an error message or a log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EncryptionMode {
    /// Not encrypted. The backup still detects corruption (the stream is integrity-protected).
    None,
    /// Encrypted with the database's own key (the database must be encrypted).
    UseDatabaseKey,
    /// Encrypted with a key the caller provides (base64 `Key` in the settings).
    UseProvidedKey,
}

impl EncryptionMode {
    /// The RavenDB spelling: `None`, `UseDatabaseKey` or `UseProvidedKey`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EncryptionMode::None => "None",
            EncryptionMode::UseDatabaseKey => "UseDatabaseKey",
            EncryptionMode::UseProvidedKey => "UseProvidedKey",
        }
    }
}

impl<'de> Deserialize<'de> for EncryptionMode {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = EncryptionMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of None, UseDatabaseKey, UseProvidedKey")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "None" => Ok(EncryptionMode::None),
                    "UseDatabaseKey" => Ok(EncryptionMode::UseDatabaseKey),
                    "UseProvidedKey" => Ok(EncryptionMode::UseProvidedKey),
                    _ => Err(E::custom(
                        "unknown encryption mode (expected None, UseDatabaseKey or UseProvidedKey)",
                    )),
                }
            }
        }
        de.deserialize_str(Visitor)
    }
}

/// Deserializes a list of paths; a string instead of a list is refused without echoing it.
pub(crate) fn deserialize_paths<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<Vec<std::path::PathBuf>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<std::path::PathBuf>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of paths")
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::invalid_type(
                serde::de::Unexpected::Other("a string"),
                &self,
            ))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(path) = seq.next_element()? {
                out.push(path);
            }
            Ok(out)
        }
    }
    de.deserialize_any(Visitor)
}

impl fmt::Display for EncryptionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The encryption settings of one backup, as in RavenDB's `BackupEncryptionSettings`.
///
/// Built in code with [`none`](Self::none), [`database_key`](Self::database_key) or
/// [`provided_key`](Self::provided_key), or deserialized from RavenDB-style JSON:
///
/// ```
/// use strongbox::backup::{BackupEncryptionSettings, EncryptionMode};
///
/// let json = r#"{ "EncryptionMode": "UseProvidedKey",
///                 "Key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" }"#;
/// let settings: BackupEncryptionSettings = serde_json::from_str(json)?;
/// assert_eq!(settings.mode(), EncryptionMode::UseProvidedKey);
/// assert!(!format!("{settings:?}").contains("AAECAw"));
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// Deserialization accepts any combination, so that a mode/key mismatch is reported as a typed
/// [`BackupError`] when the backup starts ([`BackupError::ProvidedKeyMissing`],
/// [`BackupError::KeyWithoutProvidedKeyMode`]) rather than as a generic parse error. A key that
/// is not 32 bytes of standard base64 is a parse error that never echoes the input.
///
/// There is deliberately no `Serialize`: the settings can hold a key, and a key is never written
/// out by accident. Not giving settings at all (the backup builders' default) means "follow the
/// database": an encrypted database is backed up with its own key, an unencrypted one is not
/// encrypted.
#[derive(Deserialize)]
pub struct BackupEncryptionSettings {
    #[serde(rename = "EncryptionMode", alias = "encryption_mode", alias = "mode")]
    mode: EncryptionMode,
    #[serde(rename = "Key", alias = "key")]
    #[serde(default, deserialize_with = "deserialize_key")]
    key: Option<DataKey>,
}

pub(crate) fn deserialize_key<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<Option<DataKey>, D::Error> {
    let text: Option<String> = Option::deserialize(de)?;
    match text.map(Zeroizing::new) {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => DataKey::from_base64(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl BackupEncryptionSettings {
    /// No encryption (`EncryptionMode::None`).
    pub fn none() -> Self {
        Self {
            mode: EncryptionMode::None,
            key: None,
        }
    }

    /// Encrypt with the database's own key (`EncryptionMode::UseDatabaseKey`).
    pub fn database_key() -> Self {
        Self {
            mode: EncryptionMode::UseDatabaseKey,
            key: None,
        }
    }

    /// Encrypt with `key` (`EncryptionMode::UseProvidedKey`).
    pub fn provided_key(key: DataKey) -> Self {
        Self {
            mode: EncryptionMode::UseProvidedKey,
            key: Some(key),
        }
    }

    /// Any combination of mode and key, as a configuration file may hold it; mismatches are
    /// reported when the backup starts.
    pub fn from_parts(mode: EncryptionMode, key: Option<DataKey>) -> Self {
        Self { mode, key }
    }

    /// The encryption mode.
    pub fn mode(&self) -> EncryptionMode {
        self.mode
    }

    /// The provided key, if any.
    pub fn key(&self) -> Option<&DataKey> {
        self.key.as_ref()
    }

    /// Checks that the mode and the key agree.
    fn validate(&self) -> Result<(), BackupError> {
        match (self.mode, &self.key) {
            (EncryptionMode::UseProvidedKey, None) => Err(BackupError::ProvidedKeyMissing),
            (mode @ (EncryptionMode::None | EncryptionMode::UseDatabaseKey), Some(_)) => {
                Err(BackupError::KeyWithoutProvidedKeyMode { mode })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for BackupEncryptionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupEncryptionSettings")
            .field("mode", &self.mode)
            .field("key_id", &self.key.as_ref().map(DataKey::id))
            .finish()
    }
}

/// How the request for a backup or restore reached the engine.
///
/// Keys and database plaintext must not cross an open channel (RavenDB allows backup encryption
/// and restoring with a key only over authenticated connections). Every backup and restore call
/// takes a `Channel`: there is no default, the engine must say. Operations that take a key
/// (a provided backup key, a restore key) or restore an encrypted backup refuse
/// [`Channel::Unauthenticated`] with [`BackupError::UnauthenticatedChannel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The request arrived over an authenticated channel (for example mutually authenticated
    /// TLS), or from a local administrator.
    Authenticated,
    /// The request arrived over a channel that is not authenticated: key operations refuse.
    Unauthenticated,
    /// The request arrived over a channel that is not authenticated, and the engine's operator
    /// has explicitly accepted that keys and plaintext may cross it (RavenDB's "unsecured access
    /// allowed" override). Key operations proceed. Only set this from an explicit,
    /// operator-written configuration switch.
    DangerousUnauthenticatedAllowed,
}

impl Channel {
    /// Whether a key may cross this channel.
    pub const fn permits_keys(self) -> bool {
        !matches!(self, Channel::Unauthenticated)
    }

    pub(crate) fn require(self, operation: SecretOperation) -> Result<(), BackupError> {
        if self.permits_keys() {
            Ok(())
        } else {
            Err(BackupError::UnauthenticatedChannel { operation })
        }
    }
}

/// An operation that needs an authenticated [`Channel`] (named in
/// [`BackupError::UnauthenticatedChannel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretOperation {
    /// A backup encrypted with a key supplied by the caller.
    BackupWithProvidedKey,
    /// A restore given a key by the caller.
    RestoreWithKey,
    /// A restore of an encrypted backup (its plaintext becomes available).
    RestoreEncrypted,
}

impl fmt::Display for SecretOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretOperation::BackupWithProvidedKey => "a backup with a provided key",
            SecretOperation::RestoreWithKey => "a restore with a provided key",
            SecretOperation::RestoreEncrypted => "the restore of an encrypted backup",
        })
    }
}

/// Which kind of backup the policy is resolved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyKind {
    Snapshot,
    Logical,
}

/// The outcome of the policy: which key (if any) encrypts the backup, and why.
#[derive(Debug)]
pub(crate) enum Resolved<'a> {
    Unencrypted,
    DatabaseKey(&'a DataKey),
    ProvidedKey(&'a DataKey),
}

impl Resolved<'_> {
    pub(crate) fn mode(&self) -> EncryptionMode {
        match self {
            Resolved::Unencrypted => EncryptionMode::None,
            Resolved::DatabaseKey(_) => EncryptionMode::UseDatabaseKey,
            Resolved::ProvidedKey(_) => EncryptionMode::UseProvidedKey,
        }
    }

    pub(crate) fn key(&self) -> Option<&DataKey> {
        match self {
            Resolved::Unencrypted => None,
            Resolved::DatabaseKey(k) | Resolved::ProvidedKey(k) => Some(k),
        }
    }
}

/// Applies the encryption rules.
///
/// - Mode and key must agree (see [`BackupEncryptionSettings`]).
/// - Snapshot of an encrypted database: always its own key. `None` is refused, a provided key is
///   accepted only if it *is* the database key (and then recorded as the database key).
/// - Snapshot of an unencrypted database: unencrypted unless a key is provided;
///   `UseDatabaseKey` is refused (there is no database key).
/// - Logical backup: any mode; `UseDatabaseKey` needs an encrypted database.
/// - No settings: follow the database.
/// - A provided key needs a channel that permits keys.
pub(crate) fn resolve<'a>(
    kind: PolicyKind,
    database_key: Option<&'a DataKey>,
    settings: Option<&'a BackupEncryptionSettings>,
    channel: Channel,
) -> Result<Resolved<'a>, BackupError> {
    let Some(settings) = settings else {
        return Ok(match database_key {
            Some(key) => Resolved::DatabaseKey(key),
            None => Resolved::Unencrypted,
        });
    };
    settings.validate()?;
    if settings.key.is_some() {
        channel.require(SecretOperation::BackupWithProvidedKey)?;
    }
    match (settings.mode, database_key, settings.key.as_ref()) {
        (EncryptionMode::None, Some(_), _) if kind == PolicyKind::Snapshot => {
            Err(BackupError::EncryptedDatabaseSnapshotMustBeEncrypted)
        }
        (EncryptionMode::None, _, _) => Ok(Resolved::Unencrypted),
        (EncryptionMode::UseDatabaseKey, Some(db), _) => Ok(Resolved::DatabaseKey(db)),
        (EncryptionMode::UseDatabaseKey, None, _) => Err(BackupError::DatabaseNotEncrypted),
        (EncryptionMode::UseProvidedKey, Some(db), Some(key)) if kind == PolicyKind::Snapshot => {
            if db.id() == key.id() {
                Ok(Resolved::DatabaseKey(db))
            } else {
                Err(BackupError::SnapshotKeyIsNotDatabaseKey)
            }
        }
        (EncryptionMode::UseProvidedKey, _, Some(key)) => Ok(Resolved::ProvidedKey(key)),
        (EncryptionMode::UseProvidedKey, _, None) => Err(BackupError::ProvidedKeyMissing),
    }
}

/// What vouches for one restored backup (see [`RestoreReport::authentication`]).
///
/// [`RestoreReport::authentication`]: crate::backup::RestoreReport::authentication
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Authentication {
    /// Encrypted: authenticated by the key with this id (nobody without it could have made it).
    Key(KeyId),
    /// Unencrypted: checked only by integrity tags (SHA-256), which catch corruption and
    /// truncation but not deliberate changes.
    IntegrityOnly,
}

/// The restore policy, applied once every header is authenticated and before any payload is
/// read: a restore is as strong as its weakest backup. `members` holds each backup's path and
/// key id (`None`: integrity-only), in order.
///
/// - A restore is *keyed* when a key was given or any member is encrypted. In a keyed restore
///   every encrypted member must use the first encrypted member's key
///   ([`BackupError::MemberKeyMismatch`]), and an integrity-only member is refused
///   ([`BackupError::IntegrityOnlyMember`]) unless `allow_integrity_only`.
/// - A key given when no member is encrypted is [`BackupError::KeyForUnencryptedBackup`].
pub(crate) fn check_restore(
    members: &[(&Path, Option<KeyId>)],
    key_given: bool,
    allow_integrity_only: bool,
) -> Result<Vec<Authentication>, BackupError> {
    let Some(expected) = members.iter().find_map(|(_, id)| *id) else {
        if key_given {
            return Err(BackupError::KeyForUnencryptedBackup);
        }
        return Ok(vec![Authentication::IntegrityOnly; members.len()]);
    };
    let mut out = Vec::with_capacity(members.len());
    for (position, &(path, key_id)) in members.iter().enumerate() {
        out.push(match key_id {
            Some(found) if found == expected => Authentication::Key(found),
            Some(found) => {
                return Err(BackupError::MemberKeyMismatch {
                    position,
                    path: path.to_path_buf(),
                    expected,
                    found,
                });
            }
            None if allow_integrity_only => Authentication::IntegrityOnly,
            None => {
                return Err(BackupError::IntegrityOnlyMember {
                    position,
                    path: path.to_path_buf(),
                });
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn key() -> DataKey {
        DataKey::from_base64(B64).unwrap()
    }

    fn run(
        kind: PolicyKind,
        db: Option<&DataKey>,
        s: Option<&BackupEncryptionSettings>,
    ) -> Result<(EncryptionMode, Option<KeyId>), BackupError> {
        resolve(kind, db, s, Channel::Authenticated).map(|r| (r.mode(), r.key().map(DataKey::id)))
    }

    #[test]
    fn no_settings_follow_the_database() {
        let db = key();
        for kind in [PolicyKind::Snapshot, PolicyKind::Logical] {
            assert_eq!(
                run(kind, Some(&db), None).unwrap(),
                (EncryptionMode::UseDatabaseKey, Some(db.id()))
            );
            assert_eq!(run(kind, None, None).unwrap(), (EncryptionMode::None, None));
        }
    }

    #[test]
    fn snapshot_of_encrypted_database_uses_its_key() {
        let db = key();
        let none = BackupEncryptionSettings::none();
        assert!(matches!(
            run(PolicyKind::Snapshot, Some(&db), Some(&none)),
            Err(BackupError::EncryptedDatabaseSnapshotMustBeEncrypted)
        ));
        let other = BackupEncryptionSettings::provided_key(DataKey::generate().unwrap());
        assert!(matches!(
            run(PolicyKind::Snapshot, Some(&db), Some(&other)),
            Err(BackupError::SnapshotKeyIsNotDatabaseKey)
        ));
        let same = BackupEncryptionSettings::provided_key(key());
        assert_eq!(
            run(PolicyKind::Snapshot, Some(&db), Some(&same)).unwrap(),
            (EncryptionMode::UseDatabaseKey, Some(db.id()))
        );
        let dbk = BackupEncryptionSettings::database_key();
        assert_eq!(
            run(PolicyKind::Snapshot, Some(&db), Some(&dbk)).unwrap(),
            (EncryptionMode::UseDatabaseKey, Some(db.id()))
        );
    }

    #[test]
    fn snapshot_of_unencrypted_database() {
        let provided = BackupEncryptionSettings::provided_key(key());
        assert_eq!(
            run(PolicyKind::Snapshot, None, Some(&provided)).unwrap(),
            (EncryptionMode::UseProvidedKey, Some(key().id()))
        );
        assert_eq!(
            run(
                PolicyKind::Snapshot,
                None,
                Some(&BackupEncryptionSettings::none())
            )
            .unwrap(),
            (EncryptionMode::None, None)
        );
        assert!(matches!(
            run(
                PolicyKind::Snapshot,
                None,
                Some(&BackupEncryptionSettings::database_key())
            ),
            Err(BackupError::DatabaseNotEncrypted)
        ));
    }

    #[test]
    fn logical_backups_may_use_any_mode() {
        let db = key();
        let other = DataKey::generate().unwrap();
        let other_id = other.id();
        let provided = BackupEncryptionSettings::provided_key(other);
        assert_eq!(
            run(PolicyKind::Logical, Some(&db), Some(&provided)).unwrap(),
            (EncryptionMode::UseProvidedKey, Some(other_id))
        );
        assert_eq!(
            run(
                PolicyKind::Logical,
                Some(&db),
                Some(&BackupEncryptionSettings::none())
            )
            .unwrap(),
            (EncryptionMode::None, None)
        );
        assert!(matches!(
            run(
                PolicyKind::Logical,
                None,
                Some(&BackupEncryptionSettings::database_key())
            ),
            Err(BackupError::DatabaseNotEncrypted)
        ));
    }

    #[test]
    fn mode_and_key_must_agree() {
        for kind in [PolicyKind::Snapshot, PolicyKind::Logical] {
            let missing =
                BackupEncryptionSettings::from_parts(EncryptionMode::UseProvidedKey, None);
            assert!(matches!(
                run(kind, None, Some(&missing)),
                Err(BackupError::ProvidedKeyMissing)
            ));
            for mode in [EncryptionMode::None, EncryptionMode::UseDatabaseKey] {
                let extra = BackupEncryptionSettings::from_parts(mode, Some(key()));
                assert!(matches!(
                    run(kind, Some(&key()), Some(&extra)),
                    Err(BackupError::KeyWithoutProvidedKeyMode { mode: m }) if m == mode
                ));
            }
        }
    }

    #[test]
    fn provided_key_needs_an_authenticated_channel() {
        let provided = BackupEncryptionSettings::provided_key(key());
        for kind in [PolicyKind::Snapshot, PolicyKind::Logical] {
            assert!(matches!(
                resolve(kind, None, Some(&provided), Channel::Unauthenticated),
                Err(BackupError::UnauthenticatedChannel {
                    operation: SecretOperation::BackupWithProvidedKey
                })
            ));
            assert!(
                resolve(
                    kind,
                    None,
                    Some(&provided),
                    Channel::DangerousUnauthenticatedAllowed
                )
                .is_ok()
            );
        }
        // Following the database needs no key from the caller.
        assert!(resolve(PolicyKind::Snapshot, None, None, Channel::Unauthenticated).is_ok());
    }

    #[test]
    fn ravendb_json() {
        let s: BackupEncryptionSettings = serde_json::from_str(&format!(
            r#"{{"Key":"{B64}","EncryptionMode":"UseProvidedKey"}}"#
        ))
        .unwrap();
        assert_eq!(s.mode(), EncryptionMode::UseProvidedKey);
        assert_eq!(s.key().unwrap().id(), key().id());
        let s: BackupEncryptionSettings =
            serde_json::from_str(r#"{"Key":null,"EncryptionMode":"UseDatabaseKey"}"#).unwrap();
        assert_eq!(s.mode(), EncryptionMode::UseDatabaseKey);
        assert!(s.key().is_none());
        let s: BackupEncryptionSettings =
            serde_json::from_str(r#"{"EncryptionMode":"None"}"#).unwrap();
        assert_eq!(s.mode(), EncryptionMode::None);
        let err = serde_json::from_str::<BackupEncryptionSettings>(
            r#"{"Key":"c2VjcmV0LXRvby1zaG9ydA==","EncryptionMode":"UseProvidedKey"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("32 bytes"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        assert!(
            serde_json::from_str::<BackupEncryptionSettings>(r#"{"EncryptionMode":"Aes"}"#)
                .is_err()
        );
    }

    #[test]
    fn a_restore_is_as_strong_as_its_weakest_member() {
        let (a, b) = (key().id(), DataKey::generate().unwrap().id());
        let p = Path::new("m");
        let check = |m: &[Option<KeyId>], given, allow| {
            let members: Vec<_> = m.iter().map(|&id| (p, id)).collect();
            check_restore(&members, given, allow)
        };
        use Authentication::{IntegrityOnly as I, Key as K};
        assert_eq!(check(&[None, None], false, false).unwrap(), [I, I]);
        assert_eq!(
            check(&[Some(a), Some(a)], true, false).unwrap(),
            [K(a), K(a)]
        );
        assert!(matches!(
            check(&[None], true, true),
            Err(BackupError::KeyForUnencryptedBackup)
        ));
        for given in [false, true] {
            assert!(matches!(
                check(&[Some(a), None], given, false),
                Err(BackupError::IntegrityOnlyMember { position: 1, .. })
            ));
            assert!(matches!(
                check(&[None, Some(a)], given, false),
                Err(BackupError::IntegrityOnlyMember { position: 0, .. })
            ));
            assert_eq!(check(&[Some(a), None], given, true).unwrap(), [K(a), I]);
            assert!(matches!(
                check(&[Some(a), None, Some(b)], given, true),
                Err(BackupError::MemberKeyMismatch { position: 2, expected, found, .. })
                    if expected == a && found == b
            ));
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let s = BackupEncryptionSettings::provided_key(key());
        let text = format!("{s:?}");
        assert!(!text.contains(&B64[..10]), "{text}");
        assert!(text.contains(&key().id().to_string()), "{text}");
    }
}
