//! The AWS KMS provider against a real local KMS (`moto_server`, started by
//! `servers::moto::Moto` on a free 127.0.0.1 port): round trips through the key store with one KMS request per key
//! opened, blobs moved or altered, another key, a stopped server, a cross-check with boto3
//! under the documented encryption context, and the CLI end to end, with a rotation
//! file -> AWS KMS -> Vault Transit -> file and a backup restored at every step.

mod cli_support;
mod servers;

use std::path::Path;
use std::sync::Arc;

use aws_sdk_kms::config::{Credentials, SharedCredentialsProvider};
use cli_support::{Env, Run as _, assert_failure};
use ring::{aead, hkdf};
use servers::bao;
use servers::moto::{self, Moto};
use strongbox::keys::{
    AwsKmsProvider, AwsKmsUri, EnvelopeError, FileProvider, ProviderError, Scheme, StoreError,
};
use strongbox::secrecy::ExposeSecret as _;
use strongbox::{DatabaseKeyStore, MasterKeyProvider, ProtectedKey};

/// Offsets of `docs/KEYBLOB.md`: header, salt, sealed secret, sealed data key (48 bytes).
const HEADER: usize = 42;
const SALT_END: usize = 74;

/// A provider of `key` on `moto`, with static credentials (the process environment is not
/// touched).
fn provider(moto: &Moto, key: &str) -> Arc<AwsKmsProvider> {
    let credentials = Credentials::new(moto::ACCESS_KEY, moto::SECRET_KEY, None, None, "test");
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    let uri = AwsKmsUri::parse(&moto.uri(key)).unwrap();
    Arc::new(AwsKmsProvider::with_config(uri, &config))
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

/// The sealed secret of a scheme-4 blob: `(key ARN, ciphertext blob)`.
fn sealed_fields(blob: &[u8]) -> (String, Vec<u8>) {
    let sealed = &blob[SALT_END..blob.len() - 48];
    let a = usize::from(sealed[0]);
    let arn = String::from_utf8(sealed[1..1 + a].to_vec()).unwrap();
    let rest = &sealed[1 + a..];
    let len = usize::from(u16::from_be_bytes(rest[..2].try_into().unwrap()));
    assert_eq!(rest.len(), 2 + len);
    (arn, rest[2..].to_vec())
}

#[test]
fn round_trip_one_kms_call_per_open_and_blobs_moved_or_altered_do_not_open() {
    let Some(moto) = Moto::start("round_trip") else {
        return;
    };
    let arn = moto.create_key();
    let aws = provider(&moto, &arn);
    let store = DatabaseKeyStore::new(aws.clone());
    let dirs = tempfile::tempdir().unwrap();
    let (db1, db2) = (dirs.path().join("db1"), dirs.path().join("db2"));
    std::fs::create_dir_all(&db1).unwrap();
    std::fs::create_dir_all(&db2).unwrap();
    let key1 = store.create(&db1).unwrap();
    let key2 = store.create(&db2).unwrap();

    let before = aws.requests();
    for _ in 0..3 {
        assert_eq!(store.load(&db1).unwrap().id(), key1.id());
    }
    assert_eq!(aws.requests() - before, 3, "one KMS request per key opened");
    let blob1 = std::fs::read(DatabaseKeyStore::key_path(&db1)).unwrap();
    let parsed = ProtectedKey::from_bytes(&blob1).unwrap();
    assert_eq!(
        (parsed.scheme(), parsed.fingerprint()),
        (Scheme::AwsKms, None)
    );
    assert_eq!((blob1[9], &blob1[10..26]), (4, &[0u8; 16][..]));
    assert_eq!(sealed_fields(&blob1).0, arn);

    // db1's sealed secret spliced into db2's blob: KMS refuses it under db2's context.
    let blob2 = std::fs::read(DatabaseKeyStore::key_path(&db2)).unwrap();
    let spliced = [&blob2[..SALT_END], &blob1[SALT_END..]].concat();
    let err = ProtectedKey::from_bytes(&spliced)
        .unwrap()
        .unprotect(&*aws)
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

    // Any altered byte is refused: the header changes KMS's context, the ciphertext fails
    // KMS's authentication, anything else fails the envelope's GCM tag or layout.
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
        let opened = ProtectedKey::from_bytes(&altered).and_then(|b| b.unprotect(&*aws));
        assert!(opened.is_err(), "byte {i} altered still opens");
    }
    let mut header_altered = blob1.clone();
    header_altered[30] ^= 0x01;
    let err = ProtectedKey::from_bytes(&header_altered)
        .unwrap()
        .unprotect(&*aws)
        .unwrap_err();
    assert!(
        matches!(
            err,
            EnvelopeError::Provider(ProviderError::KmsWrongContext { .. })
        ),
        "{err:?}"
    );
    cross_check_with_boto3(&moto, &blob1, key1.expose_secret());
}

