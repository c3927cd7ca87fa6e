//! Inputs the fuzz targets (fuzz/) stopped on, replayed as plain tests. Both were questions about
//! `RestoreReader`'s `Seek` contract, which the fuzz oracle first got wrong; the answers are
//! pinned here.

use std::io::{Cursor, Read, Seek, SeekFrom};

use strongbox::RestoreReader;
use strongbox::stream::Algorithm;

mod common;
use common::small_segment_stream as stream;

/// fuzz/artifacts/stream_read_mutated/crash-461638bc...: `SeekFrom::End(-32619)` on an 87-byte
/// stream. Like `std::io::Cursor`, a seek before the start fails and leaves the position where
/// it was, so the next read succeeds from there.
#[test]
fn a_seek_before_the_start_fails_and_keeps_the_position() {
    let (key, plain, bytes) = stream(87, Algorithm::ChaCha20Poly1305);
    let mut r = RestoreReader::new(Cursor::new(&bytes), &key).unwrap();
    assert!(r.seek(SeekFrom::End(-32619)).is_err());
    assert!(r.seek(SeekFrom::Current(-1)).is_err());
    assert_eq!(r.stream_position().unwrap(), 0);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, plain);
}

/// fuzz/artifacts/stream_read_mutated/crash-95d0f42f...: a stream cut inside its last segment
/// with a segment duplicated; a seek fails (the last segment does not authenticate) and every
/// later non-empty read fails too; an empty read is `Ok(0)`, as `Read` documents.
#[test]
fn after_a_failed_seek_reads_fail_and_empty_reads_are_ok() {
    let (key, _, mut bytes) = stream(17830, Algorithm::Aes256Gcm);
    let header = strongbox::stream::Header::read_from(&mut &bytes[..])
        .unwrap()
        .encoded_len();
    let full = 4096 + strongbox::stream::TAG_LEN;
    bytes.truncate(header + 4 * full + 53);
    let dup = bytes[header + full..header + 2 * full].to_vec();
    bytes.splice(header + 2 * full..header + 2 * full, dup);

    let mut r = RestoreReader::new(Cursor::new(&bytes), &key).unwrap();
    assert!(r.seek(SeekFrom::Start(5000)).is_err());
    let mut buf = vec![0u8; 1973];
    assert!(r.read(&mut buf).is_err());
    assert!(r.seek(SeekFrom::Current(-16182)).is_err());
    assert_eq!(r.read(&mut []).unwrap(), 0);
    assert!(r.read(&mut buf).is_err());
}
