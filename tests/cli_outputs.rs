//! End-to-end tests of where the `strongbox` binary writes and what it reads: outputs that are
//! FIFOs, devices, links or read-only files; an input that is its own output; key paths that are
//! FIFOs; long names; and interruption by SIGINT, SIGTERM and SIGKILL.
#![cfg(unix)]

mod cli_support;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use cli_support::*;

/// Longest any child may run before the test gives up on it (kills it and fails).
const LIMIT: Duration = Duration::from_secs(120);

/// A FIFO made with `mkfifo` inside the test's own directory.
fn fifo(env: &Env, name: &str) -> PathBuf {
    let path = env.path(name);
    let status = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(status.success());
    path
}

/// Reads everything a FIFO receives, in a thread (the open waits for a writer).
fn read_fifo(path: &Path) -> Receiver<Vec<u8>> {
    let path = path.to_path_buf();
    let (done, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(fs::read(path).expect("read the FIFO")));
    received
}

/// What the reader of [`read_fifo`] got, once it saw end-of-file; fails the test if it still
/// waits after [`LIMIT`] (a reader left hanging).
fn fifo_bytes(reader: Receiver<Vec<u8>>) -> Vec<u8> {
    reader
        .recv_timeout(LIMIT)
        .expect("the FIFO's reader never saw end-of-file")
}

/// Lets a reader still waiting on the FIFO see end-of-file (a no-op if nobody waits).
fn release_reader(path: &Path) {
    let _ = fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
        .open(path);
}

/// Waits for `child`, killing it and failing the test after [`LIMIT`].
fn wait_limited(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// Runs `cmd` with stdin closed and its output captured, under [`wait_limited`].
fn run_limited(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_limited(child)
}

/// The `strongbox` binary in the test's directory, as a plain `std` command.
fn strongbox(env: &Env) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strongbox"));
    cmd.current_dir(env.dir.path())
        .env("HOME", env.home())
        .env_remove("USERPROFILE");
    cmd
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failure with one `error:` line containing `needle`.
fn assert_fails_with(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
}

/// Encrypts `plain` with [`KEY_A`] into `name` in the test directory; returns the stream.
fn encrypted(env: &Env, key: &Path, plain: &[u8], name: &str) -> Vec<u8> {
    let input = env.path(&format!("{name}.in"));
    fs::write(&input, plain).unwrap();
    env.cmd()
        .arg("encrypt")
        .arg("--key-file")
        .arg(key)
        .arg(&input)
        .arg("-o")
        .arg(env.path(name))
        .run()
        .success();
    fs::remove_file(&input).unwrap();
    fs::read(env.path(name)).unwrap()
}

/// Decrypts `sealed` with the key file `key`.
fn decrypted(env: &Env, key: &Path, sealed: &[u8]) -> Vec<u8> {
    let out = env
        .cmd()
        .arg("decrypt")
        .arg("--key-file")
        .arg(key)
        .write_stdin(sealed.to_vec())
        .run()
        .success();
    out.get_output().stdout.clone()
}

/// Names in the test directory that look like temporary files of strongbox.
fn temporaries(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| n.ends_with(".partial") || n.ends_with(".tmp") || n.contains(".restoring-"))
        .collect()
}

#[test]
fn encrypt_to_a_fifo_writes_through_it_and_keeps_it() {
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    let plain = data(300_000, 1);
    let input = env.path("plain");
    fs::write(&input, &plain).unwrap();
    let out = fifo(&env, "out.fifo");
    let reader = read_fifo(&out);
    let mut cmd = strongbox(&env);
    cmd.arg("encrypt").arg("--key-file").arg(&key).arg(&input);
    cmd.arg("-o").arg(&out);
    let output = run_limited(cmd);
    release_reader(&out);
    let sealed = fifo_bytes(reader);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::symlink_metadata(&out).unwrap().file_type().is_fifo());
    assert_eq!(decrypted(&env, &key, &sealed), plain);
    assert!(temporaries(env.dir.path()).is_empty());
}

