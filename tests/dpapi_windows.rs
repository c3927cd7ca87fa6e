//! The DPAPI master-key provider, end to end through the public API. Windows only: on Linux CI
//! these run under Wine (`ci/windows-tests.sh`), whose DPAPI is a reimplementation: see the
//! README's "Windows / DPAPI under Wine" section for what that proves and what it does not.
#![cfg(windows)]

use std::path::Path;
use std::sync::Arc;

use secrecy::ExposeSecret as _;
use strongbox::keys::{
    DpapiProvider, EnvelopeError, FileProvider, Protection, ProviderError, PutOutcome, Scheme,
    StoreError, default_provider,
};
use strongbox::{DataKey, DatabaseKeyStore, KeyId, MasterKeyProvider, ProtectedKey};

// The scheme-2 (DPAPI) blob layout of docs/KEYBLOB.md.
const MAGIC: std::ops::Range<usize> = 0..8;
const VERSION: usize = 8;
const SCHEME: usize = 9;
const FINGERPRINT: std::ops::Range<usize> = 10..26;
const KEY_ID: std::ops::Range<usize> = 26..42;
const SALT: std::ops::Range<usize> = 42..74;
const ENTROPY: std::ops::Range<usize> = 74..106;
const DPAPI_LEN: std::ops::Range<usize> = 106..108;
const DPAPI_BLOB_START: usize = 108;
const SEALED_LEN: usize = 48;

fn dpapi() -> DpapiProvider {
    DpapiProvider::new().expect("DPAPI is supported on Windows")
}

/// The DPAPI blob inside a key blob.
fn dpapi_blob(bytes: &[u8]) -> std::ops::Range<usize> {
    let len = usize::from(u16::from_be_bytes([
        bytes[DPAPI_LEN.start],
        bytes[DPAPI_LEN.start + 1],
    ]));
    assert_eq!(bytes.len(), DPAPI_BLOB_START + len + SEALED_LEN);
    DPAPI_BLOB_START..DPAPI_BLOB_START + len
}

fn same_key(a: &DataKey, b: &DataKey) -> bool {
    a.id() == b.id() && a.to_base64().expose_secret() == b.to_base64().expose_secret()
}

/// Parses and opens key-blob bytes with DPAPI.
fn open(bytes: &[u8]) -> Result<DataKey, EnvelopeError> {
    ProtectedKey::from_bytes(bytes)?.unprotect(&dpapi())
}

/// The code of a DPAPI refusal to unprotect; fails the test on any other outcome.
fn dpapi_refusal(result: Result<DataKey, EnvelopeError>) -> u32 {
    match result {
        Err(EnvelopeError::Provider(ProviderError::Dpapi {
            operation: "unprotect",
            code,
        })) => code,
        Err(other) => panic!("expected a DPAPI refusal, got: {other}"),
        Ok(_) => panic!("expected a DPAPI refusal, but the blob opened"),
    }
}

fn master_key_file(dir: &Path, byte: u8) -> FileProvider {
    let path = dir.join(format!("master-{byte}.key"));
    std::fs::write(&path, [byte; 32]).unwrap();
    FileProvider::new(path)
}

fn database(root: &Path, name: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    dir
}

#[test]
fn dpapi_is_the_os_default_on_windows() {
    assert!(matches!(
        default_provider().unwrap().protection().unwrap(),
        Protection::Sealer(sealer) if sealer.scheme() == Scheme::Dpapi
    ));
    assert_eq!(dpapi().fingerprint().unwrap(), None);
}

#[test]
#[cfg(feature = "settings")]
fn dpapi_is_the_default_of_empty_settings_on_windows() {
    use strongbox::keys::{MasterKeySettings, MasterKeySource};
    assert!(matches!(
        MasterKeySource::os_default(),
        MasterKeySource::Dpapi
    ));
    let from_settings = MasterKeySettings::from_json_str("{}")
        .unwrap()
        .provider()
        .unwrap();
    assert!(matches!(
        from_settings.protection().unwrap(),
        Protection::Sealer(sealer) if sealer.scheme() == Scheme::Dpapi
    ));
}

