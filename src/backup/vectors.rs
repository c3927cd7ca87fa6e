//! The generator of the backup test vectors in `tests/vectors/backup/` (they need a fixed salt,
//! which only the crate can set). `tests/backup_vectors.rs` restores every vector in that folder
//! through the public API; `tests/vectors/backup/README.md` describes the format.
//!
//! Regenerate with
//! `STRONGBOX_WRITE_VECTORS=1 cargo test --lib backup::vectors::write_backup_vectors -- --ignored`.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::PathBuf;

use super::{EXT_MANIFEST, EXT_WRAPPED_KEYS};
use crate::key::DataKey;
use crate::stream::{Algorithm, BackupWriter, Extension, StreamConfig};
use crate::test_hex::{hex, unhex};

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/backup"))
}

/// The data key and the protected blob of a key blob vector (`tests/vectors/keyblob/`).
fn keyblob(name: &str) -> (DataKey, Vec<u8>) {
    let text =
        fs::read_to_string(dir().parent().unwrap().join(format!("keyblob/{name}.txt"))).unwrap();
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(name))
            .collect::<String>()
    };
    let key = DataKey::from_bytes(&unhex(&field("data_key: "))).unwrap();
    (key, unhex(&field("blob: ")))
}

/// Key 1 (opens with master key 00..1f) and key 2 (opens with master key ff..ff).
fn keys() -> [(DataKey, Vec<u8>); 2] {
    [keyblob("ok_master_key"), keyblob("ok_master_key_2")]
}

/// The wrapped-keys extension holding `blobs`.
fn wrapped(blobs: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![blobs.len() as u8];
    for blob in blobs {
        out.extend_from_slice(&(blob.len() as u32).to_be_bytes());
        out.extend_from_slice(blob);
    }
    out
}

/// One backup file: its manifest fields, its key (index into [`keys`]), its payload.
#[derive(Clone)]
struct Backup {
    kind: &'static str,
    id: String,
    previous: Option<String>,
    key: Option<usize>,
    compression: &'static str,
    payload: Vec<u8>,
    /// The manifest's `key_id` when it is not the key's id in lower case.
    key_id_text: Option<String>,
    /// The wrapped-keys extension when it is not the key's blob (encrypted) or absent.
    wrapped_keys: Option<Option<Vec<u8>>>,
    /// JSON members written after the manifest's own (`,"name":value...`).
    extra_members: &'static str,
}

fn full(id: &str) -> Backup {
    Backup {
        kind: "logical-full",
        id: id.repeat(16),
        previous: None,
        key: None,
        compression: "none",
        payload: format!("full export {id}").into_bytes(),
        key_id_text: None,
        wrapped_keys: None,
        extra_members: "",
    }
}

fn incremental(id: &str, previous: &str) -> Backup {
    Backup {
        kind: "logical-incremental",
        previous: Some(previous.repeat(16)),
        payload: format!("incremental export {id}").into_bytes(),
        ..full(id)
    }
}

fn keyed(file: Backup, key: usize) -> Backup {
    Backup {
        key: Some(key),
        ..file
    }
}

fn quoted(text: Option<&str>) -> String {
    text.map_or("null".into(), |t| format!("\"{t}\""))
}

impl Backup {
    fn manifest(&self, keys: &[(DataKey, Vec<u8>); 2]) -> String {
        let (encryption, key_id) = match self.key {
            None => ("None", None),
            Some(k) => ("UseProvidedKey", Some(keys[k].0.id().to_string())),
        };
        let key_id = self.key_id_text.clone().or(key_id);
        format!(
            concat!(
                r#"{{"version":1,"kind":"{}","backup_id":"{}","database":"orders","#,
                r#""created_unix":1700000000,"compression":"{}","encryption":"{}","#,
                r#""key_id":{},"previous_backup_id":{}{}}}"#
            ),
            self.kind,
            self.id,
            self.compression,
            encryption,
            quoted(key_id.as_deref()),
            quoted(self.previous.as_deref()),
            self.extra_members,
        )
    }

