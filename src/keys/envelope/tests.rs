use std::sync::Mutex;

use super::*;
use crate::keys::provider::{dpapi, private};
use crate::test_hex::hex;

/// A provider holding a fixed master key.
#[derive(Debug)]
struct Fixed(MasterKeyBox);

#[derive(Debug)]
struct MasterKeyBox(crate::key::MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0.0))
    }
}

fn fixed(byte: u8) -> Fixed {
    Fixed(MasterKeyBox(
        crate::key::MasterKey::from_bytes(&[byte; 32]).unwrap(),
    ))
}

#[test]
fn round_trip_and_fresh_salt() {
    let p = fixed(1);
    let key = DataKey::generate().unwrap();
    let a = ProtectedKey::protect(&key, &p).unwrap();
    let b = ProtectedKey::protect(&key, &p).unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes(), "salt must be fresh per blob");
    assert_eq!(a.as_bytes().len(), MASTER_KEY_BLOB_LEN);
    for blob in [a, b] {
        assert_eq!(blob.key_id(), key.id());
        assert_eq!(blob.scheme(), Scheme::MasterKey);
        assert_eq!(blob.version(), 1);
        assert_eq!(blob.fingerprint(), Some(p.0.0.fingerprint()));
        assert!(blob.is_protected_by(&p).unwrap());
        let again = ProtectedKey::from_bytes(&blob.to_bytes()).unwrap();
        assert_eq!(again, blob);
        assert_eq!(
            again.unprotect(&p).unwrap().expose_secret(),
            key.expose_secret()
        );
    }
}

#[test]
fn wrong_master_key_names_both_fingerprints() {
    let (a, b) = (fixed(1), fixed(2));
    let key = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &a).unwrap();
    assert!(!blob.is_protected_by(&b).unwrap());
    let err = blob.unprotect(&b).unwrap_err();
    assert!(err.is_not_mine());
    match &err {
        EnvelopeError::WrongMasterKey { blob, provider } => {
            assert_eq!(*blob, a.0.0.fingerprint());
            assert_eq!(*provider, b.0.0.fingerprint());
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&a.0.0.fingerprint().to_string()), "{text}");
    assert!(text.contains(&b.0.0.fingerprint().to_string()), "{text}");
}

#[test]
fn every_bit_flip_is_refused() {
    let p = fixed(3);
    let key = DataKey::generate().unwrap();
    let good = ProtectedKey::protect(&key, &p).unwrap().into_bytes();
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            let result = ProtectedKey::from_bytes(&bad).and_then(|b| b.unprotect(&p));
            let err = result.expect_err("a flipped bit must not open");
            let expected_kind = match i {
                0..=7 => matches!(err, EnvelopeError::NotAKeyBlob),
                8 => matches!(err, EnvelopeError::UnsupportedVersion { .. }),
                9 => matches!(
                    err,
                    EnvelopeError::UnsupportedScheme { .. } | EnvelopeError::Malformed { .. }
                ),
                10..=25 => matches!(err, EnvelopeError::WrongMasterKey { .. }),
                _ => matches!(err, EnvelopeError::Corrupt),
            };
            assert!(expected_kind, "byte {i} bit {bit}: {err:?}");
        }
    }
}

#[test]
fn expecting_another_key_id_is_refused_before_decryption() {
    let p = fixed(4);
    let key = DataKey::generate().unwrap();
    let other = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &p).unwrap();
    match blob.unprotect_expecting(&fixed(9), other.id()).unwrap_err() {
        EnvelopeError::KeyIdMismatch { expected, found } => {
            assert_eq!(expected, other.id());
            assert_eq!(found, key.id());
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        blob.unprotect_expecting(&p, key.id()).unwrap().id(),
        key.id()
    );
}

#[test]
fn a_forged_key_id_is_refused() {
    // Someone holding the master key seals key A under a header naming key B.
    let master = crate::key::MasterKey::from_bytes(&[5; 32]).unwrap();
    let (a, b) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let pre = prefix(
        &header(Scheme::MasterKey, *master.fingerprint().as_bytes(), b.id()),
        &[9; 32],
        &[],
    );
    let blob = ProtectedKey::from_bytes(&seal(pre, master.expose_secret(), &a)).unwrap();
    let p = Fixed(MasterKeyBox(master));
    assert!(matches!(blob.unprotect(&p), Err(EnvelopeError::Corrupt)));
}

