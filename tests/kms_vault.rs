//! The Vault / OpenBao Transit provider against a real OpenBao dev server (`bao server -dev`,
//! started by `servers::bao::Bao` on a free 127.0.0.1 port): round trips through the key store, blobs
//! moved or altered, tokens, a stopped server, rotation file -> Vault -> file, `rewrap` after a
//! Transit key rotation, a cross-check with `bao write transit/decrypt`, and the CLI end to end.

mod cli_support;
mod servers;

use std::path::Path;
use std::sync::Arc;

use cli_support::{Env, Run as _, assert_failure};
use ring::{aead, hkdf};
use servers::bao::Bao;
use strongbox::keys::{
    EnvelopeError, FileProvider, ProviderError, Scheme, StoreError, VaultTransitProvider,
};
use strongbox::secrecy::ExposeSecret as _;
use strongbox::{DatabaseKeyStore, MasterKeyProvider, ProtectedKey};

/// Offsets of `docs/KEYBLOB.md`: header, salt, sealed secret, sealed data key (48 bytes).
const HEADER: usize = 42;
const SALT_END: usize = 74;

fn provider(bao: &Bao, key: &str) -> Arc<VaultTransitProvider> {
    Arc::new(VaultTransitProvider::from_uri(&bao.uri(key, &bao.token_file())).unwrap())
}

fn provider_error(e: StoreError) -> ProviderError {
    match e {
        StoreError::Envelope {
            source: EnvelopeError::Provider(e),
            ..
        } => e,
        other => panic!("not a provider error: {other:?}"),
    }
}

/// The sealed secret of a scheme-3 blob: `(mount, key, version, ciphertext)`.
fn sealed_fields(blob: &[u8]) -> (String, String, u32, Vec<u8>) {
    let sealed = &blob[SALT_END..blob.len() - 48];
    let m = usize::from(sealed[0]);
    let mount = String::from_utf8(sealed[1..1 + m].to_vec()).unwrap();
    let k = usize::from(sealed[1 + m]);
    let key = String::from_utf8(sealed[2 + m..2 + m + k].to_vec()).unwrap();
    let rest = &sealed[2 + m + k..];
    let version = u32::from_be_bytes(rest[..4].try_into().unwrap());
    let len = usize::from(u16::from_be_bytes(rest[4..6].try_into().unwrap()));
    assert_eq!(rest.len(), 6 + len);
    (mount, key, version, rest[6..].to_vec())
}

#[test]
fn round_trip_one_transit_call_per_open_and_blobs_moved_or_altered_do_not_open() {
    let Some(bao) = Bao::start("round_trip") else {
        return;
    };
    bao.derived_key("db");
    let vault = provider(&bao, "db");
    let store = DatabaseKeyStore::new(vault.clone());
    let dirs = tempfile::tempdir().unwrap();
    let (db1, db2) = (dirs.path().join("db1"), dirs.path().join("db2"));
    std::fs::create_dir_all(&db1).unwrap();
    std::fs::create_dir_all(&db2).unwrap();
    let key1 = store.create(&db1).unwrap();
    let key2 = store.create(&db2).unwrap();

    let before = vault.requests();
    assert_eq!(store.load(&db1).unwrap().id(), key1.id());
    assert_eq!(
        vault.requests() - before,
        1,
        "one Transit request per key opened"
    );
    let blob1 = std::fs::read(DatabaseKeyStore::key_path(&db1)).unwrap();
    let parsed = ProtectedKey::from_bytes(&blob1).unwrap();
    assert_eq!(
        (parsed.scheme(), parsed.fingerprint()),
        (Scheme::VaultTransit, None)
    );
    assert_eq!((blob1[9], &blob1[10..26]), (3, &[0u8; 16][..]));
    let (mount, name, version, _) = sealed_fields(&blob1);
    assert_eq!(
        (mount.as_str(), name.as_str(), version),
        ("transit", "db", 1)
    );

    // db1's sealed secret spliced into db2's blob: Transit refuses it under db2's context.
    let blob2 = std::fs::read(DatabaseKeyStore::key_path(&db2)).unwrap();
    let spliced = [&blob2[..SALT_END], &blob1[SALT_END..]].concat();
    let err = ProtectedKey::from_bytes(&spliced)
        .unwrap()
        .unprotect(&*vault)
        .unwrap_err();
    assert!(
        matches!(
            err,
            EnvelopeError::Provider(ProviderError::KmsWrongContext { .. })
        ),
        "{err:?}"
    );
    // db1's whole blob copied over db2's key file: refused as another database's key.
    std::fs::write(DatabaseKeyStore::key_path(&db2), &blob1).unwrap();
    let err = store.load_expecting(&db2, key2.id()).unwrap_err();
    assert!(matches!(err, StoreError::KeyIdMismatch { .. }), "{err:?}");

    // Any altered byte: the header changes Transit's context, the Transit ciphertext fails
    // Transit's authentication, anything else fails the envelope's GCM tag or layout.
    for i in [
        9,
        12,
        30,
        50,
        SALT_END + 3,
        blob1.len() - 60,
        blob1.len() - 1,
    ] {
        let mut altered = blob1.clone();
        altered[i] ^= 0x01;
        let opened = ProtectedKey::from_bytes(&altered).and_then(|b| b.unprotect(&*vault));
        assert!(opened.is_err(), "byte {i} altered still opens");
    }
    let mut header_altered = blob1.clone();
    header_altered[30] ^= 0x01;
    let err = ProtectedKey::from_bytes(&header_altered)
        .unwrap()
        .unprotect(&*vault)
        .unwrap_err();
    assert!(
        matches!(
            err,
            EnvelopeError::Provider(ProviderError::KmsWrongContext { .. })
        ),
        "{err:?}"
    );
    cross_check_with_bao(&bao, &blob1, key1.expose_secret());
}

