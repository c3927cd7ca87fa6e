//! Throughput of `BackupWriter` / `RestoreReader` on 64 MiB in memory, next to raw `ring`
//! AES-256-GCM at the same segment size and next to the `age` crate.
//!
//! Three `ring` baselines: `ring_in_place` is the AEAD alone over a buffer (no copy at all);
//! `ring_copy` adds the one copy that any stream from a source buffer to a separate destination
//! must make (copy a segment to the output, seal/open it there); `ring_via_write` (encryption)
//! is the least any encryptor behind `std::io::Write` must do: copy each segment into a buffer,
//! seal it there, write it out. The stream's own copies are what separates it from these.
//!
//! `strongbox_*_2t` use `StreamConfig::threads(2)` / `RestoreReader::with_threads(2)`; the
//! ChaCha20-Poly1305 rows have their own raw `ring` anchors (`ring_chacha_*`).
//!
//! `cargo bench --bench stream -- crypt_64MiB` regenerates the table in `docs/PERFORMANCE.md`
//! (slow on 2 cores: small sample sizes on purpose); `cargo bench --bench stream` adds the
//! segment-size sweep behind the default segment size.

use std::hint::black_box;
use std::io::{Cursor, Read, Write};
use std::iter;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use std::num::NonZeroUsize;

use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use strongbox::stream::{Algorithm, TAG_LEN};
use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

const LEN: usize = 64 << 20;
const DEFAULT: usize = StreamConfig::DEFAULT_SEGMENT_SIZE;

fn plaintext() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn ring_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap())
}

fn ring_chacha_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7; 32]).unwrap())
}

