//! Snapshot unpacking, through the public `restore`: the input is the tar payload of a snapshot
//! backup, wrapped as `tests/backup_paths.rs` wraps its crafted archives (a manifest extension
//! and a wrapped copy of the key, encrypted under a provided key) and restored with that key.
//!
//! The mutator fixes the checksums of the headers it can find in most mutants (walking the
//! archive as a tar reader does: a header, then its data rounded up to whole blocks), so that
//! mutations reach the entries rather than stopping at the first checksum.
//!
//! Checked: no panic, hang or over-allocation, and either the restore failed and left nothing
//! beside the backup (no target, no `.restoring-` directory), or it succeeded and the target
//! holds only regular files and directories, as many files and bytes as the report counts, none
//! of them a file of the key store at the top, and nothing was written anywhere else. `verify`
//! of the same backup agrees: it fails with the same error, or succeeds with the same counts.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use strongbox::backup::{Channel, MasterKeys, RestoreConfig, VerifyConfig, restore, verify};
use strongbox::keys::{Protection, ProviderError};
use strongbox::stream::Extension;
use strongbox::{BackupWriter, DataKey, MasterKey, MasterKeyProvider, ProtectedKey, StreamConfig};

const BLOCK: usize = 512;

/// The provided key's bytes.
const KEY: [u8; 32] = [0x5a; 32];

/// A master key held in memory.
#[derive(Debug)]
struct Fixed(MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

struct Fixture {
    keys: MasterKeys,
    key: DataKey,
    extensions: Vec<Extension>,
    /// Holds `work` (the backup and the restore's target) and nothing else.
    root: tempfile::TempDir,
    work: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = MasterKeys::new(Arc::new(Fixed(MasterKey::generate().unwrap())));
        let key = DataKey::from_bytes(&KEY).unwrap();
        let manifest = format!(
            "{{\"version\":1,\"kind\":\"snapshot\",\"backup_id\":\"{}\",\"database\":\"orders\",\
             \"created_unix\":1700000000,\"compression\":\"none\",\
             \"encryption\":\"UseProvidedKey\",\"key_id\":\"{}\",\"previous_backup_id\":null}}",
            "ab".repeat(16),
            key.id()
        );
        let blob = ProtectedKey::protect(&key, &**keys.current())
            .unwrap()
            .into_bytes();
        let mut wrapped = vec![1u8];
        wrapped.extend_from_slice(&(blob.len() as u32).to_be_bytes());
        wrapped.extend_from_slice(&blob);
        let extensions = vec![Extension::new(1, manifest), Extension::new(2, wrapped)];
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        fs::create_dir(&work).unwrap();
        Fixture {
            keys,
            key,
            extensions,
            root,
            work,
        }
    })
}

/// The snapshot backup whose payload is `tar`.
fn snapshot_of(tar: &[u8], f: &Fixture) -> Vec<u8> {
    let config = StreamConfig::default().segment_size(4096).unwrap();
    let mut writer =
        BackupWriter::with_config(Vec::new(), &f.key, &config, f.extensions.clone()).unwrap();
    std::io::Write::write_all(&mut writer, tar).unwrap();
    writer.finish().unwrap()
}

/// The key store's own files, which a snapshot never restores at the top of its target.
fn is_key_store_name(name: &str) -> bool {
    let temporary = name
        .strip_prefix(".secret.key.encrypted.")
        .is_some_and(|rest| rest.ends_with(".tmp"));
    name == "secret.key.encrypted" || name == ".secret.key.lock" || temporary
}

/// Every path below `dir` (not following links), relative to `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(dir.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// Checks a successful restore's target: only regular files and directories, no key store file
/// at the top, and the report's counts.
fn check_restored(target: &Path, files: u64, bytes: u64) {
    let (mut found_files, mut found_bytes) = (0u64, 0u64);
    for rel in walk(target) {
        let meta = fs::symlink_metadata(target.join(&rel)).unwrap();
        assert!(
            meta.is_file() || meta.is_dir(),
            "{rel:?} is neither a file nor a directory"
        );
        if rel.parent() == Some(Path::new("")) {
            let name = rel.to_string_lossy();
            assert!(
                !is_key_store_name(&name),
                "the key store's {name:?} restored"
            );
        }
        if meta.is_file() {
            found_files += 1;
            found_bytes += meta.len();
        }
    }
    assert_eq!(
        (found_files, found_bytes),
        (files, bytes),
        "report disagrees"
    );
}

fuzz_target!(|tar: &[u8]| {
    let f = fixture();
    let backup = f.work.join("snapshot.sbx");
    let target = f.work.join("restored");
    fs::write(&backup, snapshot_of(tar, f)).unwrap();
    let config =
        RestoreConfig::new([&backup], &target).with_key(DataKey::from_bytes(&KEY).unwrap());
    let result = restore(&config, &f.keys, Channel::Authenticated);
    let checked = VerifyConfig::new([&backup]).with_key(DataKey::from_bytes(&KEY).unwrap());
    let checked = verify(&checked, &f.keys, Channel::Authenticated);
    match (&result, &checked) {
        (Ok(restored), Ok(verified)) => assert_eq!(
            (restored.files, restored.bytes),
            (verified.files, verified.bytes),
            "restore and verify count differently"
        ),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("restore {result:?}, verify {checked:?}"),
    }
    // The root's and `work`'s entries (what is deeper is inside one of them).
    let mut beside: Vec<String> = walk(f.root.path())
        .into_iter()
        .filter(|p| p.components().count() <= 2)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    beside.sort();
    match result {
        Ok(report) => {
            assert!(!report.key_stored, "a key stored for a provided key");
            assert_eq!(beside, ["work", "work/restored", "work/snapshot.sbx"]);
            check_restored(&target, report.files, report.bytes);
            fs::remove_dir_all(&target).unwrap();
        }
        Err(err) => {
            assert_eq!(beside, ["work", "work/snapshot.sbx"], "left behind: {err}");
            let _ = format!("{err} {err:?}");
        }
    }
});

/// Parses a tar numeric field as the tar reader does for octal: spaces and NULs around digits.
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    u64::from_str_radix(text, 8).ok()
}

/// Rewrites the checksum of each header found walking `tar` from its start, up to the first
/// zero block or a size that is not octal.
fn fix_checksums(tar: &mut [u8]) {
    let mut at = 0usize;
    while let Some(block) = tar.get_mut(at..at.saturating_add(BLOCK)) {
        if block.iter().all(|&b| b == 0) {
            return;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let Some(size) = octal(&block[124..136]).and_then(|s| usize::try_from(s).ok()) else {
            return;
        };
        at = at
            .saturating_add(BLOCK)
            .saturating_add(size.div_ceil(BLOCK).saturating_mul(BLOCK));
    }
}

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let size = libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    if !seed.is_multiple_of(4) {
        fix_checksums(&mut data[..size]);
    }
    size
});