    fn stream(&self, keys: &[(DataKey, Vec<u8>); 2], salt: u8) -> Vec<u8> {
        let mut exts = vec![Extension::new(
            EXT_MANIFEST,
            self.manifest(keys).into_bytes(),
        )];
        let wrapped_keys = match &self.wrapped_keys {
            Some(chosen) => chosen.clone(),
            None => self.key.map(|k| wrapped(&[&keys[k].1])),
        };
        if let Some(bytes) = wrapped_keys {
            exts.push(Extension::new(EXT_WRAPPED_KEYS, bytes));
        }
        let config = StreamConfig::default().segment_size(4096).unwrap();
        let key = self.key.map(|k| (&keys[k].0, Algorithm::Aes256Gcm));
        let mut w = BackupWriter::create(Vec::new(), key, &config, exts, [salt; 32]).unwrap();
        w.write_all(&self.payload).unwrap();
        w.finish().unwrap()
    }
}

/// A vector: one file or a chain, the key given (index into [`keys`]), the outcome.
struct Vector {
    name: &'static str,
    description: &'static str,
    files: Vec<Backup>,
    key: Option<usize>,
    allow_unauthenticated_members: bool,
    /// The restored files (name, content), or the `BackupError` variant.
    expect: Result<Vec<(String, Vec<u8>)>, &'static str>,
}

fn fail(
    name: &'static str,
    description: &'static str,
    files: Vec<Backup>,
    key: Option<usize>,
    variant: &'static str,
) -> Vector {
    Vector {
        name,
        description,
        files,
        key,
        allow_unauthenticated_members: false,
        expect: Err(variant),
    }
}

/// The exports a logical chain restores to.
fn exports(files: &[Backup]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("{i:04}-{}.export", f.kind), f.payload.clone()))
        .collect()
}

fn ok(
    name: &'static str,
    description: &'static str,
    files: Vec<Backup>,
    key: Option<usize>,
) -> Vector {
    Vector {
        name,
        description,
        expect: Ok(exports(&files)),
        files,
        key,
        allow_unauthenticated_members: false,
    }
}

fn bomb() -> Backup {
    let mut zeros = Vec::new();
    io::repeat(0)
        .take(64 << 20)
        .read_to_end(&mut zeros)
        .unwrap();
    Backup {
        compression: "zstd",
        payload: zstd::encode_all(&zeros[..], 3).unwrap(),
        ..full("b0")
    }
}

fn build_vectors() -> Vec<Vector> {
    let mut v = policy_vectors();
    v.extend(policy_refusals());
    v.extend(manifest_vectors());
    v.extend(wrapped_keys_vectors());
    v.push(fail(
        "fail_zstd_bomb",
        "a zstd payload of about 2 KiB that expands to 64 MiB of zeros (over the default limit: \
         1024 times the file, at least 16 MiB)",
        vec![bomb()],
        None,
        "ExpansionLimit",
    ));
    v
}

/// The restore policy: a restore is as strong as its weakest member.
fn policy_vectors() -> Vec<Vector> {
    let chain = vec![keyed(full("11"), 0), keyed(incremental("12", "11"), 0)];
    let injected = vec![keyed(full("11"), 0), incremental("12", "11")];
    let mut allowed = ok(
        "ok_integrity_only_incremental_allowed",
        "an integrity-only incremental after an encrypted full backup, key 1 given, \
         integrity-only members explicitly allowed",
        injected,
        Some(0),
    );
    allowed.allow_unauthenticated_members = true;
    vec![
        ok(
            "ok_encrypted_chain",
            "a full and an incremental backup encrypted with key 1; no key given: the wrapped \
             copy opens with master key 00..1f",
            chain.clone(),
            None,
        ),
        ok(
            "ok_encrypted_chain_key_given",
            "the same chain, key 1 given",
            chain,
            Some(0),
        ),
        ok(
            "ok_integrity_only_chain",
            "a full and an incremental integrity-only backup, no key",
            vec![full("21"), incremental("22", "21")],
            None,
        ),
        allowed,
    ]
}