fn threads(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn nonce(i: usize, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
    n[11] = last as u8;
    Nonce::assume_unique_for_key(n)
}

fn config(algorithm: Algorithm, segment: usize) -> StreamConfig {
    StreamConfig::default()
        .algorithm(algorithm)
        .segment_size(segment)
        .unwrap()
}

fn seal_stream(key: &DataKey, cfg: &StreamConfig, plain: &[u8], out: &mut [u8]) -> usize {
    let mut w = BackupWriter::with_config(Cursor::new(out), key, cfg, Vec::new()).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap().position() as usize
}

fn open_stream(key: &DataKey, backup: &[u8], out: &mut [u8]) {
    open_stream_threads(key, backup, out, 1, usize::MAX)
}

/// Reads `backup` into `out` on `n` threads, in reads of at most `read_size` bytes.
fn open_stream_threads(key: &DataKey, backup: &[u8], out: &mut [u8], n: usize, read_size: usize) {
    let mut r = RestoreReader::new(backup, key)
        .unwrap()
        .with_threads(threads(n));
    let mut pos: usize = 0;
    loop {
        let end = pos.saturating_add(read_size).min(out.len());
        match r.read(&mut out[pos..end]).unwrap() {
            0 => break,
            k => pos += k,
        }
    }
    assert_eq!(pos, LEN);
}

/// `ring_via_write`: copies each segment of `plain` into a buffer, seals it there (segment
/// indices from `first`) and writes it to `out`; returns the bytes written.
fn seal_via_write(ring: &LessSafeKey, plain: &[u8], out: &mut [u8], first: usize) -> u64 {
    let mut segment = vec![0u8; DEFAULT + TAG_LEN];
    let mut w = Cursor::new(out);
    for (i, src) in plain.chunks(DEFAULT).enumerate() {
        let (body, tag) = segment.split_at_mut(src.len());
        body.copy_from_slice(src);
        let t = ring
            .seal_in_place_separate_tag(nonce(first + i, false), Aad::empty(), body)
            .unwrap();
        tag[..TAG_LEN].copy_from_slice(t.as_ref());
        w.write_all(&segment[..src.len() + TAG_LEN]).unwrap();
    }
    w.position()
}

/// `ring_copy` for decryption: copies each sealed full segment of `sealed` (segment indices
/// from `first`) into `out` and opens it there.
fn open_copy(ring: &LessSafeKey, sealed: &[u8], out: &mut [u8], first: usize) {
    for (i, (src, dst)) in sealed
        .chunks(DEFAULT + TAG_LEN)
        .zip(out.chunks_mut(DEFAULT))
        .enumerate()
    {
        let (body, tag) = src.split_at(DEFAULT);
        dst.copy_from_slice(body);
        let tag: [u8; TAG_LEN] = tag.try_into().unwrap();
        ring.open_in_place_separate_tag(
            nonce(first + i, false),
            Aad::empty(),
            tag.into(),
            dst,
            0..,
        )
        .unwrap();
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(LEN as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g
}

fn encrypt(c: &mut Criterion) {
    let plain = plaintext();
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let mut out = vec![0u8; LEN + LEN / 4096 * 32 + 4096];
    let mut g = group(c, "encrypt_64MiB");

    let mut buf = plain.clone();
    let mut tags = vec![0u8; LEN.div_ceil(DEFAULT) * TAG_LEN];
    for (prefix, ring) in [("ring", ring_key()), ("ring_chacha", ring_chacha_key())] {
        g.bench_function(
            BenchmarkId::new(format!("{prefix}_in_place"), DEFAULT),
            |b| {
                b.iter(|| {
                    for (i, (chunk, tag)) in buf
                        .chunks_mut(DEFAULT)
                        .zip(tags.chunks_mut(TAG_LEN))
                        .enumerate()
                    {
                        let t = ring
                            .seal_in_place_separate_tag(nonce(i, false), Aad::empty(), chunk)
                            .unwrap();
                        tag.copy_from_slice(t.as_ref());
                    }
                    black_box(&buf);
                })
            },
        );
        g.bench_function(BenchmarkId::new(format!("{prefix}_copy"), DEFAULT), |b| {
            b.iter(|| {
                for (i, (src, dst)) in plain
                    .chunks(DEFAULT)
                    .zip(out.chunks_mut(DEFAULT + TAG_LEN))
                    .enumerate()
                {
                    let (body, tag) = dst.split_at_mut(src.len());
                    body.copy_from_slice(src);
                    let t = ring
                        .seal_in_place_separate_tag(nonce(i, false), Aad::empty(), body)
                        .unwrap();
                    tag[..TAG_LEN].copy_from_slice(t.as_ref());
                }
                black_box(&out);
            })
        });
        // What any stream behind `Write` must do at least: `write` gets an immutable slice and
        // `ring` seals in place, so copy each segment into a buffer, seal it there, write it.
        g.bench_function(
            BenchmarkId::new(format!("{prefix}_via_write"), DEFAULT),
            |b| b.iter(|| black_box(seal_via_write(&ring, &plain, &mut out, 0))),
        );
        // The ceiling for 2 threads behind `Write`: each thread does `via_write` on its own half
        // of the data into its own half of the output (no ordering, no hand-off between them).
        g.bench_function(
            BenchmarkId::new(format!("{prefix}_via_write_2t"), DEFAULT),
            |b| {
                b.iter(|| {
                    let half = LEN / 2;
                    let (out0, out1) = out.split_at_mut(half + half / DEFAULT * TAG_LEN);
                    std::thread::scope(|s| {
                        let ring = &ring;
                        s.spawn(|| seal_via_write(ring, &plain[..half], out0, 0));
                        s.spawn(|| seal_via_write(ring, &plain[half..], out1, half / DEFAULT));
                    });
                    black_box(&out);
                })
            },
        );
    }
    for (name, algorithm, n) in [
        ("strongbox_aes", Algorithm::Aes256Gcm, 1),
        ("strongbox_aes_2t", Algorithm::Aes256Gcm, 2),
        ("strongbox_chacha", Algorithm::ChaCha20Poly1305, 1),
        ("strongbox_chacha_2t", Algorithm::ChaCha20Poly1305, 2),
    ] {
        let cfg = config(algorithm, DEFAULT).threads(threads(n));
        g.bench_function(BenchmarkId::new(name, DEFAULT), |b| {
            b.iter(|| black_box(seal_stream(&key, &cfg, &plain, &mut out)))
        });
    }
    // Writes of 1 MiB at a time, as `strongbox encrypt` and the backup code make: below a
    // batch, so the plaintext is buffered and sealed a batch at a time.
    for n in [1, 2] {
        let cfg = config(Algorithm::Aes256Gcm, DEFAULT).threads(threads(n));
        let name = format!("strongbox_aes_{n}t_1MiB_writes");
        g.bench_function(BenchmarkId::new(name, DEFAULT), |b| {
            b.iter(|| {
                let mut w =
                    BackupWriter::with_config(Cursor::new(&mut out[..]), &key, &cfg, Vec::new())
                        .unwrap();
                for chunk in plain.chunks(1 << 20) {
                    w.write_all(chunk).unwrap();
                }
                black_box(w.finish().unwrap().position())
            })
        });
    }
    let cfg = StreamConfig::default();
    g.bench_function(BenchmarkId::new("strongbox_unencrypted", DEFAULT), |b| {
        b.iter(|| {
            let mut w =
                BackupWriter::unencrypted(Cursor::new(&mut out[..]), &cfg, Vec::new()).unwrap();
            w.write_all(&plain).unwrap();
            black_box(w.finish().unwrap().position())
        })
    });

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    g.bench_function(BenchmarkId::new("age_x25519", 65536), |b| {
        b.iter(|| {
            let mut w = age::Encryptor::with_recipients(iter::once(&recipient as _))
                .unwrap()
                .wrap_output(Cursor::new(&mut out[..]))
                .unwrap();
            w.write_all(&plain).unwrap();
            black_box(w.finish().unwrap().position())
        })
    });
    g.finish();
}

fn decrypt(c: &mut Criterion) {
    let plain = plaintext();
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let mut out = vec![0u8; LEN];
    let mut g = group(c, "decrypt_64MiB");

    for (prefix, ring) in [("ring", ring_key()), ("ring_chacha", ring_chacha_key())] {
        let mut sealed = vec![0u8; LEN.div_ceil(DEFAULT) * (DEFAULT + TAG_LEN)];
        for (i, (src, dst)) in plain
            .chunks(DEFAULT)
            .zip(sealed.chunks_mut(DEFAULT + TAG_LEN))
            .enumerate()
        {
            dst[..src.len()].copy_from_slice(src);
            let t = ring
                .seal_in_place_separate_tag(nonce(i, false), Aad::empty(), &mut dst[..src.len()])
                .unwrap();
            dst[src.len()..].copy_from_slice(t.as_ref());
        }
        g.bench_function(
            BenchmarkId::new(format!("{prefix}_in_place"), DEFAULT),
            |b| {
                b.iter_batched_ref(
                    || sealed.clone(),
                    |buf| {
                        for (i, seg) in buf.chunks_mut(DEFAULT + TAG_LEN).enumerate() {
                            ring.open_in_place(nonce(i, false), Aad::empty(), seg)
                                .unwrap();
                        }
                    },
                    BatchSize::PerIteration,
                )
            },
        );
        g.bench_function(BenchmarkId::new(format!("{prefix}_copy"), DEFAULT), |b| {
            b.iter(|| {
                open_copy(&ring, &sealed, &mut out, 0);
                black_box(&out);
            })
        });
        // The ceiling for 2 threads: each thread does `copy` on its own half.
        g.bench_function(
            BenchmarkId::new(format!("{prefix}_copy_2t"), DEFAULT),
            |b| {
                b.iter(|| {
                    let (src0, src1) = sealed.split_at(sealed.len() / 2);
                    let (out0, out1) = out.split_at_mut(LEN / 2);
                    std::thread::scope(|s| {
                        let ring = &ring;
                        s.spawn(|| open_copy(ring, src0, out0, 0));
                        s.spawn(|| open_copy(ring, src1, out1, LEN / 2 / DEFAULT));
                    });
                    black_box(&out);
                })
            },
        );
    }
    for (name, algorithm, n) in [
        ("strongbox_aes", Algorithm::Aes256Gcm, 1),
        ("strongbox_aes_2t", Algorithm::Aes256Gcm, 2),
        ("strongbox_chacha", Algorithm::ChaCha20Poly1305, 1),
        ("strongbox_chacha_2t", Algorithm::ChaCha20Poly1305, 2),
    ] {
        let cfg = config(algorithm, DEFAULT);
        let mut backup = vec![0u8; LEN + LEN / 4096 * 32 + 4096];
        let len = seal_stream(&key, &cfg, &plain, &mut backup);
        backup.truncate(len);
        g.bench_function(BenchmarkId::new(name, DEFAULT), |b| {
            b.iter(|| open_stream_threads(&key, &backup, &mut out, n, usize::MAX))
        });
        // Reads of 1 MiB and of 64 KiB at a time, as `restore` and decompressors make.
        if algorithm == Algorithm::Aes256Gcm {
            for (size, label) in [(1 << 20, "1MiB"), (64 << 10, "64KiB")] {
                let name = format!("{name}_{label}_reads");
                g.bench_function(BenchmarkId::new(name, DEFAULT), |b| {
                    b.iter(|| open_stream_threads(&key, &backup, &mut out, n, size))
                });
            }
        }
    }

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let mut ct = Vec::new();
    let mut w = age::Encryptor::with_recipients(iter::once(&recipient as _))
        .unwrap()
        .wrap_output(&mut ct)
        .unwrap();
    w.write_all(&plain).unwrap();
    w.finish().unwrap();
    g.bench_function(BenchmarkId::new("age_x25519", 65536), |b| {
        b.iter(|| {
            let mut r = age::Decryptor::new_buffered(&ct[..])
                .unwrap()
                .decrypt(iter::once(&identity as &dyn age::Identity))
                .unwrap();
            r.read_exact(&mut out).unwrap();
        })
    });
    g.finish();
}

/// The measurement behind the default segment size.
fn segment_sizes(c: &mut Criterion) {
    let plain = plaintext();
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let mut out = vec![0u8; LEN];
    let mut backup = vec![0u8; LEN + LEN / 4096 * 32 + 4096];
    let mut g = group(c, "segment_size_aes_64MiB");
    for segment in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let cfg = config(Algorithm::Aes256Gcm, segment);
        g.bench_function(BenchmarkId::new("write", segment), |b| {
            b.iter(|| black_box(seal_stream(&key, &cfg, &plain, &mut backup)))
        });
        let n = seal_stream(&key, &cfg, &plain, &mut backup);
        g.bench_function(BenchmarkId::new("read", segment), |b| {
            b.iter(|| open_stream(&key, &backup[..n], &mut out))
        });
    }
    g.finish();
}

/// What bounds AES with 2 threads behind one `Read`/`Write`: the calling thread must copy every
/// segment that another thread sealed or opened (or fill every segment another thread will
/// open), and a copy of bytes that another core has just written runs slower than a copy of
/// bytes the copying core wrote itself. Times only the copy of a 64 KiB segment (into a 64 MiB
/// destination, as a stream's output), after the segment was written by the same thread
/// (`written_here`) or by a thread on the other core (`written_by_other_core`).
fn copy_segment(c: &mut Criterion) {
    use std::sync::atomic::{
        AtomicUsize,
        Ordering::{Acquire, Release},
    };
    use std::time::Instant;

    let mut g = c.benchmark_group("copy_64KiB_segment");
    g.throughput(Throughput::Bytes(DEFAULT as u64))
        .sample_size(20);
    let mut out = vec![0u8; LEN];
    let segments = LEN / DEFAULT;
    g.bench_function("written_here", |b| {
        let mut segment = vec![0u8; DEFAULT];
        b.iter_custom(|iters| {
            let mut copying = Duration::ZERO;
            for i in 0..iters as usize {
                segment.fill(i as u8);
                let start = Instant::now();
                out[i % segments * DEFAULT..][..DEFAULT].copy_from_slice(&segment);
                copying += start.elapsed();
                black_box(&out);
            }
            copying
        })
    });
    g.bench_function("written_by_other_core", |b| {
        b.iter_custom(|iters| {
            let iters = iters as usize;
            // Two segment buffers: the other thread fills one while this one copies the other.
            let buffers = [
                Mutex::new(vec![0u8; DEFAULT]),
                Mutex::new(vec![0u8; DEFAULT]),
            ];
            // Segments filled so far, and segments copied so far.
            let (filled, copied) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let mut copying = Duration::ZERO;
            std::thread::scope(|s| {
                s.spawn(|| {
                    for i in 0..iters {
                        while copied.load(Acquire) + 2 <= i {
                            std::hint::spin_loop();
                        }
                        buffers[i % 2].lock().unwrap().fill(i as u8);
                        filled.store(i + 1, Release);
                    }
                });
                for i in 0..iters {
                    while filled.load(Acquire) <= i {
                        std::hint::spin_loop();
                    }
                    let segment = buffers[i % 2].lock().unwrap();
                    let start = Instant::now();
                    out[i % segments * DEFAULT..][..DEFAULT].copy_from_slice(&segment);
                    copying += start.elapsed();
                    drop(segment);
                    black_box(&out);
                    copied.store(i + 1, Release);
                }
            });
            copying
        })
    });
    g.finish();
}

/// `AsyncBackupWriter` / `AsyncRestoreReader` next to `BackupWriter` / `RestoreReader`, in
/// writes and reads of 1 MiB, on 1 and 2 threads, in one group (feature `tokio`;
/// `cargo bench --features tokio --bench stream -- async_vs_sync_64MiB`). The async rows run on
/// a current-thread runtime over in-memory I/O.
#[cfg(feature = "tokio")]
fn async_vs_sync(c: &mut Criterion) {
    use strongbox::stream::{AsyncBackupWriter, AsyncRestoreReader};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let plain = plaintext();
    let key = DataKey::from_bytes(&[7; 32]).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut out = vec![0u8; LEN + LEN / 4096 * 32 + 4096];
    let mut g = group(c, "async_vs_sync_64MiB");
    for n in [1, 2] {
        let cfg = config(Algorithm::Aes256Gcm, DEFAULT).threads(threads(n));
        g.bench_function(BenchmarkId::new(format!("sync_write_{n}t"), DEFAULT), |b| {
            b.iter(|| {
                let mut w =
                    BackupWriter::with_config(Cursor::new(&mut out[..]), &key, &cfg, Vec::new())
                        .unwrap();
                for chunk in plain.chunks(1 << 20) {
                    w.write_all(chunk).unwrap();
                }
                black_box(w.finish().unwrap().position())
            })
        });
        g.bench_function(
            BenchmarkId::new(format!("async_write_{n}t"), DEFAULT),
            |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        let inner = Cursor::new(&mut out[..]);
                        let mut w =
                            AsyncBackupWriter::with_config(inner, &key, &cfg, Vec::new()).unwrap();
                        for chunk in plain.chunks(1 << 20) {
                            w.write_all(chunk).await.unwrap();
                        }
                        black_box(w.finish().await.unwrap().position())
                    })
                })
            },
        );
    }
    let len = seal_stream(
        &key,
        &config(Algorithm::Aes256Gcm, DEFAULT),
        &plain,
        &mut out,
    );
    let backup = &out[..len];
    let mut restored = vec![0u8; LEN];
    for n in [1, 2] {
        g.bench_function(BenchmarkId::new(format!("sync_read_{n}t"), DEFAULT), |b| {
            b.iter(|| open_stream_threads(&key, backup, &mut restored, n, 1 << 20))
        });
        g.bench_function(BenchmarkId::new(format!("async_read_{n}t"), DEFAULT), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut r = AsyncRestoreReader::new(backup, &key)
                        .await
                        .unwrap()
                        .with_threads(threads(n));
                    let mut pos = 0;
                    loop {
                        let end = (pos + (1 << 20)).min(LEN);
                        match r.read(&mut restored[pos..end]).await.unwrap() {
                            0 => break,
                            k => pos += k,
                        }
                    }
                    assert_eq!(pos, LEN);
                })
            })
        });
    }
    g.finish();
}

#[cfg(not(feature = "tokio"))]
criterion_group!(benches, encrypt, decrypt, segment_sizes, copy_segment);
#[cfg(feature = "tokio")]
criterion_group!(
    benches,
    encrypt,
    decrypt,
    segment_sizes,
    copy_segment,
    async_vs_sync
);
criterion_main!(benches);
