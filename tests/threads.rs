//! The sealing threads of a `BackupWriter` end with it: finished, dropped mid-stream, or after
//! an error. (Its own test binary: it counts the process's threads by name.)

#![cfg(target_os = "linux")]

use std::io::Write;
use std::num::NonZeroUsize;

use strongbox::{BackupWriter, DataKey, StreamConfig};

/// Threads of this process named `strongbox-seal`.
fn sealing_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|task| {
            let comm = task.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|name| name.trim() == "strongbox-seal")
        })
        .count()
}

#[test]
fn sealing_threads_end_with_their_writer() {
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let config = StreamConfig::default()
        .segment_size(4096)
        .unwrap()
        .threads(NonZeroUsize::new(3).unwrap());
    let data = vec![5u8; 100_000];
    assert_eq!(sealing_threads(), 0);

    let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
    assert_eq!(sealing_threads(), 0, "started only when needed");
    writer.write_all(&data).unwrap();
    // A new thread names itself once it runs: give it a moment.
    let started = std::time::Instant::now();
    while sealing_threads() < 2 && started.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(sealing_threads(), 2);
    writer.finish().unwrap();
    assert_eq!(sealing_threads(), 0, "finished");

    for _ in 0..20 {
        let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
        writer.write_all(&data).unwrap();
        drop(writer);
    }
    assert_eq!(sealing_threads(), 0, "dropped mid-stream");

    // Room for the header and a little more, then every write fails.
    let mut room = [0u8; 5000];
    let mut writer = BackupWriter::with_config(&mut room[..], &key, &config, vec![]).unwrap();
    assert!(writer.write_all(&data).is_err());
    assert!(writer.write_all(&data).is_err(), "poisoned");
    drop(writer);
    assert_eq!(sealing_threads(), 0, "after an error");
}