/// `bao write transit/decrypt` decrypts the stored ciphertext, under the documented context
/// (the base64 of the 42-byte header), to the secret `S` that opens the blob as
/// `docs/KEYBLOB.md` says, giving the data key.
fn cross_check_with_bao(bao: &Bao, blob: &[u8], data_key: &[u8; 32]) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (_, name, version, ciphertext) = sealed_fields(blob);
    let transit = format!("vault:v{version}:{}", b64.encode(&ciphertext));
    let plaintext = bao.cli(&[
        "write",
        "-field=plaintext",
        &format!("transit/decrypt/{name}"),
        &format!("ciphertext={transit}"),
        &format!("context={}", b64.encode(&blob[..HEADER])),
    ]);
    let secret = b64.decode(plaintext).unwrap();
    assert_eq!(secret.len(), 32);
    let salt = &blob[HEADER..SALT_END];
    let mut wrap = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(&secret)
        .expand(&[b"strongbox/v1/keyblob-wrap", &blob[..HEADER]], Len32)
        .unwrap()
        .fill(&mut wrap)
        .unwrap();
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &wrap).unwrap());
    let (aad, sealed) = blob.split_at(blob.len() - 48);
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key([0; 12]),
            aead::Aad::from(aad),
            &mut buf,
        )
        .unwrap();
    assert_eq!(plain, &data_key[..]);
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

