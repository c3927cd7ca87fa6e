//! The key blob test vectors (tests/vectors/keyblob/*.txt), each checked two ways: through the
//! crate's public API, and (for the `ok` vectors) by an independent decryptor written from
//! docs/KEYBLOB.md with `ring` alone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{InMemory, hex, unhex};
use ring::{aead, hkdf};
use secrecy::ExposeSecret as _;
use strongbox::keys::EnvelopeError;
use strongbox::{MasterKey, ProtectedKey};

struct Vector {
    name: String,
    fields: BTreeMap<String, String>,
    blob: Vec<u8>,
}

fn load_vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/keyblob");
    let mut vectors = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut fields = BTreeMap::new();
        let mut blob = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(": ")
                .unwrap_or((line.trim_end_matches(':'), ""));
            if key == "blob" {
                blob.extend(unhex(value.trim()));
            } else {
                fields.insert(key.to_string(), value.trim().to_string());
            }
        }
        vectors.push(Vector {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            fields,
            blob,
        });
    }
    vectors.sort_by(|a, b| a.name.cmp(&b.name));
    vectors
}

fn error_name(e: &EnvelopeError) -> &'static str {
    match e {
        EnvelopeError::NotAKeyBlob => "not_a_key_blob",
        EnvelopeError::UnsupportedVersion { .. } => "unsupported_version",
        EnvelopeError::UnsupportedScheme { .. } => "unsupported_scheme",
        EnvelopeError::Malformed { .. } => "malformed",
        EnvelopeError::TooLarge { .. } => "too_large",
        EnvelopeError::WrongMasterKey { .. } => "wrong_master_key",
        EnvelopeError::SchemeMismatch { .. } => "scheme_mismatch",
        EnvelopeError::KeyIdMismatch { .. } => "key_id_mismatch",
        EnvelopeError::Corrupt => "corrupt",
        _ => "other",
    }
}

#[test]
fn keyblob_vectors() {
    let vectors = load_vectors();
    assert!(vectors.len() >= 15, "only {} vectors found", vectors.len());
    let mut ok = 0;
    let mut fail = 0;
    for v in &vectors {
        let expect = &v.fields["expect"];
        assert_eq!(
            v.name.starts_with("fail_"),
            expect != "ok",
            "{}: fail_* vectors and only they expect an error",
            v.name
        );
        let master = MasterKey::from_bytes(&unhex(&v.fields["master_key"])).unwrap();
        let provider = InMemory(master);
        let result = ProtectedKey::from_bytes(&v.blob).and_then(|b| b.unprotect(&provider));
        match (expect.as_str(), result) {
            ("ok", Ok(key)) => {
                assert_eq!(hex(key.expose_secret()), v.fields["data_key"], "{}", v.name);
                assert_eq!(key.id().to_string(), v.fields["key_id"], "{}", v.name);
                let blob = ProtectedKey::from_bytes(&v.blob).unwrap();
                assert_eq!(blob.key_id(), key.id(), "{}", v.name);
                assert_eq!(blob.fingerprint(), Some(provider.0.fingerprint()));
                assert_eq!(blob.as_bytes(), &v.blob[..]);
                ok += 1;
            }
            ("ok", Err(e)) => panic!("{}: expected ok, got {e:?}", v.name),
            (expected, Ok(_)) => panic!("{}: expected {expected}, but it opened", v.name),
            (expected, Err(e)) => {
                assert_eq!(error_name(&e), expected, "{}: {e:?}", v.name);
                fail += 1;
            }
        }
        // The independent decryptor agrees on every vector.
        let independent = independent_open(&v.blob, &unhex(&v.fields["master_key"]));
        if expect == "ok" {
            assert_eq!(
                independent.map(|k| hex(&k)),
                Some(v.fields["data_key"].clone())
            );
        } else {
            assert_eq!(independent, None, "{}", v.name);
        }
    }
    assert!(ok >= 2 && fail >= 13, "ok {ok}, fail {fail}");
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(ikm)
        .expand(info, Len(len))
        .unwrap()
        .fill(&mut out)
        .unwrap();
    out
}

/// Scheme 1 of docs/KEYBLOB.md, from the spec alone. `None`: refused.
fn independent_open(blob: &[u8], master: &[u8]) -> Option<Vec<u8>> {
    if blob.len() != 122 || &blob[..8] != b"sbox-key" || blob[8] != 1 || blob[9] != 1 {
        return None;
    }
    let header = &blob[..42];
    let fingerprint = hkdf_sha256(&[], master, &[b"strongbox/v1/master-key-fingerprint"], 16);
    if header[10..26] != fingerprint[..] {
        return None;
    }
    let salt = &blob[42..74];
    let wrap = hkdf_sha256(salt, master, &[b"strongbox/v1/keyblob-wrap", header], 32);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &wrap).unwrap());
    let mut sealed = blob[74..].to_vec();
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key([0; 12]),
            aead::Aad::from(&blob[..74]),
            &mut sealed,
        )
        .ok()?
        .to_vec();
    let key_id = hkdf_sha256(&[], &plain, &[b"strongbox/v1/key-id"], 16);
    (header[26..42] == key_id[..]).then_some(plain)
}
