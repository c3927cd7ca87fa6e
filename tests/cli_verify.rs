//! End-to-end tests of `strongbox verify` on backups and chains: checked as `restore` checks
//! them, refused exactly where `restore` refuses, nothing written.

mod cli_support;
mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use cli_support::*;
use common::{unhex, vectors};

/// `verify` of a backup vector with the vector's key and options, or, without a key, the master
/// keys the vectors are made for (current `00..1f`, recovery `ff..ff`).
fn verify_vector(env: &Env, name: &str) -> (assert_cmd::assert::Assert, BTreeMap<String, String>) {
    let meta = vectors::meta(name);
    let current = env.path("current.key");
    write_private(&current, &(0u8..32).collect::<Vec<_>>());
    let recovery = env.path("recovery.key");
    write_private(&recovery, &[0xff; 32]);
    let mut cmd = env.cmd();
    cmd.arg("--master-key-path").arg(&current).arg("verify");
    cmd.args(vectors::files(name));
    match meta.get("key").filter(|k| *k != "none") {
        Some(key) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(unhex(key));
            cmd.arg("--key-file").arg(env.key_file("k", &b64));
        }
        None => {
            cmd.arg("--recovery-master-key-path").arg(&recovery);
        }
    }
    if meta
        .get("allow_unauthenticated_members")
        .map(String::as_str)
        == Some("yes")
    {
        cmd.arg("--allow-unauthenticated-members");
    }
    (cmd.run(), meta)
}

#[test]
fn verify_refuses_a_backup_whose_manifest_or_archive_restore_refuses() {
    let env = Env::new();
    for name in ["fail_backup_id_upper_case", "fail_tar_dot_slash_key_file"] {
        let (assert, _) = verify_vector(&env, name);
        let line = assert_failure(assert);
        assert!(line.contains(") is malformed: "), "{name}: {line}");
    }
}

#[test]
fn verify_of_every_backup_vector_agrees_with_restore() {
    let env = Env::new();
    let names = vectors::names();
    assert!(names.len() >= 17);
    for name in &names {
        let (assert, meta) = verify_vector(&env, name);
        if meta["expect"] == "ok" {
            let out = assert.success();
            let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
            assert_eq!(stdout.lines().count(), vectors::files(name).len(), "{name}");
        } else {
            assert_failure(assert);
        }
    }
    assert_eq!(
        listing(env.dir.path()),
        ["current.key", "home", "k", "recovery.key"]
    );
}

/// A full backup and two incrementals of an encrypted database: `0.sbx`, `1.sbx`, `2.sbx`.
fn chain(env: &Env) -> String {
    let (db, key) = env.init_db("db");
    std::fs::write(env.path("x.export"), b"rows").unwrap();
    let backup = |out: &str, after: Option<&str>| {
        let mut cmd = env.cmd();
        cmd.args(["backup", "logical"]).arg(&db);
        cmd.args(["x.export", "-o", out]);
        if let Some(after) = after {
            cmd.args(["--incremental-after", after]);
        }
        cmd.run().success();
    };
    backup("0.sbx", None);
    backup("1.sbx", Some("0.sbx"));
    backup("2.sbx", Some("1.sbx"));
    key
}

#[test]
fn verify_of_a_chain_finds_the_key_through_its_wrapped_copies_and_names_each_members_key() {
    let env = Env::new();
    let key = chain(&env);
    let before = listing(env.dir.path());
    // No key given: the copies wrapped under the default master key open it.
    let out = env
        .cmd()
        .args(["verify", "0.sbx", "1.sbx", "2.sbx"])
        .run()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let key_id = {
        let out = env.cmd().args(["inspect", "0.sbx"]).run().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("key id:")).unwrap();
        line.split_whitespace().last().unwrap().to_owned()
    };
    for (i, kind) in ["logical-full", "logical-incremental", "logical-incremental"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            lines[i],
            format!("backup {i} ({i}.sbx): OK, {kind}, authenticated by key {key_id}")
        );
    }
    assert_eq!(listing(env.dir.path()), before, "verify wrote something");
    // The same with the key given; out of order or incomplete, refused as restore refuses it.
    let key_file = env.key_file("k", &key);
    env.cmd()
        .args(["verify", "0.sbx", "1.sbx", "2.sbx", "--key-file"])
        .arg(&key_file)
        .run()
        .success();
    for files in [["0.sbx", "2.sbx"], ["1.sbx", "2.sbx"], ["0.sbx", "0.sbx"]] {
        let line = assert_failure(env.cmd().arg("verify").args(files).run());
        assert!(line.contains("chain"), "{line}");
    }
    // Another master key opens none of the copies.
    let other = env.master_key_file("other.key", 9);
    let line = assert_failure(
        env.cmd()
            .arg("--master-key-path")
            .arg(&other)
            .args(["verify", "0.sbx", "1.sbx", "2.sbx"])
            .run(),
    );
    assert!(
        line.contains("none of its 1 wrapped copies opens"),
        "{line}"
    );
}

