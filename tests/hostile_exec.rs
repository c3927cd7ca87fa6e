//! Hostile key programs for the Exec provider: floods of output, pipes held open by children,
//! pipes closed early, almost-right output, and programs that cannot be resolved.
#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::{KEY_B64, assert_no_secret, hex, key_bytes, script};
use strongbox::MasterKeyProvider;
use strongbox::keys::{ExecProvider, ProviderError};

/// Runs `body` as the key program with `timeout`; returns the result and how long it took.
fn run(body: &str, timeout: Duration) -> (Result<(), ProviderError>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "key.sh", body);
    let provider = ExecProvider::new(program).with_timeout(timeout);
    let start = Instant::now();
    let result = provider.fingerprint().map(|_| ());
    (result, start.elapsed())
}

fn message(err: &ProviderError) -> String {
    let text = format!("{err} {err:?}");
    assert_no_secret(&text, &key_bytes());
    text
}

#[test]
fn a_gigabyte_of_output_is_counted_not_kept() {
    // 1 GiB, then a normal exit: read to the end through a 4 KiB buffer, reported by length.
    let (result, _) = run("head -c 1073741824 /dev/zero", Duration::from_secs(60));
    match result {
        Err(ref e @ ProviderError::ExecWrongLength { len, .. }) => {
            assert_eq!(len, 1 << 30);
            assert!(message(e).contains("1073741824 bytes"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn endless_output_ends_at_the_timeout() {
    let (result, took) = run("exec yes", Duration::from_secs(1));
    assert!(
        matches!(result, Err(ProviderError::ExecTimeout { .. })),
        "{result:?}"
    );
    // A liveness bound, not a performance assertion: the timeout fired instead of reading forever.
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_child_holding_stdout_while_the_program_hangs_does_not_stop_the_timeout() {
    // The program forks a child that keeps stdout (and stderr) open far past the timeout, then
    // hangs itself: the timeout kills the program and returns without waiting for the child.
    let (result, took) = run(
        "(sleep 60; echo late) & echo starting >&2; sleep 60",
        Duration::from_millis(500),
    );
    match result {
        Err(ref e @ ProviderError::ExecTimeout { ref stderr, .. }) => {
            assert_eq!(stderr, "starting");
            message(e);
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_child_holding_stdout_after_the_key_was_printed_is_an_error() {
    // The whole key, then a child keeps the pipe open: the output is not known to be complete.
    let (result, took) = run(
        &format!("printf '{KEY_B64}'; (sleep 60) & exit 0"),
        Duration::from_millis(500),
    );
    assert!(
        matches!(result, Err(ProviderError::ExecOutputHeldOpen { .. })),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn stdout_closed_early() {
    // Closed before writing anything, the program still running for a while: nothing read.
    let (result, _) = run("exec 1>&-; sleep 0.3; exit 0", Duration::from_secs(10));
    assert!(
        matches!(result, Err(ProviderError::ExecWrongLength { len: 0, .. })),
        "{result:?}"
    );
    // Closed half way through the key: the half is reported by its length only.
    let half = &KEY_B64[..22];
    let (result, _) = run(
        &format!("printf '{half}'; exec 1>&-; sleep 0.3; exit 0"),
        Duration::from_secs(10),
    );
    match result {
        Err(ref e @ ProviderError::ExecWrongLength { len: 22, .. }) => {
            assert!(!message(e).contains(half));
        }
        other => panic!("{other:?}"),
    }
    // Closed early and then failing: the exit status wins.
    let (result, _) = run("exec 1>&-; exit 3", Duration::from_secs(10));
    assert!(
        matches!(result, Err(ProviderError::ExecFailed { code: Some(3), .. })),
        "{result:?}"
    );
}

#[test]
fn whitespace_around_a_text_key_is_ignored_but_never_inside_its_length() {
    let hexkey = hex(&key_bytes());
    // Whitespace around base64 or hex is ignored, as in key files.
    for printed in [
        format!("{KEY_B64} "),
        format!("{KEY_B64} \n"),
        format!(" {KEY_B64}"),
        format!("{hexkey} "),
        format!("{hexkey}\t\n"),
    ] {
        let (result, _) = run(&format!("printf '{printed}'"), Duration::from_secs(10));
        assert!(result.is_ok(), "{printed:?}: {result:?}");
    }
    // The right total length, with a space inside the key's length.
    for printed in [
        format!("{} ", &KEY_B64[..43]),
        format!("{} ", &hexkey[..63]),
    ] {
        let (result, _) = run(&format!("printf '{printed}'"), Duration::from_secs(10));
        match result {
            Err(
                ref e @ (ProviderError::ExecWrongLength { .. }
                | ProviderError::ExecBadEncoding { .. }),
            ) => {
                let text = message(e);
                assert!(!text.contains(&KEY_B64[..12]), "{text}");
                assert!(!text.contains(&hexkey[..16]), "{text}");
            }
            other => panic!("{printed:?}: {other:?}"),
        }
    }
}

#[test]
fn a_symlink_loop_as_program_is_a_prompt_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let err = ExecProvider::new(&a).fingerprint().unwrap_err();
    let text = message(&err);
    assert!(text.contains(&a.display().to_string()), "{text}");
    assert!(
        matches!(
            err,
            ProviderError::ExecIo { .. } | ProviderError::ExecNotFound { .. }
        ),
        "{err:?}"
    );

    // A symlink to a directory, and a directory: not programs.
    std::os::unix::fs::symlink(dir.path(), dir.path().join("d")).unwrap();
    for program in [dir.path().join("d"), dir.path().to_path_buf()] {
        let err = ExecProvider::new(&program).fingerprint().unwrap_err();
        assert!(
            matches!(err, ProviderError::ExecNotExecutable { .. }),
            "{program:?}: {err:?}"
        );
    }
}
