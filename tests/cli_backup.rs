//! End-to-end tests of the `strongbox` binary: `backup snapshot|logical`, `restore`, and
//! `inspect` of backup manifests.

mod cli_support;

use std::path::Path;

use cli_support::*;
use predicates::prelude::*;

/// A database directory with nested directories, an empty file and a larger file.
fn populate(db: &Path) {
    std::fs::create_dir_all(db.join("sub/deeper")).unwrap();
    std::fs::write(db.join("data.db"), data(300_000, 1)).unwrap();
    std::fs::write(db.join("empty"), b"").unwrap();
    std::fs::write(db.join("sub/deeper/log"), b"log line\n").unwrap();
}

fn assert_same_files(a: &Path, b: &Path) {
    for rel in ["data.db", "empty", "sub/deeper/log"] {
        assert_eq!(
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

fn inspect(env: &Env, file: &str) -> String {
    let out = env.cmd().args(["inspect", file]).run().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// How `inspect` names the OS default protection of a backup's own key copy.
#[cfg(not(windows))]
const WRAPPED_BY_DEFAULT: &str = "key wrapped by: master key";
#[cfg(windows)]
const WRAPPED_BY_DEFAULT: &str = "key wrapped by: Windows DPAPI (a user's)";

#[test]
fn snapshot_of_an_encrypted_database_round_trips() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    populate(&db);
    env.cmd()
        .arg("backup")
        .arg("snapshot")
        .arg(&db)
        .args(["-o", "snap.sbx"])
        .run()
        .success()
        .stdout("");
    let text = inspect(&env, "snap.sbx");
    for expected in [
        "kind:           snapshot",
        "UseDatabaseKey",
        "database:       db",
        WRAPPED_BY_DEFAULT,
    ] {
        assert!(text.contains(expected), "missing {expected:?}: {text}");
    }
    env.cmd()
        .arg("verify")
        .arg("--db")
        .arg(&db)
        .arg("snap.sbx")
        .run()
        .success();

    env.cmd()
        .args(["restore", "snap.sbx", "--to", "restored"])
        .run()
        .success();
    let restored = env.path("restored");
    assert_same_files(&db, &restored);
    // The restored database is encrypted with the same key, stored under the current master key.
    let key = env
        .cmd()
        .args(["key", "get"])
        .arg(&db)
        .run()
        .success()
        .get_output()
        .stdout
        .clone();
    env.cmd()
        .args(["key", "get"])
        .arg(&restored)
        .run()
        .success()
        .stdout(key);
    // An existing target is never touched.
    let line = assert_failure(
        env.cmd()
            .args(["restore", "snap.sbx", "--to", "restored"])
            .run(),
    );
    assert!(line.contains("already exists"), "{line}");
    // An encrypted database's snapshot cannot be unencrypted.
    let line = assert_failure(
        env.cmd()
            .arg("backup")
            .arg("snapshot")
            .arg(&db)
            .args(["--encryption", "none", "-o", "plain.sbx"])
            .run(),
    );
    assert!(line.contains("encrypted"), "{line}");
    assert!(!env.path("plain.sbx").exists());
    // Never overwrites a backup.
    assert_failure(
        env.cmd()
            .arg("backup")
            .arg("snapshot")
            .arg(&db)
            .args(["-o", "snap.sbx"])
            .run(),
    );
}

#[test]
fn snapshot_of_an_unencrypted_database_and_with_a_provided_key() {
    let env = Env::new();
    let db = env.mkdir("db");
    populate(&db);
    env.cmd()
        .arg("backup")
        .arg("snapshot")
        .arg(&db)
        .args(["-o", "plain.sbx"])
        .run()
        .success();
    assert!(inspect(&env, "plain.sbx").contains("encrypted:      no"));
    // A key for an unencrypted snapshot is refused on restore.
    let key_file = env.key_file("k.b64", KEY_A);
    let line = assert_failure(
        env.cmd()
            .args(["restore", "plain.sbx", "--to", "r0", "--key-file"])
            .arg(&key_file)
            .run(),
    );
    assert!(
        line.contains("not encrypted") || line.contains("unencrypted"),
        "{line}"
    );
    env.cmd()
        .args(["restore", "plain.sbx", "--to", "r1"])
        .run()
        .success();
    assert_same_files(&db, &env.path("r1"));

    // Explicitly with a provided key (the mode is implied by the key).
    env.cmd()
        .arg("backup")
        .arg("snapshot")
        .arg(&db)
        .args(["-o", "keyed.sbx", "--key-file"])
        .arg(&key_file)
        .run()
        .success();
    assert!(inspect(&env, "keyed.sbx").contains("UseProvidedKey"));
    env.cmd()
        .args(["restore", "keyed.sbx", "--to", "r2", "--key-file"])
        .arg(&key_file)
        .run()
        .success();
    assert_same_files(&db, &env.path("r2"));
    // Mode/key mismatches are errors.
    assert_failure(
        env.cmd()
            .arg("backup")
            .arg("snapshot")
            .arg(&db)
            .args(["--encryption", "provided-key", "-o", "x.sbx"])
            .run(),
    );
    assert_failure(
        env.cmd()
            .arg("backup")
            .arg("snapshot")
            .arg(&db)
            .args(["--encryption", "none", "-o", "x.sbx", "--key-file"])
            .arg(&key_file)
            .run(),
    );
    assert!(!env.path("x.sbx").exists());
    // A wrong key.
    let other = env.key_file("b.b64", KEY_B);
    let line = assert_failure(
        env.cmd()
            .args(["restore", "keyed.sbx", "--to", "r3", "--key-file"])
            .arg(&other)
            .run(),
    );
    assert!(line.contains("wrong key"), "{line}");
    assert!(!env.path("r3").exists());
    // A key on the command line is refused.
    let stderr = assert_usage(
        env.cmd()
            .args(["restore", "keyed.sbx", "--to", "r4", "--key", KEY_A])
            .run(),
    );
    assert!(!stderr.contains(KEY_A));
}

#[test]
fn logical_chain_backs_up_and_restores_in_order() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    let full = data(200_000, 2);
    let incr = b"changes since the full backup".to_vec();
    std::fs::write(env.path("full.export"), &full).unwrap();
    env.cmd()
        .arg("backup")
        .arg("logical")
        .arg(&db)
        .args(["full.export", "-o", "0.full.sbx"])
        .run()
        .success();
    env.cmd()
        .arg("backup")
        .arg("logical")
        .arg(&db)
        .args(["--incremental-after", "0.full.sbx", "-o", "1.inc.sbx"])
        .write_stdin(incr.clone())
        .run()
        .success();
    let text = inspect(&env, "1.inc.sbx");
    assert!(
        text.contains("logical-incremental") && text.contains("follows:"),
        "{text}"
    );
    assert!(text.contains("zstd"), "{text}");
    env.cmd()
        .args(["restore", "0.full.sbx", "1.inc.sbx", "--to", "r"])
        .run()
        .success()
        .stderr(predicate::str::contains("0000-logical-full.export"));
    assert_eq!(
        std::fs::read(env.path("r/0000-logical-full.export")).unwrap(),
        full
    );
    assert_eq!(
        std::fs::read(env.path("r/0001-logical-incremental.export")).unwrap(),
        incr
    );
    // An incomplete chain, and one out of order.
    let line = assert_failure(env.cmd().args(["restore", "1.inc.sbx", "--to", "r2"]).run());
    assert!(line.contains("chain"), "{line}");
    assert_failure(
        env.cmd()
            .args(["restore", "1.inc.sbx", "0.full.sbx", "--to", "r2"])
            .run(),
    );
    assert!(!env.path("r2").exists());
    // Uncompressed on request.
    env.cmd()
        .arg("backup")
        .arg("logical")
        .arg(&db)
        .args(["full.export", "--compression", "none", "-o", "u.sbx"])
        .run()
        .success();
    assert!(inspect(&env, "u.sbx").contains("compression:    none"));
}

#[test]
fn tampered_and_truncated_backups_restore_nothing() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    populate(&db);
    env.cmd()
        .arg("backup")
        .arg("snapshot")
        .arg(&db)
        .args(["-o", "s.sbx"])
        .run()
        .success();
    let sealed = std::fs::read(env.path("s.sbx")).unwrap();
    let mut flipped = sealed.clone();
    let mid = sealed.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(env.path("flipped.sbx"), &flipped).unwrap();
    std::fs::write(env.path("cut.sbx"), &sealed[..sealed.len() - 100]).unwrap();
    for bad in ["flipped.sbx", "cut.sbx"] {
        let before = listing(env.dir.path());
        assert_failure(env.cmd().args(["restore", bad, "--to", "r"]).run());
        assert!(!env.path("r").exists(), "{bad}");
        assert_eq!(listing(env.dir.path()), before, "{bad}: stray files");
        assert_failure(env.cmd().arg("verify").arg("--db").arg(&db).arg(bad).run());
    }
}

#[test]
fn a_recovery_master_key_restores_after_the_master_key_is_lost() {
    let env = Env::new();
    let (db, saved_key) = env.init_db("db");
    populate(&db);
    let recovery = env.master_key_file("recovery.key", 77);
    env.cmd()
        .arg("backup")
        .arg("snapshot")
        .arg(&db)
        .args(["-o", "s.sbx", "--recovery-master-key-path"])
        .arg(&recovery)
        .run()
        .success();
    assert_eq!(inspect(&env, "s.sbx").matches("key wrapped by:").count(), 2);

    // The master key is lost: the backup's own copy no longer opens.
    let after_loss = lose_default_master_key(&env);
    let line = assert_failure(after_loss().args(["restore", "s.sbx", "--to", "r0"]).run());
    assert!(line.contains("wrapped"), "{line}");
    assert!(!env.path("r0").exists());
    // With the recovery master key.
    after_loss()
        .args([
            "restore",
            "s.sbx",
            "--to",
            "r1",
            "--recovery-master-key-path",
        ])
        .arg(&recovery)
        .run()
        .success();
    assert_same_files(&db, &env.path("r1"));
    // Or with the key saved by `key get` before the reset.
    let key_file = env.key_file("saved.b64", &saved_key);
    after_loss()
        .args(["restore", "s.sbx", "--to", "r2", "--key-file"])
        .arg(&key_file)
        .run()
        .success();
    assert_same_files(&db, &env.path("r2"));
    // Both restored databases have that key, under the master key of after the loss.
    for restored in ["r1", "r2"] {
        after_loss()
            .args(["key", "get"])
            .arg(env.path(restored))
            .run()
            .success()
            .stdout(format!("{saved_key}\n"));
    }
}

/// Unix: the home master key file is lost (a new one is generated on next use). Returns a maker
/// of `strongbox` commands run after the loss.
#[cfg(not(windows))]
fn lose_default_master_key(env: &Env) -> impl Fn() -> assert_cmd::Command + '_ {
    std::fs::remove_file(env.home_master_key()).unwrap();
    || env.cmd()
}

