//! The backup manifest: what a backup is, carried as JSON in an authenticated header extension
//! of the backup stream (see `docs/BACKUP.md`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::policy::EncryptionMode;
use crate::key::{KeyError, KeyId, fill_random};

/// Largest manifest accepted, in bytes (a manifest is a few hundred bytes).
pub(crate) const MAX_MANIFEST_LEN: usize = 16 * 1024;
/// Longest database name accepted, in bytes.
pub const MAX_DATABASE_NAME_LEN: usize = 255;

/// The only manifest version this crate writes and reads.
const MANIFEST_VERSION: u32 = 1;

/// The random 128-bit identifier of one backup; an incremental backup names the one it follows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackupId([u8; 16]);

impl BackupId {
    pub(crate) fn generate() -> Result<Self, KeyError> {
        let mut id = [0u8; 16];
        fill_random(&mut id)?;
        Ok(Self(id))
    }

    /// Wraps 16 bytes (as shown by `Display`, in hexadecimal).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes of the identifier.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the 32 lower- or upper-case hexadecimal digits that `Display` prints.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for BackupId {
    /// Lower-case hexadecimal, 32 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupId({self})")
    }
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    /// A tar archive of a database directory's files.
    Snapshot,
    /// A full logical backup: the engine's own export stream.
    LogicalFull,
    /// An incremental logical backup: it follows the backup named by
    /// [`Manifest::previous_backup_id`].
    LogicalIncremental,
}

impl BackupKind {
    /// `snapshot`, `logical-full` or `logical-incremental` (the manifest spelling).
    pub const fn as_str(self) -> &'static str {
        match self {
            BackupKind::Snapshot => "snapshot",
            BackupKind::LogicalFull => "logical-full",
            BackupKind::LogicalIncremental => "logical-incremental",
        }
    }
}

impl fmt::Display for BackupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the payload is compressed before it is encrypted.
///
/// Logical backups default to [`Zstd`](Self::Zstd), snapshots to [`None`](Self::None). Choose
/// `None` for a payload that does not compress (already compressed or encrypted pages, random
/// values): zstd then gains nothing and costs time (about 3.5x slower than `None` on the
/// incompressible redb export of `examples/redb_backup.rs`, `docs/PERFORMANCE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Stored as is.
    None,
    /// A Zstandard stream (RFC 8878).
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
        })
    }
}

/// The authenticated description at the start of every backup file. Read it without a key with
/// [`inspect`](crate::backup::inspect); a restore checks it as part of the authenticated header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    kind: BackupKind,
    backup_id: BackupId,
    database_name: String,
    created_unix: u64,
    compression: Compression,
    encryption: EncryptionMode,
    key_id: Option<KeyId>,
    previous_backup_id: Option<BackupId>,
}

/// Why a manifest could not be parsed (reported as a malformed backup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestParseError(pub(crate) String);

/// The JSON form (field names are the specification's, see `docs/BACKUP.md`).
#[derive(Serialize, Deserialize)]
struct Wire {
    version: u32,
    kind: BackupKind,
    backup_id: String,
    database: String,
    created_unix: u64,
    compression: Compression,
    encryption: EncryptionMode,
    key_id: Option<String>,
    previous_backup_id: Option<String>,
}

