//! End-to-end tests of the `strongbox` binary: master-key selection, `master-key generate` and the
//! `key` commands.

mod cli_support;

use base64::Engine as _;
use cli_support::*;
use predicates::prelude::*;

#[test]
fn key_init_creates_an_owner_only_key_file_and_refuses_a_second() {
    let env = Env::new();
    let db = env.mkdir("db");
    env.cmd()
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("created database key"));
    let key_file = db.join("secret.key.encrypted");
    let before = std::fs::read(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The default provider on Unix made the home master key.
        let mode = std::fs::metadata(env.home_master_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let line = assert_failure(env.cmd().args(["key", "init"]).arg(&db).run());
    assert!(line.contains("already exists"), "{line}");
    // --quiet (anywhere on the line) silences status messages.
    let db2 = env.mkdir("db2");
    env.cmd()
        .args(["key", "init", "--quiet"])
        .arg(&db2)
        .run()
        .success()
        .stderr("");
    assert_eq!(std::fs::read(&key_file).unwrap(), before);
}

#[test]
fn key_get_prints_one_base64_line_and_warns_on_stderr() {
    let env = Env::new();
    let db = env.mkdir("db");
    env.cmd().args(["key", "init"]).arg(&db).run().success();
    let out = env.cmd().args(["key", "get"]).arg(&db).run().success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.ends_with('\n'));
    let line = stdout.trim_end();
    assert_eq!(line.len(), 44);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(line)
            .unwrap()
            .len(),
        32
    );
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(!stderr.contains(line));
    // Same key every time; --quiet keeps the warning (it is not a status message).
    let again = env
        .cmd()
        .args(["--quiet", "key", "get"])
        .arg(&db)
        .run()
        .success()
        .stderr(predicate::str::contains("warning"));
    assert_eq!(again.get_output().stdout, stdout.as_bytes());
}

#[test]
fn key_get_without_a_key_file_fails_with_one_line() {
    let env = Env::new();
    let db = env.mkdir("db");
    let line = assert_failure(env.cmd().args(["key", "get"]).arg(&db).run());
    assert!(line.contains("no database key"), "{line}");
}

#[test]
fn key_put_same_key_is_a_no_op_and_different_key_needs_overwrite() {
    let env = Env::new();
    let (db, key) = env.init_db("db");
    let key_file = db.join("secret.key.encrypted");
    let before = std::fs::read(&key_file).unwrap();

    env.cmd()
        .args(["key", "put"])
        .arg(&db)
        .write_stdin(format!("{key}\n"))
        .run()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("nothing changed"));
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        before,
        "same key: no write"
    );

    let line = assert_failure(
        env.cmd()
            .args(["key", "put"])
            .arg(&db)
            .write_stdin(KEY_A)
            .run(),
    );
    assert!(line.contains("different key"), "{line}");
    assert!(!line.contains(KEY_A) && !line.contains(&key));
    assert_eq!(std::fs::read(&key_file).unwrap(), before);

    env.cmd()
        .args(["key", "put", "--overwrite"])
        .arg(&db)
        .write_stdin(KEY_A)
        .run()
        .success();
    env.cmd()
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success()
        .stdout(format!("{KEY_A}\n"));
}

#[test]
fn key_put_into_an_empty_directory_stores_the_key() {
    let env = Env::new();
    let db = env.mkdir("db");
    env.cmd()
        .args(["key", "put"])
        .arg(&db)
        .write_stdin(format!("{KEY_B}\n"))
        .run()
        .success();
    env.cmd()
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success()
        .stdout(format!("{KEY_B}\n"));
}

#[test]
fn key_put_refuses_bad_input_without_echoing_it() {
    let env = Env::new();
    let db = env.mkdir("db");
    for bad in [
        "not a key at all",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",
        "",
    ] {
        let line = assert_failure(
            env.cmd()
                .args(["key", "put"])
                .arg(&db)
                .write_stdin(bad)
                .run(),
        );
        if !bad.is_empty() {
            assert!(!line.contains(bad), "{line}");
        }
    }
    assert!(!db.join("secret.key.encrypted").exists());
}

