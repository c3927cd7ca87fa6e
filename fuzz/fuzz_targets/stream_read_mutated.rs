//! The stream reader over structure-aware mutations of genuine streams.
//!
//! Each input describes a small genuine stream (algorithm or integrity-only, plaintext length,
//! extensions; 4 KiB segments, up to 16; written and read with 1 to 3 threads, in write and read
//! sizes it picks, small and large) and a list of edits aimed at its structure: header fields
//! (version, algorithm, segment size, key id, extension-area length), bit flips, truncations,
//! appended or inserted bytes, and whole segments dropped, duplicated or swapped.
//!
//! The oracle is exact, because every byte of a stream is authenticated:
//! - the unedited stream reads back to its plaintext, sequentially and through `Seek`;
//! - an edited stream never reads to the end;
//! - every byte the reader does return (before failing, or after a seek) is the plaintext byte
//!   at that offset.
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strongbox::stream::{Algorithm, Extension};
use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

const SEGMENT: usize = 4096;
const TAG: usize = 16;
// Up to 16 segments: more than the segments opened ahead of small reads (8 with 2 threads, 12
// with 3).
const MAX_PLAIN: usize = 15 * SEGMENT + 100;

/// Read and write sizes an input may pick (index `% 7`; 0 keeps the input's own size): with
/// several threads, reads of fewer than 64 segments go through the segments the reader opens
/// ahead, reads of 64 segments straight into the buffer.
const SIZES: [usize; 6] = [
    1,
    100,
    SEGMENT,
    3 * SEGMENT + 5,
    12 * SEGMENT + 7,
    64 * SEGMENT,
];

fn pick(choice: u8, own: usize) -> usize {
    match choice as usize % (SIZES.len() + 1) {
        0 => own,
        i => SIZES[i - 1],
    }
}

#[derive(Arbitrary, Debug)]
enum Mode {
    Aes,
    ChaCha,
    Unencrypted,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Flip { pos: u32, xor: u8 },
    SetVersion(u8),
    SetAlgorithm(u8),
    SetSegmentSize(u32),
    SetKeyIdByte { index: u8, value: u8 },
    SetAreaLen(u32),
    Truncate(u32),
    TruncateAtSegment { segment: u8, delta: i8 },
    Append(Vec<u8>),
    Insert { pos: u32, bytes: Vec<u8> },
    Delete { pos: u32, len: u16 },
    DropSegment(u8),
    DuplicateSegment(u8),
    SwapSegments(u8, u8),
}

