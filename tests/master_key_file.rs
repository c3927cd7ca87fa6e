//! `FileProvider::create_new` under the most permissive umask: the new master-key file is
//! owner-only all the same. Alone in its test binary, because the umask is the whole process's.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;

use strongbox::MasterKeyProvider;
use strongbox::keys::{FileProvider, ProviderError};

#[test]
fn a_new_master_key_file_is_owner_only_under_umask_000_and_never_replaced() {
    rustix::process::umask(rustix::fs::Mode::empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");

    let provider = FileProvider::create_new(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600, "mode {mode:o}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 32);
    // The provider reads it, and so does any File provider (the mode checks pass).
    let fingerprint = provider.fingerprint().unwrap().unwrap();
    assert_eq!(
        FileProvider::new(&path).fingerprint().unwrap(),
        Some(fingerprint)
    );

    let again = FileProvider::create_new(&path).unwrap_err();
    assert!(
        matches!(&again, ProviderError::FileExists { path: p } if *p == path),
        "{again:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let missing = FileProvider::create_new(dir.path().join("missing/master.key")).unwrap_err();
    assert!(
        matches!(missing, ProviderError::FileIo { .. }),
        "{missing:?}"
    );
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["master.key"]);
}
