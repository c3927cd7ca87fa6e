//! The stream reader over arbitrary bytes, with a fixed key: read to the end (in chunks of a
//! fuzzer-chosen size), and through `Seek`.
//!
//! First input byte (flags):
//! - bit 0: put a genuine header (the fixed key, 4 KiB segments) in front of the remaining bytes,
//!   so that the segment framing, lookahead and truncation logic is reached (segment bytes
//!   never authenticate, but every length and boundary path does run);
//! - bit 1: read as an unencrypted (integrity-only) stream instead;
//! - bits 2..=4: the read chunk size;
//! - bits 5..=7: the seek pattern.
//!
//! Checked: no panic, no hang, no unbounded allocation (libFuzzer's -rss_limit_mb /
//! -malloc_limit_mb); a failure is permanent; a stream that reads to the end has the same
//! plaintext length through `Seek` and yields the same bytes when read again through `Seek`.
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongbox::stream::Header;
use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

/// The key of the test vectors (tests/vectors/ok_*), so that seeds made from them decrypt.
const KEY: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

fn key() -> DataKey {
    DataKey::from_bytes(&KEY).expect("32 bytes")
}

/// A genuine header for the fixed key (generated once per process; its salt is random, which
/// changes no length or boundary).
fn genuine_header(unencrypted: bool) -> &'static [u8] {
    static ENC: OnceLock<Vec<u8>> = OnceLock::new();
    static NONE: OnceLock<Vec<u8>> = OnceLock::new();
    let make = |unencrypted: bool| {
        let config = StreamConfig::default().segment_size(4096).expect("valid");
        let mut w = if unencrypted {
            BackupWriter::unencrypted(Vec::new(), &config, Vec::new()).expect("writer")
        } else {
            BackupWriter::with_config(Vec::new(), &key(), &config, Vec::new()).expect("writer")
        };
        w.write_all(b"x").expect("write");
        let bytes = w.finish().expect("finish");
        let len = Header::read_from(&mut &bytes[..])
            .expect("header")
            .encoded_len();
        bytes[..len].to_vec()
    };
    if unencrypted {
        NONE.get_or_init(|| make(true))
    } else {
        ENC.get_or_init(|| make(false))
    }
}

fn open(bytes: &[u8], unencrypted: bool) -> Option<RestoreReader<Cursor<&[u8]>>> {
    let cursor = Cursor::new(bytes);
    if unencrypted {
        RestoreReader::unencrypted(cursor).ok()
    } else {
        RestoreReader::new(cursor, &key()).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let unencrypted = flags & 2 != 0;
    let owned;
    let input: &[u8] = if flags & 1 != 0 {
        owned = [genuine_header(unencrypted), rest].concat();
        &owned
    } else {
        rest
    };

    // Key-free header parsing.
    let _ = Header::read_from(&mut &input[..]).map(|h| format!("{h:?}"));

    // Sequential read to the end.
    let chunk = [1usize, 7, 16, 17, 4095, 4096, 4113, 70_000][usize::from((flags >> 2) & 7)];
    let mut complete = None;
    if let Some(mut reader) = open(input, unencrypted) {
        let mut buf = vec![0u8; chunk];
        let mut plain = Vec::new();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => {
                    complete = Some(plain);
                    break;
                }
                Ok(n) => {
                    plain.extend_from_slice(&buf[..n]);
                    assert!(plain.len() <= input.len(), "more plaintext than input");
                }
                Err(_) => {
                    // Failures are permanent.
                    assert!(reader.read(&mut buf).is_err(), "a failed read recovered");
                    break;
                }
            }
        }
    }

    // Random access.
    if let Some(mut reader) = open(input, unencrypted) {
        if let Some(plain) = &complete {
            let len = reader
                .seek(SeekFrom::End(0))
                .expect("seek on a complete stream");
            assert_eq!(
                len,
                plain.len() as u64,
                "Seek and read disagree on the length"
            );
            let mid = plain.len() as u64 / 3;
            reader.seek(SeekFrom::Start(mid)).expect("seek");
            let mut again = Vec::new();
            reader.read_to_end(&mut again).expect("read after seek");
            assert_eq!(&again[..], &plain[mid as usize..], "Seek read other bytes");
        }
        let pattern = flags >> 5;
        let targets = [
            SeekFrom::End(0),
            SeekFrom::Start(u64::from(pattern) * 4000),
            SeekFrom::Current(-1),
            SeekFrom::End(-(i64::from(pattern) + 1)),
            SeekFrom::Start(u64::MAX),
        ];
        let mut byte = [0u8; 1];
        for pos in targets.iter().skip(usize::from(pattern & 3)) {
            let _ = reader.seek(*pos);
            let _ = reader.read(&mut byte);
            let _ = reader.stream_position();
        }
        let _ = format!("{reader:?}");
    }
});
