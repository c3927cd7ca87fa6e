//! The sealing threads of a `BackupWriter` end with it: finished, dropped mid-stream, or after
//! an error. (Its own test binary: it counts the process's threads by name.)

#![cfg(target_os = "linux")]

use std::io::{self, Write};
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

/// Takes `budget` bytes (the header and a little more), then fails.
struct Failing {
    budget: usize,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
    assert_eq!(sealing_threads(), 2);
    writer.finish().unwrap();
    assert_eq!(sealing_threads(), 0, "finished");

    for _ in 0..20 {
        let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, vec![]).unwrap();
        writer.write_all(&data).unwrap();
        drop(writer);
    }
    assert_eq!(sealing_threads(), 0, "dropped mid-stream");

    let inner = Failing { budget: 5000 };
    let mut writer = BackupWriter::with_config(inner, &key, &config, vec![]).unwrap();
    assert!(writer.write_all(&data).is_err());
    assert!(writer.write_all(&data).is_err(), "poisoned");
    drop(writer);
    assert_eq!(sealing_threads(), 0, "after an error");
}
