//! `encrypt`, `decrypt`, `verify` and `inspect`: raw strongbox streams (and backup files, which
//! are strongbox streams with a manifest).

use std::io::{self, IsTerminal as _, Write as _};

use strongbox::backup::Identities;
use strongbox::stream::{Algorithm, Header};
use strongbox::{BackupWriter, DataKey, RestoreReader, StreamConfig};

use super::Context as Ctx;
use super::args::{DecryptArgs, EncryptArgs, InspectArgs, VerifyArgs};
use super::error::{CliError, CliResult, Context as _};
use super::files::{CopyError, Input, InputSpec, Output};
use super::key_input::KeySource;
use super::progress::Progress;

/// `strongbox encrypt`
pub fn encrypt(ctx: &Ctx, args: EncryptArgs) -> CliResult {
    let recipients = super::backup::recipient_list(
        &args.recipients.recipient,
        &args.recipients.recipients_file,
    )?;
    let source = KeySource::from_args(&args.crypt.key, "encrypt")?;
    if source.is_none() && recipients.is_empty() {
        return Err(CliError::usage(
            &["encrypt"],
            "encrypt needs a key: --key-file FILE, --key - (stdin) or --db DIR, or recipients \
             (--recipient, --recipients-file) for a fresh key wrapped only to them",
        ));
    }
    let input = InputSpec::of(args.input.as_deref())?;
    if let Some(source) = &source {
        check_stdin_use(source, &input, "encrypt")?;
    }
    let config = stream_config(args.stream.chacha20, args.stream.segment_size, "encrypt")?;

    let key = match &source {
        Some(source) => source.load(|| ctx.provider())?,
        None => DataKey::generate().context(|| "encrypt")?,
    };
    let mut extensions = Vec::new();
    if !recipients.is_empty() {
        extensions
            .push(strongbox::backup::slots_extension(&key, &recipients).context(|| "--recipient")?);
    }
    let input = input.open()?;
    let threads = ctx.threads_for_input(
        args.stream.threads.threads,
        input.len,
        config.selected_segment_size(),
    );
    let config = config.threads(threads);
    let output = Output::create(args.crypt.output.as_deref())?;
    let input_file = input
        .reader
        .try_clone_file()
        .context(|| input.name.clone())?;
    output.check_not_input(input_file.as_ref(), &input.name)?;
    if output.is_stdout() && io::stdout().is_terminal() {
        return Err(CliError::fail(
            "refusing to write encrypted data to a terminal: use -o FILE or redirect stdout",
        ));
    }
    let out_name = output.name();
    let progress = Progress::new(ctx.quiet(), input.len, "encrypting");
    let mut writer = BackupWriter::with_config(output, &key, &config, extensions)
        .context(|| format!("writing {out_name}"))?;
    encrypt_from(&mut writer, &mut progress.wrap(input.reader))
        .map_err(|e| e.describe(&input.name, &out_name))?;
    let output = writer.finish().context(|| format!("writing {out_name}"))?;
    output.commit()?;
    progress.finish();
    Ok(())
}

/// Reads all of `input` into `writer` (straight into its segments), telling a failed read from
/// a failed write.
fn encrypt_from<W: io::Write>(
    writer: &mut BackupWriter<W>,
    input: &mut dyn io::Read,
) -> Result<u64, CopyError> {
    let mut input = KeepError::new(input);
    let copied = writer.copy_from(&mut input);
    copied.map_err(|err| match input.failed.take() {
        Some(read) => CopyError::Read(read),
        None => CopyError::Write(err),
    })
}

/// Writes all of the plaintext of `reader` to `output` (straight from the segments it opens),
/// telling a failed read (of the input, or of the stream) from a failed write.
fn decrypt_to<R: io::Read>(
    reader: &mut RestoreReader<R>,
    output: &mut dyn io::Write,
) -> Result<u64, CopyError> {
    let mut output = KeepError::new(output);
    let copied = reader.copy_to(&mut output);
    copied.map_err(|err| match output.failed.take() {
        Some(write) => CopyError::Write(write),
        None => CopyError::Read(err),
    })
}

