//! Runs the README's first command's program (`examples/backup_and_restore.rs`) so that it cannot
//! rot: same code, in a temporary directory.
#[allow(dead_code)]
#[path = "../examples/backup_and_restore.rs"]
mod example;

use strongbox::backup::BackupError;

#[test]
fn the_main_example_runs_and_checks_what_it_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let mut printed = Vec::new();
    let outcome = example::run(tmp.path(), &mut printed).unwrap();
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
    {
        use std::os::unix::fs::PermissionsExt;
        let master = std::fs::metadata(tmp.path().join("master.key")).unwrap();
        assert_eq!(master.permissions().mode() & 0o777, 0o600);
    }
}