#[test]
fn structure_errors() {
    let p = fixed(6);
    let good = ProtectedKey::protect(&DataKey::generate().unwrap(), &p)
        .unwrap()
        .into_bytes();
    let malformed = |bytes: &[u8]| {
        matches!(
            ProtectedKey::from_bytes(bytes),
            Err(EnvelopeError::Malformed { .. })
        )
    };
    assert!(matches!(
        ProtectedKey::from_bytes(&[]),
        Err(EnvelopeError::NotAKeyBlob)
    ));
    assert!(malformed(&good[..8]));
    assert!(malformed(&good[..9]));
    assert!(malformed(&good[..41]));
    assert!(malformed(&good[..121]));
    assert!(malformed(&[&good[..], &[0]].concat()));
    let mut huge = good.clone();
    huge.resize(ProtectedKey::MAX_LEN + 1, 0);
    assert!(matches!(
        ProtectedKey::from_bytes(&huge),
        Err(EnvelopeError::TooLarge {
            len: 8193,
            max: 8192
        })
    ));
    let mut v2 = good.clone();
    v2[8] = 2;
    assert!(
        ProtectedKey::from_bytes(&v2)
            .unwrap_err()
            .to_string()
            .contains("unsupported key blob version 2")
    );
}

/// Offset of the DPAPI blob in a scheme-2 key blob: header, salt, entropy, 2-byte length.
const DPAPI_OFFSET: usize = SEALED_SECRET_OFFSET + 32 + 2;

/// A syntactically valid DPAPI blob (the DPAPI part is not real: only Windows can make one).
fn fake_dpapi_blob(dpapi_len: usize) -> Vec<u8> {
    let key = DataKey::from_bytes(&[0x33; 32]).unwrap();
    let dpapi = vec![0xd0; dpapi_len];
    let sealed = dpapi::join_sealed(&[0x55; 32], &dpapi).unwrap();
    let pre = prefix(
        &header(Scheme::Dpapi, [0; 16], key.id()),
        &[0x44; 32],
        &sealed,
    );
    seal(pre, &[0x66; 32], &key)
}

#[test]
fn dpapi_blobs_parse_and_refuse_a_master_key_provider() {
    let bytes = fake_dpapi_blob(200);
    let blob = ProtectedKey::from_bytes(&bytes).unwrap();
    assert_eq!(blob.scheme(), Scheme::Dpapi);
    assert_eq!(blob.fingerprint(), None);
    assert_eq!(&blob.sealed_secret()[..32], &[0x55; 32][..]);
    assert_eq!(&blob.sealed_secret()[34..], &[0xd0; 200][..]);
    let p = fixed(7);
    assert!(!blob.is_protected_by(&p).unwrap());
    let err = blob.unprotect(&p).unwrap_err();
    assert!(
        matches!(
            err,
            EnvelopeError::SchemeMismatch {
                blob: Scheme::Dpapi,
                provider: Scheme::MasterKey
            }
        ),
        "{err:?}"
    );
    assert!(err.is_not_mine());

    let mut fp = bytes.clone();
    fp[15] = 1;
    assert!(matches!(
        ProtectedKey::from_bytes(&fp),
        Err(EnvelopeError::Malformed { .. })
    ));
    assert!(matches!(
        ProtectedKey::from_bytes(&bytes[..bytes.len() - 1]),
        Err(EnvelopeError::Malformed { .. })
    ));
    assert!(ProtectedKey::from_bytes(&fake_dpapi_blob(4096)).is_ok());
    let mut zero_len = fake_dpapi_blob(1);
    zero_len[DPAPI_OFFSET - 1] = 0;
    assert!(matches!(
        ProtectedKey::from_bytes(&zero_len),
        Err(EnvelopeError::Malformed { .. })
    ));
}