/// A reader or writer that keeps its last error (handing on one of the same kind), so that the
/// caller of a copy can tell it from an error of the other side.
struct KeepError<T> {
    inner: T,
    failed: Option<io::Error>,
}

impl<T> KeepError<T> {
    fn new(inner: T) -> Self {
        KeepError {
            inner,
            failed: None,
        }
    }

    fn keep(&mut self, err: io::Error) -> io::Error {
        let kind = err.kind();
        if kind != io::ErrorKind::Interrupted {
            self.failed = Some(err);
        }
        io::Error::from(kind)
    }
}

impl io::Read for KeepError<&mut dyn io::Read> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|err| self.keep(err))
    }
}

impl io::Write for KeepError<&mut dyn io::Write> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|err| self.keep(err))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|err| self.keep(err))
    }
}

/// `strongbox decrypt`
pub fn decrypt(ctx: &Ctx, args: DecryptArgs) -> CliResult {
    let source = KeySource::from_args(&args.crypt.key, "decrypt")?;
    if let Some(output) = &args.crypt.output {
        super::object::refuse_url(
            output,
            "decrypt writes plaintext: to a local file or stdout, never to an object store",
        )?;
    }
    let input = InputSpec::of(args.input.as_deref())?;
    if let Some(source) = &source {
        check_stdin_use(source, &input, "decrypt")?;
    }
    let input = input.open()?;
    let len = input.len;
    let (input_file, input_name) = (
        input
            .reader
            .try_clone_file()
            .context(|| input.name.clone())?,
        input.name.clone(),
    );
    // The header is authenticated before the output is opened (a FIFO's open waits for a reader).
    let identities = super::backup::identities(&args.identity)?;
    let opened = open_stream(ctx, source.as_ref(), &identities, input)?;
    let mut output = Output::create(args.crypt.output.as_deref())?;
    output.check_not_input(input_file.as_ref(), &input_name)?;
    let out_name = output.name();
    let segment_size = opened.reader.header().segment_size();
    let threads = ctx.threads_for_input(args.threads.threads, len, segment_size);
    let mut reader = opened.reader.with_threads(threads);
    decrypt_to(&mut reader, &mut output).map_err(|e| e.describe(&opened.name, &out_name))?;
    // Only now, with every segment (the last one included) authenticated, does a file appear.
    output.commit()?;
    opened.progress.finish();
    Ok(())
}

/// `strongbox verify` of a raw stream (backups: [`super::verify_backup`]).
pub fn verify(ctx: &Ctx, args: VerifyArgs) -> CliResult {
    let source = KeySource::from_args(&args.key, "verify")?;
    let input = InputSpec::of(Some(&args.input))?;
    if let Some(source) = &source {
        check_stdin_use(source, &input, "verify")?;
    }
    let input = input.open()?;
    let len = input.len;
    let identities = super::backup::identities(&args.reading.identity)?;
    let opened = open_stream(ctx, source.as_ref(), &identities, input)?;
    super::verify_backup::refuse_backup(opened.reader.header(), &opened.name)?;
    let key_id = opened.reader.header().key_id();
    let segment_size = opened.reader.header().segment_size();
    let threads = ctx.threads_for_input(args.threads.threads, len, segment_size);
    let mut reader = opened.reader.with_threads(threads);
    let len = decrypt_to(&mut reader, &mut io::sink())
        .map_err(|e| e.describe(&opened.name, "nothing"))?;
    opened.progress.finish();
    let mut stdout = io::stdout().lock();
    writeln!(
        stdout,
        "{}: OK, {len} bytes of plaintext {}",
        opened.name,
        match key_id {
            Some(key_id) => format!("authenticated by key {key_id}"),
            None => "NOT authenticated: unencrypted, checked by integrity tags only".to_owned(),
        }
    )
    .context(|| "writing to stdout")
}

