//! The inputs of `tests/fuzz_regressions.rs` through `AsyncRestoreReader` (with `AsyncSeek`):
//! each step returns what the synchronous reader returns for it.

use std::io::{Cursor, Read, Seek, SeekFrom};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use strongbox::stream::{Algorithm, AsyncRestoreReader, Header, StreamError, TAG_LEN};
use strongbox::{DataKey, RestoreReader};

mod common;
use common::small_segment_stream as stream;

#[derive(Clone, Copy, Debug)]
enum Step {
    Seek(SeekFrom),
    Read(usize),
    ReadToEnd,
}

/// A step's outcome: the offset sought or the bytes read, or the error's variant.
type Outcome = Result<Vec<u8>, String>;

fn name(err: &std::io::Error) -> String {
    StreamError::from_io(err).map_or_else(|| err.kind().to_string(), |e| format!("{e:?}"))
}

fn replay_sync(key: &DataKey, bytes: &[u8], steps: &[Step]) -> Vec<Outcome> {
    let mut r = RestoreReader::new(Cursor::new(bytes), key).unwrap();
    let step = |r: &mut RestoreReader<_>, step| match step {
        Step::Seek(to) => r.seek(to).map(|at| at.to_be_bytes().to_vec()),
        Step::Read(n) => {
            let mut buf = vec![0; n];
            r.read(&mut buf).map(|got| buf[..got].to_vec())
        }
        Step::ReadToEnd => {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).map(|_| buf)
        }
    };
    steps
        .iter()
        .map(|&s| step(&mut r, s).map_err(|e| name(&e)))
        .collect()
}

async fn replay_async(key: &DataKey, bytes: &[u8], steps: &[Step]) -> Vec<Outcome> {
    let mut r = AsyncRestoreReader::new(Cursor::new(bytes), key)
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for &step in steps {
        let outcome = match step {
            Step::Seek(to) => r.seek(to).await.map(|at| at.to_be_bytes().to_vec()),
            Step::Read(n) => {
                let mut buf = vec![0; n];
                r.read(&mut buf).await.map(|got| buf[..got].to_vec())
            }
            Step::ReadToEnd => {
                let mut buf = Vec::new();
                r.read_to_end(&mut buf).await.map(|_| buf)
            }
        };
        outcomes.push(outcome.map_err(|e| name(&e)));
    }
    outcomes
}

fn replay_both(key: &DataKey, bytes: &[u8], steps: &[Step]) -> Vec<Outcome> {
    let expected = replay_sync(key, bytes, steps);
    let got = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(replay_async(key, bytes, steps));
    assert_eq!(got, expected, "{steps:?}");
    got
}

/// fuzz/artifacts/stream_read_mutated/crash-461638bc...: `SeekFrom::End(-32619)` on an 87-byte
/// stream fails and keeps the position.
#[test]
fn a_seek_before_the_start_fails_and_keeps_the_position() {
    let (key, plain, bytes) = stream(87, Algorithm::ChaCha20Poly1305);
    let steps = [
        Step::Seek(SeekFrom::End(-32619)),
        Step::Seek(SeekFrom::Current(-1)),
        Step::Seek(SeekFrom::Current(0)),
        Step::ReadToEnd,
    ];
    let outcomes = replay_both(&key, &bytes, &steps);
    assert!(outcomes[0].is_err() && outcomes[1].is_err());
    assert_eq!(outcomes[2], Ok(0u64.to_be_bytes().to_vec()));
    assert_eq!(outcomes[3], Ok(plain));
}

/// fuzz/artifacts/stream_read_mutated/crash-95d0f42f...: a stream cut inside its last segment
/// with a segment duplicated: the seek fails, later non-empty reads fail, an empty read is
/// `Ok(0)`.
#[test]
fn after_a_failed_seek_reads_fail_and_empty_reads_are_ok() {
    let (key, _, mut bytes) = stream(17830, Algorithm::Aes256Gcm);
    let header = Header::read_from(&mut &bytes[..]).unwrap().encoded_len();
    let full = 4096 + TAG_LEN;
    bytes.truncate(header + 4 * full + 53);
    let dup = bytes[header + full..header + 2 * full].to_vec();
    bytes.splice(header + 2 * full..header + 2 * full, dup);

    let steps = [
        Step::Seek(SeekFrom::Start(5000)),
        Step::Read(1973),
        Step::Seek(SeekFrom::Current(-16182)),
        Step::Read(0),
        Step::Read(1973),
    ];
    let outcomes = replay_both(&key, &bytes, &steps);
    assert!(outcomes[0].is_err() && outcomes[1].is_err() && outcomes[2].is_err());
    assert_eq!(outcomes[3], Ok(Vec::new()));
    assert!(outcomes[4].is_err());
}
