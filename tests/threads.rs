//! The threads of a `BackupWriter` and of a `RestoreReader` end with them: finished, dropped
//! mid-stream, or after an error; there are never more of them than cores; and a thread that
//! cannot be started is an error of the command, which leaves no output. (Its own test binary:
//! it counts the process's threads by name. One test in this process, so that the counts of one
//! part are not disturbed by another running; the others run the `strongbox` binary.)

#![cfg(target_os = "linux")]

mod cli_support;

use std::io::{Read, Write};
use std::num::NonZeroUsize;

use cli_support::*;
use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Threads besides the calling one that a writer or reader asked for 3 threads starts.
fn helpers_of_3() -> usize {
    cores().min(3) - 1
}

/// Threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|task| {
            let comm = task.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|comm| comm.trim() == name)
        })
        .count()
}

fn sealing_threads() -> usize {
    threads_named("strongbox-seal")
}

fn opening_threads() -> usize {
    threads_named("strongbox-open")
}

/// `count()` after 50 ms: long enough for a thread started by mistake to name itself.
fn after_a_moment(count: fn() -> usize) -> usize {
    std::thread::sleep(std::time::Duration::from_millis(50));
    count()
}

/// `count()` once it equals `want`, or after 10 s. A new thread names itself once it runs, and
/// a joined thread leaves `/proc` a moment after `join` returns (the kernel wakes the joiner
/// before it removes the thread).
fn settled(count: fn() -> usize, want: usize) -> usize {
    let started = std::time::Instant::now();
    while count() != want && started.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    count()
}

#[test]
fn the_threads_of_a_writer_or_reader_end_with_it() {
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let config = StreamConfig::default()
        .segment_size(4096)
        .unwrap()
        .threads(NonZeroUsize::new(3).unwrap());
    let data = vec![5u8; 100_000];
    assert_eq!(settled(sealing_threads, 0), 0);

    let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
    assert_eq!(
        after_a_moment(sealing_threads),
        0,
        "started only when needed"
    );
    writer.write_all(&data).unwrap();
    assert_eq!(settled(sealing_threads, helpers_of_3()), helpers_of_3());
    writer.finish().unwrap();
    assert_eq!(settled(sealing_threads, 0), 0, "finished");

    for _ in 0..20 {
        let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
        writer.write_all(&data).unwrap();
        drop(writer);
    }
    assert_eq!(settled(sealing_threads, 0), 0, "dropped mid-stream");

    // Room for the header and a little more, then every write fails.
    let mut room = [0u8; 5000];
    let mut writer = BackupWriter::with_config(&mut room[..], &key, &config, vec![]).unwrap();
    assert!(writer.write_all(&data).is_err());
    assert!(writer.write_all(&data).is_err(), "poisoned");
    drop(writer);
    assert_eq!(settled(sealing_threads, 0), 0, "after an error");

    // A write of more than 64 segments is sealed on threads of its own, joined before it
    // returns: the writer's threads are not started for it.
    let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
    writer.write_all(&vec![5u8; 300 * 4096]).unwrap();
    assert_eq!(after_a_moment(sealing_threads), 0, "one large write");
    writer.finish().unwrap();

    // A reader: its threads start with the first small read and end with it.
    let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
    writer.write_all(&data).unwrap();
    let backup = writer.finish().unwrap();
    let threads = NonZeroUsize::new(3).unwrap();
    let mut reader = RestoreReader::new(&backup[..], &key)
        .unwrap()
        .with_threads(threads);
    let mut buf = [0u8; 1000];
    assert_eq!(
        after_a_moment(opening_threads),
        0,
        "started only when needed"
    );
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(settled(opening_threads, helpers_of_3()), helpers_of_3());
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!(settled(opening_threads, 0), 0, "read to the end");
    assert_eq!(rest.len() + buf.len(), data.len());

    for _ in 0..20 {
        let mut reader = RestoreReader::new(&backup[..], &key)
            .unwrap()
            .with_threads(threads);
        reader.read_exact(&mut buf).unwrap();
        drop(reader);
    }
    assert_eq!(settled(opening_threads, 0), 0, "dropped mid-stream");

    let mut corrupt = backup.clone();
    let at = corrupt.len() - 20_000;
    corrupt[at] ^= 1;
    let mut reader = RestoreReader::new(&corrupt[..], &key)
        .unwrap()
        .with_threads(threads);
    assert!(reader.read_to_end(&mut rest).is_err());
    assert_eq!(settled(opening_threads, 0), 0, "after an error");

    // 20000 threads asked for: one per core at most.
    let huge = NonZeroUsize::new(20_000).unwrap();
    let config = config.threads(huge);
    assert_eq!(config.selected_threads().get(), cores());
    let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
    writer.write_all(&data).unwrap();
    assert_eq!(after_a_moment(sealing_threads), cores() - 1);
    let backup = writer.finish().unwrap();
    let mut reader = RestoreReader::new(&backup[..], &key)
        .unwrap()
        .with_threads(huge);
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(after_a_moment(opening_threads), cores() - 1);
    rest.clear();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!([&buf[..], &rest].concat(), data);
}

