//! Inputs and outputs: a file or stdin/stdout (`-` or omitted), and output files that appear only
//! when complete (a temporary file in the same directory, synced, then renamed into place).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::error::{CliError, CliResult, Context as _};

/// Size of the copy buffer: large, so that whole segments go straight through the stream and
/// its threads start once per 8 MiB.
pub const COPY_BUFFER: usize = 8 << 20;

/// An input: a file, or stdin.
#[derive(Debug, Clone)]
pub enum InputSpec {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl InputSpec {
    /// `None` or `-`: stdin.
    pub fn of(path: Option<&Path>) -> Self {
        match path {
            None => InputSpec::Stdin,
            Some(p) if p == Path::new("-") => InputSpec::Stdin,
            Some(p) => InputSpec::File(p.to_path_buf()),
        }
    }

    /// Whether this is stdin.
    pub fn is_stdin(&self) -> bool {
        matches!(self, InputSpec::Stdin)
    }

    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            InputSpec::Stdin => "stdin".to_owned(),
            InputSpec::File(p) => p.display().to_string(),
        }
    }

    /// Opens it.
    pub fn open(&self) -> CliResult<Input> {
        match self {
            InputSpec::Stdin => Ok(Input {
                reader: stdin_file().context(|| "stdin")?,
                len: None,
                name: self.name(),
            }),
            InputSpec::File(path) => {
                let file = File::open(path).context(|| path.display())?;
                let meta = file.metadata().context(|| path.display())?;
                if meta.is_dir() {
                    return Err(CliError::fail(format!(
                        "{}: is a directory",
                        path.display()
                    )));
                }
                Ok(Input {
                    reader: file,
                    len: meta.is_file().then_some(meta.len()),
                    name: self.name(),
                })
            }
        }
    }
}

/// An open input.
pub struct Input {
    /// The bytes (stdin is a duplicate of its descriptor, unbuffered).
    pub reader: File,
    /// Its size, for a regular file.
    pub len: Option<u64>,
    /// How messages name it.
    pub name: String,
}

/// An output: stdout, or a file that appears only on [`Output::commit`].
pub enum Output {
    /// Standard output (a duplicate of its descriptor, unbuffered).
    Stdout(File),
    /// A temporary file beside `dest`.
    File {
        /// The temporary file (deleted if dropped uncommitted).
        tmp: tempfile::NamedTempFile,
        /// The final path.
        dest: PathBuf,
    },
}

impl Output {
    /// `None` or `-`: stdout; else a temporary file in the directory of `path` (owner-only).
    pub fn create(path: Option<&Path>) -> CliResult<Self> {
        match path {
            None => Ok(Output::Stdout(stdout_file().context(|| "stdout")?)),
            Some(p) if p == Path::new("-") => {
                Ok(Output::Stdout(stdout_file().context(|| "stdout")?))
            }
            Some(dest) => {
                if dest.is_dir() {
                    return Err(CliError::fail(format!(
                        "{}: is a directory",
                        dest.display()
                    )));
                }
                let dir = parent_dir(dest);
                let tmp = tempfile::Builder::new()
                    .prefix(".strongbox-")
                    .suffix(".partial")
                    .tempfile_in(dir)
                    .context(|| format!("creating a file in {}", dir.display()))?;
                Ok(Output::File {
                    tmp,
                    dest: dest.to_path_buf(),
                })
            }
        }
    }

    /// Whether this is stdout.
    pub fn is_stdout(&self) -> bool {
        matches!(self, Output::Stdout(_))
    }

    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Output::Stdout(_) => "stdout".to_owned(),
            Output::File { dest, .. } => dest.display().to_string(),
        }
    }

    /// Flushes; for a file, syncs it to disk and renames it into place (replacing a file there).
    pub fn commit(self) -> CliResult {
        match self {
            Output::Stdout(mut out) => out.flush().context(|| "writing to stdout"),
            Output::File { mut tmp, dest } => {
                let name = || dest.display().to_string();
                tmp.flush().context(name)?;
                tmp.as_file().sync_all().context(name)?;
                tmp.persist(&dest).map_err(|e| e.error).context(name)?;
                super::keys::sync_dir(parent_dir(&dest)).context(name)
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(buf),
            Output::File { tmp, .. } => tmp.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File { tmp, .. } => tmp.flush(),
        }
    }
}

/// The directory a file is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Which side of a copy failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source.
    Read(io::Error),
    /// Writing the destination.
    Write(io::Error),
}

impl CopyError {
    /// A failure naming the input or output that failed.
    pub fn describe(self, input: &str, output: &str) -> CliError {
        match self {
            CopyError::Read(e) => CliError::fail(format!("reading {input}: {e}")),
            CopyError::Write(e) => CliError::fail(format!("writing {output}: {e}")),
        }
    }
}

/// Copies everything from `reader` to `writer` through one large buffer, filled before each
/// write (a pipe gives 64 KiB at a time; the stream is fastest with large writes); returns the
/// byte count.
pub fn copy(reader: &mut dyn Read, writer: &mut dyn Write) -> Result<u64, CopyError> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; COPY_BUFFER]);
    let mut total = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match reader.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(got) => n += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CopyError::Read(e)),
            }
        }
        if n == 0 {
            return Ok(total);
        }
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// A duplicate of the stdin descriptor as a `File`: unbuffered, unlocked, `Send`.
fn stdin_file() -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsHandle as _;
        Ok(File::from(io::stdin().as_handle().try_clone_to_owned()?))
    }
}

/// A duplicate of the stdout descriptor as a `File`: binary data is not line-buffered.
fn stdout_file() -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsHandle as _;
        Ok(File::from(io::stdout().as_handle().try_clone_to_owned()?))
    }
}