#[test]
fn round_trip() {
    let key = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &dpapi()).unwrap();
    assert_eq!(blob.scheme(), Scheme::Dpapi);
    assert_eq!(blob.version(), 1);
    assert_eq!(blob.fingerprint(), None);
    assert_eq!(blob.key_id(), key.id());
    assert!(blob.is_protected_by(&dpapi()).unwrap());

    let bytes = blob.to_bytes();
    assert_eq!(&bytes[MAGIC], b"sbox-key");
    assert_eq!((bytes[VERSION], bytes[SCHEME]), (1, 2));
    assert_eq!(&bytes[FINGERPRINT], &[0; 16]);
    assert_eq!(&bytes[KEY_ID], key.id().as_bytes());
    let secret = key.to_base64();
    assert!(
        !bytes.windows(32).any(|w| DataKey::from_bytes(w)
            .is_ok_and(|k| k.to_base64().expose_secret() == secret.expose_secret())),
        "the key must not appear in the blob"
    );

    let opened = open(&bytes).unwrap();
    assert!(same_key(&opened, &key));
    let expecting = ProtectedKey::from_bytes(&bytes)
        .unwrap()
        .unprotect_expecting(&dpapi(), key.id())
        .unwrap();
    assert!(same_key(&expecting, &key));
}

#[test]
fn every_blob_has_fresh_entropy_salt_and_dpapi_blob() {
    let key = DataKey::generate().unwrap();
    let a = ProtectedKey::protect(&key, &dpapi()).unwrap().into_bytes();
    let b = ProtectedKey::protect(&key, &dpapi()).unwrap().into_bytes();
    assert_ne!(a[ENTROPY], b[ENTROPY]);
    assert_ne!(a[SALT], b[SALT]);
    assert_ne!(a[dpapi_blob(&a)], b[dpapi_blob(&b)]);
    assert_ne!(a[a.len() - SEALED_LEN..], b[b.len() - SEALED_LEN..]);
    assert!(same_key(&open(&a).unwrap(), &open(&b).unwrap()));

    // Same key, same user: still not interchangeable. A's entropy does not open B's DPAPI blob.
    let mut mixed = b.clone();
    mixed[ENTROPY].copy_from_slice(&a[ENTROPY]);
    assert_eq!(dpapi_refusal(open(&mixed)), 13);
}

#[test]
fn other_entropy_is_refused_with_the_os_error_code() {
    let key = DataKey::generate().unwrap();
    let bytes = ProtectedKey::protect(&key, &dpapi()).unwrap().into_bytes();
    for fill in [0x00, 0xff] {
        let mut other = bytes.clone();
        other[ENTROPY].fill(fill);
        let err = open(&other).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DPAPI refused to unprotect: the key was protected by another user or the blob is \
             corrupt (error 13)"
        );
        assert_eq!(dpapi_refusal(Err(err)), 13);
    }
}

/// Every single-bit change anywhere in a DPAPI key blob is refused, each with the error its
/// region calls for; none ever yields a key.
#[test]
fn a_flipped_bit_anywhere_is_refused_with_the_right_error() {
    let key = DataKey::generate().unwrap();
    let bytes = ProtectedKey::protect(&key, &dpapi()).unwrap().into_bytes();
    let inner = dpapi_blob(&bytes);
    let mut refused_by_dpapi = 0;
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let result = open(&bad);
        let region = match i {
            _ if MAGIC.contains(&i) => "magic",
            VERSION => "version",
            SCHEME => "scheme",
            _ if FINGERPRINT.contains(&i) => "fingerprint",
            _ if KEY_ID.contains(&i) || SALT.contains(&i) => "authenticated header",
            _ if ENTROPY.contains(&i) => "entropy",
            _ if DPAPI_LEN.contains(&i) => "DPAPI length",
            _ if inner.contains(&i) => "DPAPI blob",
            _ => "sealed key",
        };
        match (region, result) {
            ("magic", Err(EnvelopeError::NotAKeyBlob)) => {}
            ("version", Err(EnvelopeError::UnsupportedVersion { version: 0 })) => {}
            // Scheme 3 (Vault Transit) does not parse a DPAPI sealed secret.
            ("scheme" | "fingerprint" | "DPAPI length", Err(EnvelopeError::Malformed { .. })) => {}
            ("authenticated header" | "sealed key", Err(EnvelopeError::Corrupt)) => {}
            ("entropy", result) => assert_eq!(dpapi_refusal(result), 13, "byte {i}"),
            // DPAPI authenticates its ciphertext but not every header field (Wine accepts a
            // changed master-key GUID): such a change still fails the AES-GCM check, which
            // authenticates the whole DPAPI blob as associated data.
            ("DPAPI blob", Err(EnvelopeError::Corrupt)) => {}
            ("DPAPI blob", result) => {
                assert_ne!(dpapi_refusal(result), 0, "byte {i}");
                refused_by_dpapi += 1;
            }
            (region, Ok(_)) => panic!("byte {i} ({region}) flipped, and the blob still opened"),
            (region, Err(e)) => panic!("byte {i} ({region}) flipped: unexpected error: {e}"),
        }
    }
    assert!(refused_by_dpapi > 0, "DPAPI itself authenticated nothing");
}