impl Manifest {
    pub(crate) fn new(
        kind: BackupKind,
        database_name: String,
        compression: Compression,
        encryption: EncryptionMode,
        key_id: Option<KeyId>,
        previous_backup_id: Option<BackupId>,
    ) -> Result<Self, KeyError> {
        let created_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Self {
            kind,
            backup_id: BackupId::generate()?,
            database_name,
            created_unix,
            compression,
            encryption,
            key_id,
            previous_backup_id,
        })
    }

    /// Snapshot, full or incremental logical backup.
    pub fn kind(&self) -> BackupKind {
        self.kind
    }

    /// This backup's random identifier.
    pub fn backup_id(&self) -> BackupId {
        self.backup_id
    }

    /// The name of the database the backup was taken from.
    pub fn database_name(&self) -> &str {
        &self.database_name
    }

    /// When the backup was started (whole seconds).
    pub fn created_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.created_unix)
    }

    /// [`created_at`](Self::created_at) as seconds since the Unix epoch.
    pub fn created_unix_seconds(&self) -> u64 {
        self.created_unix
    }

    /// [`created_at`](Self::created_at) as an RFC 3339 UTC timestamp, e.g.
    /// `2026-11-23T19:04:05Z`.
    pub fn created_at_rfc3339(&self) -> String {
        rfc3339(self.created_unix)
    }

    /// How the payload is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// How the backup is encrypted; [`EncryptionMode::None`] for an integrity-only backup.
    pub fn encryption(&self) -> EncryptionMode {
        self.encryption
    }

    /// Whether a key is needed to restore the backup.
    pub fn is_encrypted(&self) -> bool {
        self.encryption != EncryptionMode::None
    }

    /// The id of the key the backup is encrypted with (`None` when unencrypted).
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// For an incremental backup, the id of the backup it follows.
    pub fn previous_backup_id(&self) -> Option<BackupId> {
        self.previous_backup_id
    }

    /// The manifest as the JSON bytes stored in the header.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            version: MANIFEST_VERSION,
            kind: self.kind,
            backup_id: self.backup_id.to_string(),
            database: self.database_name.clone(),
            created_unix: self.created_unix,
            compression: self.compression,
            encryption: self.encryption,
            key_id: self.key_id.map(|k| k.to_string()),
            previous_backup_id: self.previous_backup_id.map(|b| b.to_string()),
        };
        serde_json::to_vec(&wire).expect("a manifest always serializes")
    }

    /// Parses and validates manifest JSON.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, ManifestParseError> {
        let err = |what: &str| ManifestParseError(what.to_string());
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(err("the manifest is too large"));
        }
        let wire: Wire = serde_json::from_slice(bytes)
            .map_err(|e| ManifestParseError(format!("the manifest is not valid JSON: {e}")))?;
        if wire.version != MANIFEST_VERSION {
            return Err(ManifestParseError(format!(
                "unsupported manifest version {}",
                wire.version
            )));
        }
        let id = |text: &str, what: &str| {
            lower_hex_id(text).ok_or_else(|| {
                ManifestParseError(format!("{what} must be 32 lower-case hex digits"))
            })
        };
        let backup_id = id(&wire.backup_id, "backup_id")?;
        let key_id = match wire.key_id {
            None => None,
            Some(text) => Some(KeyId::from_bytes(id(&text, "key_id")?.0)),
        };
        let previous_backup_id = match wire.previous_backup_id {
            None => None,
            Some(text) => Some(id(&text, "previous_backup_id")?),
        };
        let manifest = Manifest {
            kind: wire.kind,
            backup_id,
            database_name: wire.database,
            created_unix: wire.created_unix,
            compression: wire.compression,
            encryption: wire.encryption,
            key_id,
            previous_backup_id,
        };
        manifest.check().map_err(err)?;
        Ok(manifest)
    }

    /// The invariants every manifest holds.
    fn check(&self) -> Result<(), &'static str> {
        if self.database_name.is_empty() || self.database_name.len() > MAX_DATABASE_NAME_LEN {
            return Err("the database name must be 1 to 255 bytes");
        }
        if (self.kind == BackupKind::LogicalIncremental) != self.previous_backup_id.is_some() {
            return Err("previous_backup_id must be set exactly for incremental backups");
        }
        if (self.encryption == EncryptionMode::None) != self.key_id.is_none() {
            return Err("key_id must be set exactly for encrypted backups");
        }
        if self.created_unix > MAX_CREATED_UNIX {
            return Err("created_unix must be at most 253402300799 (9999-12-31T23:59:59Z)");
        }
        Ok(())
    }
}

/// The latest `created_unix` a manifest may give: 9999-12-31T23:59:59Z (every platform's
/// `SystemTime` holds it, and its RFC 3339 form has four year digits).
const MAX_CREATED_UNIX: u64 = 253_402_300_799;