#[test]
fn decrypt_to_a_fifo_writes_through_it_and_its_reader_sees_the_end() {
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    let plain = data(200_000, 2);
    let sealed = encrypted(&env, &key, &plain, "s.sbx");
    let out = fifo(&env, "out.fifo");

    let reader = read_fifo(&out);
    let mut cmd = strongbox(&env);
    cmd.arg("decrypt").arg("--key-file").arg(&key).arg("s.sbx");
    cmd.arg("-o").arg(&out);
    let output = run_limited(cmd);
    release_reader(&out);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(fifo_bytes(reader), plain);
    assert!(fs::symlink_metadata(&out).unwrap().file_type().is_fifo());

    // A stream cut short: the reader gets what was authenticated, then end-of-file; the exit
    // status says it failed.
    fs::write(env.path("cut.sbx"), &sealed[..sealed.len() - 100]).unwrap();
    let reader = read_fifo(&out);
    let mut cmd = strongbox(&env);
    cmd.arg("decrypt")
        .arg("--key-file")
        .arg(&key)
        .arg("cut.sbx");
    cmd.arg("-o").arg(&out);
    let output = run_limited(cmd);
    release_reader(&out);
    let got = fifo_bytes(reader);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(got.len() < plain.len() && plain.starts_with(&got));
    assert!(fs::symlink_metadata(&out).unwrap().file_type().is_fifo());
    assert!(temporaries(env.dir.path()).is_empty());

    // A wrong key is reported before the FIFO is opened: no reader needed, no wait.
    env.key_file("wrong", KEY_B);
    let mut cmd = strongbox(&env);
    cmd.args(["decrypt", "--key-file", "wrong", "s.sbx", "-o", "out.fifo"]);
    assert_fails_with(&run_limited(cmd), "wrong key");
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn a_device_output_is_written_in_place_not_replaced() {
    if !is_root() {
        eprintln!("skipped: making a device node needs root");
        return;
    }
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    let dev = env.path("null");
    // The null device's numbers (1, 3), as a node of our own in the test directory.
    let made = Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mknod is not allowed here");
        return;
    }
    fs::write(env.path("plain"), b"some data").unwrap();
    env.cmd()
        .arg("encrypt")
        .arg("--key-file")
        .arg(&key)
        .arg("plain")
        .arg("-o")
        .arg(&dev)
        .run()
        .success();
    let meta = fs::symlink_metadata(&dev).unwrap();
    assert!(meta.file_type().is_char_device(), "{meta:?}");
    assert_eq!(meta.rdev(), fs::metadata(&dev).unwrap().rdev());
    assert!(temporaries(env.dir.path()).is_empty());
}

