//! The async types against the synchronous ones: the test vectors (which need a fixed salt, so
//! live in the crate), every single-byte change and every truncation of small streams, over
//! inputs and outputs that return `Pending` and split I/O at every byte boundary.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read as _, Seek as _, SeekFrom, Write as _};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{
    AsyncRead, AsyncReadExt as _, AsyncSeek, AsyncSeekExt as _, AsyncWrite, AsyncWriteExt as _,
    ReadBuf,
};

use super::writer::Output;
use super::{AsyncBackupWriter, AsyncRestoreReader};
use crate::key::DataKey;
use crate::stream::{BackupWriter, Header, RestoreReader, StreamConfig, StreamError, TAG_LEN};

/// An `AsyncRead` / `AsyncWrite` around `inner` that returns `Pending` (waking at once) on
/// about one poll in three and moves at most `max` bytes per call, chosen by a fixed
/// pseudo-random sequence.
struct Chaos<T> {
    inner: T,
    state: u64,
    max: usize,
}

impl<T> Chaos<T> {
    fn new(inner: T, seed: u64, max: usize) -> Self {
        Self {
            inner,
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            max,
        }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state as usize
    }

    /// `None` to return `Pending`, else how many bytes this call may move.
    fn step(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        if self.next().is_multiple_of(3) {
            cx.waker().wake_by_ref();
            return None;
        }
        Some(1 + self.next() % self.max)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Chaos<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let Some(n) = self.step(cx) else {
            return Poll::Pending;
        };
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(n.min(buf.remaining())));
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut part);
        let got = part.filled().len();
        buf.advance(got);
        polled
    }
}

impl<T: AsyncSeek + Unpin> AsyncSeek for Chaos<T> {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        Pin::new(&mut self.inner).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        if self.step(cx).is_none() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_complete(cx)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Chaos<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let Some(n) = self.step(cx) else {
            return Poll::Pending;
        };
        Pin::new(&mut self.inner).poll_write(cx, &data[..n.min(data.len())])
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn threads(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// The vector's way of naming an error: the variant, and its number if it has one.
fn error_name(err: &StreamError) -> String {
    match err {
        StreamError::CorruptSegment { index } => format!("CorruptSegment {index}"),
        StreamError::UnsupportedVersion(v) => format!("UnsupportedVersion {v}"),
        StreamError::UnsupportedAlgorithm(a) => format!("UnsupportedAlgorithm {a}"),
        other => {
            let debug = format!("{other:?}");
            let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
            debug[..end].to_string()
        }
    }
}

fn io_error_name(err: &std::io::Error) -> String {
    StreamError::from_io(err).map_or_else(|| err.to_string(), error_name)
}

/// What the synchronous reader returns for `stream`: the plaintext released, then the error.
fn read_sync(key: Option<&DataKey>, stream: &[u8], n: usize) -> (Vec<u8>, Option<String>) {
    let mut input = stream;
    let opened = Header::read_from(&mut input)
        .and_then(|header| RestoreReader::from_header(input, header, key));
    let mut reader = match opened {
        Ok(reader) => reader.with_threads(threads(n)),
        Err(err) => return (Vec::new(), Some(error_name(&err))),
    };
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).err();
    (out, err.as_ref().map(io_error_name))
}

/// What the async reader returns for `stream` read through a [`Chaos`] input.
async fn read_async(
    key: Option<&DataKey>,
    stream: &[u8],
    n: usize,
    seed: u64,
    max: usize,
) -> (Vec<u8>, Option<String>) {
    let mut input = Chaos::new(stream, seed, max);
    let opened = match AsyncRestoreReader::read_header(&mut input).await {
        Ok(header) => AsyncRestoreReader::from_header(input, header, key),
        Err(err) => Err(err),
    };
    let mut reader = match opened {
        Ok(reader) => reader.with_threads(threads(n)),
        Err(err) => return (Vec::new(), Some(error_name(&err))),
    };
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).await.err();
    (out, err.as_ref().map(io_error_name))
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"))
}

/// Every vector: name, key, stream, and the plaintext of the valid ones.
type Vector = (String, Option<DataKey>, Vec<u8>, Option<Vec<u8>>);