#[test]
fn a_backup_on_stdin_is_refused_and_a_raw_stream_keeps_its_verification() {
    let env = Env::new();
    let key = chain(&env);
    let key_file = env.key_file("k", &key);
    let line = assert_failure(
        env.cmd()
            .args(["verify", "-", "--key-file"])
            .arg(&key_file)
            .pipe_stdin(env.path("0.sbx"))
            .unwrap()
            .run(),
    );
    assert!(
        line.contains("is a database backup: give it as a regular file"),
        "{line}"
    );
    let line = assert_usage(env.cmd().args(["verify", "0.sbx", "-"]).run());
    assert!(line.contains("`-` (stdin) is not accepted"), "{line}");
    // A raw stream: today's line, on stdin and from a file.
    std::fs::write(env.path("plain"), b"plain data").unwrap();
    env.cmd()
        .args(["encrypt", "plain", "-o", "raw.sbx", "--key-file"])
        .arg(&key_file)
        .run()
        .success();
    for input in ["raw.sbx", "-"] {
        let out = env
            .cmd()
            .args(["verify", input, "--key-file"])
            .arg(&key_file)
            .pipe_stdin(env.path("raw.sbx"))
            .unwrap()
            .run()
            .success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            stdout.contains(": OK, 10 bytes of plaintext authenticated by key"),
            "{stdout}"
        );
    }
}

#[test]
fn verify_applies_the_expansion_limit_of_restore() {
    let env = Env::new();
    let db = env.mkdir("db");
    env.cmd()
        .args(["backup", "logical"])
        .arg(&db)
        .args(["-o", "bomb.sbx", "--compression", "zstd"])
        .write_stdin(vec![0u8; 20 << 20])
        .run()
        .success();
    let line = assert_failure(env.cmd().args(["verify", "bomb.sbx"]).run());
    assert!(
        line.ends_with("; option: --max-expansion-ratio N (0: no limit)"),
        "{line}"
    );
    env.cmd()
        .args(["verify", "bomb.sbx", "--max-expansion-ratio", "0"])
        .run()
        .success()
        .stdout("backup 0 (bomb.sbx): OK, logical-full, NOT authenticated: unencrypted, checked by integrity tags only\n");
}

#[test]
fn verify_of_a_snapshot_reads_its_archive_and_writes_nothing() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    std::fs::write(db.join("data.db"), data(100_000, 3)).unwrap();
    env.cmd()
        .args(["backup", "snapshot"])
        .arg(&db)
        .args(["-o", "s.sbx"])
        .run()
        .success();
    let before = listing(env.dir.path());
    let out = env
        .cmd()
        .args(["verify", "s.sbx", "--db"])
        .arg(&db)
        .run()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.starts_with("backup 0 (s.sbx): OK, snapshot, authenticated by key "),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("verified 1 backup(s): 1 file(s), 100000 bytes of payload"),
        "{stderr}"
    );
    assert_eq!(listing(env.dir.path()), before);
    // A changed byte near the end is found: the payload is read to its end (a changed last
    // segment is reported as the stream's end cut or altered).
    let mut bytes = std::fs::read(env.path("s.sbx")).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    std::fs::write(env.path("s.sbx"), bytes).unwrap();
    let line = assert_failure(env.cmd().args(["verify", "s.sbx"]).run());
    assert!(line.contains("truncated"), "{line}");
}