#[test]
fn a_huge_thread_count_works_through_the_cli() {
    let env = Env::new();
    let key = env.key_file("k", KEY_A);
    // More than 64 segments: one large write and one large read with all the threads.
    let plain = data((5 << 20) + 12_345, 1);
    std::fs::write(env.path("p"), &plain).unwrap();
    for (command, input, output) in [("encrypt", "p", "s"), ("decrypt", "s", "d")] {
        env.cmd()
            .args([command, "-q", "--threads", "20000", "--key-file"])
            .arg(&key)
            .args([input, "-o", output])
            .run()
            .success()
            .stderr("");
    }
    assert_eq!(std::fs::read(env.path("d")).unwrap(), plain);
    assert_eq!(listing(env.dir.path()), ["d", "home", "k", "p", "s"]);
}

/// Runs `strongbox ARGS` in `env` with at most one process or thread for its user (as root,
/// whom that limit does not bind, as `nobody`, owning the directory): it cannot start a thread.
fn without_threads(env: &Env, args: &[&str]) -> assert_cmd::assert::Assert {
    let mut cmd = std::process::Command::new("prlimit");
    if is_root() {
        for entry in walk(env.dir.path()) {
            std::os::unix::fs::chown(entry, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "prlimit",
        ]);
    }
    cmd.current_dir(env.dir.path())
        .args(["--nproc=1", "--"])
        .arg(env!("CARGO_BIN_EXE_strongbox"))
        .args(args)
        .env("HOME", env.home());
    assert_cmd::Command::from_std(cmd).run()
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
}

/// `dir` and everything under it.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(walk(&path));
        } else {
            all.push(path);
        }
    }
    all
}

#[test]
fn a_thread_that_cannot_start_is_an_error_and_leaves_no_output() {
    if cores() < 2 {
        eprintln!("one core: the commands start no thread, nothing to test");
        return;
    }
    let env = Env::new();
    env.key_file("k", KEY_A);
    let plain = data((5 << 20) + 12_345, 2);
    std::fs::write(env.path("p"), &plain).unwrap();
    env.cmd()
        .args([
            "encrypt",
            "-q",
            "--threads",
            "1",
            "--key-file",
            "k",
            "p",
            "-o",
            "s",
        ])
        .run()
        .success();
    for (command, input, output) in [("encrypt", "p", "s2"), ("decrypt", "s", "d")] {
        let line = assert_failure(without_threads(
            &env,
            &[
                command,
                "-q",
                "--threads",
                "2",
                "--key-file",
                "k",
                input,
                "-o",
                output,
            ],
        ));
        assert!(line.contains("cannot start a worker thread"), "{line}");
    }
    assert_eq!(listing(env.dir.path()), ["home", "k", "p", "s"]);
    // With one thread the same commands need no other thread, and succeed.
    for (command, input, output) in [("encrypt", "p", "s2"), ("decrypt", "s", "d")] {
        without_threads(
            &env,
            &[
                command,
                "-q",
                "--threads",
                "1",
                "--key-file",
                "k",
                input,
                "-o",
                output,
            ],
        )
        .success();
    }
    assert_eq!(std::fs::read(env.path("d")).unwrap(), plain);
}
