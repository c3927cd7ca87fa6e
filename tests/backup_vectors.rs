//! The backup test vectors (`tests/vectors/backup/*.txt`, format in that folder's README.md),
//! each restored and verified through the public API with the master keys the vectors are made
//! for: `verify` must reach the same outcome as `restore`, read from the files and from memory,
//! and `import_chain` the same outcome for every logical vector.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;

use common::vectors::{dir, files, meta, names};
use common::{hex, unhex};
use strongbox::backup::{
    BackupError, BackupInput, BackupKind, Channel, MasterKeys, RestoreConfig, VerifyConfig,
    import_chain, inspect, restore, verify,
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
    let mut out: Vec<String> = common::listing::listing(root)
        .into_iter()
        .filter_map(|(path, content)| {
            Some(format!("{}: {}", path.to_string_lossy(), hex(&content?)))
        })
        .collect();
    out.sort();
    out
}

/// The vector's files as readers, in memory.
fn in_memory(files: &[PathBuf]) -> Vec<BackupInput> {
    files
        .iter()
        .map(|f| BackupInput::reader(f.clone(), Cursor::new(fs::read(f).unwrap())))
        .collect()
}

/// A verification of the vector's files (from memory with `memory`), with its key and options.
fn checks(name: &str, files: &[PathBuf], memory: bool) -> VerifyConfig {
    let meta = meta(name);
    let mut checks = match memory {
        false => VerifyConfig::new(files),
        true => VerifyConfig::from_inputs(in_memory(files)),
    };
    if let Some(text) = meta.get("key").filter(|k| *k != "none") {
        checks = checks.with_key(DataKey::from_bytes(&unhex(text)).unwrap());
    }
    if meta
        .get("allow_unauthenticated_members")
        .map(String::as_str)
        == Some("yes")
    {
        checks = checks.dangerously_allow_unauthenticated_members();
    }
    checks
}

/// Whether the vector's first file is a logical backup (by its unauthenticated manifest).
fn is_logical(files: &[PathBuf]) -> bool {
    inspect(&files[0]).is_ok_and(|info| info.manifest().kind() != BackupKind::Snapshot)
}

/// Verifying from memory, and for a logical vector importing from memory, end as verifying the
/// files does (`expected`: the variant of the error, if any); an import receives the exports.
fn check_other_forms(name: &str, files: &[PathBuf], expected: Option<String>) {
    let keys = master_keys();
    let from_memory = verify(&checks(name, files, true), &keys, Channel::Authenticated);
    assert_eq!(
        from_memory.as_ref().err().map(variant),
        expected,
        "{name}: from memory"
    );
    if !is_logical(files) {
        return;
    }
    let mut imported = Vec::new();
    let config = checks(name, files, true);
    let outcome = import_chain(&config, &keys, Channel::Authenticated, |_, export| {
        let mut bytes = Vec::new();
        export.read_to_end(&mut bytes)?;
        imported.push(bytes);
        Ok(())
    });
    assert_eq!(
        outcome.as_ref().err().map(variant),
        expected,
        "{name}: import"
    );
    if let Ok(report) = outcome {
        let total: usize = imported.iter().map(Vec::len).sum();
        assert_eq!(
            (report.files, report.bytes),
            (files.len() as u64, total as u64)
        );
    }
}

fn run(name: &str, tmp: &Path) {
    let meta = meta(name);
    let files = files(name);
    assert!(!files.is_empty(), "{name}: no .sbx file");
    let target = tmp.join(name);
    let mut config = RestoreConfig::new(&files, &target);
    if let Some(text) = meta.get("key").filter(|k| *k != "none") {
        config = config.with_key(DataKey::from_bytes(&unhex(text)).unwrap());
    }
    if meta
        .get("allow_unauthenticated_members")
        .map(String::as_str)
        == Some("yes")
    {
        config = config.dangerously_allow_unauthenticated_members();
    }
    let verified = verify(
        &checks(name, &files, false),
        &master_keys(),
        Channel::Authenticated,
    );
    let got = restore(&config, &master_keys(), Channel::Authenticated);
    assert_eq!(
        verified.as_ref().err().map(variant),
        got.as_ref().err().map(variant),
        "{name}: verify and restore disagree"
    );
    check_other_forms(name, &files, got.as_ref().err().map(variant));
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
