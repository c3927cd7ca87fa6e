//! The master-key providers: each one's behaviour and failures.
// Many tests need `/bin/sh` or Unix modes; on other platforms their helpers go unused.
#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

mod common;

use std::ffi::OsString;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use secrecy::ExposeSecret as _;
use strongbox::key::KeyError;
use strongbox::keys::{
    DpapiProvider, ExecProvider, FileProvider, ProviderError, UnixHomeFileProvider,
};
use strongbox::{DataKey, MasterKey, MasterKeyProvider, ProtectedKey};

fn expected_fp() -> strongbox::key::Fingerprint {
    MasterKey::from_bytes(&key_bytes()).unwrap().fingerprint()
}

// ---------------------------------------------------------------------------------------------
// Exec

#[cfg(unix)]
mod exec {
    use super::*;

    fn run(
        body: &str,
    ) -> (
        tempfile::TempDir,
        Result<Option<strongbox::key::Fingerprint>, ProviderError>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let program = script(dir.path(), "key.sh", body);
        let result = ExecProvider::new(program).fingerprint();
        (dir, result)
    }

    #[test]
    fn raw_bytes_base64_and_hex_give_the_same_key() {
        let hexkey = hex(&key_bytes());
        for body in [
            format!("printf '{}'", printf_octal(&key_bytes())),
            format!("echo '{KEY_B64}'"),
            format!("printf '%s' '{KEY_B64}'"),
            format!("printf '%s\\r\\n' '{KEY_B64}'"),
            format!("echo '{hexkey}'"),
            format!("printf '%s' '{}'", hexkey.to_uppercase()),
        ] {
            let (_dir, fp) = run(&body);
            assert_eq!(fp.unwrap(), Some(expected_fp()), "{body}");
        }
    }

    #[test]
    fn wrong_lengths_say_the_length_never_the_bytes() {
        for (bytes, len) in [
            (&[0x41u8; 31][..], 31),
            (&[0x41u8; 33][..], 33),
            (&[][..], 0),
        ] {
            let (_dir, result) = run(&format!("printf '{}'", printf_octal(bytes)));
            let err = result.unwrap_err();
            assert!(
                matches!(&err, ProviderError::ExecWrongLength { len: l, .. } if *l == len),
                "{err:?}"
            );
            let text = err.to_string();
            assert!(text.contains(&format!("printed {len} bytes")), "{text}");
            assert!(!text.contains("AAAA"), "{text}");
        }
        // Far more than the cap: counted, not kept.
        let (_dir, result) = run("head -c 100000 /dev/zero");
        assert!(matches!(
            result.unwrap_err(),
            ProviderError::ExecWrongLength { len: 100_000, .. }
        ));
    }

    #[test]
    fn garbage_is_a_bad_encoding() {
        let (_dir, result) = run(&format!("echo '{}'", "*".repeat(44)));
        assert!(matches!(
            result.unwrap_err(),
            ProviderError::ExecBadEncoding {
                source: KeyError::InvalidBase64,
                ..
            }
        ));
        let (_dir, result) = run(&format!("echo '{}'", "z".repeat(64)));
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                ProviderError::ExecBadEncoding {
                    source: KeyError::InvalidHex,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().contains("zzzz"), "{err}");
        let (_dir, result) = run("echo 'hello, I am not a key'");
        assert!(matches!(
            result.unwrap_err(),
            ProviderError::ExecWrongLength { len: 22, .. }
        ));
    }