/// A sealer standing in for a remote service, with the scheme-2 layout: "seals" by XOR with its
/// key byte, records that byte where DPAPI keeps its entropy, records every context it is given,
/// and can be told to fail or to return a short secret.
#[derive(Debug, Default)]
struct FakeSealer {
    key: u8,
    fail: bool,
    short: bool,
    contexts: Mutex<Vec<(KeyId, Vec<u8>)>>,
}

impl FakeSealer {
    fn new(key: u8) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// Records `context`; the service's answer when told to fail.
    fn call(&self, context: &SealContext<'_>) -> Result<(), ProviderError> {
        let mut contexts = self.contexts.lock().unwrap();
        contexts.push((context.key_id(), context.header().to_vec()));
        if self.fail {
            return Err(ProviderError::Other(
                "the key service is unreachable".into(),
            ));
        }
        Ok(())
    }

    fn xor(&self, bytes: &[u8]) -> Vec<u8> {
        bytes.iter().map(|b| b ^ self.key).collect()
    }
}

impl private::InCrate for FakeSealer {}

impl Sealer for FakeSealer {
    fn scheme(&self) -> Scheme {
        Scheme::Dpapi
    }

    fn seal(
        &self,
        secret: &[u8; KEY_LEN],
        context: &SealContext<'_>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.call(context)?;
        Ok(dpapi::join_sealed(&[self.key; 32], &self.xor(secret)).unwrap())
    }

    fn unseal(
        &self,
        sealed: &[u8],
        context: &SealContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        self.call(context)?;
        let (_, inner) = dpapi::split_sealed(sealed).unwrap();
        let mut plain = Zeroizing::new(self.xor(inner));
        if self.short {
            plain.pop();
        }
        Ok(plain)
    }

    fn recognizes(&self, sealed: &[u8]) -> bool {
        sealed[..32] == [self.key; 32]
    }
}

impl MasterKeyProvider for FakeSealer {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::Sealer(self))
    }
}

#[test]
fn a_sealer_seals_a_fresh_secret_bound_to_the_header() {
    let sealer = FakeSealer::new(7);
    let key = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &sealer).unwrap();
    let bytes = blob.to_bytes();
    assert_eq!((blob.scheme(), blob.fingerprint()), (Scheme::Dpapi, None));
    assert_eq!(&bytes[10..26], &[0; 16]);
    assert_eq!(blob.sealed_secret()[..32], [7; 32]);
    assert_eq!(bytes.len(), MASTER_KEY_BLOB_LEN + 34 + KEY_LEN);
    assert!(blob.is_protected_by(&sealer).unwrap());
    assert_eq!(
        blob.unprotect(&sealer).unwrap().expose_secret(),
        key.expose_secret()
    );
    let again = ProtectedKey::protect(&key, &sealer).unwrap();
    assert_ne!(again.sealed_secret(), blob.sealed_secret(), "fresh secret");
    let contexts = sealer.contexts.lock().unwrap();
    assert_eq!(contexts.len(), 3);
    for (key_id, header) in &contexts[..2] {
        assert_eq!(*key_id, key.id());
        assert_eq!(header[..], bytes[..HEADER_LEN]);
    }
}

#[test]
fn a_failing_sealer_is_a_typed_error() {
    let key = DataKey::generate().unwrap();
    let down = FakeSealer {
        fail: true,
        ..FakeSealer::new(7)
    };
    let err = ProtectedKey::protect(&key, &down).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::Provider(ProviderError::Other(_))),
        "{err:?}"
    );
    let blob = ProtectedKey::protect(&key, &FakeSealer::new(7)).unwrap();
    let err = blob.unprotect(&down).unwrap_err();
    assert_eq!(err.to_string(), "the key service is unreachable");
    assert!(!err.is_not_mine());
    let short = FakeSealer {
        short: true,
        ..FakeSealer::new(7)
    };
    assert!(matches!(
        blob.unprotect(&short),
        Err(EnvelopeError::Corrupt)
    ));
}

