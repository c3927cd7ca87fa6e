//! The backup manifest and wrapped-keys parsers, through the public `inspect`.
//!
//! Input: 1 flag byte, a big-endian u16 length `n`, `n` bytes of manifest (extension 0x0001),
//! and the rest as the wrapped-keys extension (0x0002) if flag bit 1 is set. Bit 0: an encrypted
//! stream (fixed key) instead of an integrity-only one; the text `KEYID` in the manifest is
//! replaced by that key's id, so that seeds can name it. A genuine stream header is written
//! around them and `inspect` reads it back from a file.
//!
//! Checked: no panic, no over-allocation; an accepted manifest agrees with the header (key id,
//! encryption) and with its own rules (an incremental backup names its predecessor); an
//! accepted backup has the wrapped-keys extension exactly when it is encrypted, with 1 to
//! `MAX_KEY_COPIES` copies.
#![no_main]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongbox::backup::{BackupKind, inspect};
use strongbox::stream::Extension;
use strongbox::{BackupWriter, DataKey, StreamConfig};

fn key() -> &'static DataKey {
    static KEY: OnceLock<DataKey> = OnceLock::new();
    KEY.get_or_init(|| DataKey::from_bytes(&[7; 32]).unwrap())
}

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup");
        (dir, path)
    })
    .1
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let flags = data[0];
    let n = usize::from(u16::from_be_bytes([data[1], data[2]])).min(data.len() - 3);
    let (manifest, wrapped) = data[3..].split_at(n);
    let encrypted = flags & 1 != 0;
    let manifest = replace(manifest, b"KEYID", key().id().to_string().as_bytes());
    let mut extensions = vec![Extension::new(1, manifest)];
    if flags & 2 != 0 {
        extensions.push(Extension::new(2, wrapped.to_vec()));
    }
    let config = StreamConfig::default().segment_size(4096).unwrap();
    let writer = if encrypted {
        BackupWriter::with_config(Vec::new(), key(), &config, extensions)
    } else {
        BackupWriter::unencrypted(Vec::new(), &config, extensions)
    };
    let Ok(writer) = writer else {
        return; // extensions over the 1 MiB limit
    };
    let bytes = writer.finish().unwrap();
    std::fs::File::create(scratch())
        .and_then(|mut f| f.write_all(&bytes))
        .unwrap();

    match inspect(scratch()) {
        Ok(info) => {
            let m = info.manifest();
            assert_eq!(m.key_id(), info.header().key_id(), "key id disagrees");
            assert_eq!(m.is_encrypted(), encrypted, "encryption disagrees");
            assert_eq!(
                m.previous_backup_id().is_some(),
                m.kind() == BackupKind::LogicalIncremental,
                "previous backup id iff incremental"
            );
            assert_eq!(flags & 2 != 0, encrypted, "wrapped keys iff encrypted");
            let copies = info.wrapped_keys().len();
            assert_eq!(copies == 0, !encrypted, "{copies} wrapped copies");
            assert!(
                copies <= strongbox::backup::MAX_KEY_COPIES,
                "{copies} wrapped copies"
            );
            assert!(!m.database_name().is_empty());
            assert!(m.database_name().len() <= strongbox::backup::MAX_DATABASE_NAME_LEN);
            let _ = (
                m.created_at(),
                m.created_at_rfc3339(),
                m.compression(),
                m.backup_id(),
            );
            let _ = format!("{info:?} {m:?}");
            for k in info.wrapped_keys() {
                let _ = format!("{k:?}");
            }
        }
        Err(err) => {
            let _ = format!("{err} {err:?}");
        }
    }
});