#[test]
fn a_blob_from_another_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (database(tmp.path(), "a"), database(tmp.path(), "b"));
    let store = DatabaseKeyStore::new(Arc::new(dpapi()));
    let key_a = store.create(&a).unwrap();
    let key_b = store.create(&b).unwrap();
    let blob_a = store.protected_key(&a).unwrap().into_bytes();
    let blob_b = store.protected_key(&b).unwrap().into_bytes();

    // A's key file copied into B: the key id tells, before any decryption.
    std::fs::copy(
        DatabaseKeyStore::key_path(&a),
        DatabaseKeyStore::key_path(&b),
    )
    .unwrap();
    match store.load_expecting(&b, key_b.id()) {
        Err(StoreError::KeyIdMismatch {
            expected, found, ..
        }) => assert_eq!((expected, found), (key_b.id(), key_a.id())),
        other => panic!("expected KeyIdMismatch, got {:?}", other.map(|k| k.id())),
    }
    match ProtectedKey::from_bytes(&blob_a)
        .unwrap()
        .unprotect_expecting(&dpapi(), key_b.id())
    {
        Err(EnvelopeError::KeyIdMismatch { expected, found }) => {
            assert_eq!((expected, found), (key_b.id(), key_a.id()))
        }
        other => panic!("expected KeyIdMismatch, got {:?}", other.map(|k| k.id())),
    }

    // A's blob relabelled with B's key id: the header is authenticated.
    let mut relabelled = blob_a.clone();
    relabelled[KEY_ID].copy_from_slice(key_b.id().as_bytes());
    assert!(matches!(open(&relabelled), Err(EnvelopeError::Corrupt)));

    // A's DPAPI part (entropy, length, DPAPI blob) grafted into B's blob: DPAPI opens it (same
    // user), but the secret it yields is A's, and B's sealed key does not open under it.
    let graft = [
        &blob_b[..ENTROPY.start],
        &blob_a[ENTROPY.start..blob_a.len() - SEALED_LEN],
        &blob_b[blob_b.len() - SEALED_LEN..],
    ]
    .concat();
    assert!(matches!(open(&graft), Err(EnvelopeError::Corrupt)));
}

