//! Throughput and peak memory of an encrypted stream sent to an object store and read back:
//! `MIB` MiB of incompressible bytes (xorshift noise, made as they are written) encrypted by a
//! `BackupWriter` into an `ObjectWriter` (default `UploadOptions`: 8 MiB parts, 4 in flight),
//! then decrypted by a `RestoreReader` over an `ObjectReader` and dropped, checked against the
//! same noise. Prints one line per direction: bytes of the object, seconds, MiB/s of the
//! object, and the process's peak resident memory so far (`VmHWM`, Linux).
//!
//! ```sh
//! export AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
//! export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
//! cargo run --release --example object_store_throughput --features object-store -- \
//!     s3://bucket/bench/1g.sbx 1024
//! ```
//!
//! `benches/object_store.sh` runs it against a local moto server next to boto3.

use std::error::Error;
use std::io::{Read, Write};
use std::time::Instant;

use strongbox::object::{ObjectReader, ObjectUrl, ObjectWriter};
use strongbox::{BackupWriter, DataKey, RestoreReader};

const MIB: usize = 1 << 20;

/// Incompressible bytes, the same for the same seed (xorshift64).
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// The process's peak resident set (`VmHWM` of `/proc/self/status`), as the kernel writes it.
fn peak_rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:"));
    line.map_or("unknown".into(), |l| l["VmHWM:".len()..].trim().to_string())
}

fn report(direction: &str, bytes: u64, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let rate = bytes as f64 / MIB as f64 / seconds;
    println!(
        "{direction}: {bytes} bytes in {seconds:.2} s, {rate:.1} MiB/s, peak RSS {}",
        peak_rss()
    );
}

fn upload(url: &ObjectUrl, key: &DataKey, mib: usize) -> Result<u64, Box<dyn Error>> {
    let started = Instant::now();
    let mut writer = BackupWriter::new(ObjectWriter::create(url)?, key)?;
    let (mut noise, mut buf) = (Noise(1), vec![0; MIB]);
    for _ in 0..mib {
        noise.fill(&mut buf);
        writer.write_all(&buf)?;
    }
    writer.finish()?.finish()?;
    let len = ObjectReader::open(url)?.len();
    report("upload", len, started);
    Ok(len)
}

fn download(url: &ObjectUrl, key: &DataKey, mib: usize) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let object = ObjectReader::open(url)?;
    let len = object.len();
    let mut reader = RestoreReader::new(object, key)?;
    let (mut noise, mut expected, mut buf) = (Noise(1), vec![0; MIB], vec![0; MIB]);
    for _ in 0..mib {
        noise.fill(&mut expected);
        reader.read_exact(&mut buf)?;
        if buf != expected {
            return Err("the object decrypts to other bytes".into());
        }
    }
    if reader.read(&mut buf)? != 0 {
        return Err("the object decrypts to more bytes".into());
    }
    report("download", len, started);
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(mib)) = (args.next(), args.next()) else {
        return Err("usage: object_store_throughput URL MIB".into());
    };
    let url = ObjectUrl::parse(&url)?;
    let mib: usize = mib.parse()?;
    let key = DataKey::generate()?;
    upload(&url, &key, mib)?;
    download(&url, &key, mib)?;
    Ok(())
}
