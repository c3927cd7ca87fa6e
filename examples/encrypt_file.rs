//! Encrypts or decrypts a file with a `BackupWriter` / `RestoreReader`, the way a backup tool
//! would: the stream alone, without the CLI's key handling, for measuring the stream's peak
//! memory and time against `cp` (`docs/PERFORMANCE.md`).
//!
//! ```text
//! cargo run --release --example encrypt_file -- encrypt IN OUT [THREADS]
//! cargo run --release --example encrypt_file -- decrypt IN OUT [THREADS]
//! ```
//!
//! The key is a fixed demo key: this is a measuring tool, not a way to protect data.

use std::fs::File;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;

use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, input, output, rest @ ..] = &args[..] else {
        return Err("usage: encrypt_file encrypt|decrypt IN OUT [THREADS]".into());
    };
    let threads = match rest.first() {
        Some(n) => n.parse()?,
        None => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
    };
    let key = DataKey::from_bytes(&[42; 32])?;
    let input = File::open(input)?;
    // No BufWriter: the stream writes whole segments (or batches of them) at once.
    let output = File::create(output)?;
    match mode.as_str() {
        "encrypt" => {
            let config = StreamConfig::default().threads(threads);
            let mut writer = BackupWriter::with_config(output, &key, &config, Vec::new())?;
            pump(input, &mut writer)?;
            writer.finish()?.sync_all()?;
        }
        "decrypt" => {
            let reader = RestoreReader::new(input, &key)?.with_threads(threads);
            let mut output = output;
            pump(reader, &mut output)?;
            output.sync_all()?;
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}

/// Copies with 1 MiB reads (`io::copy` would use 8 KiB).
fn pump(mut from: impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0; 1 << 20];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => to.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
