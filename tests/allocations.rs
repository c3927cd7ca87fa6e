//! A writer or reader with several threads reuses its segment buffers: a long stream allocates
//! a bounded number of them, not one per segment. (Its own test binary: it counts the process's
//! large allocations with a global allocator. One test, so that nothing else allocates while it
//! counts.)
//!
//! A segment buffer allocated per segment costs more than sealing the segment: each one is
//! zeroized when it is dropped.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

const SEGMENT: usize = StreamConfig::DEFAULT_SEGMENT_SIZE;
const SEGMENTS: usize = 512;

/// Counts allocations of at least one segment.
struct Counting;

static LARGE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= SEGMENT {
            LARGE.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= SEGMENT {
            LARGE.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= SEGMENT {
            LARGE.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Large allocations made by `f`.
fn large_allocations(f: impl FnOnce()) -> usize {
    let before = LARGE.load(Ordering::Relaxed);
    f();
    LARGE.load(Ordering::Relaxed) - before
}

#[test]
fn streams_with_threads_reuse_their_segment_buffers() {
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let threads = NonZeroUsize::new(2).unwrap();
    let config = StreamConfig::default().threads(threads);
    let data: Vec<u8> = (0..SEGMENTS * SEGMENT).map(|i| (i % 251) as u8).collect();
    // Measured: 8 to 11 (8 segments in flight with 2 threads, plus the writer's or reader's own
    // buffers); before buffers were reused in every case, up to 196 for one large write.
    let bound = 24;

    for write_size in [4096, 1 << 20, data.len()] {
        let allocations = large_allocations(|| {
            let mut writer = BackupWriter::with_config(io::sink(), &key, &config, vec![]).unwrap();
            for chunk in data.chunks(write_size) {
                writer.write_all(chunk).unwrap();
            }
            writer.finish().unwrap();
        });
        assert!(
            allocations <= bound,
            "{allocations} large allocations for {SEGMENTS} segments in writes of {write_size}"
        );
    }

    let mut sealed = Vec::new();
    let mut writer = BackupWriter::with_config(&mut sealed, &key, &config, vec![]).unwrap();
    writer.write_all(&data).unwrap();
    writer.finish().unwrap();
    let mut out = vec![0u8; data.len()];
    for read_size in [4096, SEGMENT, 1 << 20, data.len()] {
        let allocations = large_allocations(|| {
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
            allocations <= bound,
            "{allocations} large allocations for {SEGMENTS} segments in reads of {read_size}"
        );
    }
}