fn vectors() -> Vec<Vector> {
    let mut names: Vec<String> = fs::read_dir(vectors_dir())
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .into_string()
                .unwrap()
                .strip_suffix(".txt")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 25, "{names:?}");
    names
        .into_iter()
        .map(|name| {
            let text = fs::read_to_string(vectors_dir().join(format!("{name}.txt"))).unwrap();
            let meta: BTreeMap<&str, &str> =
                text.lines().filter_map(|l| l.split_once(": ")).collect();
            let key = match meta["key"] {
                "none" => None,
                hex => Some(DataKey::from_bytes(&crate::test_hex::unhex(hex)).unwrap()),
            };
            let stream = fs::read(vectors_dir().join(format!("{name}.sbx"))).unwrap();
            let plain = fs::read(vectors_dir().join(format!("{name}.plain"))).ok();
            (name, key, stream, plain)
        })
        .collect()
}

#[test]
fn every_vector_reads_as_the_synchronous_reader_reads_it() {
    for (name, key, stream, plain) in vectors() {
        let expected = read_sync(key.as_ref(), &stream, 1);
        assert_eq!(expected.1.is_none(), plain.is_some(), "{name}");
        for (n, seed, max) in [(1, 1, 1), (1, 2, 7), (2, 3, 1000), (3, 4, 100_000)] {
            let got = block_on(read_async(key.as_ref(), &stream, n, seed, max));
            assert!(
                got == expected,
                "{name}, {n} threads, reads of {max}: {:?}",
                got.1
            );
        }
    }
}

#[test]
fn the_writer_reproduces_every_valid_vector_through_any_output() {
    for (name, key, stream, plain) in vectors() {
        let Some(plain) = plain else { continue };
        let header = Header::read_from(&mut &stream[..]).unwrap();
        let salt: [u8; 32] = stream[30..62].try_into().unwrap();
        for (n, seed, max) in [(1, 1, 1), (2, 2, 5), (3, 3, 70_000)] {
            let config = StreamConfig::default()
                .segment_size(header.segment_size())
                .unwrap()
                .threads(threads(n));
            let key = key.as_ref().map(|k| (k, header.algorithm().unwrap()));
            let sync = BackupWriter::create(
                Output::new(Chaos::new(Vec::new(), seed, max)),
                key,
                &config,
                header.extensions().to_vec(),
                salt,
            )
            .unwrap();
            let mut writer = AsyncBackupWriter::around(sync);
            let written = block_on(async {
                for chunk in plain.chunks(max) {
                    writer.write_all(chunk).await.unwrap();
                }
                writer.finish().await.unwrap().inner
            });
            assert!(
                written == stream,
                "{name}: differs with {n} threads, writes of {max}"
            );
        }
    }
}

/// A stream of `segments` segments of 4 KiB (the last one shorter) and its plaintext.
fn small_stream(key: &DataKey, segments: usize) -> (Vec<u8>, Vec<u8>) {
    let plain: Vec<u8> = (0..segments * 4096 - 100)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let config = StreamConfig::default().segment_size(4096).unwrap();
    let mut writer = BackupWriter::with_config(Vec::new(), key, &config, Vec::new()).unwrap();
    writer.write_all(&plain).unwrap();
    (writer.finish().unwrap(), plain)
}

