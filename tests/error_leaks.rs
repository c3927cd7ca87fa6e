//! Every public error path, driven with known keys: no error's `Display` or `Debug` text may
//! contain key material, raw or encoded (hex, base64, decimal bytes).

mod common;

use std::io::{Cursor, Read, Write as _};
use std::sync::Arc;

use base64::Engine as _;
use strongbox::{
    BackupWriter, DataKey, DatabaseKeyStore, MasterKey, MasterKeyProvider, MasterKeySettings,
    ProtectedKey, Protection, ProviderError, RestoreReader, StreamConfig, StreamError,
};

/// Printable key bytes that no message could contain by chance, so that a raw copy in a message would be visible as text.
const MASTER: &[u8; 32] = b"Zq7#Xw9!Kp2$Vr5^Jm8&Lt4*Hn6(Gb3)";
const OTHER_MASTER: &[u8; 32] = b"Qy4@Wz1%Cv8~Bx6+Ns3=Mf0?Pd9<Rk2>";
const DATA: &[u8; 32] = b"Ug5]Te7[Sj1}Ow4{Ia0|Yh3;El8:Fc2,";

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
    for secret in [&MASTER[..], &OTHER_MASTER[..], &DATA[..]] {
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

fn data_key() -> DataKey {
    DataKey::from_bytes(DATA).unwrap()
}

#[test]
fn key_errors() {
    let hex = common::hex(DATA);
    let b64 = base64::engine::general_purpose::STANDARD.encode(DATA);
    let cases: Vec<(&str, strongbox::KeyError)> = vec![
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
            strongbox::FileProvider::new(&path)
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
    ] {
        let program = common::script(dir.path(), &format!("{name}.sh"), &body);
        let provider = strongbox::ExecProvider::new(program)
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
        let provider = strongbox::ExecProvider::new(program)
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
