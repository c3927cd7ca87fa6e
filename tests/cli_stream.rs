//! End-to-end tests of the `strongbox` binary: `encrypt`, `decrypt`, `verify`, `inspect`, and the
//! password-reset story.

mod cli_support;

use cli_support::*;
use predicates::prelude::*;

/// Header length of a stream without extensions is small; segments are 64 KiB + 16 by default.
const SEG: usize = 64 * 1024 + 16;

fn encrypt_file(env: &Env, key_file: &std::path::Path, plain: &[u8], name: &str) -> Vec<u8> {
    let input = env.path(&format!("{name}.plain"));
    std::fs::write(&input, plain).unwrap();
    let output = env.path(name);
    env.cmd()
        .arg("encrypt")
        .arg("--key-file")
        .arg(key_file)
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .run()
        .success()
        .stdout("")
        .stderr("");
    std::fs::read(&output).unwrap()
}

/// Header length of `sealed`: after the header come the non-final segments (each full) and the
/// last segment (1 byte to a full segment of plaintext; empty only for an empty stream), each
/// with its 16-byte tag.
fn header_len(sealed: &[u8], plain_len: usize) -> usize {
    let plain_seg = SEG - 16;
    let full = plain_len.saturating_sub(1) / plain_seg;
    let last = plain_len - full * plain_seg + 16;
    sealed.len() - full * SEG - last
}

#[test]
fn round_trip_through_files_with_every_key_input() {
    let env = Env::new();
    let (db, key) = env.init_db("db");
    let key_file = env.key_file("k.b64", &key);
    let plain = data(300_000, 1);
    let sealed = encrypt_file(&env, &key_file, &plain, "a.sbx");
    assert!(sealed.len() > plain.len());
    assert!(
        !sealed
            .windows(64)
            .any(|w| plain.windows(64).next() == Some(w))
    );

    // --key-file
    let out = env.path("a.out");
    env.cmd()
        .args(["decrypt", "--key-file"])
        .arg(&key_file)
        .arg(env.path("a.sbx"))
        .arg("-o")
        .arg(&out)
        .run()
        .success()
        .stdout("")
        .stderr("");
    assert_eq!(std::fs::read(&out).unwrap(), plain);
    // --key - (stdin), to stdout
    env.cmd()
        .args(["decrypt", "--key", "-", "a.sbx"])
        .write_stdin(format!("{key}\n"))
        .run()
        .success()
        .stdout(plain.clone());
    // --db
    env.cmd()
        .arg("decrypt")
        .arg("--db")
        .arg(&db)
        .arg("a.sbx")
        .run()
        .success()
        .stdout(plain.clone());
    // Encrypting with --db and --key - gives streams the others decrypt.
    env.cmd()
        .arg("encrypt")
        .arg("--db")
        .arg(&db)
        .args(["a.sbx.plain", "-o", "b.sbx"])
        .run()
        .success();
    env.cmd()
        .args(["encrypt", "--key", "-", "a.sbx.plain", "-o", "c.sbx"])
        .write_stdin(key.clone())
        .run()
        .success();
    for name in ["b.sbx", "c.sbx"] {
        env.cmd()
            .arg("decrypt")
            .arg("--key-file")
            .arg(&key_file)
            .arg(name)
            .run()
            .success()
            .stdout(plain.clone());
    }
}

#[test]
fn a_large_input_streams_through_stdin_and_stdout() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    let plain = data(20 << 20, 2);
    let sealed = env
        .cmd()
        .arg("encrypt")
        .arg("--key-file")
        .arg(&key_file)
        .write_stdin(plain.clone())
        .run()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    assert!(sealed.len() > plain.len() && sealed.len() < plain.len() + plain.len() / 100);
    let back = env
        .cmd()
        .args(["decrypt", "-", "-o", "-", "--key-file"])
        .arg(&key_file)
        .write_stdin(sealed.clone())
        .run()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    assert!(back == plain, "20 MiB round trip differs");
    env.cmd()
        .args(["verify", "-", "--key-file"])
        .arg(&key_file)
        .write_stdin(sealed)
        .run()
        .success()
        .stdout(predicate::str::contains(format!("{} bytes", 20 << 20)));
}