/// The restore policy's refusals.
fn policy_refusals() -> Vec<Vector> {
    let injected = vec![keyed(full("11"), 0), incremental("12", "11")];
    let mut key_for_unencrypted_allowed = fail(
        "fail_key_for_unencrypted_full_allowed",
        "an integrity-only full backup, key 1 given, integrity-only members explicitly allowed \
         (the override never lets a key be given for backups that are not encrypted)",
        vec![full("42")],
        Some(0),
        "KeyForUnencryptedBackup",
    );
    key_for_unencrypted_allowed.allow_unauthenticated_members = true;
    vec![
        fail(
            "fail_integrity_only_incremental",
            "an integrity-only incremental after an encrypted full backup, no key given",
            injected.clone(),
            None,
            "IntegrityOnlyMember",
        ),
        fail(
            "fail_integrity_only_incremental_key_given",
            "an integrity-only incremental after an encrypted full backup, key 1 given",
            injected,
            Some(0),
            "IntegrityOnlyMember",
        ),
        fail(
            "fail_integrity_only_full_encrypted_incremental",
            "an integrity-only full backup followed by an incremental encrypted with key 1",
            vec![full("31"), keyed(incremental("32", "31"), 0)],
            None,
            "IntegrityOnlyMember",
        ),
        fail(
            "fail_key_for_unencrypted_full",
            "an integrity-only full backup, key 1 given",
            vec![full("41")],
            Some(0),
            "KeyForUnencryptedBackup",
        ),
        key_for_unencrypted_allowed,
        fail(
            "fail_member_key_mismatch",
            "a full backup encrypted with key 1, an incremental with key 2; no key given, both \
             wrapped copies open",
            vec![keyed(full("51"), 0), keyed(incremental("52", "51"), 1)],
            None,
            "MemberKeyMismatch",
        ),
    ]
}

/// The manifest's ids in lower case only, and each member once.
fn manifest_vectors() -> Vec<Vector> {
    let upper_id = Backup {
        id: "AB".repeat(16),
        ..keyed(full("ab"), 0)
    };
    let upper_previous = Backup {
        previous: Some("AB".repeat(16)),
        ..keyed(incremental("ac", "ab"), 0)
    };
    let upper_key_id = Backup {
        key_id_text: Some(keys()[0].0.id().to_string().to_uppercase()),
        ..keyed(full("aa"), 0)
    };
    vec![
        fail(
            "fail_backup_id_upper_case",
            "backup_id in upper-case hex",
            vec![upper_id],
            Some(0),
            "Malformed",
        ),
        fail(
            "fail_previous_backup_id_upper_case",
            "previous_backup_id in upper-case hex",
            vec![keyed(full("ab"), 0), upper_previous],
            Some(0),
            "Malformed",
        ),
        fail(
            "fail_key_id_upper_case",
            "the manifest's key_id in upper-case hex",
            vec![upper_key_id],
            Some(0),
            "Malformed",
        ),
        fail(
            "fail_manifest_member_twice",
            "a manifest with the member backup_id given twice (the second a valid id too); key 1 \
             given",
            vec![Backup {
                extra_members: r#","backup_id":"69696969696969696969696969696969""#,
                ..keyed(full("6a"), 0)
            }],
            Some(0),
            "Malformed",
        ),
    ]
}

/// `backup` with its wrapped-keys extension replaced: `None` leaves it out.
fn with_wrapped(bytes: Option<Vec<u8>>, backup: Backup) -> Backup {
    Backup {
        wrapped_keys: Some(bytes),
        ..backup
    }
}

/// The wrapped-keys extension's rules: present exactly when the backup is encrypted.
fn wrapped_keys_vectors() -> Vec<Vector> {
    let key1_blob = keys()[0].1.clone();
    let mut v = vec![
        fail(
            "fail_wrapped_keys_missing",
            "an encrypted backup without the wrapped-keys extension, key 1 given (the header \
             authenticates)",
            vec![with_wrapped(None, keyed(full("61"), 0))],
            Some(0),
            "MalformedWrappedKeys",
        ),
        fail(
            "fail_wrapped_keys_in_integrity_only",
            "an integrity-only backup with a wrapped-keys extension",
            vec![with_wrapped(Some(wrapped(&[&key1_blob])), full("62"))],
            None,
            "MalformedWrappedKeys",
        ),
        fail(
            "fail_wrapped_keys_not_a_blob",
            "a wrapped-keys extension whose one copy is 3 bytes, not a key blob; key 1 given (the \
             header authenticates)",
            vec![with_wrapped(
                Some(vec![1, 0, 0, 0, 3, 1, 2, 3]),
                keyed(full("63"), 0),
            )],
            Some(0),
            "MalformedWrappedKeys",
        ),
        fail(
            "fail_wrapped_keys_missing_no_key",
            "an encrypted backup without the wrapped-keys extension, no key given (refused before \
             anything is authenticated)",
            vec![with_wrapped(None, keyed(full("65"), 0))],
            None,
            "MalformedWrappedKeys",
        ),
    ];
    v.extend(wrapped_keys_layout_vectors(&key1_blob));
    v
}

