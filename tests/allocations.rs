//! A writer or reader with several threads reuses its segment buffers: a long stream allocates
//! a bounded number of them, not one per segment. (Its own test binary: it counts the bytes the
//! process allocates, with `dhat`'s global allocator. One test, so that nothing else allocates
//! while it counts.)
//!
//! A segment buffer allocated per segment costs more than sealing the segment: each one is
//! zeroized when it is dropped.

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;

use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

const SEGMENT: usize = StreamConfig::DEFAULT_SEGMENT_SIZE;
const SEGMENTS: usize = 512;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Bytes allocated by `f` (whether freed or not).
fn allocated_by(f: impl FnOnce()) -> u64 {
    let before = dhat::HeapStats::get().total_bytes;
    f();
    dhat::HeapStats::get().total_bytes - before
}

#[test]
fn streams_with_threads_reuse_their_segment_buffers() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let threads = NonZeroUsize::new(2).unwrap();
    let config = StreamConfig::default().threads(threads);
    let data: Vec<u8> = (0..SEGMENTS * SEGMENT).map(|i| (i % 251) as u8).collect();
    // Measured: 0.3-0.75 MiB per stream, about 10 segment buffers (8 segments in flight with 2
    // threads, plus the writer's or reader's own); before buffers were reused in every case, up
    // to 196 buffers (12 MiB) for one large write.
    let bound = 24 * SEGMENT as u64;

    for write_size in [4096, 1 << 20, data.len()] {
        let allocated = allocated_by(|| {
            let mut writer = BackupWriter::with_config(io::sink(), &key, &config, vec![]).unwrap();
            for chunk in data.chunks(write_size) {
                writer.write_all(chunk).unwrap();
            }
            writer.finish().unwrap();
        });
        assert!(
            allocated <= bound,
            "{allocated} bytes allocated for {SEGMENTS} segments in writes of {write_size}"
        );
    }

    let mut sealed = Vec::new();
    let mut writer = BackupWriter::with_config(&mut sealed, &key, &config, vec![]).unwrap();
    writer.write_all(&data).unwrap();
    writer.finish().unwrap();
    let mut out = vec![0u8; data.len()];
    for read_size in [4096, SEGMENT, 1 << 20, data.len()] {
        let allocated = allocated_by(|| {
            let mut reader = RestoreReader::new(&sealed[..], &key)
                .unwrap()
                .with_threads(threads);
            let mut at = 0;
            loop {
                let end = (at + read_size).min(out.len());
                let n = reader.read(&mut out[at..end]).unwrap();
                if n == 0 {
                    break;
                }
                at += n;
            }
            assert_eq!(at, data.len());
        });
        assert!(out == data, "reads of {read_size}");
        assert!(
            allocated <= bound,
            "{allocated} bytes allocated for {SEGMENTS} segments in reads of {read_size}"
        );
    }
}