#[test]
fn every_single_byte_change_and_every_cut_reads_as_the_synchronous_reader_reads_it() {
    let key = DataKey::from_bytes(&[9; 32]).unwrap();
    let (stream, plain) = small_stream(&key, 3);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut checked = 0;
    for at in 0..stream.len() {
        let mut changed = stream.clone();
        changed[at] ^= 0x20;
        for variant in [changed, stream[..at].to_vec()] {
            let expected = read_sync(Some(&key), &variant, 1);
            assert!(expected.1.is_some(), "a change at {at} went unnoticed");
            assert!(plain.starts_with(&expected.0));
            let n = 1 + at % 2;
            let got = runtime.block_on(read_async(
                Some(&key),
                &variant,
                n,
                at as u64,
                1 + at % 5000,
            ));
            assert!(got == expected, "at {at}: {:?} vs {:?}", got.1, expected.1);
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * stream.len());
}

#[test]
fn debug_names_the_type_and_its_header_and_no_key() {
    let key = DataKey::from_bytes(&[0x5a; 32]).unwrap();
    let writer = AsyncBackupWriter::new(Vec::new(), &key).unwrap();
    let shown = format!("{writer:?}");
    assert!(shown.starts_with("AsyncBackupWriter {"), "{shown}");
    assert!(shown.contains(&format!("{:?}", writer.header())), "{shown}");
    let stream = BackupWriter::new(Vec::new(), &key)
        .unwrap()
        .finish()
        .unwrap();
    let reader = block_on(AsyncRestoreReader::new(&stream[..], &key)).unwrap();
    let shown = format!("{reader:?}");
    assert!(shown.starts_with("AsyncRestoreReader {"), "{shown}");
    for shown in [format!("{writer:?}"), shown] {
        assert!(!shown.to_lowercase().contains(&"5a".repeat(4)), "{shown}");
        assert!(!shown.contains("90, 90, 90"), "{shown}");
    }
}

#[test]
fn a_writer_dropped_before_finish_leaves_a_truncated_stream() {
    let key = DataKey::from_bytes(&[3; 32]).unwrap();
    let mut out = Vec::new();
    block_on(async {
        let mut writer = AsyncBackupWriter::new(&mut out, &key).unwrap();
        writer.write_all(&[5; 200_000]).await.unwrap();
        writer.flush().await.unwrap();
    });
    let (released, err) = read_sync(Some(&key), &out, 1);
    assert_eq!(err.as_deref(), Some("Truncated"));
    assert!(released.iter().all(|&b| b == 5));
}

#[test]
fn shutdown_finishes_the_stream_and_writing_after_it_fails() {
    let key = DataKey::from_bytes(&[4; 32]).unwrap();
    let mut out = Vec::new();
    block_on(async {
        let mut writer = AsyncBackupWriter::new(&mut out, &key).unwrap();
        writer.write_all(b"rows").await.unwrap();
        writer.shutdown().await.unwrap();
        writer.shutdown().await.unwrap();
        assert!(writer.write_all(b"more").await.is_err());
    });
    assert_eq!(read_sync(Some(&key), &out, 1), (b"rows".to_vec(), None));
}

/// Polls `future` once; drops it if it is pending. Returns its output if it was ready.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

#[test]
fn dropped_read_futures_lose_nothing_and_release_nothing_unverified() {
    let key = DataKey::from_bytes(&[6; 32]).unwrap();
    let (stream, plain) = small_stream(&key, 40);
    for (seed, corrupt) in [
        (1, None),
        (2, Some(30 * 4112 + 500)),
        (3, Some(stream.len() - 3)),
    ] {
        let mut stream = stream.clone();
        if let Some(at) = corrupt {
            stream[at] ^= 1;
        }
        let expected = read_sync(Some(&key), &stream, 1);
        let mut reader = block_on(AsyncRestoreReader::new(
            Chaos::new(&stream[..], seed, 3000),
            &key,
        ))
        .unwrap()
        .with_threads(threads(1 + seed as usize % 2));
        let (mut got, mut err) = (Vec::new(), None);
        for round in 0.. {
            let mut buf = vec![0u8; 1 + round * 37 % 9000];
            match poll_once(reader.read(&mut buf)) {
                None => continue,
                Some(Ok(0)) => break,
                Some(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Some(Err(e)) => {
                    err = Some(io_error_name(&e));
                    break;
                }
            }
        }
        assert!(plain.starts_with(&got));
        assert!((got, err) == expected, "seed {seed}");
    }
}

/// An input that records the address ranges it was asked to fill; if it `stalls`, it returns
/// `Pending` on every third poll without waking anyone, keeping the waker of that poll (so that
/// with several threads a segment is handed over before the input stalls).
struct Recorder<'a> {
    data: &'a [u8],
    stalls: bool,
    polls: usize,
    waker: Option<std::task::Waker>,
    filled: Vec<std::ops::Range<usize>>,
}

impl AsyncRead for Recorder<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.polls += 1;
        if self.stalls && self.polls.is_multiple_of(3) {
            self.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.remaining().min(self.data.len());
        let start = buf.initialize_unfilled().as_ptr() as usize;
        self.filled.push(start..start + n);
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// A waker that counts its wakes.
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_pending_read_leaves_the_waker_of_its_own_poll_with_the_input() {
    let key = DataKey::from_bytes(&[5; 32]).unwrap();
    let (stream, plain) = small_stream(&key, 60);
    let header_len = Header::read_from(&mut &stream[..]).unwrap().encoded_len();
    for n in [1, 2] {
        let input = Recorder {
            data: &stream[header_len..],
            stalls: true,
            polls: 0,
            waker: None,
            filled: Vec::new(),
        };
        let header = Header::read_from(&mut &stream[..]).unwrap();
        let mut reader = AsyncRestoreReader::from_header(input, header, Some(&key))
            .unwrap()
            .with_threads(threads(n));
        let (mut got, mut pending) = (Vec::new(), 0);
        let mut buf = vec![0u8; 10_000];
        loop {
            let count = std::sync::Arc::new(Count(0.into()));
            let waker = std::task::Waker::from(count.clone());
            let mut read = ReadBuf::new(&mut buf);
            match Pin::new(&mut reader).poll_read(&mut Context::from_waker(&waker), &mut read) {
                Poll::Pending => {
                    let kept = reader.get_ref().waker.as_ref().unwrap();
                    assert!(kept.will_wake(&waker), "{n} threads: a stale waker");
                    pending += 1;
                }
                Poll::Ready(result) => {
                    result.unwrap();
                    if read.filled().is_empty() {
                        break;
                    }
                    got.extend_from_slice(read.filled());
                }
            }
        }
        // With threads, the input stalls after a segment was handed over: that read returns it,
        // the next one polls the input again (a stale `WouldBlock` is never `Pending`).
        assert!(n > 1 || pending > 0, "{n} threads: never pending");
        assert!(got == plain, "{n} threads");
    }
}

#[test]
fn one_thread_reads_the_input_straight_into_the_callers_buffer() {
    let key = DataKey::from_bytes(&[4; 32]).unwrap();
    let (stream, plain) = small_stream(&key, 200);
    let header = Header::read_from(&mut &stream[..]).unwrap();
    let body = &stream[header.encoded_len()..];
    let input = Recorder {
        data: body,
        stalls: false,
        polls: 0,
        waker: None,
        filled: Vec::new(),
    };
    let mut reader = AsyncRestoreReader::from_header(input, header, Some(&key)).unwrap();
    let mut out = vec![0u8; 64 << 10];
    let mut got = Vec::new();
    let (mut elsewhere, mut seen) = (0, 0);
    loop {
        let n = block_on(reader.read(&mut out)).unwrap();
        let here = out.as_ptr() as usize..out.as_ptr() as usize + out.len();
        for range in &reader.get_ref().filled[seen..] {
            if !here.contains(&range.start) {
                elsewhere += range.len();
            }
        }
        seen = reader.get_ref().filled.len();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&out[..n]);
    }
    assert!(got == plain);
    // Only the 17 bytes after each segment, that show it is not the last, and the last segment
    // go through the reader's own buffer.
    assert!(
        elsewhere <= 200 * 17 + 4096 + 16,
        "{elsewhere} of {} bytes",
        body.len()
    );
}

#[test]
fn a_ready_output_gets_the_segments_straight_from_their_buffers() {
    let key = DataKey::from_bytes(&[5; 32]).unwrap();
    let plain: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    for n in [1, 2] {
        let config = StreamConfig::default().threads(threads(n));
        let mut writer =
            AsyncBackupWriter::with_config(Vec::new(), &key, &config, Vec::new()).unwrap();
        let header_len = writer.header().encoded_len();
        let spill = block_on(async {
            for chunk in plain.chunks(100_000) {
                writer.write_all(chunk).await.unwrap();
            }
            writer.flush().await.unwrap();
            writer.sync.get_ref().spill_capacity()
        });
        // Only the header, written by the constructor before any poll, was copied aside.
        assert!(spill <= header_len, "{n} threads: {spill} bytes spilled");
        let out = block_on(writer.finish()).unwrap();
        assert_eq!(read_sync(Some(&key), &out, 1), (plain.clone(), None));
    }
}

#[test]
fn a_pending_output_keeps_what_it_did_not_take_and_gets_it_first() {
    let key = DataKey::from_bytes(&[6; 32]).unwrap();
    let plain: Vec<u8> = (0..1_000_000u32).map(|i| (i % 239) as u8).collect();
    for n in [1, 2] {
        let config = StreamConfig::default().threads(threads(n));
        let output = Chaos::new(Vec::new(), n as u64, 3000);
        let mut writer = AsyncBackupWriter::with_config(output, &key, &config, Vec::new()).unwrap();
        block_on(async {
            for chunk in plain.chunks(70_000) {
                writer.write_all(chunk).await.unwrap();
            }
        });
        assert!(writer.sync.get_ref().spill_capacity() > writer.header().encoded_len());
        // A flush writes out what was kept: the output then ends at a segment's end.
        block_on(writer.flush()).unwrap();
        let written = writer.get_ref().inner.len() - writer.header().encoded_len();
        let full = writer.header().segment_size() + TAG_LEN;
        assert!(written > 0 && written % full == 0, "{n}: {written}");
        let out = block_on(writer.finish()).unwrap().inner;
        assert_eq!(read_sync(Some(&key), &out, 1), (plain.clone(), None), "{n}");
    }
}

#[test]
fn dropped_write_futures_write_exactly_what_they_accepted() {
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    for seed in 1..4u64 {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let config = StreamConfig::default().threads(threads(seed as usize));
        let mut writer = AsyncBackupWriter::with_config(
            Chaos::new(Vec::new(), seed, 9000),
            &key,
            &config,
            Vec::new(),
        )
        .unwrap();
        let mut accepted = 0;
        let mut round = 0;
        while accepted < data.len() {
            round += 1;
            let end = data.len().min(accepted + 1 + round * 7919 % 100_000);
            if let Some(result) = poll_once(writer.write(&data[accepted..end])) {
                accepted += result.unwrap();
            }
        }
        let out = block_on(writer.finish()).unwrap().inner;
        assert_eq!(read_sync(Some(&key), &out, 1), (data, None), "seed {seed}");
    }
}

#[test]
fn a_duplex_pipe_carries_a_stream_between_two_tasks() {
    let key = DataKey::from_bytes(&[8; 32]).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for n in [1, 2] {
        let (near, far) = tokio::io::duplex(16 << 10);
        let config = StreamConfig::default().threads(threads(n));
        let sent = data.clone();
        let writer_key = key.try_clone().unwrap();
        let reader_key = key.try_clone().unwrap();
        let got = runtime.block_on(async move {
            let write = tokio::spawn(async move {
                let mut writer =
                    AsyncBackupWriter::with_config(near, &writer_key, &config, Vec::new()).unwrap();
                writer.write_all(&sent).await.unwrap();
                writer.shutdown().await.unwrap();
            });
            let mut reader = AsyncRestoreReader::new(far, &reader_key)
                .await
                .unwrap()
                .with_threads(threads(n));
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.unwrap();
            write.await.unwrap();
            got
        });
        assert!(got == data, "{n} threads");
    }
}

/// One step of a random walk through a stream: a seek or a read of some length.
#[derive(Clone, Copy, Debug)]
enum Step {
    Seek(SeekFrom),
    Read(usize),
    Len,
}

/// A fixed pseudo-random walk of `count` steps over a stream of about `len` plaintext bytes,
/// seeking inside, at and past both ends.
fn walk(seed: u64, count: usize, len: u64) -> Vec<Step> {
    let mut chaos = Chaos::new((), seed, 1);
    let mut next = move |bound: u64| chaos.next() as u64 % bound;
    (0..count)
        .map(|_| match next(7) {
            0 => Step::Seek(SeekFrom::Start(next(len + 9000))),
            1 => Step::Seek(SeekFrom::End(next(len + 9000) as i64 - len as i64 - 100)),
            2 => Step::Seek(SeekFrom::Current(next(20_000) as i64 - 10_000)),
            3 => Step::Len,
            _ => Step::Read(1 + next(12_000) as usize),
        })
        .collect()
}

/// What a step returned: the plaintext read, the offset sought or the length, or the error.
type Outcome = Result<(u64, Vec<u8>), String>;

/// Takes `step` on `reader`, synchronous or (with `await` as the last argument) asynchronous:
/// one body for both, so that they are compared on exactly the same calls.
macro_rules! take_step {
    ($reader:expr, $step:expr $(, $aw:tt)?) => {
        match $step {
            Step::Seek(to) => $reader.seek(to)$(.$aw)?.map(|at| (at, Vec::new())),
            Step::Len => {
                return $reader
                    .plaintext_len()
                    $(.$aw)?
                    .map(|len| (len, Vec::new()))
                    .map_err(|e| error_name(&e));
            }
            Step::Read(n) => {
                let mut buf = vec![0; n];
                $reader
                    .read(&mut buf)
                    $(.$aw)?
                    .map(|got| (got as u64, buf[..got].to_vec()))
            }
        }
        .map_err(|e| io_error_name(&e))
    };
}

fn step_sync(reader: &mut RestoreReader<Cursor<&[u8]>>, step: Step) -> Outcome {
    take_step!(reader, step)
}

async fn step_async(reader: &mut AsyncRestoreReader<Chaos<Cursor<&[u8]>>>, step: Step) -> Outcome {
    take_step!(reader, step, await)
}

/// `stream` after 777 bytes of something else, both readers positioned after that prefix.
fn after_prefix(stream: &[u8]) -> Vec<u8> {
    let mut input = vec![0xa5; 777];
    input.extend_from_slice(stream);
    input
}

#[test]
fn random_seeks_and_reads_return_what_the_synchronous_reader_returns() {
    let key = DataKey::from_bytes(&[5; 32]).unwrap();
    let (stream, plain) = small_stream(&key, 12);
    let header_len = Header::read_from(&mut &stream[..]).unwrap().encoded_len();
    let mut cut_in_last = stream.clone();
    cut_in_last.truncate(stream.len() - 10);
    let mut flipped_last = stream.clone();
    *flipped_last.last_mut().unwrap() ^= 1;
    let mut flipped_middle = stream.clone();
    flipped_middle[header_len + 5 * 4112 + 9] ^= 1;
    let variants = [stream, cut_in_last, flipped_last, flipped_middle];
    for (v, variant) in variants.iter().enumerate() {
        let input = after_prefix(variant);
        for seed in 1..6u64 {
            let steps = walk(seed, 60, plain.len() as u64);
            let n = 1 + seed as usize % 2;
            let mut sync = Cursor::new(&input[..]);
            sync.set_position(777);
            let mut sync = RestoreReader::new(sync, &key)
                .unwrap()
                .with_threads(threads(n));
            let expected: Vec<Outcome> = steps.iter().map(|&s| step_sync(&mut sync, s)).collect();
            let got = block_on(async {
                let mut inner = Cursor::new(&input[..]);
                inner.set_position(777);
                let inner = Chaos::new(inner, seed, 1 + seed as usize * 1000);
                let reader = AsyncRestoreReader::new(inner, &key).await.unwrap();
                let mut reader = reader.with_threads(threads(n));
                let mut got = Vec::new();
                for &step in &steps {
                    got.push(step_async(&mut reader, step).await);
                }
                got
            });
            for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    got == expected,
                    "variant {v}, seed {seed}, step {i} {:?}: {got:?} vs {expected:?}",
                    steps[i]
                );
            }
        }
    }
}