#[test]
fn another_sealer_key_is_not_mine() {
    let key = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &FakeSealer::new(7)).unwrap();
    let other = FakeSealer::new(8);
    assert!(!blob.is_protected_by(&other).unwrap());
    let err = blob.unprotect(&other).unwrap_err();
    assert!(
        matches!(
            err,
            EnvelopeError::OtherSealerKey {
                scheme: Scheme::Dpapi
            }
        ),
        "{err:?}"
    );
    assert!(err.is_not_mine());
    assert!(other.contexts.lock().unwrap().is_empty(), "never unsealed");
    let master = blob.unprotect(&fixed(1)).unwrap_err();
    assert!(matches!(master, EnvelopeError::SchemeMismatch { .. }));
}

#[test]
fn a_sealed_secret_moved_into_another_blob_does_not_open_it() {
    let sealer = FakeSealer::new(7);
    let a = ProtectedKey::protect(&DataKey::generate().unwrap(), &sealer).unwrap();
    let b = ProtectedKey::protect(&DataKey::generate().unwrap(), &sealer).unwrap();
    let (a, b) = (a.into_bytes(), b.into_bytes());
    let end = b.len() - SEALED_LEN;
    let graft = [
        &b[..SEALED_SECRET_OFFSET],
        &a[SEALED_SECRET_OFFSET..end],
        &b[end..],
    ]
    .concat();
    let graft = ProtectedKey::from_bytes(&graft).unwrap();
    assert!(matches!(
        graft.unprotect(&sealer),
        Err(EnvelopeError::Corrupt)
    ));
}