/// Windows: the backup's own copy is protected by DPAPI for the user who made it, which nobody
/// else can open: another user, the same user on another machine, or after an administrator reset
/// the user's password. A test cannot make DPAPI lose a user (on Windows that takes another
/// account or an administrator; Wine's DPAPI follows only the user name), so the restore is run by
/// someone whose current master key is another one (a key file): to the backup it is the same,
/// its DPAPI copy does not open.
#[cfg(windows)]
fn lose_default_master_key(env: &Env) -> impl Fn() -> assert_cmd::Command + '_ {
    let other = env.master_key_file("other.key", 5);
    move || {
        let mut cmd = env.cmd();
        cmd.arg("--master-key-path").arg(&other);
        cmd
    }
}

#[test]
fn inspect_of_a_raw_stream_says_so() {
    let env = Env::new();
    let key_file = env.key_file("k.b64", KEY_A);
    std::fs::write(env.path("p"), b"raw").unwrap();
    env.cmd()
        .args(["encrypt", "p", "-o", "s", "--key-file"])
        .arg(&key_file)
        .run()
        .success();
    assert!(inspect(&env, "s").contains("raw stream"));
    // A raw stream is not a backup.
    assert_failure(env.cmd().args(["restore", "s", "--to", "r"]).run());
}

/// `backup logical DIR INPUT -o OUT` with extra arguments.
fn logical_backup(env: &Env, db: &Path, input: &str, out: &str, extra: &[&str]) {
    env.cmd()
        .args(["backup", "logical"])
        .arg(db)
        .args([input, "-o", out])
        .args(extra)
        .run()
        .success();
}