#[test]
fn a_symlink_output_replaces_its_target_and_keeps_the_targets_mode() {
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    fs::create_dir(env.path("real")).unwrap();
    let target = env.path("real/out.sbx");
    fs::write(&target, b"old").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("real/out.sbx", env.path("link.sbx")).unwrap();
    fs::write(env.path("plain"), b"through a link").unwrap();
    env.cmd()
        .args(["encrypt", "--key-file", "k", "plain", "-o", "link.sbx"])
        .run()
        .success();
    assert!(
        fs::symlink_metadata(env.path("link.sbx"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let meta = fs::metadata(&target).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    let sealed = fs::read(&target).unwrap();
    assert_eq!(decrypted(&env, &key, &sealed), b"through a link");

    // A link to nothing is refused, and nothing is created.
    std::os::unix::fs::symlink("real/missing", env.path("dangling")).unwrap();
    let out = env
        .cmd()
        .args(["encrypt", "--key-file", "k", "plain", "-o", "dangling"])
        .run();
    let line = assert_failure(out);
    assert!(
        line.contains("dangling") && line.contains("symbolic link"),
        "{line}"
    );
    assert!(!env.path("real/missing").exists());
}

#[test]
fn hard_linked_and_read_only_outputs_are_refused_and_left_alone() {
    let env = Env::new();
    env.key_file("k", KEY_A);
    fs::write(env.path("plain"), b"data").unwrap();
    fs::write(env.path("a"), b"old a").unwrap();
    fs::hard_link(env.path("a"), env.path("b")).unwrap();
    let line = assert_failure(
        env.cmd()
            .args(["encrypt", "--key-file", "k", "plain", "-o", "a"])
            .run(),
    );
    assert!(
        line.contains("a: ") && line.contains("hard links"),
        "{line}"
    );
    assert_eq!(fs::read(env.path("b")).unwrap(), b"old a");
    assert_eq!(fs::metadata(env.path("a")).unwrap().nlink(), 2);

    fs::write(env.path("ro"), b"old ro").unwrap();
    fs::set_permissions(env.path("ro"), fs::Permissions::from_mode(0o444)).unwrap();
    let line = assert_failure(
        env.cmd()
            .args(["encrypt", "--key-file", "k", "plain", "-o", "ro"])
            .run(),
    );
    assert!(
        line.contains("ro: ") && line.contains("read-only"),
        "{line}"
    );
    assert_eq!(fs::read(env.path("ro")).unwrap(), b"old ro");
    assert!(temporaries(env.dir.path()).is_empty());
}

#[test]
fn an_input_that_is_its_own_output_is_refused() {
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    let f = env.path("f");
    fs::write(&f, data(100_000, 3)).unwrap();
    let before = fs::read(&f).unwrap();
    // `strongbox encrypt --key-file k < f >> f`, with the file size limited so that a program
    // reading its own output cannot fill the disk.
    let mut cmd = Command::new("sh");
    cmd.current_dir(env.dir.path())
        .env("HOME", env.home())
        .arg("-c")
        .arg("ulimit -f 200000; exec \"$0\" encrypt --key-file k < f >> f")
        .arg(env!("CARGO_BIN_EXE_strongbox"));
    let output = run_limited(cmd);
    assert_fails_with(&output, "stdin: input file is output file");
    assert_eq!(fs::read(&f).unwrap(), before);

    let sealed = encrypted(&env, &key, b"x", "s.sbx");
    for args in [
        ["encrypt", "--key-file", "k", "f", "-o", "f"],
        ["decrypt", "--key-file", "k", "s.sbx", "-o", "s.sbx"],
    ] {
        let mut cmd = strongbox(&env);
        cmd.args(args);
        let output = run_limited(cmd);
        assert_fails_with(&output, "input file is output file");
    }
    assert_eq!(fs::read(&f).unwrap(), before);
    assert_eq!(fs::read(env.path("s.sbx")).unwrap(), sealed);
}

/// Runs `args` (after the global `pre` options) and expects a prompt "not a regular file".
fn refuses_fifo(env: &Env, pre: &[&str], args: &[&str]) {
    let mut cmd = strongbox(env);
    cmd.args(pre).args(args);
    let output = run_limited(cmd);
    assert_fails_with(&output, "not a regular file");
}

#[test]
fn key_paths_that_are_fifos_are_refused_without_hanging() {
    let env = Env::new();
    fs::write(env.path("plain"), b"data").unwrap();
    fifo(&env, "key.fifo");
    fs::create_dir(env.path("db1")).unwrap();
    refuses_fifo(&env, &[], &["encrypt", "--key-file", "key.fifo", "plain"]);
    refuses_fifo(
        &env,
        &["--master-key-path", "key.fifo"],
        &["key", "init", "db1"],
    );
    refuses_fifo(&env, &["--settings", "key.fifo"], &["key", "init", "db1"]);

    // The home key.
    let home_dir = env.home().join(".strongbox");
    fs::create_dir(&home_dir).unwrap();
    fs::set_permissions(&home_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let status = Command::new("mkfifo")
        .arg(env.home_master_key())
        .status()
        .unwrap();
    assert!(status.success());
    refuses_fifo(&env, &[], &["key", "init", "db1"]);

    // A database's key file.
    env.master_key_file("master.key", 9);
    let db = env.mkdir("db2");
    let status = Command::new("mkfifo")
        .arg(db.join("secret.key.encrypted"))
        .status()
        .unwrap();
    assert!(status.success());
    refuses_fifo(
        &env,
        &["--master-key-path", "master.key"],
        &["key", "get", "db2"],
    );
}

#[test]
fn names_of_up_to_255_bytes_are_outputs_and_restore_targets() {
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    fs::write(env.path("plain"), b"long names").unwrap();
    for len in [238, 255] {
        let name = "n".repeat(len);
        env.cmd()
            .args(["encrypt", "--key-file", "k", "plain", "-o", &name])
            .run()
            .success();
        let sealed = fs::read(env.path(&name)).unwrap();
        assert_eq!(decrypted(&env, &key, &sealed), b"long names");
        let out = format!("{}.x", "o".repeat(len - 2));
        env.cmd()
            .args(["decrypt", "--key-file", "k", &name, "-o", &out])
            .run()
            .success();
        assert_eq!(fs::read(env.path(&out)).unwrap(), b"long names");
    }

    env.master_key_file("master.key", 5);
    let db = env.mkdir("db");
    fs::write(db.join("data"), b"rows").unwrap();
    let backup = "b".repeat(255);
    let restored = "r".repeat(255);
    let master = ["--master-key-path", "master.key"];
    env.cmd()
        .args(master)
        .args(["backup", "snapshot", "db", "-o", &backup])
        .run()
        .success();
    env.cmd()
        .args(master)
        .args(["restore", &backup, "--to", &restored])
        .run()
        .success();
    assert_eq!(fs::read(env.path(&restored).join("data")).unwrap(), b"rows");
    assert!(temporaries(env.dir.path()).is_empty());
}

/// A pseudo-random source for the moments signals are sent at (seeded from the clock; the seed
/// is printed so that a failing run can be repeated).
struct Moments(u64);

impl Moments {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            | 1;
        eprintln!("signal moments seed: {seed}");
        Moments(seed)
    }

    /// A pause of 0 to `max_ms` milliseconds.
    fn pause(&mut self, max_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_micros(self.0 % (max_ms * 1000 + 1))
    }
}

/// Polls `done` until it holds, failing the test after [`LIMIT`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LIMIT, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether process `pid` catches SIGHUP, SIGINT and SIGTERM (its handlers are installed).
fn catches_interruptions(pid: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let bit = |signal: u32| 1u64 << (signal - 1);
    [1, 2, 15].into_iter().all(|signal| mask & bit(signal) != 0)
}

/// Sends `signal` (`INT`, `TERM`, `HUP`, `KILL`) to `pid` with kill(1).
fn send(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// The exit status strongbox gives for `signal`.
fn status_for(signal: &str) -> i32 {
    match signal {
        "INT" => 130,
        "TERM" => 143,
        "HUP" => 129,
        other => panic!("{other}"),
    }
}

/// Opens the FIFO `path` for writing once a reader has it open.
fn open_writer(path: &Path) -> fs::File {
    wait_until("the FIFO's reader", || {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
            .open(path)
            .is_ok()
    });
    fs::OpenOptions::new().write(true).open(path).unwrap()
}

/// Starts `strongbox <args>` reading the FIFO `input`, feeds it `first` (and keeps it open),
/// waits for its temporary output file, and returns the child and the FIFO's writer.
fn start_stalled(env: &Env, args: &[&str], input: &Path, first: &[u8]) -> (Child, fs::File) {
    let child = strongbox(env)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut writer = open_writer(input);
    writer.write_all(first).unwrap();
    wait_until("the temporary output file", || {
        !temporaries(env.dir.path()).is_empty()
    });
    (child, writer)
}

#[test]
fn sigint_sigterm_and_sighup_while_writing_remove_the_temporary_files() {
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    env.master_key_file("a.key", 1);
    env.mkdir("db");
    let plain = data(3 << 20, 4);
    let sealed = encrypted(&env, &key, &plain, "s.sbx");
    fs::write(env.path("export"), &plain).unwrap();
    let master = ["--master-key-path", "a.key"];
    env.cmd()
        .args(master)
        .args(["backup", "logical", "db", "export", "-o", "b.sbx"])
        .run()
        .success();
    let backup = fs::read(env.path("b.sbx")).unwrap();
    let input = fifo(&env, "in.fifo");
    let commands: [(&[&str], &[u8]); 4] = [
        (
            &["encrypt", "--key-file", "k", "in.fifo", "-o", "out"],
            &plain,
        ),
        (
            &["decrypt", "--key-file", "k", "in.fifo", "-o", "out"],
            &sealed,
        ),
        (
            &[
                master[0], master[1], "backup", "logical", "db", "in.fifo", "-o", "out",
            ],
            &plain,
        ),
        (
            &[master[0], master[1], "restore", "in.fifo", "--to", "out"],
            &backup,
        ),
    ];
    let mut moments = Moments::new();
    for round in 0..3 {
        let signal = ["INT", "TERM", "HUP"][round];
        for (args, bytes) in commands {
            let (child, writer) = start_stalled(&env, args, &input, &bytes[..1 << 20]);
            assert!(catches_interruptions(child.id()));
            std::thread::sleep(moments.pause(30));
            send(signal, child.id());
            let output = wait_limited(child);
            drop(writer);
            let what = format!("{args:?}, SIG{signal}: {}", stderr(&output));
            assert_eq!(output.status.code(), Some(status_for(signal)), "{what}");
            assert_eq!(temporaries(env.dir.path()), Vec::<String>::new(), "{what}");
            assert!(!env.path("out").exists(), "{what}");
        }
    }
}

/// Runs `args` with `stdin` on its standard input, sends `signal` at a random moment after
/// its handlers are installed, and returns its exit status.
fn interrupt(env: &Env, args: &[&str], stdin: &[u8], signal: &str, pause: Duration) -> Output {
    let mut child = strongbox(env)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // A child reaped here has ended: its pid may be reused, so it gets no signal.
    let mut reaped = false;
    wait_until("signal handlers", || {
        reaped = child.try_wait().ok().flatten().is_some();
        reaped || catches_interruptions(pid)
    });
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    std::thread::sleep(pause);
    if !reaped {
        send(signal, pid);
    }
    wait_limited(child)
}

#[test]
fn sigint_and_sigterm_during_key_put_or_rotate_leave_no_temporary_key_file() {
    let env = Env::new();
    env.master_key_file("a.key", 1);
    env.master_key_file("b.key", 2);
    let dbs: Vec<String> = (0..24).map(|i| format!("db{i}")).collect();
    for db in &dbs {
        env.mkdir(db);
        env.cmd()
            .args(["--master-key-path", "a.key", "key", "init", db])
            .run()
            .success();
    }
    let mut moments = Moments::new();
    let key_line = format!("{KEY_A}\n");
    for round in 0..6 {
        let signal = if round % 2 == 0 { "INT" } else { "TERM" };
        let put = [
            "--master-key-path",
            "a.key",
            "key",
            "put",
            "--overwrite",
            "db0",
        ];
        let output = interrupt(&env, &put, key_line.as_bytes(), signal, moments.pause(20));
        let code = output.status.code();
        eprintln!("round {round}, SIG{signal}: exit status {code:?}");
        assert!(
            code == Some(0) || code == Some(status_for(signal)),
            "put, SIG{signal}: {code:?} {}",
            stderr(&output)
        );
        let mut rotate = vec!["--master-key-path", "a.key", "key", "rotate"];
        rotate.extend(["--to-master-key-path", "b.key"]);
        rotate.extend(dbs.iter().map(String::as_str));
        let output = interrupt(&env, &rotate, b"", signal, moments.pause(40));
        let code = output.status.code();
        eprintln!("round {round}, SIG{signal}: exit status {code:?}");
        assert!(
            code == Some(0) || code == Some(status_for(signal)),
            "rotate, SIG{signal}: {code:?} {}",
            stderr(&output)
        );
        for db in &dbs {
            let left = temporaries(&env.path(db));
            assert!(left.is_empty(), "round {round}, {db}: {left:?}");
        }
    }
}

#[test]
fn after_a_sigkill_the_next_run_removes_the_stale_temporaries() {
    let env = Env::new();
    env.key_file("k", KEY_A);
    let input = fifo(&env, "in.fifo");
    let args = ["encrypt", "--key-file", "k", "in.fifo", "-o", "out"];
    let (child, writer) = start_stalled(&env, &args, &input, &data(1000, 5));
    send("KILL", child.id());
    wait_limited(child);
    drop(writer);
    assert_eq!(temporaries(env.dir.path()).len(), 1);
    fs::write(env.path("plain"), b"x").unwrap();
    env.cmd()
        .args(["encrypt", "--key-file", "k", "plain", "-o", "other"])
        .run()
        .success();
    assert_eq!(temporaries(env.dir.path()), Vec::<String>::new());

    // A key store's: only names of its exact pattern are removed.
    env.master_key_file("a.key", 1);
    let db = env.mkdir("db");
    let stale = db.join(".secret.key.encrypted.Ab12Cd.tmp");
    let other = db.join(".secret.key.encrypted.Ab12C.tmp");
    fs::write(&stale, b"left by a killed run").unwrap();
    fs::write(&other, b"not ours").unwrap();
    env.cmd()
        .args(["--master-key-path", "a.key", "key", "put", "db"])
        .write_stdin(format!("{KEY_A}\n"))
        .run()
        .success();
    assert!(!stale.exists());
    assert!(other.exists());
}

#[test]
fn a_backup_read_from_a_fifo_restores() {
    let env = Env::new();
    env.master_key_file("a.key", 1);
    env.mkdir("db");
    // More than the 16 MiB every compressed payload may always expand to, so that the
    // expansion limit is applied to a payload whose size is not known in advance.
    let plain = data(20 << 20, 6);
    fs::write(env.path("export"), &plain).unwrap();
    let master = ["--master-key-path", "a.key"];
    env.cmd()
        .args(master)
        .args(["backup", "logical", "db", "export", "-o", "b.sbx"])
        .run()
        .success();
    let backup = fs::read(env.path("b.sbx")).unwrap();
    let input = fifo(&env, "in.fifo");
    let feed = {
        let input = input.clone();
        std::thread::spawn(move || open_writer(&input).write_all(&backup))
    };
    let mut restore = strongbox(&env);
    restore
        .args(master)
        .args(["restore", "in.fifo", "--to", "out"]);
    let output = run_limited(restore);
    feed.join().unwrap().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let restored = fs::read(env.path("out").join("0000-logical-full.export")).unwrap();
    assert!(restored == plain, "the restored export differs");
}

#[test]
fn a_file_the_user_may_not_write_is_not_replaced_through_a_writable_directory() {
    if !is_root() {
        return; // needs another user's file; the test makes one as root
    }
    let env = Env::new();
    env.key_file("k", KEY_A);
    fs::write(env.path("plain"), b"data").unwrap();
    fs::write(env.path("roots"), b"root's file").unwrap();
    fs::set_permissions(env.path("roots"), fs::Permissions::from_mode(0o644)).unwrap();
    // The directory (and the inputs) are nobody's; the output file stays root's.
    for name in [".", "k", "plain"] {
        std::os::unix::fs::chown(env.path(name), Some(65534), Some(65534)).unwrap();
    }
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_strongbox"))
        .args(["encrypt", "--key-file", "k", "plain", "-o", "roots"])
        .current_dir(env.dir.path())
        .env("HOME", env.dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not writable"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fs::read(env.path("roots")).unwrap(), b"root's file");
    assert_eq!(fs::metadata(env.path("roots")).unwrap().uid(), 0);
    assert!(temporaries(env.dir.path()).is_empty());
}