/// Parses exactly 32 lower-case hexadecimal digits, the manifest's spelling of every id.
fn lower_hex_id(text: &str) -> Option<BackupId> {
    let lower = text
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    if lower {
        BackupId::from_hex(text)
    } else {
        None
    }
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: BackupKind, prev: Option<BackupId>) -> Manifest {
        Manifest::new(
            kind,
            "orders".into(),
            Compression::Zstd,
            EncryptionMode::UseDatabaseKey,
            Some(KeyId::from_bytes([7; 16])),
            prev,
        )
        .unwrap()
    }

    #[test]
    fn created_unix_is_refused_past_year_9999() {
        let mut m = sample(BackupKind::Snapshot, None);
        m.created_unix = MAX_CREATED_UNIX;
        let back = Manifest::from_json(&m.to_json()).unwrap();
        assert_eq!(back.created_at_rfc3339(), "9999-12-31T23:59:59Z");
        assert_eq!(
            back.created_at(),
            UNIX_EPOCH + Duration::from_secs(MAX_CREATED_UNIX)
        );
        for late in [MAX_CREATED_UNIX + 1, i64::MAX as u64 + 1, u64::MAX] {
            m.created_unix = late;
            assert!(Manifest::from_json(&m.to_json()).is_err(), "{late}");
        }
    }

    #[test]
    fn json_round_trip() {
        let full = sample(BackupKind::LogicalFull, None);
        let inc = sample(BackupKind::LogicalIncremental, Some(full.backup_id()));
        for m in [full, inc] {
            let back = Manifest::from_json(&m.to_json()).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn exact_json_shape() {
        let mut m = sample(BackupKind::LogicalIncremental, Some(BackupId([0xab; 16])));
        m.backup_id = BackupId([0x01; 16]);
        m.created_unix = 1_700_000_000;
        assert_eq!(
            String::from_utf8(m.to_json()).unwrap(),
            concat!(
                r#"{"version":1,"kind":"logical-incremental","#,
                r#""backup_id":"01010101010101010101010101010101","database":"orders","#,
                r#""created_unix":1700000000,"compression":"zstd","encryption":"UseDatabaseKey","#,
                r#""key_id":"07070707070707070707070707070707","#,
                r#""previous_backup_id":"abababababababababababababababab"}"#
            )
        );
        assert_eq!(m.created_at_rfc3339(), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn invalid_manifests_are_rejected() {
        let mut m = sample(BackupKind::LogicalFull, None);
        m.backup_id = BackupId([0xab; 16]);
        let good = String::from_utf8(m.to_json()).unwrap();
        assert!(Manifest::from_json(good.as_bytes()).is_ok());
        let cases = [
            good.replace(r#""version":1"#, r#""version":2"#),
            good.replace(
                r#""kind":"logical-full""#,
                r#""kind":"logical-incremental""#,
            ),
            good.replace(r#""encryption":"UseDatabaseKey""#, r#""encryption":"None""#),
            good.replace(r#""database":"orders""#, r#""database":"""#),
            good.replace(r#""backup_id":""#, r#""backup_id":"zz"#),
            good.replace(r#""backup_id":"ab"#, r#""backup_id":"AB"#),
            good.replace(r#""key_id":"07"#, r#""key_id":"0A"#),
            good.replace(r#""database":"#, r#""database":"a","database":"#),
            good.replace('{', "["),
            "x".repeat(MAX_MANIFEST_LEN + 1),
        ];
        for case in cases {
            assert!(Manifest::from_json(case.as_bytes()).is_err(), "{case}");
        }
    }

    #[test]
    fn backup_ids() {
        let a = BackupId::generate().unwrap();
        assert_ne!(a, BackupId::generate().unwrap());
        assert_eq!(BackupId::from_hex(&a.to_string()), Some(a));
        assert_eq!(BackupId::from_hex(&a.to_string().to_uppercase()), Some(a));
        assert_eq!(BackupId::from_hex("+1"), None);
        assert_eq!(BackupId::from_hex(&"+1".repeat(16)), None);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