#[test]
fn an_integrity_only_incremental_in_an_encrypted_chain_is_refused() {
    let env = Env::new();
    let (db, key) = env.init_db("db");
    std::fs::write(env.path("x.export"), b"rows").unwrap();
    logical_backup(&env, &db, "x.export", "0.sbx", &[]);
    // Needs no key: anyone who can write the backup folder can add it to the chain.
    let after = ["--incremental-after", "0.sbx", "--encryption", "none"];
    logical_backup(&env, &db, "x.export", "1.sbx", &after);
    let key_file = env.key_file("k", &key);
    for with_key in [false, true] {
        let mut cmd = env.cmd();
        cmd.args(["restore", "0.sbx", "1.sbx", "--to", "r"]);
        if with_key {
            cmd.arg("--key-file").arg(&key_file);
        }
        let line = assert_failure(cmd.run());
        assert!(
            line.contains("backup 1 (1.sbx)")
                && line.contains("not encrypted")
                && line.ends_with("; option: --allow-unauthenticated-members"),
            "{line}"
        );
        assert!(!env.path("r").exists());
    }
    // verify refuses the chain as restore does, and says what vouches for each file.
    let verify = |key: bool, allow: bool| {
        let mut cmd = env.cmd();
        cmd.args(["verify", "0.sbx", "1.sbx"]);
        if key {
            cmd.arg("--key-file").arg(&key_file);
        }
        if allow {
            cmd.arg("--allow-unauthenticated-members");
        }
        cmd.run()
    };
    for with_key in [false, true] {
        let line = assert_failure(verify(with_key, false));
        assert!(
            line.starts_with("error: verify: backup 1 (1.sbx)")
                && line.ends_with("; option: --allow-unauthenticated-members"),
            "{line}"
        );
        let out = verify(with_key, true).success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            stdout.contains("backup 0 (0.sbx): OK, logical-full, authenticated by key")
                && stdout.contains("backup 1 (1.sbx): OK, logical-incremental, NOT authenticated"),
            "{stdout}"
        );
    }
    let out = env
        .cmd()
        .args(["restore", "0.sbx", "1.sbx", "--to", "r"])
        .arg("--allow-unauthenticated-members")
        .run()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("backup 0 (0.sbx): authenticated by key")
            && stderr.contains("backup 1 (1.sbx): NOT authenticated"),
        "{stderr}"
    );
}