#[test]
fn chacha20_and_segment_size_are_recorded_and_shown_by_inspect() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    std::fs::write(env.path("p"), data(100_000, 3)).unwrap();
    env.cmd()
        .args([
            "encrypt",
            "--chacha20",
            "--segment-size",
            "16K",
            "p",
            "-o",
            "s",
        ])
        .arg("--key-file")
        .arg(&key_file)
        .run()
        .success();
    let out = env.cmd().args(["inspect", "s"]).run().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for expected in [
        "version 1",
        "ChaCha20-Poly1305",
        "16384 bytes",
        "encrypted:      yes",
        // The key id of KEY_A, also shown by the library for this key.
        "key id:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
    env.cmd()
        .args(["decrypt", "s", "--key-file"])
        .arg(&key_file)
        .run()
        .success()
        .stdout(data(100_000, 3));
    // An out-of-range or malformed segment size is a usage error.
    for bad in ["100", "17M", "lots"] {
        assert_usage(
            env.cmd()
                .args([
                    "encrypt",
                    "--segment-size",
                    bad,
                    "p",
                    "-o",
                    "t",
                    "--key-file",
                ])
                .arg(&key_file)
                .run(),
        );
    }
    assert!(!env.path("t").exists());
}

#[test]
fn inspect_needs_no_key_and_names_the_key_and_defaults() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    encrypt_file(&env, &key_file, b"hello", "h.sbx");
    let out = env
        .cmd()
        .env("HOME", env.path("no-such-home"))
        .args(["inspect", "h.sbx"])
        .run()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("AES-256-GCM"), "{text}");
    assert!(text.contains("65536 bytes"), "{text}");
    assert!(
        !env.path("no-such-home").exists(),
        "inspect touched no master key"
    );
    // The key id shown is the one a wrong-key error names.
    let key_id = text
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_owned();
    let line = assert_failure(env.cmd().args(["decrypt", "h.sbx"]).run());
    assert!(line.contains(&key_id), "{line}");
    // Not a strongbox file.
    std::fs::write(env.path("junk"), b"this is not a backup at all, just text").unwrap();
    let line = assert_failure(env.cmd().args(["inspect", "junk"]).run());
    assert!(line.contains("not a strongbox"), "{line}");
    assert_failure(env.cmd().args(["inspect", "missing"]).run());
}

#[test]
fn tampered_input_fails_and_leaves_no_output_file() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    let plain = data(5 * (SEG - 16) + 1234, 4);
    let sealed = encrypt_file(&env, &key_file, &plain, "t.sbx");
    let header = header_len(&sealed, plain.len());
    // One flipped bit in the header, in segment 0, in segment 3, in the last segment's tag.
    for (what, pos) in [
        ("header", 20),
        ("segment 0", header + 100),
        ("segment 3", header + 3 * SEG + 7),
        ("last tag", sealed.len() - 1),
    ] {
        let mut bad = sealed.clone();
        bad[pos] ^= 0x01;
        std::fs::write(env.path("bad.sbx"), &bad).unwrap();
        let before = listing(env.dir.path());
        let line = assert_failure(
            env.cmd()
                .args(["decrypt", "bad.sbx", "-o", "out.bin", "--key-file"])
                .arg(&key_file)
                .run(),
        );
        assert!(!env.path("out.bin").exists(), "{what}: output left behind");
        assert_eq!(listing(env.dir.path()), before, "{what}: stray files");
        if what == "segment 3" {
            assert!(line.contains("segment 3"), "{line}");
        }
        assert_failure(
            env.cmd()
                .args(["verify", "bad.sbx", "--key-file"])
                .arg(&key_file)
                .run(),
        );
    }
}

#[test]
fn truncated_input_fails_and_leaves_no_output_file() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    let plain = data(4 * (SEG - 16), 5);
    let sealed = encrypt_file(&env, &key_file, &plain, "t.sbx");
    let header = header_len(&sealed, plain.len());
    // Cut at a segment boundary (the classic undetected truncation), inside a segment, inside
    // the header, and just before the end.
    for cut in [
        header + 2 * SEG,
        header + 2 * SEG + 500,
        10,
        sealed.len() - 1,
        header,
    ] {
        std::fs::write(env.path("cut.sbx"), &sealed[..cut]).unwrap();
        let line = assert_failure(
            env.cmd()
                .args(["decrypt", "cut.sbx", "-o", "out.bin", "--key-file"])
                .arg(&key_file)
                .run(),
        );
        assert!(!env.path("out.bin").exists(), "cut at {cut}: {line}");
        if cut == header + 2 * SEG {
            assert!(line.contains("truncated"), "{line}");
        }
        // Through stdout the exit status is what tells.
        assert_failure(
            env.cmd()
                .args(["decrypt", "--key-file"])
                .arg(&key_file)
                .write_stdin(sealed[..cut].to_vec())
                .run(),
        );
    }
    // Data appended after the end is refused too.
    let mut long = sealed.clone();
    long.extend_from_slice(b"extra");
    std::fs::write(env.path("long.sbx"), &long).unwrap();
    assert_failure(
        env.cmd()
            .args(["decrypt", "long.sbx", "-o", "out.bin", "--key-file"])
            .arg(&key_file)
            .run(),
    );
    assert!(!env.path("out.bin").exists());
}