#[derive(Arbitrary, Debug)]
enum Access {
    Read(u16),
    Seek(u32),
    SeekEnd(i16),
    SeekCurrent(i16),
    /// A read of one of `SIZES`.
    ReadSized(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: Mode,
    plain_len: u16,
    fill: u8,
    extensions: Vec<(u16, Vec<u8>)>,
    edits: Vec<Edit>,
    chunk: u16,
    accesses: Vec<Access>,
    /// Writer and reader threads (1 to 3): more than one takes the parallel paths.
    threads: u8,
    /// Sizes of the writer's writes and of the sequential reads, cycled (none: one write of
    /// everything, reads of `chunk`).
    write_sizes: Vec<u8>,
    read_sizes: Vec<u8>,
}

fn key() -> DataKey {
    DataKey::from_bytes(&[0x42; 32]).expect("32 bytes")
}

fn open(
    bytes: &[u8],
    unencrypted: bool,
    threads: NonZeroUsize,
) -> Option<RestoreReader<Cursor<&[u8]>>> {
    let cursor = Cursor::new(bytes);
    let reader = if unencrypted {
        RestoreReader::unencrypted(cursor).ok()
    } else {
        RestoreReader::new(cursor, &key()).ok()
    };
    reader.map(|r| r.with_threads(threads))
}

/// Byte range of segment `i` (clamped to the stream).
fn segment_range(header_len: usize, total: usize, i: usize) -> std::ops::Range<usize> {
    let start = (header_len + i * (SEGMENT + TAG)).min(total);
    let end = (start + SEGMENT + TAG).min(total);
    start..end
}

fn apply(bytes: &mut Vec<u8>, header_len: usize, edit: &Edit) {
    let len = bytes.len();
    let at = |pos: u32| {
        if len == 0 {
            0
        } else {
            pos as usize % (len + 1)
        }
    };
    let segments = (len.saturating_sub(header_len))
        .div_ceil(SEGMENT + TAG)
        .max(1);
    match edit {
        Edit::Flip { pos, xor } => {
            if len > 0 {
                bytes[*pos as usize % len] ^= xor | 1;
            }
        }
        Edit::SetVersion(v) if len > 8 => bytes[8] = *v,
        Edit::SetAlgorithm(a) if len > 9 => bytes[9] = *a,
        Edit::SetSegmentSize(s) if len >= 14 => bytes[10..14].copy_from_slice(&s.to_be_bytes()),
        Edit::SetKeyIdByte { index, value } if len >= 30 => {
            bytes[14 + *index as usize % 16] = *value
        }
        Edit::SetAreaLen(a) if len >= 66 => bytes[62..66].copy_from_slice(&a.to_be_bytes()),
        Edit::Truncate(pos) => bytes.truncate(at(*pos)),
        Edit::TruncateAtSegment { segment, delta } => {
            let r = segment_range(header_len, len, *segment as usize % segments);
            let cut = (r.start as isize + *delta as isize).clamp(0, len as isize) as usize;
            bytes.truncate(cut);
        }
        Edit::Append(extra) => bytes.extend_from_slice(&extra[..extra.len().min(64)]),
        Edit::Insert { pos, bytes: extra } => {
            let p = at(*pos);
            bytes.splice(p..p, extra[..extra.len().min(64)].iter().copied());
        }
        Edit::Delete { pos, len: n } => {
            let p = at(*pos);
            let end = (p + *n as usize).min(len);
            bytes.drain(p..end);
        }
        Edit::DropSegment(i) => {
            let r = segment_range(header_len, len, *i as usize % segments);
            bytes.drain(r);
        }
        Edit::DuplicateSegment(i) => {
            let r = segment_range(header_len, len, *i as usize % segments);
            let copy = bytes[r.clone()].to_vec();
            bytes.splice(r.end..r.end, copy);
        }
        Edit::SwapSegments(a, b) => {
            let (a, b) = (*a as usize % segments, *b as usize % segments);
            let (a, b) = (a.min(b), a.max(b));
            let ra = segment_range(header_len, len, a);
            let rb = segment_range(header_len, len, b);
            if a != b && ra.len() == rb.len() {
                let first = bytes[ra.clone()].to_vec();
                let second = bytes[rb.clone()].to_vec();
                bytes[ra].copy_from_slice(&second);
                bytes[rb].copy_from_slice(&first);
            }
        }
        _ => {}
    }
}

/// Seeks to `target` (`None`: a position before 0). Like `std::io::Cursor`, a seek to a negative
/// position fails and leaves the position unchanged; any other seek of a genuine stream
/// succeeds; after any other failed seek the position is unknown, and a read must fail.
fn seek_to(
    reader: &mut RestoreReader<Cursor<&[u8]>>,
    from: SeekFrom,
    target: Option<u64>,
    edited: bool,
    pos: &mut Option<u64>,
) {
    match (reader.seek(from), target) {
        (Ok(p), Some(t)) => {
            assert_eq!(p, t, "seek went elsewhere");
            *pos = Some(p);
        }
        (Ok(p), None) => panic!("seek before the start succeeded: {p}"),
        // Refused before moving (or the stream failed as a whole, and every read fails).
        (Err(_), None) => {}
        (Err(_), Some(_)) if !edited => panic!("seek failed on a genuine stream"),
        (Err(_), Some(_)) => *pos = None,
    }
}

fuzz_target!(|input: Input| {
    let plain_len = input.plain_len as usize % (MAX_PLAIN + 1);
    let plain: Vec<u8> = (0..plain_len)
        .map(|i| (i as u8).wrapping_mul(31) ^ input.fill ^ (i >> 8) as u8)
        .collect();
    let mut extensions: Vec<Extension> = Vec::new();
    for (kind, value) in input.extensions.iter().take(4) {
        if extensions.iter().all(|e| e.kind != *kind) {
            extensions.push(Extension::new(*kind, value[..value.len().min(64)].to_vec()));
        }
    }
    let unencrypted = matches!(input.mode, Mode::Unencrypted);
    let algorithm = match input.mode {
        Mode::ChaCha => Algorithm::ChaCha20Poly1305,
        _ => Algorithm::Aes256Gcm,
    };
    let threads = NonZeroUsize::new(1 + usize::from(input.threads % 3)).expect("not 0");
    let config = StreamConfig::default()
        .algorithm(algorithm)
        .segment_size(SEGMENT)
        .expect("valid")
        .threads(threads);
    let mut writer = if unencrypted {
        BackupWriter::unencrypted(Vec::new(), &config, extensions)
    } else {
        BackupWriter::with_config(Vec::new(), &key(), &config, extensions)
    }
    .expect("writer");
    let header_len = writer.header().encoded_len();
    let mut rest = &plain[..];
    for choice in input.write_sizes.iter().take(64).cycle() {
        if rest.is_empty() {
            break;
        }
        let n = pick(*choice, rest.len()).min(rest.len());
        writer.write_all(&rest[..n]).expect("write");
        rest = &rest[n..];
    }
    writer.write_all(rest).expect("write");
    let original = writer.finish().expect("finish");

    let mut bytes = original.clone();
    for edit in input.edits.iter().take(8) {
        apply(&mut bytes, header_len, edit);
    }
    let edited = bytes != original;

    // Sequential: every byte returned is the plaintext byte at that offset.
    let chunk = (input.chunk as usize % (4 * SEGMENT + 64)).max(1);
    let mut complete = false;
    if let Some(mut reader) = open(&bytes, unencrypted, threads) {
        let sizes: Vec<usize> = input
            .read_sizes
            .iter()
            .take(64)
            .map(|c| pick(*c, chunk))
            .collect();
        let mut buf = vec![0u8; sizes.iter().copied().max().unwrap_or(chunk)];
        let mut offset = 0usize;
        for turn in 0.. {
            let len = if sizes.is_empty() {
                chunk
            } else {
                sizes[turn % sizes.len()]
            };
            match reader.read(&mut buf[..len]) {
                Ok(0) => {
                    complete = true;
                    break;
                }
                Ok(n) => {
                    assert!(offset + n <= plain.len(), "plaintext past the end");
                    assert_eq!(&buf[..n], &plain[offset..offset + n], "wrong plaintext");
                    offset += n;
                }
                Err(_) => break,
            }
        }
        if complete {
            assert_eq!(offset, plain.len(), "read to the end, but short");
        }
    }
    assert_eq!(
        complete, !edited,
        "edited: {edited}, read to the end: {complete}"
    );

    // Random access.
    if let Some(mut reader) = open(&bytes, unencrypted, threads) {
        let mut pos: Option<u64> = Some(0);
        for access in input.accesses.iter().take(16) {
            match access {
                Access::Read(_) | Access::ReadSized(_) => {
                    let len = match access {
                        Access::Read(n) => (*n as usize % (2 * SEGMENT + 64)).max(1),
                        Access::ReadSized(c) => pick(*c, 1),
                        _ => unreachable!(),
                    };
                    let mut buf = vec![0u8; len];
                    match reader.read(&mut buf) {
                        Ok(k) => {
                            let p = pos.expect("read succeeded at an unknown position") as usize;
                            if k > 0 {
                                assert!(p + k <= plain.len(), "plaintext past the end");
                                assert_eq!(
                                    &buf[..k],
                                    &plain[p..p + k],
                                    "wrong plaintext after seek"
                                );
                            } else if !buf.is_empty() && !edited {
                                assert!(p >= plain.len(), "early end of stream");
                            }
                            pos = Some((p + k) as u64);
                        }
                        Err(_) => {}
                    }
                }
                Access::Seek(to) => {
                    let target = u64::from(*to) % (plain.len() as u64 + 10);
                    match reader.seek(SeekFrom::Start(target)) {
                        Ok(p) => {
                            assert_eq!(p, target);
                            pos = Some(p);
                        }
                        Err(_) => {
                            assert!(edited, "seek failed on a genuine stream");
                            pos = None;
                        }
                    }
                }
                Access::SeekEnd(d) => {
                    let target = (plain.len() as u64).checked_add_signed(i64::from(*d));
                    seek_to(
                        &mut reader,
                        SeekFrom::End(i64::from(*d)),
                        target,
                        edited,
                        &mut pos,
                    );
                }
                Access::SeekCurrent(d) => {
                    let target = pos.and_then(|p| p.checked_add_signed(i64::from(*d)));
                    let from = SeekFrom::Current(i64::from(*d));
                    if pos.is_some() {
                        seek_to(&mut reader, from, target, edited, &mut pos);
                    } else if let Ok(p) = reader.seek(from) {
                        // Relative to a position we lost track of; a success says where it is.
                        pos = Some(p);
                    }
                }
            }
        }
    }
});