/// The wrapped-keys extension's layout: a count from 1 to 16, then exactly that many copies.
fn wrapped_keys_layout_vectors(key1_blob: &[u8]) -> Vec<Vector> {
    let mut trailing = wrapped(&[key1_blob]);
    trailing.push(0);
    let mut past_end = wrapped(&[key1_blob]);
    let len = (key1_blob.len() as u32 + 1).to_be_bytes();
    past_end[1..5].copy_from_slice(&len);
    vec![
        fail(
            "fail_wrapped_keys_count_zero",
            "a wrapped-keys extension whose count is 0; key 1 given (the header authenticates)",
            vec![with_wrapped(Some(vec![0]), keyed(full("66"), 0))],
            Some(0),
            "MalformedWrappedKeys",
        ),
        fail(
            "fail_wrapped_keys_count_17",
            "a wrapped-keys extension with 17 copies of key 1's blob (at most 16); key 1 given",
            vec![with_wrapped(
                Some(wrapped(&[key1_blob; 17])),
                keyed(full("67"), 0),
            )],
            Some(0),
            "MalformedWrappedKeys",
        ),
        fail(
            "fail_wrapped_keys_length_past_end",
            "a wrapped-keys extension whose one copy's length is one more than the bytes left; \
             key 1 given",
            vec![with_wrapped(Some(past_end), keyed(full("68"), 0))],
            Some(0),
            "MalformedWrappedKeys",
        ),
        fail(
            "fail_wrapped_keys_trailing_byte",
            "a byte after the last wrapped copy; key 1 given (the header authenticates)",
            vec![with_wrapped(Some(trailing), keyed(full("64"), 0))],
            Some(0),
            "MalformedWrappedKeys",
        ),
    ]
}

#[test]
#[ignore = "writes tests/vectors/backup/; run with STRONGBOX_WRITE_VECTORS=1"]
fn write_backup_vectors() {
    if std::env::var_os("STRONGBOX_WRITE_VECTORS").is_none() {
        return;
    }
    let keys = keys();
    fs::create_dir_all(dir()).unwrap();
    for v in build_vectors() {
        let key = v.key.map_or("none".into(), |k| {
            use secrecy::ExposeSecret;
            hex(keys[k].0.expose_secret())
        });
        let mut meta = format!("description: {}\nkey: {key}\n", v.description);
        if v.allow_unauthenticated_members {
            meta.push_str("allow_unauthenticated_members: yes\n");
        }
        match &v.expect {
            Ok(files) => {
                meta.push_str("expect: ok\n");
                let listing: String = files
                    .iter()
                    .map(|(name, content)| format!("{name}: {}\n", hex(content)))
                    .collect();
                fs::write(dir().join(format!("{}.expect", v.name)), listing).unwrap();
            }
            Err(variant) => meta.push_str(&format!("expect: error {variant}\n")),
        }
        fs::write(dir().join(format!("{}.txt", v.name)), meta).unwrap();
        for (path, bytes) in streams(&v, &keys) {
            fs::write(dir().join(path), bytes).unwrap();
        }
    }
}

/// The files of a vector: `NAME.sbx`, or `NAME.0.sbx`, `NAME.1.sbx`, ... for a chain.
fn streams(v: &Vector, keys: &[(DataKey, Vec<u8>); 2]) -> Vec<(String, Vec<u8>)> {
    let single = v.files.len() == 1;
    v.files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = if single {
                format!("{}.sbx", v.name)
            } else {
                format!("{}.{i}.sbx", v.name)
            };
            (name, f.stream(keys, i as u8 + 1))
        })
        .collect()
}

#[test]
fn backup_vectors_on_disk_are_the_generated_ones() {
    let keys = keys();
    for v in build_vectors() {
        for (path, bytes) in streams(&v, &keys) {
            let on_disk = fs::read(dir().join(&path)).unwrap();
            assert!(on_disk == bytes, "{path} differs from its generator");
        }
    }
}