#[test]
fn a_key_on_the_command_line_is_refused_without_echo() {
    let env = Env::new();
    let db = env.mkdir("db");
    // RavenDB's put-key takes the key as an argument: refuse it, and never print it back.
    let stderr = assert_usage(env.cmd().args(["key", "put"]).arg(&db).arg(KEY_A).run());
    assert!(stderr.contains("process list"), "{stderr}");
    assert!(!stderr.contains(KEY_A), "{stderr}");
    assert!(!db.join("secret.key.encrypted").exists());

    for cmd in ["encrypt", "decrypt", "verify"] {
        let stderr = assert_usage(env.cmd().args([cmd, "--key", KEY_A, "input.bin"]).run());
        assert!(stderr.contains("process list"), "{cmd}: {stderr}");
        assert!(!stderr.contains(KEY_A), "{cmd}: {stderr}");
        let stderr = assert_usage(
            env.cmd()
                .arg(cmd)
                .arg(format!("--key={KEY_A}"))
                .arg("x")
                .run(),
        );
        assert!(!stderr.contains(KEY_A), "{cmd}: {stderr}");
    }
}

#[test]
fn conflicting_master_key_options_are_usage_errors() {
    let env = Env::new();
    let db = env.mkdir("db");
    let cases: &[&[&str]] = &[
        &["--settings", "s.json", "--master-key-path", "m.key"],
        &["--settings", "s.json", "--master-key-exec", "/bin/true"],
        &[
            "--master-key-path",
            "m.key",
            "--master-key-exec",
            "/bin/true",
        ],
        &["--master-key-exec-arg", "x"],
        &["--master-key-exec-timeout", "5"],
        &[
            "--master-key-exec",
            "/bin/true",
            "--master-key-exec-timeout",
            "0",
        ],
    ];
    for args in cases {
        assert_usage(env.cmd().args(*args).args(["key", "get"]).arg(&db).run());
    }
    // Key input options conflict too.
    assert_usage(
        env.cmd()
            .args(["encrypt", "--key-file", "k", "--db", "d"])
            .run(),
    );
    // key rotate needs exactly one new master key.
    assert_usage(env.cmd().args(["key", "rotate"]).arg(&db).run());
    assert_usage(
        env.cmd()
            .args(["key", "rotate"])
            .arg(&db)
            .args(["--to-master-key-path", "a", "--to-settings", "b"])
            .run(),
    );
}