#[test]
fn a_failed_decrypt_leaves_an_existing_output_untouched() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    let sealed = encrypt_file(&env, &key_file, &data(200_000, 6), "s.sbx");
    std::fs::write(env.path("cut.sbx"), &sealed[..sealed.len() - 20]).unwrap();
    std::fs::write(env.path("out.bin"), b"previous contents").unwrap();
    assert_failure(
        env.cmd()
            .args(["decrypt", "cut.sbx", "-o", "out.bin", "--key-file"])
            .arg(&key_file)
            .run(),
    );
    assert_eq!(
        std::fs::read(env.path("out.bin")).unwrap(),
        b"previous contents"
    );
}

#[test]
fn a_wrong_key_is_reported_as_such_without_key_bytes() {
    let env = Env::new();
    let key_a = env.key_file("a.b64", KEY_A);
    let key_b = env.key_file("b.b64", KEY_B);
    encrypt_file(&env, &key_a, &data(1000, 7), "s.sbx");
    let line = assert_failure(
        env.cmd()
            .args(["decrypt", "s.sbx", "-o", "out", "--key-file"])
            .arg(&key_b)
            .run(),
    );
    assert!(line.contains("wrong key"), "{line}");
    assert!(!line.contains(KEY_A) && !line.contains(KEY_B));
    assert!(!env.path("out").exists());
    let line = assert_failure(
        env.cmd()
            .args(["verify", "s.sbx", "--key-file"])
            .arg(&key_b)
            .run(),
    );
    assert!(line.contains("wrong key"), "{line}");
}

