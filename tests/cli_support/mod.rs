//! Shared helpers of the CLI end-to-end tests: a private working directory and `HOME` for every
//! run of the built `strongbox` binary (the real home directory is never touched).
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use assert_cmd::assert::{Assert, OutputAssertExt};
use tempfile::TempDir;

/// Runs a command to completion and returns its [`Assert`], like `assert_cmd`'s
/// `Command::assert`, except that a spawn refused with Windows' `ERROR_INTERNAL_ERROR` (1359) is
/// tried again, up to 5 times. Wine's `CreateProcess` fails that way now and then when many
/// processes start at once (seen once in CI, on `key put`); the binary under test never ran,
/// so trying the spawn again hides nothing about it. Any other spawn error panics at once.
pub trait Run {
    fn run(&mut self) -> Assert;
}

impl Run for Command {
    #[track_caller]
    fn run(&mut self) -> Assert {
        const ERROR_INTERNAL_ERROR: i32 = 1359;
        let mut tries = 1;
        let output = loop {
            match self.output() {
                Ok(output) => break output,
                Err(err)
                    if cfg!(windows)
                        && err.raw_os_error() == Some(ERROR_INTERNAL_ERROR)
                        && tries < 5 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(err) => panic!("Failed to spawn {self:?} ({tries} tries): {err}"),
            }
        };
        output
            .assert()
            .append_context("command", format!("{self:?}"))
    }
}

/// A scratch directory that is also the binary's `HOME` and working directory.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("home")).expect("home");
        Env { dir }
    }

    /// `HOME` of the child process.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The default master key file under the test `HOME`.
    pub fn home_master_key(&self) -> PathBuf {
        self.home().join(".strongbox").join("secret.key")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Creates an empty directory (a database directory).
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    /// The `strongbox` binary, run in the scratch directory with `HOME` set to it.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strongbox"));
        cmd.current_dir(self.dir.path())
            .env("HOME", self.home())
            .env_remove("USERPROFILE");
        cmd
    }

    /// Writes a master-key file (owner-only) from a seed byte and returns its path.
    pub fn master_key_file(&self, name: &str, seed: u8) -> PathBuf {
        let p = self.path(name);
        let key: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(seed))
            .collect();
        write_private(&p, &key);
        p
    }

    /// `key init DIR` under the default master key; returns the base64 key from `key get`.
    pub fn init_db(&self, name: &str) -> (PathBuf, String) {
        let db = self.mkdir(name);
        self.cmd().args(["key", "init"]).arg(&db).run().success();
        let out = self.cmd().args(["key", "get"]).arg(&db).run().success();
        let key = String::from_utf8(out.get_output().stdout.clone()).expect("utf8");
        (db, key.trim_end().to_owned())
    }

    /// Writes `key_b64` to a key file and returns its path.
    pub fn key_file(&self, name: &str, key_b64: &str) -> PathBuf {
        let p = self.path(name);
        write_private(&p, format!("{key_b64}\n").as_bytes());
        p
    }
}

pub fn write_private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// A fixed base64 key (bytes 0..32).
pub const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Another fixed base64 key (bytes 32..64).
pub const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Asserts a failure: exit status 1 and exactly one stderr line, starting `error:`. Returns it.
pub fn assert_failure(assert: assert_cmd::assert::Assert) -> String {
    let assert = assert.code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "stderr: {stderr:?}");
    lines[0].to_owned()
}

/// Asserts a usage error (exit status 2) and returns stderr.
pub fn assert_usage(assert: assert_cmd::assert::Assert) -> String {
    let assert = assert.code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.starts_with("error: "), "stderr: {stderr:?}");
    stderr
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for stream tests.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Files in `dir` (names), sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
