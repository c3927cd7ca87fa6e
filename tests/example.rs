//! Runs the README's first command's program (`examples/backup_and_restore.rs`) so that it cannot
//! rot: same code, with the platform's default master key. On Unix that is the home-file
//! provider, here with its key in a temporary directory instead of `$HOME`; on Windows, DPAPI for
//! the current user (which writes no file).
#![cfg(any(unix, windows))]

#[allow(dead_code)]
#[path = "../examples/backup_and_restore.rs"]
mod example;

use std::sync::Arc;

use strongbox::MasterKeyProvider;
use strongbox::backup::BackupError;

#[test]
fn the_main_example_runs_and_checks_what_it_claims() {
    let tmp = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    let master: Arc<dyn MasterKeyProvider> = Arc::new(strongbox::keys::UnixHomeFileProvider::at(
        tmp.path().join("home/secret.key"),
    ));
    #[cfg(windows)]
    let master: Arc<dyn MasterKeyProvider> = strongbox::keys::default_provider().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut printed = Vec::new();
    let outcome = example::run(Arc::clone(&master), &work, &mut printed).unwrap();
    assert!(outcome.snapshot_identical);
    assert!(outcome.logical_identical);
    assert!(
        matches!(outcome.flipped_byte, BackupError::Tampered { .. }),
        "{:?}",
        outcome.flipped_byte
    );
    assert!(
        matches!(outcome.wrong_key, BackupError::WrongKey { .. }),
        "{:?}",
        outcome.wrong_key
    );
    let printed = String::from_utf8(printed).unwrap();
    assert!(printed.contains("identical: true"), "{printed}");
    assert!(
        printed.lines().count() <= 10,
        "a few clear lines:\n{printed}"
    );
    #[cfg(unix)]
    assert!(tmp.path().join("home/secret.key").exists());
    #[cfg(windows)]
    assert!(matches!(
        master.protection().unwrap(),
        strongbox::keys::Protection::Sealer(sealer)
            if sealer.scheme() == strongbox::keys::Scheme::Dpapi
    ));
}
