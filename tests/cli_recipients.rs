//! End-to-end tests of `--recipient`, `--recipients-file`, `--write-only` and `--identity`, with
//! identities made by the real `age-keygen` (skipped where it is not installed).

mod cli_support;

use std::process::Command;

use cli_support::*;

/// An identity file made by `age-keygen` and its recipient; `None` without the tool.
fn keygen(env: &Env, name: &str) -> Option<(std::path::PathBuf, String)> {
    let path = env.path(name);
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .ok()?;
    assert!(made.status.success());
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    Some((
        path,
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    ))
}

#[test]
fn write_only_chain_restores_with_the_identity_only() {
    let env = Env::new();
    let Some((identity, recipient)) = keygen(&env, "id.txt") else {
        eprintln!("age-keygen is not installed: skipping");
        return;
    };
    let (db, _) = env.init_db("db");
    std::fs::write(env.path("export.0"), b"full export").unwrap();
    std::fs::write(env.path("export.1"), b"changes").unwrap();
    std::fs::write(
        env.path("recipients.txt"),
        format!("# backups\n{recipient}\n"),
    )
    .unwrap();
    env.cmd()
        .args(["backup", "logical", "--write-only", "-r", &recipient])
        .arg(&db)
        .args(["export.0", "-o", "0.full"])
        .run()
        .success();
    env.cmd()
        .args([
            "backup",
            "logical",
            "--write-only",
            "--recipients-file",
            "recipients.txt",
        ])
        .args(["--incremental-after", "0.full"])
        .arg(&db)
        .args(["export.1", "-o", "1.inc"])
        .run()
        .success();
    let out = env.cmd().args(["inspect", "0.full"]).run().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("recipient slot:") && text.contains("X25519"),
        "{text}"
    );
    assert!(!text.contains("key wrapped by:"), "{text}");

    // The host's own master key does not open it.
    let err = assert_failure(
        env.cmd()
            .args(["restore", "0.full", "1.inc", "--to", "nope"])
            .run(),
    );
    assert!(err.contains("backup 0"), "{err}");

    env.cmd()
        .args(["verify", "0.full", "1.inc", "--identity"])
        .arg(&identity)
        .run()
        .success();
    env.cmd()
        .args(["restore", "0.full", "1.inc", "--to", "restored", "-i"])
        .arg(&identity)
        .run()
        .success();
    assert_eq!(
        std::fs::read(env.path("restored/0001-logical-incremental.export")).unwrap(),
        b"changes"
    );
}

#[test]
fn wrong_identity_fails_naming_no_key() {
    let env = Env::new();
    let (Some((_, recipient)), Some((wrong, _))) = (keygen(&env, "a.txt"), keygen(&env, "b.txt"))
    else {
        eprintln!("age-keygen is not installed: skipping");
        return;
    };
    let db = env.mkdir("db");
    std::fs::write(env.path("export"), b"export").unwrap();
    env.cmd()
        .args(["backup", "logical", "--write-only", "-r", &recipient])
        .arg(&db)
        .args(["export", "-o", "0.full"])
        .run()
        .success();
    let err = assert_failure(
        env.cmd()
            .args(["restore", "0.full", "--to", "restored", "--identity"])
            .arg(&wrong)
            .run(),
    );
    assert!(err.contains("recipient slots"), "{err}");
    let secret = std::fs::read_to_string(&wrong).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY"))
        .unwrap();
    assert!(!err.contains(secret), "{err}");
    assert!(!env.path("restored").exists());
}

#[test]
fn bad_recipients_and_write_only_misuse_are_refused() {
    let env = Env::new();
    let db = env.mkdir("db");
    std::fs::write(env.path("export"), b"export").unwrap();
    let err = assert_failure(
        env.cmd()
            .args(["backup", "logical", "-r", "age1nope"])
            .arg(&db)
            .args(["export", "-o", "0.full"])
            .run(),
    );
    assert!(
        err.contains("--recipient") && err.contains("age1nope"),
        "{err}"
    );
    let err = assert_failure(
        env.cmd()
            .args(["backup", "logical", "--write-only"])
            .arg(&db)
            .args(["export", "-o", "0.full"])
            .run(),
    );
    assert!(err.contains("write-only"), "{err}");
    assert!(!env.path("0.full").exists());
}

#[test]
fn rewrap_makes_a_backup_write_only_and_refuses_the_last_way_out() {
    let env = Env::new();
    let Some((identity, recipient)) = keygen(&env, "id.txt") else {
        eprintln!("age-keygen is not installed: skipping");
        return;
    };
    let (db, _) = env.init_db("db");
    std::fs::write(env.path("export"), b"export").unwrap();
    env.cmd()
        .args(["backup", "logical"])
        .arg(&db)
        .args(["export", "-o", "0.full"])
        .run()
        .success();
    env.cmd()
        .args(["backup", "rewrap", "0.full", "-r", &recipient])
        .arg("--remove-database-key-copy")
        .run()
        .success();
    let out = env.cmd().args(["inspect", "0.full"]).run().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("recipient slot:") && !text.contains("key wrapped by:"),
        "{text}"
    );
    assert_failure(env.cmd().args(["restore", "0.full", "--to", "a"]).run());
    let before = std::fs::read(env.path("0.full")).unwrap();
    let err = assert_failure(
        env.cmd()
            .args(["backup", "rewrap", "0.full", "--remove-slot", "0", "-i"])
            .arg(&identity)
            .run(),
    );
    assert!(err.contains("last way"), "{err}");
    assert_eq!(std::fs::read(env.path("0.full")).unwrap(), before);
    env.cmd()
        .args(["restore", "0.full", "--to", "b", "--identity"])
        .arg(&identity)
        .run()
        .success();
}

#[test]
fn encrypt_to_recipients_and_decrypt_with_an_identity() {
    let env = Env::new();
    let Some((identity, recipient)) = keygen(&env, "id.txt") else {
        eprintln!("age-keygen is not installed: skipping");
        return;
    };
    std::fs::write(env.path("plain"), data(200_000, 3)).unwrap();
    env.cmd()
        .args([
            "encrypt",
            "plain",
            "-o",
            "plain.sbx",
            "--recipient",
            &recipient,
        ])
        .run()
        .success();
    let err = assert_failure(env.cmd().args(["decrypt", "plain.sbx", "-o", "x"]).run());
    assert!(err.contains("encrypted with key"), "{err}");
    env.cmd()
        .args(["verify", "plain.sbx", "-i"])
        .arg(&identity)
        .run()
        .success();
    env.cmd()
        .args(["decrypt", "plain.sbx", "-o", "again", "--identity"])
        .arg(&identity)
        .run()
        .success();
    assert_eq!(
        std::fs::read(env.path("again")).unwrap(),
        std::fs::read(env.path("plain")).unwrap()
    );

    // With a key as well, the slot is an extra copy: the key file still decrypts it.
    env.key_file("k", KEY_A);
    env.cmd()
        .args([
            "encrypt",
            "plain",
            "-o",
            "both.sbx",
            "--key-file",
            "k",
            "-r",
            &recipient,
        ])
        .run()
        .success();
    for way in [["--key-file", "k"], ["-i", identity.to_str().unwrap()]] {
        env.cmd()
            .args(["decrypt", "both.sbx", "-o", "both.out"])
            .args(way)
            .run()
            .success();
        std::fs::remove_file(env.path("both.out")).unwrap();
    }
}
