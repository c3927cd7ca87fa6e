//! Peak heap of an `ObjectWriter` upload does not grow with the object: 20 MiB and then
//! 100 MiB written to a `file://` object (5 MiB parts, 2 in flight) stay under
//! `(parts_in_flight + 2) × part_size` plus a small allowance. (Its own test binary: it
//! measures the process's heap with `dhat`'s global allocator. One test, so that nothing else
//! allocates while it measures.)

use std::io::{Read as _, Write as _};

use strongbox::object::{ObjectReader, ObjectUrl, ObjectWriter, UploadOptions};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const MIB: usize = 1 << 20;
const PART: usize = 5 * MIB;
const IN_FLIGHT: usize = 2;

/// Writes `mib` MiB to `url` in 64 KiB writes, reads it back in 64 KiB reads; the process's
/// peak heap since the last reset.
fn peak_of_round_trip(url: &ObjectUrl, mib: usize) -> usize {
    let options = UploadOptions::default()
        .part_size(PART)
        .parts_in_flight(IN_FLIGHT);
    let mut writer = ObjectWriter::create_with(url, options).unwrap();
    let chunk = vec![0x5a; 64 << 10];
    for _ in 0..mib * 16 {
        writer.write_all(&chunk).unwrap();
    }
    writer.finish().unwrap();
    let mut reader = ObjectReader::open(url).unwrap();
    let mut buf = vec![0; 64 << 10];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, mib * MIB);
    dhat::HeapStats::get().max_bytes
}

#[test]
fn upload_memory_is_bounded() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let dir = tempfile::tempdir().unwrap();
    // `file:///` and the absolute path with `/` separators (`file:///C:/...` on Windows).
    let url = |name: &str| {
        let path = dir
            .path()
            .join(name)
            .display()
            .to_string()
            .replace('\\', "/");
        ObjectUrl::parse(&format!("file:///{}", path.trim_start_matches('/')))
    };
    let small = peak_of_round_trip(&url("small").unwrap(), 20);
    let large = peak_of_round_trip(&url("large").unwrap(), 100);
    let bound = (IN_FLIGHT + 2) * PART + 4 * MIB;
    eprintln!("peak heap: {small} bytes (20 MiB), {large} bytes (100 MiB); bound {bound}");
    assert!(
        small <= bound && large <= bound,
        "peaks {small} / {large}, bound {bound}"
    );
}