#[test]
fn bad_key_inputs_fail_clearly() {
    let env = Env::new();
    std::fs::write(env.path("p"), b"data").unwrap();
    // Missing key file, a key file that is not base64, a short key.
    let line = assert_failure(
        env.cmd()
            .args(["encrypt", "p", "-o", "s", "--key-file", "nope"])
            .run(),
    );
    assert!(line.contains("nope"), "{line}");
    std::fs::write(env.path("junk.key"), "this is not base64 !!!!").unwrap();
    let line = assert_failure(
        env.cmd()
            .args(["encrypt", "p", "-o", "s", "--key-file", "junk.key"])
            .run(),
    );
    assert!(!line.contains("this is not"), "{line}");
    std::fs::write(
        env.path("short.key"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",
    )
    .unwrap();
    let line = assert_failure(
        env.cmd()
            .args(["encrypt", "p", "-o", "s", "--key-file", "short.key"])
            .run(),
    );
    assert!(line.contains("31"), "{line}");
    assert!(!env.path("s").exists());
    // No key at all: a usage error; --key - with data on stdin: a usage error.
    assert_usage(env.cmd().args(["encrypt", "p", "-o", "s"]).run());
    assert_usage(
        env.cmd()
            .args(["encrypt", "--key", "-"])
            .write_stdin(KEY_A)
            .run(),
    );
    assert_usage(
        env.cmd()
            .args(["decrypt", "--key", "-", "-"])
            .write_stdin(KEY_A)
            .run(),
    );
    // --db on a directory without a key.
    let empty = env.mkdir("empty");
    let line = assert_failure(
        env.cmd()
            .arg("encrypt")
            .arg("--db")
            .arg(&empty)
            .args(["p", "-o", "s"])
            .run(),
    );
    assert!(line.contains("no database key"), "{line}");
    assert!(!env.path("s").exists());
}

#[test]
fn missing_input_and_unwritable_output_fail_with_one_line() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    assert_failure(
        env.cmd()
            .args(["encrypt", "missing", "-o", "s", "--key-file"])
            .arg(&key_file)
            .run(),
    );
    std::fs::write(env.path("p"), b"data").unwrap();
    assert_failure(
        env.cmd()
            .args(["encrypt", "p", "-o", "no/such/dir/s", "--key-file"])
            .arg(&key_file)
            .run(),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A read-only output directory (skipped as root, who may write anyway).
        let ro = env.mkdir("ro");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        if std::fs::write(ro.join("probe"), b"").is_err() {
            assert_failure(
                env.cmd()
                    .args(["encrypt", "p", "-o", "ro/s", "--key-file"])
                    .arg(&key_file)
                    .run(),
            );
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

#[test]
fn an_empty_input_round_trips() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    let sealed = encrypt_file(&env, &key_file, b"", "e.sbx");
    assert!(!sealed.is_empty());
    env.cmd()
        .args(["decrypt", "e.sbx", "-o", "e.out", "--key-file"])
        .arg(&key_file)
        .run()
        .success();
    assert_eq!(std::fs::read(env.path("e.out")).unwrap(), b"");
    env.cmd()
        .args(["verify", "e.sbx", "--key-file"])
        .arg(&key_file)
        .run()
        .success()
        .stdout(predicate::str::contains(" 0 bytes"));
}

#[test]
fn threads_option_is_accepted_and_validated() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    std::fs::write(env.path("p"), data(1 << 20, 8)).unwrap();
    for threads in ["1", "2", "8"] {
        env.cmd()
            .args([
                "encrypt",
                "p",
                "-o",
                "s",
                "--threads",
                threads,
                "--key-file",
            ])
            .arg(&key_file)
            .run()
            .success();
        env.cmd()
            .args(["decrypt", "s", "--threads", threads, "--key-file"])
            .arg(&key_file)
            .run()
            .success()
            .stdout(data(1 << 20, 8));
        env.cmd()
            .args(["verify", "s", "--threads", threads, "--key-file"])
            .arg(&key_file)
            .run()
            .success();
    }
    assert_usage(
        env.cmd()
            .args(["encrypt", "p", "--threads", "0", "--key-file"])
            .arg(&key_file)
            .run(),
    );
}

/// The story of the seed: a database key under the OS default protection, `key get` saved, the
/// protection changes (a Windows password reset), `key put` under the new protection, and a backup
/// written before decrypts with `--db`.
///
/// The reset, per platform (see [`reset_default_protection`]): on Unix the home key file is lost
/// and a new one is generated; on Windows DPAPI no longer opens the key file.
#[test]
fn password_reset_story() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    let plain = data(500_000, 9);
    std::fs::write(env.path("export.bin"), &plain).unwrap();
    env.cmd()
        .arg("encrypt")
        .arg("--db")
        .arg(&db)
        .args(["export.bin", "-o", "old-backup.sbx"])
        .run()
        .success();

    // Before the reset: the operator saves the key.
    let saved = env
        .cmd()
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success()
        .get_output()
        .stdout
        .clone();
    std::fs::write(env.path("db.key"), &saved).unwrap();

    // The reset: the old protection no longer opens the database's key.
    reset_default_protection(&env, &db);
    let line = assert_failure(
        env.cmd()
            .arg("decrypt")
            .arg("--db")
            .arg(&db)
            .arg("old-backup.sbx")
            .run(),
    );
    assert_reset_refusal(&env, &line);
    // A different key is never put over it by mistake.
    let key_file = db.join("secret.key.encrypted");
    let unopenable = std::fs::read(&key_file).unwrap();
    let line = assert_failure(
        env.cmd()
            .args(["key", "put"])
            .arg(&db)
            .write_stdin(KEY_B)
            .run(),
    );
    assert!(line.contains("different key"), "{line}");
    assert_eq!(std::fs::read(&key_file).unwrap(), unopenable);

    // After: put the saved key back under the new protection.
    env.cmd()
        .args(["key", "put"])
        .arg(&db)
        .write_stdin(saved.clone())
        .run()
        .success();
    env.cmd()
        .arg("decrypt")
        .arg("--db")
        .arg(&db)
        .args(["old-backup.sbx", "-o", "restored.bin"])
        .run()
        .success();
    assert_eq!(std::fs::read(env.path("restored.bin")).unwrap(), plain);
    // And `key get` under the new master key gives the same key.
    env.cmd()
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success()
        .stdout(saved);
}