#[test]
fn a_dropped_seek_future_leaves_the_position_unknown_until_the_next_seek() {
    let key = DataKey::from_bytes(&[6; 32]).unwrap();
    let (stream, plain) = small_stream(&key, 30);
    for seed in 1..30u64 {
        let mut reader = block_on(AsyncRestoreReader::new(
            Chaos::new(Cursor::new(&stream[..]), seed, 5000),
            &key,
        ))
        .unwrap();
        let mut first = [0u8; 100];
        block_on(reader.read_exact(&mut first)).unwrap();
        let target = seed * 3001 % plain.len() as u64;
        // `Some(completed)` after at least one attempt.
        let mut last = None;
        for _ in 0..seed % 4 {
            last = Some(poll_once(reader.seek(SeekFrom::Start(target))).is_some());
        }
        let mut byte = [0u8; 1];
        let read = block_on(reader.read(&mut byte)).map_err(|e| io_error_name(&e));
        let expected = match last {
            None => Ok(plain[100]),
            Some(true) => Ok(plain[target as usize]),
            Some(false) => Err("InvalidSeek".to_string()),
        };
        assert_eq!(read.map(|n| byte[..n][0]), expected, "seed {seed}");
        let at = block_on(reader.seek(SeekFrom::Start(target + 1))).unwrap();
        assert_eq!(at, target + 1);
        let mut rest = Vec::new();
        block_on(reader.read_to_end(&mut rest)).unwrap();
        assert!(rest == plain[target as usize + 1..], "seed {seed}");
    }
}
