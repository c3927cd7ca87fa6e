//! The threads of a `BackupWriter` and of a `RestoreReader` end with them: finished, dropped
//! mid-stream, or after an error. (Its own test binary: it counts the process's threads by
//! name. One test, so that the counts of one part are not disturbed by another running.)

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::num::NonZeroUsize;

use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

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
    assert_eq!(settled(sealing_threads, 2), 2);
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
    assert_eq!(settled(opening_threads, 2), 2);
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
}