    #[test]
    fn non_zero_exit_shows_code_and_capped_stderr() {
        let (_dir, result) = run(&format!(
            "echo 'vault is sealed' >&2; printf '{}'; exit 1",
            printf_octal(&key_bytes())
        ));
        let err = result.unwrap_err();
        match &err {
            ProviderError::ExecFailed { code, stderr, .. } => {
                assert_eq!(*code, Some(1));
                assert_eq!(stderr, "vault is sealed");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("exited with status 1"), "{err}");
        assert!(err.to_string().contains("vault is sealed"), "{err}");

        let (_dir, result) = run("yes 'vault sealed' | head -c 100000 >&2; exit 7");
        match result.unwrap_err() {
            ProviderError::ExecFailed { code, stderr, .. } => {
                assert_eq!(code, Some(7));
                assert!(stderr.len() < 1000, "{}", stderr.len());
                assert!(stderr.starts_with("vault sealed\nvault sealed"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn killed_by_a_signal() {
        let (_dir, result) = run("kill -9 $$");
        let err = result.unwrap_err();
        assert!(
            matches!(err, ProviderError::ExecFailed { code: None, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("killed by a signal"), "{err}");
    }

    #[test]
    fn a_hanging_program_is_killed_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("still-running");
        // `sleep` runs as a grandchild holding the pipes; the script itself is killed.
        let program = script(
            dir.path(),
            "hang.sh",
            &format!(
                "echo 'asking the vault' >&2; sleep 4; touch '{}'",
                marker.display()
            ),
        );
        let provider = ExecProvider::new(program).with_timeout(Duration::from_millis(300));
        let start = Instant::now();
        let err = provider.fingerprint().unwrap_err();
        let elapsed = start.elapsed();
        match &err {
            ProviderError::ExecTimeout {
                timeout, stderr, ..
            } => {
                assert_eq!(*timeout, Duration::from_millis(300));
                assert_eq!(stderr, "asking the vault");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("was killed"), "{err}");
        // Not a performance assertion: "returns without waiting for the script's sleep".
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        // Had the script not been killed, it would create the marker after its sleep.
        std::thread::sleep(Duration::from_secs(6) - elapsed);
        assert!(
            !marker.exists(),
            "the script went on after the timeout: not killed"
        );
    }

    #[test]
    fn a_grandchild_holding_the_output_open_does_not_block() {
        let (_dir, result) = {
            let dir = tempfile::tempdir().unwrap();
            let program = script(
                dir.path(),
                "bg.sh",
                &format!("sleep 30 & printf '{}'", printf_octal(&key_bytes())),
            );
            let p = ExecProvider::new(program).with_timeout(Duration::from_millis(300));
            let start = Instant::now();
            let r = p.fingerprint();
            assert!(start.elapsed() < Duration::from_secs(20));
            (dir, r)
        };
        assert!(
            matches!(result, Err(ProviderError::ExecOutputHeldOpen { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn a_failure_is_reported_without_waiting_for_a_background_process() {
        let (_dir, result) = {
            let dir = tempfile::tempdir().unwrap();
            let program = script(
                dir.path(),
                "bgfail.sh",
                "sleep 30 &\necho 'no vault' >&2; exit 3",
            );
            let p = ExecProvider::new(program).with_timeout(Duration::from_secs(25));
            let start = Instant::now();
            let r = p.fingerprint();
            // Well before the 25 s timeout: the failure does not wait on `sleep`'s pipes.
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{:?}",
                start.elapsed()
            );
            (dir, r)
        };
        match result.unwrap_err() {
            ProviderError::ExecFailed { code, stderr, .. } => {
                assert_eq!(code, Some(3));
                assert_eq!(stderr, "no vault");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_and_not_executable_programs() {
        let dir = tempfile::tempdir().unwrap();
        let err = ExecProvider::new(dir.path().join("nope"))
            .fingerprint()
            .unwrap_err();
        assert!(matches!(err, ProviderError::ExecNotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("was not found"), "{err}");
        let err = ExecProvider::new("strongbox-no-such-program-on-path")
            .fingerprint()
            .unwrap_err();
        assert!(matches!(err, ProviderError::ExecNotFound { .. }), "{err:?}");

        let program = dir.path().join("key.sh");
        write_with_mode(&program, b"#!/bin/sh\necho hi\n", 0o644);
        let err = ExecProvider::new(&program).fingerprint().unwrap_err();
        assert!(
            matches!(err, ProviderError::ExecNotExecutable { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("cannot be executed"), "{err}");

        let no_shebang = dir.path().join("noshebang");
        write_with_mode(&no_shebang, b"echo hi\n", 0o755);
        let err = ExecProvider::new(&no_shebang).fingerprint().unwrap_err();
        assert!(
            matches!(err, ProviderError::ExecNotExecutable { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn arguments_are_passed_verbatim_without_a_shell_and_stdin_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(
            dir.path(),
            "args.sh",
            &format!(
                "[ \"$#\" = 2 ] || exit 2\n[ \"$1\" = 'a b $HOME;' ] || exit 3\n\
                 [ \"$2\" = '*' ] || exit 4\nif read line; then exit 5; fi\nprintf '{}'",
                printf_octal(&key_bytes())
            ),
        );
        let provider = ExecProvider::new(program).with_args(["a b $HOME;", "*"]);
        assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
    }

    #[test]
    fn runs_once_for_many_threads_and_keeps_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let program = script(
            dir.path(),
            "once.sh",
            &format!(
                "echo run >> '{}'\nsleep 0.2\nprintf '{}'",
                count.display(),
                printf_octal(&key_bytes())
            ),
        );
        let provider = Arc::new(ExecProvider::new(program.clone()));
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (p, b) = (provider.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    p.fingerprint().unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), Some(expected_fp()));
        }
        std::fs::remove_file(&program).unwrap();
        assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "run\n");
    }

    #[test]
    fn a_failure_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag");
        let program = script(
            dir.path(),
            "flaky.sh",
            &format!(
                "if [ ! -e '{f}' ]; then touch '{f}'; echo 'not yet' >&2; exit 1; fi\nprintf '{}'",
                printf_octal(&key_bytes()),
                f = flag.display()
            ),
        );
        let provider = ExecProvider::new(program);
        assert!(matches!(
            provider.fingerprint(),
            Err(ProviderError::ExecFailed { .. })
        ));
        assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
    }

    #[test]
    fn debug_hides_arguments_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(
            dir.path(),
            "key.sh",
            &format!("printf '{}'", printf_octal(&[0xA5; 32])),
        );
        let provider = ExecProvider::new(program).with_args(["--token=hunter2"]);
        provider.fingerprint().unwrap();
        let text = format!("{provider:?} {provider:#?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("1 redacted"), "{text}");
        assert!(text.contains("Loaded("), "{text}");
        assert_no_secret(&text, &[0xA5; 32]);
    }
}

/// The Exec provider on Windows, with batch files as key programs (run through `cmd.exe` by the
/// standard library): the program is found and started, its output and exit code are read, and a
/// program that hangs is killed at the timeout. The exhaustive Exec tests above need `/bin/sh`.
#[cfg(windows)]
mod exec_windows {
    use super::*;

    /// Writes a batch file `name` (CRLF line endings) into `dir`.
    fn batch(dir: &Path, name: &str, lines: &[&str]) -> std::path::PathBuf {
        let path = dir.join(name);
        let mut text = String::from("@echo off\r\n");
        for line in lines {
            text.push_str(line);
            text.push_str("\r\n");
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_batch_file_printing_base64_or_hex_gives_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let hexkey = hex(&key_bytes());
        for (name, line) in [
            ("b64.cmd", format!("echo {KEY_B64}")),
            ("hex.bat", format!("echo {hexkey}")),
        ] {
            let program = batch(dir.path(), name, &[&line]);
            let fp = ExecProvider::new(&program).fingerprint();
            assert_eq!(fp.unwrap(), Some(expected_fp()), "{name}");
        }
    }

    #[test]
    fn arguments_reach_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let program = batch(
            dir.path(),
            "args.cmd",
            &[
                r#"if not "%~1"=="--vault" exit /b 2"#,
                r#"if not "%~2"=="prod" exit /b 3"#,
                r#"if not "%~3"=="" exit /b 4"#,
                &format!("echo {KEY_B64}"),
            ],
        );
        let provider = ExecProvider::new(&program).with_args(["--vault", "prod"]);
        assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
        let err = ExecProvider::new(&program)
            .with_args(["--vault", "test"])
            .fingerprint()
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::ExecFailed { code: Some(3), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn non_zero_exit_shows_code_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let program = batch(
            dir.path(),
            "sealed.cmd",
            &[
                "echo vault is sealed>&2",
                &format!("echo {KEY_B64}"),
                "exit /b 7",
            ],
        );
        let err = ExecProvider::new(&program).fingerprint().unwrap_err();
        match &err {
            ProviderError::ExecFailed { code, stderr, .. } => {
                assert_eq!(*code, Some(7));
                assert_eq!(stderr, "vault is sealed");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("exited with status 7"), "{err}");
        assert_no_secret(&format!("{err} {err:?}"), &key_bytes());
    }

    #[test]
    fn a_hanging_program_is_killed_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let program = batch(
            dir.path(),
            "hang.cmd",
            &["echo asking the vault>&2", ":again", "goto again"],
        );
        let provider = ExecProvider::new(&program).with_timeout(Duration::from_millis(500));
        let err = provider.fingerprint().unwrap_err();
        match &err {
            ProviderError::ExecTimeout {
                timeout, stderr, ..
            } => {
                assert_eq!(*timeout, Duration::from_millis(500));
                assert_eq!(stderr, "asking the vault");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("was killed"), "{err}");
    }

    #[test]
    fn a_missing_program_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        for program in [
            dir.path().join("nope.exe"),
            "strongbox-no-such-program-on-path".into(),
        ] {
            let err = ExecProvider::new(&program).fingerprint().unwrap_err();
            assert!(matches!(err, ProviderError::ExecNotFound { .. }), "{err:?}");
            assert!(err.to_string().contains("was not found"), "{err}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// File

fn file_provider(bytes: &[u8], mode: u32) -> (tempfile::TempDir, FileProvider) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    write_with_mode(&path, bytes, mode);
    (dir, FileProvider::new(path))
}

#[test]
fn file_accepts_raw_base64_and_hex() {
    let hexkey = hex(&key_bytes());
    for bytes in [
        key_bytes().to_vec(),
        format!("{KEY_B64}\n").into_bytes(),
        KEY_B64.as_bytes().to_vec(),
        format!("{hexkey}\r\n").into_bytes(),
    ] {
        let (_dir, provider) = file_provider(&bytes, 0o600);
        assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
    }
}

#[test]
fn file_missing_empty_and_wrong_size_are_errors_and_nothing_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let err = FileProvider::new(&path).fingerprint().unwrap_err();
    assert!(matches!(err, ProviderError::FileMissing { .. }), "{err:?}");
    assert!(
        !path.exists(),
        "a configured key file must never be generated"
    );

    write_with_mode(&path, b"", 0o600);
    let err = FileProvider::new(&path).fingerprint().unwrap_err();
    assert!(matches!(err, ProviderError::FileEmpty { .. }), "{err:?}");
    assert!(err.to_string().contains("never generates"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"");

    for (bytes, len) in [
        (vec![1u8; 31], 31),
        (vec![1u8; 33], 33),
        (vec![1u8; 10_000], 10_000),
    ] {
        write_with_mode(&path, &bytes, 0o600);
        let err = FileProvider::new(&path).fingerprint().unwrap_err();
        assert!(
            matches!(&err, ProviderError::FileWrongLength { len: l, .. } if *l == len),
            "{err:?}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the file is left alone"
        );
    }

    write_with_mode(&path, "#".repeat(44).as_bytes(), 0o600);
    let err = FileProvider::new(&path).fingerprint().unwrap_err();
    assert!(
        matches!(err, ProviderError::FileBadEncoding { .. }),
        "{err:?}"
    );

    let err = FileProvider::new(dir.path()).fingerprint().unwrap_err();
    assert!(matches!(err, ProviderError::FileIo { .. }), "{err:?}");
}

#[cfg(unix)]
#[test]
fn file_readable_by_others_is_refused_unless_opted_out() {
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        let (_dir, provider) = file_provider(&key_bytes(), mode);
        let err = provider.fingerprint().unwrap_err();
        assert!(
            matches!(&err, ProviderError::InsecurePermissions { mode: m, .. } if *m == mode),
            "{mode:o}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("chmod 600"), "{text}");
        assert!(
            text.contains("Security.MasterKey.AllowInsecurePermissions"),
            "{text}"
        );
        let allowed = FileProvider::new(provider.path()).allow_insecure_permissions(true);
        assert_eq!(allowed.fingerprint().unwrap(), Some(expected_fp()));
    }
    for mode in [0o600, 0o400] {
        let (_dir, provider) = file_provider(&key_bytes(), mode);
        assert_eq!(
            provider.fingerprint().unwrap(),
            Some(expected_fp()),
            "{mode:o}"
        );
    }
}

#[test]
fn file_is_read_once() {
    let (_dir, provider) = file_provider(&key_bytes(), 0o600);
    assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
    std::fs::write(provider.path(), [9u8; 32]).unwrap();
    assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
    std::fs::remove_file(provider.path()).unwrap();
    assert_eq!(provider.fingerprint().unwrap(), Some(expected_fp()));
}

#[test]
fn file_debug_shows_no_key() {
    let (_dir, provider) = file_provider(&[0xA5; 32], 0o600);
    provider.fingerprint().unwrap();
    let text = format!("{provider:?} {provider:#?}");
    assert!(text.contains("master.key"), "{text}");
    assert_no_secret(&text, &[0xA5; 32]);
}

// ---------------------------------------------------------------------------------------------
// UnixHomeFile

fn home_env(home: &Path) -> impl FnOnce(&str) -> Option<OsString> {
    let home = home.as_os_str().to_owned();
    move |name| (name == "HOME").then_some(home)
}

#[test]
fn home_unset_empty_or_relative_is_a_clear_error() {
    let err = UnixHomeFileProvider::from_env(|_| None).unwrap_err();
    assert!(matches!(err, ProviderError::HomeUnset), "{err:?}");
    assert!(err.to_string().contains("HOME is not set"), "{err}");
    let err = UnixHomeFileProvider::from_env(|_| Some(OsString::new())).unwrap_err();
    assert!(matches!(err, ProviderError::HomeUnset), "{err:?}");
    let err = UnixHomeFileProvider::from_env(|_| Some("relative/home".into())).unwrap_err();
    assert!(
        matches!(err, ProviderError::HomeNotAbsolute { .. }),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn home_key_is_created_owner_only_and_reused() {
    let home = tempfile::tempdir().unwrap();
    let provider = UnixHomeFileProvider::from_env(home_env(home.path())).unwrap();
    let path = home.path().join(".strongbox/secret.key");
    assert_eq!(provider.path(), path);
    assert!(!path.exists(), "construction touches no file");

    let fp = provider.fingerprint().unwrap().unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&home.path().join(".strongbox")), 0o700);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 32);
    assert_eq!(MasterKey::from_bytes(&bytes).unwrap().fingerprint(), fp);
    let entries = std::fs::read_dir(home.path().join(".strongbox"))
        .unwrap()
        .count();
    assert_eq!(entries, 1, "no temporary file is left behind");

    let again = UnixHomeFileProvider::from_env(home_env(home.path())).unwrap();
    assert_eq!(again.fingerprint().unwrap(), Some(fp));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // A blob protected under it opens with a fresh provider (the key survives restarts).
    let key = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &provider).unwrap();
    let reopened = UnixHomeFileProvider::at(&path);
    assert_eq!(blob.unprotect(&reopened).unwrap().id(), key.id());
}

#[cfg(unix)]
#[test]
fn home_key_of_wrong_size_or_mode_is_an_error_never_regenerated() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".strongbox");
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o700);
    let path = dir.join("secret.key");
    for bytes in [vec![], vec![7u8; 31], vec![7u8; 65]] {
        write_with_mode(&path, &bytes, 0o600);
        let err = UnixHomeFileProvider::at(&path).fingerprint().unwrap_err();
        assert!(
            matches!(
                err,
                ProviderError::FileEmpty { .. } | ProviderError::FileWrongLength { .. }
            ),
            "{err:?}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "must not be regenerated"
        );
    }
    write_with_mode(&path, &key_bytes(), 0o644);
    let err = UnixHomeFileProvider::at(&path).fingerprint().unwrap_err();
    assert!(
        matches!(err, ProviderError::InsecurePermissions { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("chmod 600"), "{text}");
    assert!(
        !text.contains("AllowInsecurePermissions"),
        "no opt-out for the home key: {text}"
    );
    assert_eq!(mode_of(&path), 0o644, "left alone");

    set_mode(&path, 0o600);
    set_mode(&dir, 0o777);
    let err = UnixHomeFileProvider::at(&path).fingerprint().unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::InsecurePermissions {
                expected: 0o700,
                ..
            }
        ),
        "{err:?}"
    );
    set_mode(&dir, 0o700);
    assert_eq!(
        UnixHomeFileProvider::at(&path).fingerprint().unwrap(),
        Some(expected_fp())
    );
}

#[cfg(unix)]
#[test]
fn racing_threads_create_one_home_key() {
    for _round in 0..5 {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join(".strongbox/secret.key");
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let provider = UnixHomeFileProvider::at(path);
                    barrier.wait();
                    provider.fingerprint().unwrap().unwrap()
                })
            })
            .collect();
        let fps: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(fps.iter().all(|fp| *fp == fps[0]), "{fps:?}");
        let on_disk = MasterKey::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk.fingerprint(), fps[0]);
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
    }
}

/// Child half of `racing_processes_create_one_home_key`: a no-op unless that test started it.
#[test]
fn race_child_process() {
    let Some(path) = std::env::var_os("STRONGBOX_TEST_RACE_KEY_PATH") else {
        return;
    };
    let start = std::env::var("STRONGBOX_TEST_RACE_START_MS").unwrap();
    let start: u128 = start.parse().unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    while now() < start {
        std::thread::sleep(Duration::from_millis(1));
    }
    let fp = UnixHomeFileProvider::at(path)
        .fingerprint()
        .unwrap()
        .unwrap();
    println!("RACE-FINGERPRINT {fp}");
}

#[cfg(unix)]
#[test]
fn racing_processes_create_one_home_key() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".strongbox/secret.key");
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1500;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "race_child_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("STRONGBOX_TEST_RACE_KEY_PATH", &path)
                .env("STRONGBOX_TEST_RACE_START_MS", start.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut fps = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let fp = text
            .lines()
            .find_map(|l| l.split("RACE-FINGERPRINT ").nth(1))
            .unwrap_or_else(|| panic!("no fingerprint in {text}"))
            .to_string();
        fps.push(fp);
    }
    assert!(fps.iter().all(|fp| *fp == fps[0]), "{fps:?}");
    let on_disk = MasterKey::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk.fingerprint().to_string(), fps[0]);
}

/// Child half of `a_relative_key_path_is_in_the_current_directory`: a no-op unless that test
/// started it (in its own current directory).
#[test]
fn relative_key_child_process() {
    if std::env::var_os("STRONGBOX_TEST_RELATIVE_KEY").is_none() {
        return;
    }
    let fp = UnixHomeFileProvider::at("secret.key")
        .fingerprint()
        .unwrap()
        .unwrap();
    println!("RELATIVE-FINGERPRINT {fp}");
}

#[cfg(unix)]
#[test]
fn a_relative_key_path_is_in_the_current_directory() {
    // A child process, so that no other test sees the changed current directory.
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o700);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "relative_key_child_process", "--nocapture"])
        .env("STRONGBOX_TEST_RELATIVE_KEY", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let fp = text
        .lines()
        .find_map(|l| l.split("RELATIVE-FINGERPRINT ").nth(1))
        .unwrap_or_else(|| panic!("no fingerprint in {text}"));
    let on_disk = std::fs::read(dir.path().join("secret.key")).unwrap();
    assert_eq!(
        MasterKey::from_bytes(&on_disk)
            .unwrap()
            .fingerprint()
            .to_string(),
        fp
    );
}

#[cfg(unix)]
#[test]
fn home_debug_shows_no_key() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".strongbox");
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o700);
    write_with_mode(&dir.join("secret.key"), &[0xA5; 32], 0o600);
    let provider = UnixHomeFileProvider::from_env(home_env(home.path())).unwrap();
    provider.fingerprint().unwrap();
    let text = format!("{provider:?}");
    assert!(text.contains("secret.key"), "{text}");
    assert_no_secret(&text, &[0xA5; 32]);
}

// ---------------------------------------------------------------------------------------------
// Dpapi and the default

#[cfg(not(windows))]
#[test]
fn dpapi_is_unsupported_off_windows() {
    let err = DpapiProvider::new().unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Unsupported {
                provider: "DPAPI",
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("unsupported on this platform"), "{text}");
    assert!(text.contains(std::env::consts::OS), "{text}");
}

#[cfg(unix)]
#[test]
fn the_default_on_unix_is_the_home_file() {
    // Only constructed: it touches no file until first use.
    if std::env::var_os("HOME").is_some_and(|h| !h.is_empty()) {
        let provider = strongbox::keys::default_provider().unwrap();
        let text = format!("{provider:?}");
        assert!(text.starts_with("UnixHomeFileProvider"), "{text}");
        assert!(text.contains(".strongbox/secret.key"), "{text}");
    }
}

#[test]
fn the_same_master_key_opens_blobs_from_any_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k");
    write_with_mode(&file, format!("{KEY_B64}\n").as_bytes(), 0o600);
    let via_file = FileProvider::new(&file);
    let via_home = UnixHomeFileProvider::at(dir.path().join("raw"));
    write_with_mode(&dir.path().join("raw"), &key_bytes(), 0o600);
    let via_memory = InMemory(MasterKey::from_bytes(&key_bytes()).unwrap());
    let key = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &via_file).unwrap();
    #[cfg(unix)]
    assert_eq!(
        blob.unprotect(&via_home).unwrap().expose_secret(),
        key.expose_secret()
    );
    #[cfg(not(unix))]
    let _ = via_home;
    assert_eq!(blob.unprotect(&via_memory).unwrap().id(), key.id());
}