/// `strongbox inspect`
pub fn inspect(_ctx: &Ctx, args: InspectArgs) -> CliResult {
    let input = InputSpec::of(Some(&args.input))?;
    let mut opened = input.open()?;
    let header = Header::read_from(&mut opened.reader).context(|| opened.name.clone())?;
    let mut lines = describe_header(&header);
    lines.extend(super::backup::describe_manifest(&header, &input)?);
    let mut stdout = io::stdout().lock();
    for (name, value) in lines {
        writeln!(stdout, "{name:<16}{value}").context(|| "writing to stdout")?;
    }
    Ok(())
}

/// The fields of a stream header, as (label, value) lines.
pub fn describe_header(header: &Header) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        (
            "format:",
            format!("strongbox stream, version {}", header.version()),
        ),
        (
            "encrypted:",
            if header.is_encrypted() {
                "yes"
            } else {
                "no (integrity only)"
            }
            .to_owned(),
        ),
        (
            "algorithm:",
            match header.algorithm() {
                Some(algorithm) => algorithm_name(algorithm).to_owned(),
                None => "none (SHA-256 checksums only)".to_owned(),
            },
        ),
        ("segment size:", format!("{} bytes", header.segment_size())),
    ];
    if let Some(key_id) = header.key_id() {
        lines.push(("key id:", key_id.to_string()));
    }
    lines
}

/// How the CLI names an algorithm.
pub fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Aes256Gcm => "AES-256-GCM",
        Algorithm::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        _ => "unknown",
    }
}

/// A stream whose header was authenticated, ready to be read.
struct Opened {
    reader: RestoreReader<Box<dyn io::Read + Send>>,
    name: String,
    progress: Progress,
}

/// Reads the header, finds the key it needs (from `source`; none for an unencrypted stream),
/// and authenticates the header.
fn open_stream(
    ctx: &Ctx,
    source: Option<&KeySource>,
    identities: &Identities,
    input: Input,
) -> CliResult<Opened> {
    let Input { reader, len, name } = input;
    let progress = Progress::new(ctx.quiet(), len, "decrypting");
    let mut reader: Box<dyn io::Read + Send> = Box::new(progress.wrap(reader));
    let header = Header::read_from(&mut reader).context(|| name.clone())?;
    let key: Option<DataKey> = match (header.key_id(), source) {
        (Some(_), None) if !identities.is_empty() => Some(
            strongbox::backup::key_from_slots(&header, identities, name.as_ref())
                .context(|| name.clone())?,
        ),
        (Some(key_id), None) => {
            return Err(CliError::fail(format!(
                "{name} is encrypted with key {key_id}: give --key-file FILE, --key - or --db DIR"
            )));
        }
        (_, Some(source)) => Some(source.load(|| ctx.provider())?),
        (None, None) => None,
    };
    let reader =
        RestoreReader::from_header(reader, header, key.as_ref()).context(|| name.clone())?;
    Ok(Opened {
        reader,
        name,
        progress,
    })
}

/// `--key -` and data on stdin cannot both be.
fn check_stdin_use(source: &KeySource, input: &InputSpec, command: &str) -> CliResult {
    if source.uses_stdin() && input.is_stdin() {
        return Err(CliError::usage(
            &[command],
            "--key - reads the key from stdin, so the input must be a file (give INPUT)",
        ));
    }
    Ok(())
}

/// The stream configuration from `--chacha20` and `--segment-size`.
pub fn stream_config(
    chacha20: bool,
    segment_size: Option<usize>,
    command: &str,
) -> CliResult<StreamConfig> {
    let mut config = StreamConfig::default();
    if chacha20 {
        config = config.algorithm(Algorithm::ChaCha20Poly1305);
    }
    if let Some(size) = segment_size {
        config = config
            .segment_size(size)
            .map_err(|e| CliError::usage(&[command], format!("--segment-size: {e}")))?;
    }
    Ok(config)
}