#[test]
fn inspect_escapes_control_characters_in_the_database_name() {
    let env = Env::new();
    let db = env.mkdir("db");
    std::fs::write(env.path("x.export"), b"rows").unwrap();
    let name = "db\u{1b}]0;owned\u{7}\u{1b}[2J\r";
    logical_backup(&env, &db, "x.export", "0.sbx", &["--name", name]);
    let text = inspect(&env, "0.sbx");
    assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
    assert!(
        text.contains(r"database:       db\u{1b}]0;owned\u{7}\u{1b}[2J\u{d}"),
        "{text}"
    );
}

/// A chain longer than the process may hold files open restores: one file is opened at a time.
#[cfg(unix)]
#[test]
fn a_long_chain_restores_under_a_low_open_file_limit() {
    use std::sync::Arc;
    use strongbox::LogicalBackup;
    use strongbox::backup::{Channel, MasterKeys};
    use strongbox::keys::FileProvider;

    let env = Env::new();
    let db = env.mkdir("db");
    let keys = MasterKeys::new(Arc::new(FileProvider::new(env.path("unused.key"))));
    let mut files = Vec::new();
    let mut previous = None;
    for i in 0..1201 {
        let file = env.path(&format!("{i:04}.sbx"));
        let backup = match previous {
            None => LogicalBackup::full(&db),
            Some(id) => LogicalBackup::incremental(&db, id),
        };
        let manifest = backup
            .write_from(&mut &b"rows"[..], &file, &keys, Channel::Authenticated)
            .unwrap();
        previous = Some(manifest.backup_id());
        files.push(file);
    }
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.current_dir(env.dir.path())
        .env("HOME", env.home())
        .args(["-c", r#"ulimit -n 64 && exec "$0" "$@""#])
        .arg(env!("CARGO_BIN_EXE_strongbox"))
        .args(["--quiet", "restore", "--to", "r"])
        .args(&files);
    cmd.run().success();
    assert_eq!(listing(&env.path("r")).len(), 1201);
    assert_eq!(
        std::fs::read(env.path("r/1200-logical-incremental.export")).unwrap(),
        b"rows"
    );
}

#[test]
fn a_zstd_bomb_is_refused_unless_the_limit_is_lifted() {
    let env = Env::new();
    let db = env.mkdir("db");
    env.cmd()
        .args(["backup", "logical"])
        .arg(&db)
        .args(["-o", "bomb.sbx", "--compression", "zstd"])
        .write_stdin(vec![0u8; 20 << 20])
        .run()
        .success();
    let line = assert_failure(env.cmd().args(["restore", "bomb.sbx", "--to", "r"]).run());
    assert!(
        line.contains("backup 0 (bomb.sbx) decompresses to more than 16777216 bytes")
            && line.ends_with("; option: --max-expansion-ratio N (0: no limit)"),
        "{line}"
    );
    assert!(!env.path("r").exists());
    env.cmd()
        .args([
            "restore",
            "bomb.sbx",
            "--to",
            "r",
            "--max-expansion-ratio",
            "0",
        ])
        .run()
        .success();
    assert_eq!(
        std::fs::metadata(env.path("r/0000-logical-full.export"))
            .unwrap()
            .len(),
        20 << 20
    );
}

/// Restoring a backup that nothing authenticates is never silent: the warning names the file and
/// says that only integrity tags checked it, with `--quiet` too; an encrypted one is reported by
/// its key, and `--quiet` leaves that line out.
#[test]
fn a_restore_warns_about_integrity_only_backups_even_when_quiet() {
    let env = Env::new();
    let plain = env.mkdir("plain");
    let (encrypted, _) = env.init_db("encrypted");
    for (db, file) in [(&plain, "plain.sbx"), (&encrypted, "enc.sbx")] {
        populate(db);
        env.cmd()
            .args(["backup", "snapshot"])
            .arg(db)
            .args(["-o", file])
            .run()
            .success();
    }
    let stderr = |args: &[&str]| {
        let out = env.cmd().args(args).run().success().stdout("");
        String::from_utf8_lossy(&out.get_output().stderr).into_owned()
    };
    let warning = "warning: backup 0 (plain.sbx): NOT authenticated (not encrypted): only \
                   checked against corruption by integrity tags\n";
    assert_eq!(
        stderr(&["--quiet", "restore", "plain.sbx", "--to", "r0"]),
        warning
    );
    assert!(
        stderr(&["restore", "plain.sbx", "--to", "r1"]).contains(warning),
        "no warning"
    );
    assert_eq!(stderr(&["--quiet", "restore", "enc.sbx", "--to", "r2"]), "");
    assert!(
        stderr(&["restore", "enc.sbx", "--to", "r3"])
            .contains("backup 0 (enc.sbx): authenticated by key "),
        "no key line"
    );
}
