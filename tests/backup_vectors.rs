//! The backup test vectors (`tests/vectors/backup/*.txt`, format in that folder's README.md),
//! each restored and verified through the public API with the master keys the vectors are made
//! for: `verify` must reach the same outcome as `restore`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;

use common::vectors::{dir, files, meta, names};
use common::{hex, unhex};
use strongbox::backup::{
    BackupError, Channel, MasterKeys, RestoreConfig, VerifyConfig, restore, verify,
};
use strongbox::keys::{Protection, ProviderError};
use strongbox::{DataKey, MasterKey, MasterKeyProvider};

#[derive(Debug)]
struct Fixed(MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

/// The current master key 00..1f and the recovery master key ff..ff (the key blob vectors'
/// `ok_master_key` and `ok_master_key_2`).
fn master_keys() -> MasterKeys {
    let fixed = |bytes: Vec<u8>| -> Arc<dyn MasterKeyProvider> {
        Arc::new(Fixed(MasterKey::from_bytes(&bytes).unwrap()))
    };
    MasterKeys::new(fixed((0u8..32).collect())).with_recovery(fixed(vec![0xff; 32]))
}

/// The `BackupError` variant's name: its `Debug` text up to the first `{`, `(` or space.
fn variant(err: &BackupError) -> String {
    let text = format!("{err:?}");
    text.split(['{', '(', ' ']).next().unwrap().to_string()
}

/// Every regular file under `root`, as `relative/path: hex` lines, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            } else {
                let content = fs::read(root.join(&r)).unwrap();
                out.push(format!("{}: {}", r.to_string_lossy(), hex(&content)));
            }
        }
    }
    out.sort();
    out
}

fn run(name: &str, tmp: &Path) {
    let meta = meta(name);
    let files = files(name);
    assert!(!files.is_empty(), "{name}: no .sbx file");
    let target = tmp.join(name);
    let mut config = RestoreConfig::new(&files, &target);
    let mut checks = VerifyConfig::new(&files);
    if let Some(text) = meta.get("key").filter(|k| *k != "none") {
        let key = || DataKey::from_bytes(&unhex(text)).unwrap();
        config = config.with_key(key());
        checks = checks.with_key(key());
    }
    if meta
        .get("allow_unauthenticated_members")
        .map(String::as_str)
        == Some("yes")
    {
        config = config.dangerously_allow_unauthenticated_members();
        checks = checks.dangerously_allow_unauthenticated_members();
    }
    let verified = verify(&checks, &master_keys(), Channel::Authenticated);
    let got = restore(&config, &master_keys(), Channel::Authenticated);
    assert_eq!(
        verified.as_ref().err().map(variant),
        got.as_ref().err().map(variant),
        "{name}: verify and restore disagree"
    );
    if let (Ok(verified), Ok(restored)) = (&verified, &got) {
        assert_eq!(verified.authentication, restored.authentication, "{name}");
        assert_eq!(verified.bytes, restored.bytes, "{name}");
    }
    match meta["expect"].strip_prefix("error ") {
        None => {
            assert_eq!(meta["expect"], "ok", "{name}");
            assert!(name.starts_with("ok_"), "{name}");
            got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let expect = dir().join(format!("{name}.expect"));
            if expect.exists() {
                let expected: Vec<String> = fs::read_to_string(expect)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect();
                assert_eq!(listing(&target), expected, "{name}");
            }
        }
        Some(expected) => {
            assert!(name.starts_with("fail_"), "{name}");
            let err = got.err().unwrap_or_else(|| panic!("{name}: restored"));
            assert_eq!(variant(&err), expected, "{name}: {err}");
            assert!(!target.exists(), "{name}: a failed restore left its target");
        }
    }
}

#[test]
fn backup_vectors() {
    let names = names();
    assert!(names.iter().filter(|n| n.starts_with("ok_")).count() >= 4);
    assert!(names.iter().filter(|n| n.starts_with("fail_")).count() >= 13);
    let tmp = tempfile::tempdir().unwrap();
    for name in &names {
        run(name, tmp.path());
    }
}