#[test]
fn tokens_keys_and_a_stopped_server_are_typed_errors_naming_the_uri_not_the_token() {
    let Some(mut bao) = Bao::start("errors") else {
        return;
    };
    bao.derived_key("db");
    bao.cli(&["write", "-f", "transit/keys/plain"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    DatabaseKeyStore::new(provider(&bao, "db"))
        .create(db)
        .unwrap();

    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "s.WRONGTOKEN123").unwrap();
    let uri = bao.uri("db", &wrong);
    let store = DatabaseKeyStore::new(Arc::new(VaultTransitProvider::from_uri(&uri).unwrap()));
    let err = provider_error(store.load(db).unwrap_err());
    assert!(
        matches!(err, ProviderError::KmsAccessDenied { status: 403, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&uri), "{message}");
    assert!(
        !message.contains("WRONGTOKEN") && !message.contains(&bao.token),
        "{message}"
    );

    // A token revoked after use: the same error.
    let child = bao.cli(&["token", "create", "-field=token", "-policy=root"]);
    let child_file = dir.path().join("child-token");
    std::fs::write(&child_file, &child).unwrap();
    let revocable = DatabaseKeyStore::new(Arc::new(
        VaultTransitProvider::from_uri(&bao.uri("db", &child_file)).unwrap(),
    ));
    revocable.load(db).unwrap();
    bao.cli(&["token", "revoke", &child]);
    let err = provider_error(revocable.load(db).unwrap_err());
    assert!(
        matches!(err, ProviderError::KmsAccessDenied { .. }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(&child));

    let missing = dir.path().join("no-such-token");
    let err = provider_error(
        DatabaseKeyStore::new(Arc::new(
            VaultTransitProvider::from_uri(&bao.uri("db", &missing)).unwrap(),
        ))
        .load(db)
        .unwrap_err(),
    );
    assert!(matches!(err, ProviderError::KmsToken { .. }), "{err:?}");

    // A token file or CA file that is a FIFO: refused at once, never waited on.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let as_token = VaultTransitProvider::from_uri(&bao.uri("db", &fifo)).unwrap();
        let err = provider_error(
            DatabaseKeyStore::new(Arc::new(as_token))
                .load(db)
                .unwrap_err(),
        );
        assert!(matches!(err, ProviderError::KmsToken { .. }), "{err:?}");
        let as_ca = format!(
            "vault-transit://127.0.0.1:{}/transit/db?ca_file={}",
            bao.port,
            fifo.display()
        );
        let as_ca = VaultTransitProvider::from_uri(&as_ca).unwrap();
        let err = provider_error(DatabaseKeyStore::new(Arc::new(as_ca)).load(db).unwrap_err());
        assert!(matches!(err, ProviderError::KmsCaFile { .. }), "{err:?}");
    }

    // A key that is not derived, and one that does not exist: refused before anything is written.
    let other = tempfile::tempdir().unwrap();
    for (name, expected) in [("plain", "not a derived key"), ("absent", "was not found")] {
        let err = DatabaseKeyStore::new(provider(&bao, name))
            .create(other.path())
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert!(std::fs::read_dir(other.path()).unwrap().next().is_none());
    }

    // A Transit key deleted after use: its blobs are refused as the key's, not as corrupt.
    bao.derived_key("gone");
    let gone_db = tempfile::tempdir().unwrap();
    let gone = DatabaseKeyStore::new(provider(&bao, "gone"));
    gone.create(gone_db.path()).unwrap();
    bao.cli(&["write", "transit/keys/gone/config", "deletion_allowed=true"]);
    bao.cli(&["delete", "transit/keys/gone"]);
    let err = provider_error(gone.load(gone_db.path()).unwrap_err());
    assert!(
        matches!(err, ProviderError::KmsKeyNotFound { .. }),
        "{err:?}"
    );

    // The server stopped: unreachable, after a bounded number of attempts.
    let vault = provider(&bao, "db");
    bao.stop();
    let err = provider_error(DatabaseKeyStore::new(vault.clone()).load(db).unwrap_err());
    assert!(
        matches!(err, ProviderError::KmsUnreachable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(vault.requests(), 3);
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

#[test]
fn https_with_the_uris_ca_file_and_refused_without_it() {
    let Some(bao) = Bao::start_with("https", true) else {
        return;
    };
    bao.derived_key("db");
    let ca = bao.ca_file.as_ref().unwrap();
    let token = bao.token_file();
    let base = format!("vault-transit://127.0.0.1:{}/transit/db", bao.port);
    let with_ca = format!(
        "{base}?ca_file={}&token_file={}",
        ca.display(),
        token.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(VaultTransitProvider::from_uri(&with_ca).unwrap());
    let key = DatabaseKeyStore::new(vault).create(dir.path()).unwrap();

    // The built-in roots do not know the server's CA: refused at once, not retried.
    let roots_only = format!("{base}?token_file={}", token.display());
    let vault = Arc::new(VaultTransitProvider::from_uri(&roots_only).unwrap());
    let err = provider_error(
        DatabaseKeyStore::new(vault.clone())
            .load(dir.path())
            .unwrap_err(),
    );
    assert!(
        matches!(err, ProviderError::KmsUnreachable { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(vault.requests(), 1);

    // A CA file that is not one.
    let not_pem = format!(
        "{base}?ca_file={}&token_file={}",
        token.display(),
        token.display()
    );
    let vault = Arc::new(VaultTransitProvider::from_uri(&not_pem).unwrap());
    let err = provider_error(DatabaseKeyStore::new(vault).load(dir.path()).unwrap_err());
    assert!(matches!(err, ProviderError::KmsCaFile { .. }), "{err:?}");
    assert!(!err.to_string().contains(&bao.token), "{err}");

    let vault = Arc::new(VaultTransitProvider::from_uri(&with_ca).unwrap());
    assert_eq!(
        DatabaseKeyStore::new(vault).load(dir.path()).unwrap().id(),
        key.id()
    );
}

#[test]
fn rotation_file_to_vault_and_back() {
    let Some(bao) = Bao::start("rotation") else {
        return;
    };
    bao.derived_key("db");
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    write_private(&master, &[7; 32]);
    let file: Arc<dyn MasterKeyProvider> = Arc::new(FileProvider::new(&master));
    let vault: Arc<dyn MasterKeyProvider> = provider(&bao, "db");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let key = DatabaseKeyStore::new(file.clone()).create(&db).unwrap();

    let report = DatabaseKeyStore::new(file.clone())
        .rotate([&db], vault.clone())
        .unwrap();
    assert_eq!(report.rotated, std::slice::from_ref(&db));
    assert_eq!(scheme_of(&db), Scheme::VaultTransit);
    assert_eq!(
        DatabaseKeyStore::new(vault.clone()).load(&db).unwrap().id(),
        key.id()
    );
    // Run again (as after an interruption): nothing to do.
    let again = DatabaseKeyStore::new(file.clone())
        .rotate([&db], vault.clone())
        .unwrap();
    assert_eq!(again.already_current, std::slice::from_ref(&db));

    let back = DatabaseKeyStore::new(vault.clone())
        .rotate([&db], file.clone())
        .unwrap();
    assert_eq!(back.rotated, std::slice::from_ref(&db));
    assert_eq!(scheme_of(&db), Scheme::MasterKey);
    assert_eq!(
        DatabaseKeyStore::new(file).load(&db).unwrap().id(),
        key.id()
    );
}

fn scheme_of(db: &Path) -> Scheme {
    DatabaseKeyStore::new(Arc::new(FileProvider::new("/nonexistent")))
        .protected_key(db)
        .unwrap()
        .scheme()
}

fn write_private(path: &Path, bytes: &[u8]) {
    cli_support::write_private(path, bytes);
}

#[test]
fn rewrap_after_a_transit_key_rotation_and_old_versions_until_trimmed() {
    let Some(bao) = Bao::start("rewrap") else {
        return;
    };
    bao.derived_key("db");
    let vault = provider(&bao, "db");
    let store = DatabaseKeyStore::new(vault.clone());
    let dir = tempfile::tempdir().unwrap();
    let key = store.create(dir.path()).unwrap();
    let v1 = std::fs::read(DatabaseKeyStore::key_path(dir.path())).unwrap();
    let report = store.rewrap([dir.path()]).unwrap();
    assert_eq!(report.already_current, [dir.path().to_path_buf()]);

    bao.cli(&["write", "-f", "transit/keys/db/rotate"]);
    let before = vault.requests();
    let report = store.rewrap([dir.path()]).unwrap();
    assert_eq!(report.rotated, [dir.path().to_path_buf()]);
    assert_eq!(vault.requests() - before, 2, "rewrap, then one decrypt");
    let v2 = std::fs::read(DatabaseKeyStore::key_path(dir.path())).unwrap();
    assert_eq!(sealed_fields(&v2).2, 2);
    assert_eq!(&v2[..HEADER], &v1[..HEADER]);
    assert_eq!(store.load(dir.path()).unwrap().id(), key.id());
    cross_check_with_bao(&bao, &v2, key.expose_secret());

    // The version-1 blob still opens, until version 1 is trimmed from decryption.
    let old = ProtectedKey::from_bytes(&v1).unwrap();
    assert_eq!(old.unprotect(&*vault).unwrap().id(), key.id());
    bao.cli(&[
        "write",
        "transit/keys/db/config",
        "min_decryption_version=2",
    ]);
    let err = old.unprotect(&*vault).unwrap_err();
    assert!(
        matches!(
            err,
            EnvelopeError::Provider(ProviderError::KmsKeyVersionRetired { .. })
        ),
        "{err:?}"
    );
    assert_eq!(store.load(dir.path()).unwrap().id(), key.id());
}

#[test]
fn cli_end_to_end() {
    let Some(bao) = Bao::start("cli") else {
        return;
    };
    bao.derived_key("db");
    let env = Env::new();
    let uri = format!(
        "vault-transit://127.0.0.1:{}/transit/db?tls=false",
        bao.port
    );
    let kms = |env: &Env| {
        let mut cmd = env.cmd();
        cmd.env("VAULT_TOKEN", &bao.token)
            .env_remove("VAULT_TOKEN_FILE")
            .args(["--master-key-kms", &uri]);
        cmd
    };
    let db = env.mkdir("db");
    kms(&env).args(["key", "init"]).arg(&db).run().success();
    let get = kms(&env).args(["key", "get"]).arg(&db).run().success();
    let key = String::from_utf8(get.get_output().stdout.clone()).unwrap();

    // A backup whose key copy Vault wraps restores with Vault alone.
    std::fs::write(db.join("data"), b"rows").unwrap();
    kms(&env)
        .args(["backup", "snapshot"])
        .arg(&db)
        .args(["-o", "db.sbx"])
        .run()
        .success();
    let restored = env.path("restored");
    kms(&env)
        .args(["restore", "db.sbx", "--to"])
        .arg(&restored)
        .run()
        .success();
    assert_eq!(std::fs::read(restored.join("data")).unwrap(), b"rows");

    // A Vault-sealed key file is the password-reset story's too: get, lose access, put.
    let wrong = assert_failure(
        kms(&env)
            .env("VAULT_TOKEN", "s.NOTTHETOKEN")
            .args(["key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(
        wrong.contains("permission denied") && wrong.contains(&uri),
        "{wrong}"
    );
    assert!(
        !wrong.contains("NOTTHETOKEN") && !wrong.contains(&bao.token),
        "{wrong}"
    );

    // The key put back after its file is lost, under Vault again.
    std::fs::remove_file(db.join("secret.key.encrypted")).unwrap();
    kms(&env)
        .args(["key", "put"])
        .arg(&db)
        .write_stdin(key.as_bytes())
        .run()
        .success();
    let again = kms(&env).args(["key", "get"]).arg(&db).run().success();
    assert_eq!(again.get_output().stdout, key.as_bytes());

    let master = env.master_key_file("master.key", 3);
    kms(&env)
        .args(["key", "rotate"])
        .arg(&db)
        .arg("--to-master-key-path")
        .arg(&master)
        .run()
        .success();
    let via_file = env
        .cmd()
        .arg("--master-key-path")
        .arg(&master)
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success();
    assert_eq!(via_file.get_output().stdout, key.as_bytes());
    env.cmd()
        .arg("--master-key-path")
        .arg(&master)
        .args(["key", "rotate"])
        .arg(&db)
        .args(["--to-master-key-kms", &uri])
        .env("VAULT_TOKEN", &bao.token)
        .run()
        .success();

    bao.cli(&["write", "-f", "transit/keys/db/rotate"]);
    kms(&env)
        .args(["key", "rewrap"])
        .arg(&db)
        .run()
        .success()
        .stderr(predicates::str::contains("re-sealed"));
    let blob = std::fs::read(db.join("secret.key.encrypted")).unwrap();
    assert_eq!(sealed_fields(&blob).2, 2);

    // settings.json: Security.MasterKey.Kms, alone or (refused) with another source.
    let settings = env.path("settings.json");
    std::fs::write(
        &settings,
        format!(r#"{{"Security.MasterKey.Kms": "{uri}"}}"#),
    )
    .unwrap();
    let get = env
        .cmd()
        .env("VAULT_TOKEN", &bao.token)
        .arg("--settings")
        .arg(&settings)
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success();
    assert_eq!(get.get_output().stdout, key.as_bytes());
    let both = format!(
        r#"{{"Security": {{"MasterKey": {{"Kms": "{uri}", "Path": "{}"}}}}}}"#,
        master.display()
    );
    std::fs::write(&settings, both).unwrap();
    let line = assert_failure(
        env.cmd()
            .arg("--settings")
            .arg(&settings)
            .args(["key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(
        line.contains("both Security.MasterKey.Kms and Security.MasterKey.Path"),
        "{line}"
    );
}
