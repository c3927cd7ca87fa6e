//! Runs the README's first command's program (`examples/backup_and_restore.rs`) so that it cannot
//! rot: same code, with the master key in a temporary directory instead of `$HOME` (the
//! home-file provider is the Unix one).
#![cfg(unix)]

#[allow(dead_code)]
#[path = "../examples/backup_and_restore.rs"]
mod example;

use std::sync::Arc;

use strongbox::{BackupError, UnixHomeFileProvider};

#[test]
fn the_main_example_runs_and_checks_what_it_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let master = Arc::new(UnixHomeFileProvider::at(tmp.path().join("home/secret.key")));
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut printed = Vec::new();
    let outcome = example::run(master, &work, &mut printed).unwrap();
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
    assert!(tmp.path().join("home/secret.key").exists());
}