#[test]
fn debug_shows_no_secret() {
    let p = fixed(0xA5);
    let key = DataKey::from_bytes(&[0x5A; 32]).unwrap();
    let blob = ProtectedKey::protect(&key, &p).unwrap();
    let text = format!("{blob:?} {p:?}");
    assert!(text.contains(&key.id().to_string()), "{text}");
    for needle in ["a5a5", "5a5a", "165", "90,"] {
        assert!(!text.contains(needle), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Test vectors: `cargo test -p strongbox --lib write_keyblob_vectors -- --ignored` regenerates
// tests/vectors/keyblob/ (deterministic: fixed keys and salts). The files are checked in and
// read by tests/keyblob_vectors.rs.

fn vector(
    name: &str,
    comment: &str,
    master: &[u8; 32],
    expect: &str,
    key: Option<&DataKey>,
    blob: &[u8],
) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/keyblob");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = format!(
        "# {comment}\nmaster_key: {}\nexpect: {expect}\n",
        hex(master)
    );
    if let Some(key) = key {
        text.push_str(&format!(
            "data_key: {}\nkey_id: {}\n",
            hex(key.expose_secret()),
            key.id()
        ));
    }
    // One line of hex per 32 blob bytes keeps the files readable.
    for chunk in blob.chunks(32) {
        text.push_str(&format!("blob: {}\n", hex(chunk)));
    }
    std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
}

fn master_blob(master: &[u8; 32], key: &DataKey, key_id: KeyId, salt: &[u8; 32]) -> Vec<u8> {
    let m = crate::key::MasterKey::from_bytes(master).unwrap();
    let pre = prefix(
        &header(Scheme::MasterKey, *m.fingerprint().as_bytes(), key_id),
        salt,
        &[],
    );
    seal(pre, master, key)
}

/// A generated failure vector: name, description, expected outcome, blob.
type Altered = (&'static str, &'static str, &'static str, Vec<u8>);

#[test]
#[ignore = "writes tests/vectors/keyblob/"]
fn write_keyblob_vectors() {
    let m1: [u8; 32] = std::array::from_fn(|i| i as u8);
    let m2 = [0xff; 32];
    let k1 = DataKey::from_bytes(&std::array::from_fn::<u8, 32, _>(|i| 0xa0 + i as u8)).unwrap();
    let k2 = DataKey::from_bytes(&[0x42; 32]).unwrap();
    let salt1: [u8; 32] = std::array::from_fn(|i| 0x10 + i as u8);
    let b1 = master_blob(&m1, &k1, k1.id(), &salt1);
    let b2 = master_blob(&m2, &k2, k2.id(), &[0; 32]);

    let (ok, ok2) = ("ok_master_key", "ok_master_key_2");
    vector(ok, "scheme 1, master key 00..1f", &m1, "ok", Some(&k1), &b1);
    let comment = "scheme 1, all-ff master key, zero salt";
    vector(ok2, comment, &m2, "ok", Some(&k2), &b2);
    let comment = "ok_master_key's blob, another master key";
    vector(
        "fail_wrong_master_key",
        comment,
        &m2,
        "wrong_master_key",
        None,
        &b1,
    );
    let forged = (
        "fail_forged_key_id",
        "correctly sealed under the master key, but the header names another key id",
        "corrupt",
        master_blob(&m1, &k1, k2.id(), &salt1),
    );
    let altered = altered_blobs(&b1).into_iter().chain([forged]);
    for (name, comment, expect, blob) in altered.chain(dpapi_blobs()) {
        vector(name, comment, &m1, expect, None, &blob);
    }
}

/// One bit of `ok_master_key`'s blob flipped: name, description, expected outcome, byte, bit.
#[rustfmt::skip]
const FLIPS: [(&str, &str, &str, usize, u8); 6] = [
    ("fail_tag_flipped", "last byte of the GCM tag flipped", "corrupt", 121, 0x01),
    ("fail_ciphertext_flipped", "first ciphertext byte flipped", "corrupt", 74, 0x80),
    ("fail_salt_flipped", "first salt byte flipped", "corrupt", 42, 0x01),
    ("fail_key_id_altered", "header key id altered (bound as associated data)", "corrupt", 30,
     0x04),
    ("fail_fingerprint_altered", "header fingerprint altered: reported as another master key",
     "wrong_master_key", 12, 0x10),
    ("fail_bad_magic", "magic byte altered", "not_a_key_blob", 0, 0x20),
];

/// `b1` with one byte changed, shortened or lengthened.
fn altered_blobs(b1: &[u8]) -> Vec<Altered> {
    let with = |i: usize, change: &dyn Fn(&mut u8)| {
        let mut b = b1.to_vec();
        change(&mut b[i]);
        b
    };
    let mut v: Vec<Altered> = FLIPS
        .into_iter()
        .map(|(name, comment, expect, i, bit)| (name, comment, expect, with(i, &|b| *b ^= bit)))
        .collect();
    v.extend([
        (
            "fail_version_2",
            "version 2 is not defined",
            "unsupported_version",
            with(8, &|b| *b = 2),
        ),
        (
            "fail_scheme_5",
            "scheme 5 is not defined",
            "unsupported_scheme",
            with(9, &|b| *b = 5),
        ),
        (
            "fail_truncated",
            "last byte missing",
            "malformed",
            b1[..121].to_vec(),
        ),
        (
            "fail_trailing_byte",
            "one byte appended",
            "malformed",
            [b1, &[0]].concat(),
        ),
        (
            "fail_header_only",
            "the 42-byte header alone",
            "malformed",
            b1[..42].to_vec(),
        ),
        ("fail_empty", "no bytes", "not_a_key_blob", Vec::new()),
    ]);
    v
}

/// Scheme 2 (DPAPI) blobs that never open with a master key.
fn dpapi_blobs() -> Vec<Altered> {
    let dpapi = fake_dpapi_blob(64);
    let mut nonzero_fingerprint = dpapi.clone();
    nonzero_fingerprint[10] = 1;
    let mut length_mismatch = dpapi.clone();
    length_mismatch[DPAPI_OFFSET - 1] += 1;
    vec![
        (
            "fail_dpapi_with_master_key",
            "a structurally valid DPAPI blob (scheme 2) opened with a master key",
            "scheme_mismatch",
            dpapi,
        ),
        (
            "fail_dpapi_nonzero_fingerprint",
            "scheme 2 with a non-zero fingerprint field",
            "malformed",
            nonzero_fingerprint,
        ),
        (
            "fail_dpapi_length_mismatch",
            "scheme 2 whose DPAPI length disagrees with the blob length",
            "malformed",
            length_mismatch,
        ),
    ]
}