#[test]
fn rotation_from_dpapi_to_a_file_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [database(tmp.path(), "a"), database(tmp.path(), "b")];
    let file = Arc::new(master_key_file(tmp.path(), 7));
    let dpapi = Arc::new(dpapi());

    let on_dpapi = DatabaseKeyStore::new(dpapi.clone());
    let keys: Vec<DataKey> = dirs.iter().map(|d| on_dpapi.create(d).unwrap()).collect();
    let ids: Vec<KeyId> = keys.iter().map(DataKey::id).collect();

    // DPAPI -> File.
    let report = on_dpapi.rotate(&dirs, &*file).unwrap();
    assert_eq!(report.rotated, dirs);
    let on_file = DatabaseKeyStore::new(file.clone());
    for (dir, key) in dirs.iter().zip(&keys) {
        let blob = on_file.protected_key(dir).unwrap();
        assert_eq!(blob.scheme(), Scheme::MasterKey);
        assert!(same_key(
            &on_file.load_expecting(dir, key.id()).unwrap(),
            key
        ));
        // The DPAPI-only store no longer opens it, and says why.
        match on_dpapi.load(dir) {
            Err(StoreError::Envelope {
                source:
                    EnvelopeError::SchemeMismatch {
                        blob: Scheme::MasterKey,
                        provider: Scheme::Dpapi,
                    },
                ..
            }) => {}
            other => panic!("expected SchemeMismatch, got {:?}", other.map(|k| k.id())),
        }
    }
    // ...while a store told about the previous provider opens both kinds.
    let mixed = DatabaseKeyStore::new(dpapi.clone()).with_previous(file.clone());
    assert!(same_key(&mixed.load(&dirs[0]).unwrap(), &keys[0]));

    // File -> DPAPI.
    let report = on_file.rotate(&dirs, &*dpapi).unwrap();
    assert_eq!(report.rotated, dirs);
    for (dir, key) in dirs.iter().zip(&keys) {
        assert_eq!(on_dpapi.protected_key(dir).unwrap().scheme(), Scheme::Dpapi);
        assert!(same_key(
            &on_dpapi.load_expecting(dir, key.id()).unwrap(),
            key
        ));
    }
    let again = on_file.rotate(&dirs, &*dpapi).unwrap();
    assert!(again.rotated.is_empty());
    assert_eq!(again.already_current, dirs);
    assert_eq!(
        dirs.iter()
            .map(|d| on_dpapi.load(d).unwrap().id())
            .collect::<Vec<_>>(),
        ids
    );
}

/// The password-reset story: an administrator resets a Windows user's password, after which
/// DPAPI no longer opens what it protected for that user. The operator exported the database
/// key beforehand (`key get`), and puts it back afterwards (`key put`), which protects it anew.
///
/// Wine's DPAPI is not bound to a password, so the "reset" is simulated by what it does to the
/// key file: DPAPI refuses its DPAPI blob (here: a damaged ciphertext byte, refused with an OS
/// error code as a reset is, there with `NTE_BAD_KEY_STATE`).
#[test]
fn password_reset_story_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let db = database(tmp.path(), "db");
    let store = DatabaseKeyStore::new(default_provider().unwrap());
    let key = store.create(&db).unwrap();

    // Before the reset: `key get`.
    let exported = store.export_base64(&db).unwrap();
    assert!(same_key(
        &DataKey::from_base64(exported.expose_secret()).unwrap(),
        &key
    ));

    // The reset: DPAPI's protection of this key file is gone.
    let path = DatabaseKeyStore::key_path(&db);
    let mut bytes = std::fs::read(&path).unwrap();
    let inner = dpapi_blob(&bytes);
    bytes[inner.end - 1] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();
    match store.load(&db) {
        Err(StoreError::Envelope {
            source: EnvelopeError::Provider(ProviderError::Dpapi { code, .. }),
            ..
        }) => assert_ne!(code, 0),
        other => panic!("expected a DPAPI refusal, got {:?}", other.map(|k| k.id())),
    }

    // A different key is never put over it by mistake...
    let stranger = DataKey::generate().unwrap();
    assert!(matches!(
        store.put_base64(&db, stranger.to_base64().expose_secret(), false),
        Err(StoreError::DifferentKeyExists { .. })
    ));
    // ...but the exported one goes back, under a fresh DPAPI protection: `key put`.
    assert_eq!(
        store
            .put_base64(&db, exported.expose_secret(), false)
            .unwrap(),
        PutOutcome::Stored
    );
    let restored = std::fs::read(&path).unwrap();
    assert_ne!(restored[ENTROPY], bytes[ENTROPY]);
    assert!(same_key(
        &store.load_expecting(&db, key.id()).unwrap(),
        &key
    ));
    assert_eq!(
        store
            .put_base64(&db, exported.expose_secret(), false)
            .unwrap(),
        PutOutcome::Unchanged
    );
}