#[test]
fn master_key_generate_writes_32_owner_only_bytes_and_never_overwrites() {
    let env = Env::new();
    let path = env.path("master.key");
    env.cmd()
        .args(["master-key", "generate"])
        .arg(&path)
        .run()
        .success()
        .stdout("");
    let key = std::fs::read(&path).unwrap();
    assert_eq!(key.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let line = assert_failure(env.cmd().args(["master-key", "generate"]).arg(&path).run());
    assert!(line.contains("refusing to overwrite"), "{line}");
    assert_eq!(std::fs::read(&path).unwrap(), key);

    // Two keys are different, and the new key works as --master-key-path.
    let other = env.path("other.key");
    env.cmd()
        .args(["master-key", "generate"])
        .arg(&other)
        .run()
        .success();
    assert_ne!(std::fs::read(&other).unwrap(), key);
    let db = env.mkdir("db");
    env.cmd()
        .arg("--master-key-path")
        .arg(&path)
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success();
    env.cmd()
        .arg("--master-key-path")
        .arg(&path)
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success();
    // No stray temporary files.
    assert_eq!(
        listing(env.dir.path()),
        ["db", "home", "master.key", "other.key"]
    );
}

#[test]
fn master_key_generate_into_a_missing_directory_fails() {
    let env = Env::new();
    assert_failure(
        env.cmd()
            .args(["master-key", "generate"])
            .arg(env.path("missing/master.key"))
            .run(),
    );
}

#[test]
fn a_key_protected_by_another_master_key_is_reported_as_such() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    let other = env.master_key_file("other.key", 9);
    let line = assert_failure(
        env.cmd()
            .arg("--master-key-path")
            .arg(&other)
            .args(["key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("master key"), "{line}");
}

#[test]
fn settings_json_selects_the_master_key() {
    let env = Env::new();
    let mk = env.master_key_file("m.key", 3);
    let settings = env.path("settings.json");
    std::fs::write(
        &settings,
        serde_json::json!({ "ServerUrl": "http://x", "Security.MasterKey.Path": mk }).to_string(),
    )
    .unwrap();
    let db = env.mkdir("db");
    env.cmd()
        .arg("--settings")
        .arg(&settings)
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success();
    // The same key through --master-key-path opens it; the home default does not.
    env.cmd()
        .arg("--master-key-path")
        .arg(&mk)
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success();
    assert_failure(env.cmd().args(["key", "get"]).arg(&db).run());

    // Exec and Path both set: a clear error, not a guess.
    std::fs::write(
        &settings,
        r#"{"Security.MasterKey.Path": "m.key", "Security.MasterKey.Exec": "/bin/cat"}"#,
    )
    .unwrap();
    assert_failure(
        env.cmd()
            .arg("--settings")
            .arg(&settings)
            .args(["key", "get"])
            .arg(&db)
            .run(),
    );
    let line = assert_failure(
        env.cmd()
            .arg("--settings")
            .arg(env.path("missing.json"))
            .args(["key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("missing.json"), "{line}");
}

#[cfg(unix)]
#[test]
fn master_key_exec_runs_the_program_with_its_arguments_and_timeout() {
    use std::os::unix::fs::PermissionsExt;

    let env = Env::new();
    let mk = env.master_key_file("m.key", 5);
    // The script prints the key file named by its second argument, after checking the first.
    let script = env.path("give-key.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = \"--vault\" ] || { echo \"bad args: $*\" >&2; exit 3; }\ncat \"$2\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = env.mkdir("db");
    env.cmd()
        .arg("--master-key-exec")
        .arg(&script)
        .args(["--master-key-exec-arg", "--vault", "--master-key-exec-arg"])
        .arg(&mk)
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success();
    // The exec key and the file key are the same key: the file provider opens it.
    env.cmd()
        .arg("--master-key-path")
        .arg(&mk)
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success();
    // A failing program: exit status 1, one line, with the start of its stderr.
    let line = assert_failure(
        env.cmd()
            .arg("--master-key-exec")
            .arg(&script)
            .args(["key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("bad args"), "{line}");
    // A hanging program is killed at the timeout.
    let slow = env.path("slow.sh");
    std::fs::write(&slow, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o700)).unwrap();
    let started = std::time::Instant::now();
    let line = assert_failure(
        env.cmd()
            .arg("--master-key-exec")
            .arg(&slow)
            .args(["--master-key-exec-timeout", "1", "key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("time") || line.contains("killed"), "{line}");
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    // A program that does not exist.
    let line = assert_failure(
        env.cmd()
            .args(["--master-key-exec", "/nonexistent/give-key", "key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("not found"), "{line}");
}

/// The settings.json mistakes that used to select a new OS-default master key (lost with a
/// throwaway HOME, and every key it protects): each is honoured as RavenDB reads it, or refused;
/// `key init` never creates the default master key.
#[test]
fn settings_json_spellings_never_fall_back_to_the_default_master_key() {
    let env = Env::new();
    let mk = env.master_key_file("m.key", 5);
    let honoured = [
        r#"{"Security.Masterkey.Path": "m.key"}"#,
        r#"{"security.masterkey.path": "m.key"}"#,
        r#"{"Security": {"MasterKey": {"Path": "m.key"}}}"#,
        "\u{feff}{\"Security.MasterKey.Path\": \"m.key\"}",
    ];
    let refused = [
        r#"{"Security.MasterKey.Path": "m.key", "Security.MasterKey.Path": null}"#,
        r#"{"Security.MasterKey.Path": "m.key", "Security.MasterKey.Path": ""}"#,
        r#"{"Security.MasterKey.Path": "m.key", "security.masterkey.path": "m.key"}"#,
        r#"{"Security.MasterKey.Pth": "m.key"}"#,
        r#"{"Security.MasterKey.Path": null}"#,
    ];
    for (i, json) in honoured.iter().chain(&refused).enumerate() {
        std::fs::write(env.path("settings.json"), json).unwrap();
        let db = env.mkdir(&format!("db{i}"));
        let run = env
            .cmd()
            .args(["--settings", "settings.json", "key", "init"])
            .arg(&db)
            .run();
        if i < honoured.len() {
            run.success();
            env.cmd()
                .arg("--master-key-path")
                .arg(&mk)
                .args(["key", "get"])
                .arg(&db)
                .run()
                .success();
        } else {
            let line = assert_failure(run);
            assert!(line.contains("Security.MasterKey.Path"), "{json}: {line}");
            assert!(!db.join("secret.key.encrypted").exists(), "{json}");
        }
        assert!(!env.home_master_key().exists(), "{json}");
    }
}

#[cfg(unix)]
#[test]
fn a_master_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;

    let env = Env::new();
    let mk = env.master_key_file("m.key", 1);
    std::fs::set_permissions(&mk, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = env.mkdir("db");
    let line = assert_failure(
        env.cmd()
            .arg("--master-key-path")
            .arg(&mk)
            .args(["key", "init"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("chmod 600"), "{line}");
    assert!(!db.join("secret.key.encrypted").exists());
}

#[cfg(unix)]
#[test]
fn the_default_master_key_needs_home() {
    let env = Env::new();
    let db = env.mkdir("db");
    let line = assert_failure(
        env.cmd()
            .env_remove("HOME")
            .args(["key", "init"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("HOME"), "{line}");
    assert!(!db.join("secret.key.encrypted").exists());
}

/// On Windows the default master key is DPAPI, for the current user: no `HOME`, no key file.
#[cfg(windows)]
#[test]
fn the_default_master_key_on_windows_is_dpapi_and_needs_no_home() {
    let env = Env::new();
    let db = env.mkdir("db");
    env.cmd()
        .env_remove("HOME")
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success();
    let blob = std::fs::read(db.join("secret.key.encrypted")).unwrap();
    // docs/KEYBLOB.md: magic, version 1, scheme 2 (DPAPI), no master-key fingerprint.
    assert_eq!(&blob[..10], b"sbox-key\x01\x02");
    assert_eq!(&blob[10..26], &[0; 16]);
    env.cmd()
        .env_remove("HOME")
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success()
        .stdout(predicate::str::is_match("^[A-Za-z0-9+/]{43}=\r?\n$").unwrap());
    assert!(!env.home().join(".strongbox").exists());
}

#[test]
fn key_rotate_reprotects_every_key_and_can_run_again() {
    let env = Env::new();
    let (db1, key1) = env.init_db("db1");
    let (db2, key2) = env.init_db("db2");
    let new = env.master_key_file("new.key", 42);

    env.cmd()
        .args(["key", "rotate"])
        .arg(&db1)
        .arg(&db2)
        .arg("--to-master-key-path")
        .arg(&new)
        .run()
        .success();
    for (db, key) in [(&db1, &key1), (&db2, &key2)] {
        env.cmd()
            .arg("--master-key-path")
            .arg(&new)
            .args(["key", "get"])
            .arg(db)
            .run()
            .success()
            .stdout(format!("{key}\n"));
        // The old (home) master key no longer opens it.
        assert_failure(env.cmd().args(["key", "get"]).arg(db).run());
    }
    // Interrupted and re-run (here: simply run again): keys already rotated are left alone.
    let before = std::fs::read(db1.join("secret.key.encrypted")).unwrap();
    env.cmd()
        .args(["key", "rotate"])
        .arg(&db1)
        .arg(&db2)
        .arg("--to-master-key-path")
        .arg(&new)
        .run()
        .success()
        .stderr(predicate::str::contains("already"));
    assert_eq!(
        std::fs::read(db1.join("secret.key.encrypted")).unwrap(),
        before
    );
}

#[test]
fn key_rotate_to_settings_and_stops_at_a_missing_database() {
    let env = Env::new();
    let (db1, key1) = env.init_db("db1");
    let missing = env.path("missing-db");
    let new = env.master_key_file("new.key", 7);
    let settings = env.path("new.json");
    std::fs::write(
        &settings,
        serde_json::json!({ "Security.MasterKey.Path": new }).to_string(),
    )
    .unwrap();
    let line = assert_failure(
        env.cmd()
            .args(["key", "rotate"])
            .arg(&db1)
            .arg(&missing)
            .arg("--to-settings")
            .arg(&settings)
            .run(),
    );
    assert!(line.contains("missing-db"), "{line}");
    // db1 was done before the failure, and opens with the new key.
    env.cmd()
        .arg("--master-key-path")
        .arg(&new)
        .args(["key", "get"])
        .arg(&db1)
        .run()
        .success()
        .stdout(format!("{key1}\n"));
}

#[test]
fn every_command_has_help_with_an_example() {
    let env = Env::new();
    let commands: &[&[&str]] = &[
        &[],
        &["key"],
        &["key", "init"],
        &["key", "get"],
        &["key", "put"],
        &["key", "rotate"],
        &["master-key", "generate"],
        &["encrypt"],
        &["decrypt"],
        &["verify"],
        &["inspect"],
        &["backup"],
        &["backup", "snapshot"],
        &["backup", "logical"],
        &["restore"],
    ];
    for args in commands {
        let out = env.cmd().args(*args).arg("--help").run().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(text.contains("Example"), "{args:?}: {text}");
        assert!(text.contains("Usage: strongbox"), "{args:?}: {text}");
    }
    env.cmd().arg("--version").run().success();
    // No command at all: a usage error (clap shows the help on stderr).
    env.cmd()
        .run()
        .code(2)
        .stderr(predicate::str::contains("Usage: strongbox"));
}

#[test]
fn a_key_pasted_where_a_path_belongs_is_never_printed_back() {
    let env = Env::new();
    let db = env.mkdir("db");
    let hex: String = base64::engine::general_purpose::STANDARD
        .decode(KEY_A)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key_file = env.key_file("k.b64", KEY_A);
    for key in [KEY_A, KEY_A.trim_end_matches('='), hex.as_str()] {
        let failures = [
            env.cmd().args(["encrypt", "--key-file", key, "x"]).run(),
            env.cmd()
                .arg(format!("--master-key-path={key}"))
                .args(["key", "get"])
                .arg(&db)
                .run(),
            env.cmd()
                .args(["--master-key-exec", key, "key", "get"])
                .arg(&db)
                .run(),
            env.cmd()
                .args(["key", "rotate", "--to-master-key-path", key])
                .arg(&db)
                .run(),
            env.cmd()
                .args(["key", "rotate", "--to-master-key-exec", &format!("./{key}")])
                .arg(&db)
                .run(),
            env.cmd()
                .args(["--settings"])
                .arg(&key_file)
                .args(["key", "get"])
                .arg(&db)
                .run(),
        ];
        for assert in failures {
            let line = assert_failure(assert);
            assert!(!line.contains(key), "{line}");
            assert!(!line.contains(&key[..16]), "{line}");
        }
        // Status lines too: a key file named after a key.
        let (db2, _) = env.init_db(&format!("db-{}", key.len()));
        let out = env
            .cmd()
            .args(["key", "get"])
            .arg(&db2)
            .args(["-o", key])
            .run()
            .success();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(stderr.contains("reads as a key, not shown"), "{stderr}");
        assert!(!stderr.contains(&key[..16]), "{stderr}");
        // clap's "unrecognized subcommand" and "unexpected argument" quote the argument.
        for args in [
            vec![key],
            vec!["key", "get", "db", key],
            vec!["master-key", "generate", "a", key],
        ] {
            let stderr = assert_usage(env.cmd().args(&args).run());
            assert!(!stderr.contains(&key[..16]), "{args:?}: {stderr}");
            assert!(stderr.contains("reads as a key, not shown"), "{stderr}");
        }
    }
}

/// The master key itself written in settings.json where its file's path (or the program)
/// belongs: refused without printing it (the file-not-found message would quote it), for every
/// spelling of a key and for the rotation target's settings too.
#[test]
fn a_key_in_settings_json_where_a_path_belongs_is_never_printed_back() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    let hex: String = base64::engine::general_purpose::STANDARD
        .decode(KEY_A)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for key in [KEY_A, KEY_A.trim_end_matches('='), hex.as_str()] {
        for setting in ["Security.MasterKey.Path", "Security.MasterKey.Exec"] {
            for value in [key.to_string(), format!("/etc/strongbox/{key}")] {
                let json = format!("{{\"{setting}\": \"{value}\"}}");
                std::fs::write(env.path("settings.json"), json).unwrap();
                let failures = [
                    env.cmd()
                        .args(["--settings", "settings.json", "key", "get"])
                        .arg(&db)
                        .run(),
                    env.cmd()
                        .args(["key", "rotate", "--to-settings", "settings.json"])
                        .arg(&db)
                        .run(),
                ];
                for assert in failures {
                    let line = assert_failure(assert);
                    assert!(!line.contains(&key[..16]), "{line}");
                    assert!(line.contains(setting), "{line}");
                }
            }
        }
    }
}

#[test]
fn key_get_o_writes_a_new_owner_only_key_file_and_never_replaces_one() {
    let env = Env::new();
    let (db, key) = env.init_db("db");
    let out = env.path("db1.key");
    env.cmd()
        .args(["key", "get"])
        .arg(&db)
        .arg("-o")
        .arg(&out)
        .run()
        .success()
        .stdout("");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{key}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // An existing file is never replaced, whatever it holds.
    std::fs::write(&out, "precious").unwrap();
    let line = assert_failure(
        env.cmd()
            .args(["key", "get"])
            .arg(&db)
            .arg("--output")
            .arg(&out)
            .run(),
    );
    assert!(line.contains("refusing to overwrite"), "{line}");
    assert!(!line.contains(&key[..12]), "{line}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious");
    // The file it wrote is a data-key file as `--key-file` reads it.
    let written = env.path("again.key");
    env.cmd()
        .args(["key", "get"])
        .arg(&db)
        .arg("-o")
        .arg(&written)
        .run()
        .success();
    env.cmd()
        .args(["encrypt", "--key-file"])
        .arg(&written)
        .arg("-o")
        .arg(env.path("x.sbx"))
        .write_stdin("data")
        .run()
        .success();
    let help = env.cmd().args(["key", "get", "--help"]).run().success();
    let help = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
    assert!(!help.contains("chmod"), "{help}");
    assert!(help.contains("-o db1.key"), "{help}");
}

#[test]
fn a_data_key_in_hex_is_named_as_such() {
    let env = Env::new();
    let hex: String = base64::engine::general_purpose::STANDARD
        .decode(KEY_A)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key_file = env.key_file("hex.key", &hex);
    let line = assert_failure(
        env.cmd()
            .args(["encrypt", "--key-file"])
            .arg(&key_file)
            .write_stdin("data")
            .run(),
    );
    assert!(line.contains("hexadecimal (64 digits, 32 bytes)"), "{line}");
    assert!(line.contains("base64"), "{line}");
    assert!(!line.contains("48 bytes"), "{line}");
    assert!(!line.contains(&hex[..16]), "{line}");
    // 32 raw bytes where base64 belongs.
    let raw = env.path("raw.key");
    write_private(&raw, &[0xf0; 32]);
    let line = assert_failure(
        env.cmd()
            .args(["encrypt", "--key-file"])
            .arg(&raw)
            .write_stdin("data")
            .run(),
    );
    assert!(line.contains("32 bytes that are not text"), "{line}");
}

#[test]
fn data_key_and_master_key_files_accept_the_same_whitespace() {
    let env = Env::new();
    let raw: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(29).wrapping_add(3))
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let db = env.mkdir("db");
    let raw_file = env.path("master.raw");
    write_private(&raw_file, &raw);
    env.cmd()
        .arg("--master-key-path")
        .arg(&raw_file)
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success();
    let get = |master: &std::path::Path| {
        let out = env
            .cmd()
            .arg("--master-key-path")
            .arg(master)
            .args(["key", "get"])
            .arg(&db)
            .run()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let data_key = get(&raw_file);
    for (i, padded) in [
        format!("{b64}  \n"),
        format!("\t{hex}\r\n"),
        format!(" {b64}\n\n"),
    ]
    .iter()
    .enumerate()
    {
        let master = env.path(&format!("master{i}.txt"));
        write_private(&master, padded.as_bytes());
        assert_eq!(get(&master), data_key, "{padded:?}");
        // The same whitespace around a data key.
        let data_file = env.path(&format!("data{i}.key"));
        let around = padded.replace(b64.as_str(), "").replace(hex.as_str(), "");
        write_private(
            &data_file,
            format!("{}{}{}", &around[..1], data_key.trim(), &around[1..]).as_bytes(),
        );
        env.cmd()
            .args(["encrypt", "--key-file"])
            .arg(&data_file)
            .arg("-o")
            .arg(env.path(&format!("x{i}.sbx")))
            .write_stdin("data")
            .run()
            .success();
    }
}

#[cfg(unix)]
#[test]
fn a_raw_master_key_ending_in_a_space_is_not_trimmed() {
    let env = Env::new();
    let mut raw: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(13).wrapping_add(1))
        .collect();
    raw[0] = b'\n';
    raw[31] = b' ';
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let raw_file = env.path("master.raw");
    write_private(&raw_file, &raw);
    let hex_file = env.path("master.hex");
    write_private(&hex_file, format!("{hex}\n").as_bytes());
    let db = env.mkdir("db");
    env.cmd()
        .arg("--master-key-path")
        .arg(&raw_file)
        .args(["key", "init"])
        .arg(&db)
        .run()
        .success();
    // The hex form of the same 32 bytes opens it: the raw file was read whole.
    env.cmd()
        .arg("--master-key-path")
        .arg(&hex_file)
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success();
    // With a newline added, the raw key is refused, not shortened.
    let mut line = raw.clone();
    line.push(b'\n');
    write_private(&raw_file, &line);
    let line = assert_failure(
        env.cmd()
            .arg("--master-key-path")
            .arg(&raw_file)
            .args(["key", "get"])
            .arg(&db)
            .run(),
    );
    assert!(line.contains("33 bytes"), "{line}");
}
