//! Every public error path, driven with known keys: no error's `Display` or `Debug` text may
//! contain key material, raw or encoded (hex, base64, decimal bytes).

mod common;

use std::io::{Cursor, Read, Write as _};
use std::sync::Arc;

use base64::Engine as _;
use strongbox::backup::{
    BackupEncryptionSettings, BackupError, Channel, EncryptionMode, MasterKeys, RestoreConfig,
};
use strongbox::keys::{Protection, ProviderError};
use strongbox::stream::StreamError;
use strongbox::{
    BackupWriter, DataKey, DatabaseKeyStore, LogicalBackup, MasterKey, MasterKeyProvider,
    MasterKeySettings, ProtectedKey, RestoreReader, SnapshotBackup, StreamConfig,
};

/// Printable key bytes that no message could contain by chance, so that a raw copy in a message would be visible as text.
const MASTER: &[u8; 32] = b"Zq7#Xw9!Kp2$Vr5^Jm8&Lt4*Hn6(Gb3)";
const OTHER_MASTER: &[u8; 32] = b"Qy4@Wz1%Cv8~Bx6+Ns3=Mf0?Pd9<Rk2>";
const DATA: &[u8; 32] = b"Ug5]Te7[Sj1}Ow4{Ia0|Yh3;El8:Fc2,";
/// A backup key the caller provides (not the database's key).
const PROVIDED: &[u8; 32] = b"Dg6/Fh8.Ej0-Rk3,Tl5+Ym7*Un9)Vo1(";