/// boto3's `kms.decrypt` decrypts the stored ciphertext, under the documented encryption
/// context, to the secret `S` that opens the blob as `docs/KEYBLOB.md` says, giving the data
/// key.
fn cross_check_with_boto3(moto: &Moto, blob: &[u8], data_key: &[u8; 32]) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (arn, ciphertext) = sealed_fields(blob);
    let key_id: String = blob[26..42].iter().map(|b| format!("{b:02x}")).collect();
    let plaintext = moto.boto3(
        "out = kms.decrypt(KeyId=sys.argv[1], CiphertextBlob=base64.b64decode(sys.argv[2]),\n\
         EncryptionContext={'strongbox:key-id': sys.argv[3],\n\
         'strongbox:blob-header': sys.argv[4]})\n\
         print(base64.b64encode(out['Plaintext']).decode())",
        &[
            &arn,
            &b64.encode(&ciphertext),
            &key_id,
            &b64.encode(&blob[..HEADER]),
        ],
    );
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
fn other_keys_missing_keys_and_a_stopped_server_are_typed_errors_naming_the_uri() {
    let Some(mut moto) = Moto::start("errors") else {
        return;
    };
    let arn = moto.create_key();
    let other = moto.create_key();
    moto.create_alias("other", &other);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    let key = DatabaseKeyStore::new(provider(&moto, &arn))
        .create(db)
        .unwrap();

    // Another key's ARN: "not mine" before any request; an alias of another key: KMS refuses.
    let by_arn = provider(&moto, &other);
    let err = DatabaseKeyStore::new(by_arn.clone()).load(db).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Envelope {
                source: EnvelopeError::OtherSealerKey {
                    scheme: Scheme::AwsKms
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(by_arn.requests(), 0);
    let by_alias = DatabaseKeyStore::new(provider(&moto, "alias/other"));
    let err = provider_error(by_alias.load(db).unwrap_err());
    assert!(err.to_string().contains("alias/other"), "{err}");

    // A key that does not exist: refused before anything is written.
    let missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let empty = tempfile::tempdir().unwrap();
    let err = provider_error(
        DatabaseKeyStore::new(provider(&moto, missing))
            .create(empty.path())
            .unwrap_err(),
    );
    assert!(
        matches!(err, ProviderError::KmsKeyNotFound { .. }),
        "{err:?}"
    );
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none());

    // The server stopped mid-run: unreachable after a bounded number of attempts, and a
    // rotation to the stopped KMS leaves the key file as it was.
    let aws = provider(&moto, &arn);
    let file_db = tempfile::tempdir().unwrap();
    let master = file_db.path().join("master.key");
    cli_support::write_private(&master, &[9; 32]);
    let file: Arc<dyn MasterKeyProvider> = Arc::new(FileProvider::new(&master));
    let data = file_db.path().join("db");
    std::fs::create_dir(&data).unwrap();
    DatabaseKeyStore::new(file.clone()).create(&data).unwrap();
    let before = std::fs::read(DatabaseKeyStore::key_path(&data)).unwrap();
    moto.stop();
    let err = provider_error(DatabaseKeyStore::new(aws.clone()).load(db).unwrap_err());
    assert!(
        matches!(err, ProviderError::KmsUnreachable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(aws.requests(), 3);
    let message = err.to_string();
    assert!(message.contains(&moto.uri(&arn)), "{message}");
    assert!(!message.contains(moto::SECRET_KEY), "{message}");
    assert!(DatabaseKeyStore::new(file).rotate([&data], aws).is_err());
    assert_eq!(
        std::fs::read(DatabaseKeyStore::key_path(&data)).unwrap(),
        before
    );
    let _ = key;
}

/// A `strongbox` command with the standard AWS chain pointed at `moto` and a Vault token.
fn cmd(env: &Env, moto: &Moto, vault_token: &str) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.envs(moto.aws_env())
        .env("VAULT_TOKEN", vault_token)
        .env_remove("VAULT_TOKEN_FILE");
    cmd
}

/// Takes a snapshot backup of `db` with `master` (global options), restores it with the same
/// options into a new directory and checks the data.
fn backup_restores(env: &Env, moto: &Moto, token: &str, master: &[&str], step: &str) {
    let db = env.path("db");
    let out = format!("{step}.sbx");
    cmd(env, moto, token)
        .args(master)
        .args(["backup", "snapshot"])
        .arg(&db)
        .args(["-o", &out])
        .run()
        .success();
    let restored = env.path(&format!("restored-{step}"));
    cmd(env, moto, token)
        .args(master)
        .args(["restore", &out, "--to"])
        .arg(&restored)
        .run()
        .success();
    assert_eq!(
        std::fs::read(restored.join("data")).unwrap(),
        b"rows",
        "{step}"
    );
}

fn key_get(env: &Env, moto: &Moto, token: &str, master: &[&str], db: &Path) -> Vec<u8> {
    let get = cmd(env, moto, token)
        .args(master)
        .args(["key", "get"])
        .arg(db)
        .run()
        .success();
    get.get_output().stdout.clone()
}

#[test]
fn cli_end_to_end_and_rotation_file_to_aws_to_vault_to_file() {
    let Some(moto) = Moto::start("cli") else {
        return;
    };
    let Some(bao) = bao::Bao::start("cli") else {
        return;
    };
    bao.derived_key("db");
    let arn = moto.create_key();
    let aws_uri = moto.uri(&arn);
    let vault_uri = format!(
        "vault-transit://127.0.0.1:{}/transit/db?tls=false",
        bao.port
    );
    let token = bao.token.as_str();
    let env = Env::new();
    let master = env.master_key_file("master.key", 5);
    let master = master.to_str().unwrap();
    let file = ["--master-key-path", master];
    let aws = ["--master-key-kms", aws_uri.as_str()];
    let vault = ["--master-key-kms", vault_uri.as_str()];

    let db = env.mkdir("db");
    std::fs::write(db.join("data"), b"rows").unwrap();
    cmd(&env, &moto, token)
        .args(file)
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success();
    let key = key_get(&env, &moto, token, &file, &db);
    backup_restores(&env, &moto, token, &file, "file");

    let steps: [(&[&str], &str, &[&str], Scheme); 3] = [
        (&file, "--to-master-key-kms", &aws, Scheme::AwsKms),
        (&aws, "--to-master-key-kms", &vault, Scheme::VaultTransit),
        (&vault, "--to-master-key-path", &file, Scheme::MasterKey),
    ];
    for (from, to_option, to, scheme) in steps {
        cmd(&env, &moto, token)
            .args(from)
            .args(["key", "rotate"])
            .arg(&db)
            .args([to_option, to[1]])
            .run()
            .success();
        let blob = std::fs::read(db.join("secret.key.encrypted")).unwrap();
        assert_eq!(ProtectedKey::from_bytes(&blob).unwrap().scheme(), scheme);
        assert_eq!(key_get(&env, &moto, token, to, &db), key, "{scheme}");
        backup_restores(
            &env,
            &moto,
            token,
            to,
            &scheme.to_string().replace(' ', "-"),
        );
        if scheme == Scheme::AwsKms {
            aws_password_reset(&env, &moto, token, &aws, &db, &key);
            cross_check_with_boto3(&moto, &blob, &decode_key(&key));
        }
    }

    // settings.json: Security.MasterKey.Kms with an aws-kms:// URI.
    let settings = env.path("settings.json");
    std::fs::write(
        &settings,
        format!(r#"{{"Security": {{"MasterKey": {{"Kms": "{aws_uri}"}}}}}}"#),
    )
    .unwrap();
    let settings = ["--settings", settings.to_str().unwrap()];
    let other = env.mkdir("other");
    cmd(&env, &moto, token)
        .args(settings)
        .args(["key", "init"])
        .arg(&other)
        .run()
        .success();
    let blob = std::fs::read(other.join("secret.key.encrypted")).unwrap();
    assert_eq!(
        ProtectedKey::from_bytes(&blob).unwrap().scheme(),
        Scheme::AwsKms
    );
}

/// The password-reset story with an AWS KMS key: the key printed, access lost (the key file
/// deleted), the key put back under the same KMS key.
fn aws_password_reset(env: &Env, moto: &Moto, token: &str, aws: &[&str], db: &Path, key: &[u8]) {
    let line = assert_failure(
        cmd(env, moto, token)
            .env("AWS_SECRET_ACCESS_KEY", "WRONGSECRET")
            .args([aws[0], &aws[1].replace("127.0.0.1", "127.0.0.2")])
            .args(["key", "get"])
            .arg(db)
            .run(),
    );
    assert!(line.contains("could not be reached"), "{line}");
    assert!(
        !line.contains("WRONGSECRET") && !line.contains(moto::SECRET_KEY),
        "{line}"
    );

    std::fs::remove_file(db.join("secret.key.encrypted")).unwrap();
    cmd(env, moto, token)
        .args(aws)
        .args(["key", "put"])
        .arg(db)
        .write_stdin(key)
        .run()
        .success();
    assert_eq!(key_get(env, moto, token, aws, db), key);
}

fn decode_key(line: &[u8]) -> [u8; 32] {
    use base64::Engine as _;
    let text = std::str::from_utf8(line).unwrap().trim();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
        .try_into()
        .unwrap()
}
