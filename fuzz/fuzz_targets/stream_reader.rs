//! `RestoreReader` on arbitrary bytes after a valid header (encrypted and integrity-only), read
//! sequentially and with seeks: never panics. The first byte picks the mode and the read size.
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

fn key() -> &'static DataKey {
    static KEY: OnceLock<DataKey> = OnceLock::new();
    KEY.get_or_init(|| DataKey::from_bytes(&[9; 32]).unwrap())
}

/// Valid headers (with one short segment each) to put the fuzzed bytes behind.
fn prefixes() -> &'static [Vec<u8>; 2] {
    static P: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    P.get_or_init(|| {
        let config = StreamConfig::default().segment_size(4096).unwrap();
        let mut enc = BackupWriter::with_config(Vec::new(), key(), &config, Vec::new()).unwrap();
        enc.write_all(b"x").unwrap();
        let mut plain = BackupWriter::unencrypted(Vec::new(), &config, Vec::new()).unwrap();
        plain.write_all(b"x").unwrap();
        [enc.finish().unwrap(), plain.finish().unwrap()].map(|mut s| {
            let header = strongbox::stream::Header::read_from(&mut &s[..]).unwrap();
            s.truncate(header.encoded_len());
            s
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let encrypted = control & 1 == 0;
    let stream = [&prefixes()[usize::from(!encrypted)][..], body].concat();
    let open = |s: Cursor<Vec<u8>>| {
        if encrypted {
            RestoreReader::new(s, key())
        } else {
            RestoreReader::unencrypted(s)
        }
    };
    let Ok(mut reader) = open(Cursor::new(stream.clone())) else {
        return;
    };
    let mut buf = vec![0u8; 1 + usize::from(control >> 1) * 97];
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    let Ok(mut reader) = open(Cursor::new(stream)) else {
        return;
    };
    for target in [SeekFrom::End(-1), SeekFrom::Start(4095), SeekFrom::Start(0)] {
        if reader.seek(target).is_ok() {
            let _ = reader.read(&mut buf);
        }
    }
});