#[derive(Debug)]
struct Fixed(MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

fn fixed(bytes: &[u8; 32]) -> Arc<dyn MasterKeyProvider> {
    Arc::new(Fixed(MasterKey::from_bytes(bytes).unwrap()))
}

/// Every rendering of every 8-byte window of `secret` that a message could carry.
fn renderings(secret: &[u8]) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut out = Vec::new();
    for w in secret.windows(8).step_by(4) {
        out.push(String::from_utf8_lossy(w).into_owned());
        out.push(common::hex(w));
        out.push(common::hex(w).to_uppercase());
        out.push(format!("{w:?}")[1..20].to_string());
        out.push(
            w.iter()
                .map(|b| format!("{b:#04x}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    // Base64 of the whole key, at each of the 3 alignments a substring could have.
    for skip in 0..3 {
        let enc = b64.encode(&secret[skip..]);
        out.push(enc[4..16].to_string());
        let enc = b64url.encode(&secret[skip..]);
        out.push(enc[4..16].to_string());
    }
    out
}

fn check<E: std::fmt::Display + std::fmt::Debug>(what: &str, err: &E) {
    let text = format!("{err}\n{err:?}\n{err:#?}");
    for secret in [&MASTER[..], &OTHER_MASTER[..], &DATA[..], &PROVIDED[..]] {
        for needle in renderings(secret) {
            assert!(
                !text.contains(&needle),
                "{what}: key material {needle:?} in:\n{text}"
            );
        }
    }
}

fn check_chain(what: &str, err: &(dyn std::error::Error + 'static)) {
    check(what, &ErrText(err));
    let mut next = err.source();
    while let Some(e) = next {
        check(what, &ErrText(e));
        next = e.source();
    }
}

struct ErrText<'a>(&'a (dyn std::error::Error + 'static));
impl std::fmt::Display for ErrText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::fmt::Debug for ErrText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

fn master_fingerprint(bytes: &[u8]) -> strongbox::key::Fingerprint {
    MasterKey::from_bytes(bytes).unwrap().fingerprint()
}

fn data_key() -> DataKey {
    DataKey::from_bytes(DATA).unwrap()
}

#[test]
fn key_errors() {
    let hex = common::hex(DATA);
    let b64 = base64::engine::general_purpose::STANDARD.encode(DATA);
    let cases: Vec<(&str, strongbox::key::KeyError)> = vec![
        (
            "data too long",
            DataKey::from_bytes(&[&DATA[..], b"x"].concat()).unwrap_err(),
        ),
        (
            "data too short",
            DataKey::from_bytes(&DATA[..31]).unwrap_err(),
        ),
        (
            "base64 bad char",
            DataKey::from_base64(&b64.replace('=', "!")).unwrap_err(),
        ),
        (
            "base64 too long",
            DataKey::from_base64(&format!("{b64}AAAA")).unwrap_err(),
        ),
        (
            "master too short",
            MasterKey::from_bytes(&MASTER[..20]).unwrap_err(),
        ),
        (
            "hex bad digit",
            MasterKey::from_encoded(format!("{}g", &hex[..63]).as_bytes()).unwrap_err(),
        ),
        (
            "base64 bad",
            MasterKey::from_encoded(format!("{}!", &b64[..43]).as_bytes()).unwrap_err(),
        ),
        (
            "odd length",
            MasterKey::from_encoded(format!("{hex}{hex}").as_bytes()).unwrap_err(),
        ),
    ];
    for (what, err) in cases {
        check_chain(what, &err);
    }
}

#[test]
fn envelope_errors() {
    let key = data_key();
    let mine = fixed(MASTER);
    let other = fixed(OTHER_MASTER);
    let blob = ProtectedKey::protect(&key, &*mine).unwrap();
    check_chain("wrong master", &blob.unprotect(&*other).unwrap_err());
    check_chain(
        "unexpected id",
        &blob
            .unprotect_expecting(&*mine, DataKey::generate().unwrap().id())
            .unwrap_err(),
    );
    let mut bytes = blob.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = ProtectedKey::from_bytes(&bytes).unwrap();
    check_chain("tampered", &tampered.unprotect(&*mine).unwrap_err());
    for bad in [
        &DATA[..],
        &[&blob.to_bytes()[..], &DATA[..]].concat(),
        &blob.to_bytes()[..50],
        &[&b"sbox-key"[..], &[2u8], &DATA[..]].concat(),
        &[&b"sbox-key"[..], &[1u8, 9], &DATA[..]].concat(),
    ] {
        check_chain("parse", &ProtectedKey::from_bytes(bad).unwrap_err());
    }
}

#[test]
fn provider_errors() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(MASTER);
    let hex = common::hex(MASTER);
    let mut errors: Vec<(String, ProviderError)> = Vec::new();
    // Key files: wrong length (key + junk), bad encoding, readable by others (Unix modes only).
    for (name, content, mode) in [
        ("long", [&MASTER[..], b"junk"].concat(), 0o600),
        ("b64-bad", format!("{}*\n", &b64[..43]).into_bytes(), 0o600),
        ("hex-bad", format!("{}z", &hex[..63]).into_bytes(), 0o600),
        ("hex-twice", format!("{hex}{hex}").into_bytes(), 0o600),
        #[cfg(unix)]
        ("insecure", MASTER.to_vec(), 0o644),
    ] {
        let path = dir.path().join(name);
        common::write_with_mode(&path, &content, mode);
        errors.push((
            name.into(),
            strongbox::keys::FileProvider::new(&path)
                .fingerprint()
                .unwrap_err(),
        ));
    }
    // Key programs (`/bin/sh` scripts): the same outputs printed.
    #[cfg(unix)]
    for (name, body) in [
        (
            "exec-long",
            format!("printf '{}junk'", common::printf_octal(MASTER)),
        ),
        ("exec-b64-bad", format!("printf '{}*'", &b64[..43])),
        ("exec-hex-bad", format!("printf '{}z'", &hex[..63])),
        ("exec-fails-after-key", format!("printf '{b64}'; exit 1")),
        (
            "exec-timeout-after-key",
            format!("printf '{b64}'; sleep 30"),
        ),
        // The key, or the token it used, logged to stderr as well.
        (
            "exec-logs-raw-key-and-fails",
            format!(
                "printf '{0}'; printf 'got {0} from vault\\n' >&2; exit 3",
                common::printf_octal(MASTER)
            ),
        ),
        (
            "exec-logs-key-encodings-and-fails",
            format!(
                "printf '{hex}'; echo \"b64={b64} hex={hex} HEX={}\" >&2; exit 3",
                hex.to_uppercase()
            ),
        ),
        (
            "exec-logs-other-keys-and-fails",
            format!(
                "echo \"{} {} {}\" >&2; printf '{}' >&2; exit 3",
                base64::engine::general_purpose::STANDARD.encode(OTHER_MASTER),
                common::hex(DATA),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(PROVIDED),
                common::printf_octal(DATA)
            ),
        ),
        (
            "exec-logs-key-and-times-out",
            format!("printf '{b64}'; echo \"key {b64}\" >&2; sleep 30"),
        ),
    ] {
        let program = common::script(dir.path(), &format!("{name}.sh"), &body);
        let provider = strongbox::keys::ExecProvider::new(program)
            .with_args([b64.clone(), hex.clone()])
            .with_timeout(std::time::Duration::from_millis(500));
        errors.push((name.into(), provider.fingerprint().unwrap_err()));
        check(name, &ErrDebug(format!("{provider:?}")));
    }
    // Key programs (batch files, run through `cmd.exe`): a bad key printed, or the key printed
    // and then a failure or a hang.
    #[cfg(windows)]
    for (name, lines) in [
        ("exec-b64-bad", vec![format!("echo {}*", &b64[..43])]),
        ("exec-hex-bad", vec![format!("echo {}z", &hex[..63])]),
        (
            "exec-fails-after-key",
            vec![format!("echo {b64}"), "exit /b 1".to_owned()],
        ),
        (
            "exec-timeout-after-key",
            vec![
                format!("echo {b64}"),
                ":again".to_owned(),
                "goto again".to_owned(),
            ],
        ),
    ] {
        let program = dir.path().join(format!("{name}.cmd"));
        std::fs::write(&program, format!("@echo off\r\n{}\r\n", lines.join("\r\n"))).unwrap();
        let provider = strongbox::keys::ExecProvider::new(program)
            .with_args([b64.clone(), hex.clone()])
            .with_timeout(std::time::Duration::from_millis(500));
        let err = provider.fingerprint().unwrap_err();
        // The program ran and failed as written (not, say, failed to start).
        let expected = match name {
            "exec-fails-after-key" => {
                matches!(err, ProviderError::ExecFailed { code: Some(1), .. })
            }
            "exec-timeout-after-key" => matches!(err, ProviderError::ExecTimeout { .. }),
            _ => matches!(err, ProviderError::ExecBadEncoding { .. }),
        };
        assert!(expected, "{name}: {err:?}");
        errors.push((name.into(), err));
        check(name, &ErrDebug(format!("{provider:?}")));
    }
    for (what, err) in &errors {
        check_chain(what, err);
    }
}

#[test]
fn store_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let store = DatabaseKeyStore::new(fixed(MASTER));
    let other = DatabaseKeyStore::new(fixed(OTHER_MASTER))
        .with_previous(fixed(b"Ab1`Cd2~Ef3-Gh4_Ij5.Kl6/Mn7\\Op8'"));
    let key = data_key();
    store.put(&db, &key, false).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(DATA);

    let errors = vec![
        ("exists", store.create(&db).unwrap_err()),
        ("no provider opens", other.load(&db).unwrap_err()),
        (
            "id mismatch",
            store
                .load_expecting(&db, DataKey::generate().unwrap().id())
                .unwrap_err(),
        ),
        (
            "different key",
            store
                .put(&db, &DataKey::generate().unwrap(), false)
                .unwrap_err(),
        ),
        (
            "bad base64",
            store
                .put_base64(&db, &format!("{}!", &b64[..43]), false)
                .unwrap_err(),
        ),
        (
            "bad length",
            store.put_base64(&db, &b64[..40], false).unwrap_err(),
        ),
        (
            "rotation",
            other.rotate([&db], fixed(&[0xee; 32])).unwrap_err(),
        ),
        ("export", other.export_base64(&db).unwrap_err()),
        ("missing", store.load(dir.path()).unwrap_err()),
    ];
    for (what, err) in &errors {
        check_chain(what, err);
    }
    // A key file holding the raw data key instead of a blob.
    std::fs::write(DatabaseKeyStore::key_path(&db), DATA).unwrap();
    check_chain("raw key as key file", &store.load(&db).unwrap_err());
    check("store", &ErrDebug(format!("{store:?}")));
}

#[test]
fn stream_errors() {
    let key = data_key();
    let config = StreamConfig::default().segment_size(4096).unwrap();
    let mut w = BackupWriter::with_config(Vec::new(), &key, &config, Vec::new()).unwrap();
    w.write_all(&[7u8; 10_000]).unwrap();
    check("writer", &ErrDebug(format!("{w:?}")));
    let backup = w.finish().unwrap();

    let mut errors: Vec<(&str, StreamError)> = Vec::new();
    let other = DataKey::from_bytes(OTHER_MASTER).unwrap();
    errors.push((
        "wrong key",
        RestoreReader::new(Cursor::new(&backup), &other).unwrap_err(),
    ));
    errors.push((
        "encrypted",
        RestoreReader::unencrypted(Cursor::new(&backup)).unwrap_err(),
    ));
    let mut header_flip = backup.clone();
    header_flip[40] ^= 1;
    errors.push((
        "header",
        RestoreReader::new(Cursor::new(&header_flip), &key).unwrap_err(),
    ));
    for (what, bytes) in [
        ("segment", {
            let mut b = backup.clone();
            b[500] ^= 1;
            b
        }),
        ("truncated", backup[..backup.len() - 5].to_vec()),
        ("trailing", [&backup[..], &[0u8; 3]].concat()),
    ] {
        let mut r = RestoreReader::new(Cursor::new(bytes), &key).unwrap();
        check(what, &ErrDebug(format!("{r:?}")));
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        check_chain(what, &err);
        assert!(StreamError::from_io(&err).is_some(), "{what}: {err:?}");
    }
    errors.push((
        "segment size",
        StreamConfig::default().segment_size(1).unwrap_err(),
    ));
    for (what, err) in &errors {
        check_chain(what, err);
    }
}

#[test]
fn settings_errors_and_debug() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(MASTER);
    let hex = common::hex(MASTER);
    for json in [
        format!(
            r#"{{"Security.MasterKey.Exec": "/bin/k", "Security.MasterKey.Exec.Arguments": "{b64} '{hex}"}}"#
        ),
        format!(
            r#"{{"Security.MasterKey.Exec": "/bin/k", "Security.MasterKey.Exec.Arguments": ["{b64}", 1]}}"#
        ),
        format!(r#"{{"Security.MasterKey.Exec.Arguments": ["{b64}"]}}"#),
        format!(r#"{{"Security.MasterKey.Exec.TimeoutInSec": "{hex}"}}"#),
        format!(r#"{{"Security.MasterKey.AllowInsecurePermissions": "{b64}"}}"#),
        format!(
            r#"{{"Security.MasterKey.Exec": "/bin/k", "Security.MasterKey.Path": "/k", "x": "{b64}"}}"#
        ),
        format!(r#"{{"Security.MasterKey.Exec": "/bin/k" "{b64}"}}"#),
        format!(r#"{{"Security.MasterKey.Exec": "{b64}"#),
    ] {
        let err = MasterKeySettings::from_json_str(&json).unwrap_err();
        check_chain(&json, &err);
    }
    // Arguments are shown in no Debug.
    let json = format!(
        r#"{{"Security.MasterKey.Exec": "/bin/k", "Security.MasterKey.Exec.Arguments": ["--key", "{b64}", "{hex}"]}}"#
    );
    let settings = MasterKeySettings::from_json_str(&json).unwrap();
    check("settings", &ErrDebug(format!("{settings:?}")));
    check(
        "source",
        &ErrDebug(format!("{:?}", settings.source().unwrap())),
    );
    check(
        "provider",
        &ErrDebug(format!("{:?}", settings.provider().unwrap())),
    );
}

struct ErrDebug(String);
impl std::fmt::Display for ErrDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Debug for ErrDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A master-key provider that always fails (what a broken key program or file looks like).
#[derive(Debug)]
struct Broken;

impl MasterKeyProvider for Broken {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Err(ProviderError::FileMissing {
            path: "/nonexistent/master.key".into(),
        })
    }
}

/// Expects an error of the variant `pattern`, and returns it with a label for [`check_chain`].
macro_rules! expect {
    ($what:expr, $result:expr, $pattern:pat $(if $guard:expr)?) => {{
        let err: BackupError = match $result {
            Ok(_) => panic!("{}: succeeded", $what),
            Err(e) => e,
        };
        assert!(matches!(err, $pattern $(if $guard)?), "{}: {err:?}", $what);
        ($what, err)
    }};
}

const AUTH: Channel = Channel::Authenticated;

/// Every `BackupError` the public API can produce, with known master, database and provided
/// keys; and every backup and restore type's `Debug` holding those keys.
#[test]
fn backup_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name);
    let keys = MasterKeys::new(fixed(MASTER));
    let other_keys = MasterKeys::new(fixed(OTHER_MASTER));
    let provided = || DataKey::from_bytes(PROVIDED).unwrap();
    // An encrypted database (key DATA under MASTER) and an unencrypted one.
    let db = path("orders");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("data.db"), DATA).unwrap();
    DatabaseKeyStore::new(fixed(MASTER))
        .put(&db, &data_key(), false)
        .unwrap();
    let plain = path("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("data.db"), b"rows").unwrap();

    // Genuine backups to break.
    let snap = path("orders.snapshot");
    SnapshotBackup::of_directory(&db)
        .write(&snap, &keys, AUTH)
        .unwrap();
    let full = path("0.full");
    let full_manifest = LogicalBackup::full(&db)
        .encryption(BackupEncryptionSettings::provided_key(provided()))
        .write_from(&mut &DATA[..], &full, &keys, AUTH)
        .unwrap();
    let inc = path("1.inc");
    LogicalBackup::incremental(&db, full_manifest.backup_id())
        .write_from(&mut &DATA[..], &inc, &keys, AUTH)
        .unwrap();
    let plain_snap = path("plain.snapshot");
    SnapshotBackup::of_directory(&plain)
        .write(&plain_snap, &keys, AUTH)
        .unwrap();
    let other_full = path("other.full");
    LogicalBackup::full(&plain)
        .write_from(&mut &b"x"[..], &other_full, &keys, AUTH)
        .unwrap();
    let bytes = std::fs::read(&snap).unwrap();
    let header_len = strongbox::backup::inspect(&snap)
        .unwrap()
        .header()
        .encoded_len();
    let write = |name: &str, content: &[u8]| {
        std::fs::write(path(name), content).unwrap();
        path(name)
    };
    let header_flip = write("header-flip", &{
        let mut b = bytes.clone();
        b[header_len - 3] ^= 1;
        b
    });
    let segment_flip = write("segment-flip", &{
        let mut b = bytes.clone();
        b[header_len + 20] ^= 1;
        b
    });
    let truncated = write("truncated", &bytes[..header_len]);
    // Files whose content is key material: raw, and as a key blob's worth of bytes after a magic.
    let raw_key_file = write("raw-key", &[&DATA[..], &MASTER[..], &PROVIDED[..]].concat());
    let magic_then_key = write(
        "magic-then-key",
        &[&bytes[..8], &DATA[..], &DATA[..]].concat(),
    );
    // A raw stream (no manifest) whose payload is the key.
    let raw_stream = write("raw-stream", &{
        let mut w = BackupWriter::new(Vec::new(), &data_key()).unwrap();
        w.write_all(DATA).unwrap();
        w.finish().unwrap()
    });
    // A snapshot header (manifest, wrapped keys) over a payload that is no archive: the key.
    let bad_archive = write("bad-archive", &{
        let header = strongbox::backup::inspect(&snap).unwrap().header().clone();
        let mut w = BackupWriter::with_config(
            Vec::new(),
            &data_key(),
            &StreamConfig::default(),
            header.extensions().to_vec(),
        )
        .unwrap();
        w.write_all(&DATA.repeat(40)).unwrap();
        w.finish().unwrap()
    });
    let run = |files: &[&std::path::Path], target: &str, key: Option<DataKey>, k: &MasterKeys| {
        let mut config = RestoreConfig::new(files.iter().copied(), path(target));
        if let Some(key) = key {
            config = config.with_key(key);
        }
        strongbox::backup::restore(&config, k, AUTH)
    };
    let snapshot = |dir: &std::path::Path, settings: Option<BackupEncryptionSettings>| {
        let mut b = SnapshotBackup::of_directory(dir);
        if let Some(s) = settings {
            b = b.encryption(s);
        }
        b.write(path("new.snapshot"), &keys, AUTH)
    };
    let recovery_broken = MasterKeys::new(fixed(MASTER)).with_recovery(Arc::new(Broken));
    let too_many = (0..strongbox::backup::MAX_KEY_COPIES)
        .fold(MasterKeys::new(fixed(MASTER)), |k, _| {
            k.with_recovery(fixed(OTHER_MASTER))
        });
    let db_under_other = path("orders-other");
    std::fs::create_dir(&db_under_other).unwrap();
    DatabaseKeyStore::new(fixed(OTHER_MASTER))
        .put(&db_under_other, &data_key(), false)
        .unwrap();
    let db_raw_key = path("orders-raw-key");
    std::fs::create_dir(&db_raw_key).unwrap();
    std::fs::write(DatabaseKeyStore::key_path(&db_raw_key), DATA).unwrap();

    use BackupError as E;
    use EncryptionMode as M;
    let errors = vec![
        // ----- the encryption policy -----
        expect!(
            "provided key missing",
            snapshot(
                &plain,
                Some(BackupEncryptionSettings::from_parts(
                    M::UseProvidedKey,
                    None
                ))
            ),
            E::ProvidedKeyMissing
        ),
        expect!(
            "key without provided-key mode",
            snapshot(
                &db,
                Some(BackupEncryptionSettings::from_parts(
                    M::UseDatabaseKey,
                    Some(provided())
                ))
            ),
            E::KeyWithoutProvidedKeyMode { .. }
        ),
        expect!(
            "unencrypted snapshot of an encrypted database",
            snapshot(&db, Some(BackupEncryptionSettings::none())),
            E::EncryptedDatabaseSnapshotMustBeEncrypted
        ),
        expect!(
            "snapshot with another key",
            snapshot(
                &db,
                Some(BackupEncryptionSettings::provided_key(provided()))
            ),
            E::SnapshotKeyIsNotDatabaseKey
        ),
        expect!(
            "database not encrypted",
            snapshot(&plain, Some(BackupEncryptionSettings::database_key())),
            E::DatabaseNotEncrypted
        ),
        expect!(
            "unauthenticated",
            LogicalBackup::full(&db)
                .encryption(BackupEncryptionSettings::provided_key(provided()))
                .create(path("new.full"), &keys, Channel::Unauthenticated),
            E::UnauthenticatedChannel { .. }
        ),
        // ----- taking a backup -----
        expect!(
            "database name",
            SnapshotBackup::of_directory(&db).database_name("").write(
                path("new.snapshot"),
                &keys,
                AUTH
            ),
            E::InvalidDatabaseName
        ),
        expect!(
            "missing source",
            snapshot(&path("missing"), None),
            E::SourceRead { .. }
        ),
        expect!(
            "source not a directory",
            snapshot(&raw_key_file, None),
            E::UnsupportedSource { .. }
        ),
        expect!(
            "missing listed file",
            SnapshotBackup::of_files(&db, ["no-such-file"]).write(
                path("new.snapshot"),
                &keys,
                AUTH
            ),
            E::SourceRead { .. }
        ),
        expect!(
            "export fails",
            LogicalBackup::full(&db).write_from(
                FailingExport(DATA.to_vec()),
                path("new.full"),
                &keys,
                AUTH
            ),
            E::ExportRead(_)
        ),
        expect!(
            "destination exists",
            snapshot(&db, None).and(snapshot(&db, None)),
            E::DestinationExists { .. }
        ),
        expect!(
            "destination inside source",
            SnapshotBackup::of_directory(&db).write(db.join("self.snapshot"), &keys, AUTH),
            E::DestinationInsideSource { .. }
        ),
        expect!(
            "database key under another master key",
            SnapshotBackup::of_directory(&db_under_other).write(path("new2.snapshot"), &keys, AUTH),
            E::DatabaseKey(_)
        ),
        expect!(
            "raw key as key file",
            SnapshotBackup::of_directory(&db_raw_key).write(path("new2.snapshot"), &keys, AUTH),
            E::DatabaseKey(_)
        ),
        expect!(
            "wrap under a broken recovery provider",
            LogicalBackup::full(&db).create(path("new.full"), &recovery_broken, AUTH),
            E::KeyWrap(_)
        ),
        expect!(
            "too many key copies",
            LogicalBackup::full(&db).create(path("new.full"), &too_many, AUTH),
            E::TooManyKeyCopies
        ),
        // ----- restoring -----
        expect!(
            "no master key opens",
            run(&[&snap], "r", None, &other_keys),
            // The fingerprints of both master keys are named (they are public identifiers);
            // `check` below proves that no byte of either key is.
            E::KeyUnavailable { cause: None, ref wrapped_for, ref tried, .. }
                if wrapped_for[..] == [master_fingerprint(MASTER)]
                    && tried[..] == [master_fingerprint(OTHER_MASTER)]
        ),
        expect!(
            "no master key opens, a provider fails",
            run(
                &[&snap],
                "r",
                None,
                &MasterKeys::new(Arc::new(Broken)).with_recovery(fixed(OTHER_MASTER))
            ),
            E::KeyUnavailable { cause: Some(_), .. }
        ),
        expect!(
            "wrong provided key",
            run(&[&snap], "r", Some(provided()), &keys),
            E::WrongKey { .. }
        ),
        expect!(
            "wrong provided key, no wrapped copy",
            run(&[&full], "r", Some(data_key()), &other_keys),
            E::WrongKey { .. }
        ),
        expect!(
            "key for an unencrypted backup",
            run(&[&plain_snap], "r", Some(data_key()), &keys),
            E::KeyForUnencryptedBackup
        ),
        expect!(
            "tampered header",
            run(&[&header_flip], "r", None, &keys),
            E::Tampered { segment: None, .. }
        ),
        expect!(
            "tampered header, key given",
            run(&[&header_flip], "r", Some(data_key()), &keys),
            E::Tampered { segment: None, .. }
        ),
        expect!(
            "tampered last segment",
            run(&[&segment_flip], "r", Some(data_key()), &keys),
            E::Truncated { .. }
        ),
        expect!(
            "truncated",
            run(&[&truncated], "r", None, &keys),
            E::Truncated { .. }
        ),
        expect!(
            "no manifest",
            run(&[&raw_stream], "r", Some(data_key()), &keys),
            E::Malformed { .. }
        ),
        expect!(
            "payload is no archive",
            run(&[&bad_archive], "r", Some(data_key()), &keys),
            E::Malformed { .. }
        ),
        expect!(
            "key material as a backup file",
            run(&[&raw_key_file], "r", None, &keys),
            E::InvalidStream { .. }
        ),
        expect!(
            "magic, then key material",
            run(&[&magic_then_key], "r", Some(data_key()), &keys),
            E::InvalidStream { .. } | E::Truncated { .. }
        ),
        expect!("no files", run(&[], "r", None, &keys), E::NoBackupFiles),
        expect!(
            "target exists",
            run(&[&snap], "orders", Some(data_key()), &keys),
            E::TargetExists { .. }
        ),
        expect!(
            "snapshot in a chain",
            run(&[&full, &snap], "r", None, &keys),
            E::UnexpectedKind { .. }
        ),
        expect!(
            "chain misses its full backup",
            run(&[&inc], "r", None, &keys),
            E::ChainIncomplete { .. }
        ),
        expect!(
            "chain out of order",
            run(&[&full, &full], "r", None, &keys),
            E::ChainOutOfOrder { .. }
        ),
        expect!(
            "chain of two databases",
            run(&[&full, &other_full], "r", None, &keys),
            E::ChainDatabaseMismatch { .. }
        ),
        expect!(
            "missing backup file",
            run(&[&path("missing.snapshot")], "r", None, &keys),
            E::BackupRead { .. }
        ),
        expect!(
            "inspect key material",
            strongbox::backup::inspect(&raw_key_file),
            E::InvalidStream { .. }
        ),
        expect!(
            "inspect a raw stream",
            strongbox::backup::inspect(&raw_stream),
            E::Malformed { .. }
        ),
    ];
    for (what, err) in &errors {
        check_chain(what, err);
    }
    assert!(!path("r").exists());

    // Debug of everything that holds or names a key.
    let config = RestoreConfig::new([&snap], path("r")).with_key(data_key());
    check("restore config", &ErrDebug(format!("{config:?}")));
    let settings = BackupEncryptionSettings::provided_key(provided());
    check("settings", &ErrDebug(format!("{settings:?}")));
    let builder = LogicalBackup::full(&db).encryption(settings);
    check("logical builder", &ErrDebug(format!("{builder:?}")));
    let writer = builder.create(path("debug.full"), &keys, AUTH).unwrap();
    check("logical writer", &ErrDebug(format!("{writer:?}")));
    drop(writer);
    check("master keys", &ErrDebug(format!("{recovery_broken:?}")));
    let info = strongbox::backup::inspect(&snap).unwrap();
    check("backup info", &ErrDebug(format!("{info:?}")));
    let report = strongbox::backup::restore(
        &RestoreConfig::new([&snap], path("restored")).with_key(data_key()),
        &keys,
        AUTH,
    )
    .unwrap();
    check("restore report", &ErrDebug(format!("{report:?}")));
}

/// Configurations from JSON with the keys misplaced or malformed: the parse errors never echo
/// them.
#[test]
fn backup_config_parse_errors() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(DATA);
    let hex = common::hex(DATA);
    for json in [
        format!(
            r#"{{"EncryptionMode": "UseProvidedKey", "Key": "{}!"}}"#,
            &b64[..43]
        ),
        format!(r#"{{"EncryptionMode": "UseProvidedKey", "Key": "{b64}{b64}"}}"#),
        format!(r#"{{"EncryptionMode": "UseProvidedKey", "Key": "{hex}"}}"#),
        format!(r#"{{"EncryptionMode": "{b64}"}}"#),
        format!(r#"{{"EncryptionMode": "UseProvidedKey", "Key": ["{b64}"]}}"#),
        format!(r#"{{"EncryptionMode": ["{b64}"]}}"#),
        format!(r#"{{"EncryptionMode": "UseProvidedKey", "Key": "{b64}""#),
    ] {
        let err = serde_json::from_str::<BackupEncryptionSettings>(&json).unwrap_err();
        check_chain(&json, &err);
    }
    // The mode's error still says what is wrong.
    let err = serde_json::from_str::<BackupEncryptionSettings>(&format!(
        r#"{{"EncryptionMode": "{b64}"}}"#
    ))
    .unwrap_err();
    assert!(err.to_string().contains("unknown encryption mode"), "{err}");
    for json in [
        format!(r#"{{"BackupFiles": ["a"], "TargetDirectory": "t", "EncryptionKey": "{hex}!"}}"#),
        format!(
            r#"{{"BackupFiles": ["a"], "TargetDirectory": "t", "EncryptionKey": "{}A="}}"#,
            &b64[..43]
        ),
        format!(r#"{{"BackupFiles": "{b64}", "TargetDirectory": "t"}}"#),
        format!(r#"{{"BackupFiles": ["a"], "TargetDirectory": 1, "EncryptionKey": "{b64}"}}"#),
    ] {
        let err = serde_json::from_str::<RestoreConfig>(&json).unwrap_err();
        check_chain(&json, &err);
    }
}

/// An export that fails after producing some bytes, with key material in its error.
struct FailingExport(Vec<u8>);

impl Read for FailingExport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("the engine's export failed"));
        }
        let n = self.0.len().min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
        Ok(n)
    }
}