/// A key program printing the master key in `key_file`: a shell script on Unix.
#[cfg(unix)]
fn print_key_program(env: &Env, key_file: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = env.path("print-key.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec cat '{}'\n", key_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    script
}

/// A key program printing the master key in `key_file`: on Windows a batch file (run through
/// `cmd.exe`), printing it in base64 (`type` would not print raw bytes faithfully).
#[cfg(windows)]
fn print_key_program(env: &Env, key_file: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(std::fs::read(key_file).unwrap());
    let script = env.path("print-key.cmd");
    std::fs::write(&script, format!("@echo off\r\necho {key}\r\n")).unwrap();
    script
}

/// Unix: the home master key file is lost; the default provider makes a new one on next use.
#[cfg(not(windows))]
fn reset_default_protection(env: &Env, _db: &std::path::Path) {
    std::fs::remove_file(env.home_master_key()).unwrap();
}

#[cfg(not(windows))]
fn assert_reset_refusal(env: &Env, line: &str) {
    assert!(line.contains("master key"), "{line}");
    assert!(env.home_master_key().exists(), "a new home master key");
}

/// Windows: after an administrator resets the user's password, DPAPI no longer opens what it
/// protected for that user. Wine's DPAPI is bound to no password, so the reset is simulated as in
/// `tests/dpapi_windows.rs`, by what it does to the key file: DPAPI refuses its DPAPI blob (a
/// damaged ciphertext byte, refused with an OS error code as a reset is).
#[cfg(windows)]
fn reset_default_protection(_env: &Env, db: &std::path::Path) {
    // docs/KEYBLOB.md, scheme 2: the DPAPI blob's length (u16, big-endian) at 106, the blob at 108.
    let path = db.join("secret.key.encrypted");
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[9], 2, "a DPAPI key blob");
    let len = usize::from(u16::from_be_bytes([bytes[106], bytes[107]]));
    bytes[108 + len - 1] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();
}

#[cfg(windows)]
fn assert_reset_refusal(env: &Env, line: &str) {
    assert!(line.contains("DPAPI refused to unprotect"), "{line}");
    assert!(!env.home_master_key().exists(), "DPAPI needs no key file");
}

/// The same story with explicit master keys: get under A (`--master-key-path`), put under B
/// (`--master-key-exec`), decrypt the older backup with `--db` under B.
#[cfg(any(unix, windows))]
#[test]
fn password_reset_story_across_providers() {
    let env = Env::new();
    let a = env.master_key_file("a.key", 1);
    let b = env.master_key_file("b.key", 2);
    let script = print_key_program(&env, &b);
    let db = env.mkdir("db");
    let with_a = |env: &Env| {
        let mut c = env.cmd();
        c.arg("--master-key-path").arg(&a);
        c
    };
    let with_b = |env: &Env| {
        let mut c = env.cmd();
        c.arg("--master-key-exec").arg(&script);
        c
    };
    with_a(&env).args(["key", "init"]).arg(&db).run().success();
    std::fs::write(env.path("export.bin"), data(70_000, 10)).unwrap();
    with_a(&env)
        .arg("encrypt")
        .arg("--db")
        .arg(&db)
        .args(["export.bin", "-o", "old.sbx"])
        .run()
        .success();
    let saved = with_a(&env)
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_failure(with_b(&env).args(["key", "get"]).arg(&db).run());
    with_b(&env)
        .args(["key", "put"])
        .arg(&db)
        .write_stdin(saved)
        .run()
        .success();
    with_b(&env)
        .arg("decrypt")
        .arg("--db")
        .arg(&db)
        .arg("old.sbx")
        .run()
        .success()
        .stdout(data(70_000, 10));
}

#[test]
fn no_progress_output_when_stderr_is_not_a_terminal() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    std::fs::write(env.path("p"), data(3 << 20, 11)).unwrap();
    env.cmd()
        .args(["encrypt", "p", "-o", "s", "--key-file"])
        .arg(&key_file)
        .run()
        .success()
        .stderr("");
    env.cmd()
        .args(["decrypt", "s", "-o", "p2", "--key-file"])
        .arg(&key_file)
        .run()
        .success()
        .stderr("");
}

#[test]
fn encrypt_refuses_no_output_and_never_writes_partial_files() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    // A directory as input: an error, and no output file.
    env.mkdir("adir");
    assert_failure(
        env.cmd()
            .args(["encrypt", "adir", "-o", "s", "--key-file"])
            .arg(&key_file)
            .run(),
    );
    assert!(!env.path("s").exists());
    assert_eq!(listing(env.dir.path()), ["adir", "home", "k.b64"]);
}
