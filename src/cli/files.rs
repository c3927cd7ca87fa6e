//! Inputs and outputs: a file or stdin/stdout (`-` or omitted), and output files
//! ([`OutputFile`]: a regular file appears only when complete; a FIFO or a device is written in
//! place).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use strongbox::fs::OutputFile;

use super::error::{CliError, CliResult, Context as _};

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

/// An output: stdout, or a file ([`OutputFile`]: a regular file or a new name appears only on
/// [`Output::commit`]; a FIFO or a device is written in place).
pub enum Output {
    /// Standard output (a duplicate of its descriptor, unbuffered).
    Stdout(File),
    /// A file.
    File {
        /// The output.
        file: OutputFile,
        /// The path given.
        dest: PathBuf,
    },
}

impl Output {
    /// `None` or `-`: stdout; else the file `path`.
    pub fn create(path: Option<&Path>) -> CliResult<Self> {
        match path {
            None => Ok(Output::Stdout(stdout_file().context(|| "stdout")?)),
            Some(p) if p == Path::new("-") => {
                Ok(Output::Stdout(stdout_file().context(|| "stdout")?))
            }
            Some(dest) => Ok(Output::File {
                file: OutputFile::create(dest).context(|| dest.display())?,
                dest: dest.to_path_buf(),
            }),
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

    /// Refuses an input that is the regular file this output writes or replaces (`cat`'s
    /// "input file is output file"): reading a file while appending to it never ends.
    pub fn check_not_input(&self, input: &File, input_name: &str) -> CliResult {
        let in_meta = input.metadata().context(|| input_name.to_owned())?;
        let same = match self {
            Output::Stdout(out) => strongbox::fs::is_same_file(input, out).context(|| "stdout")?,
            Output::File { file, .. } => file.is_same_file(input).context(|| self.name())?,
        };
        if same && in_meta.is_file() {
            return Err(CliError::fail(format!(
                "{}: input file is output file",
                input_name
            )));
        }
        Ok(())
    }

    /// Flushes; a regular file is synced and renamed into place (replacing a file there).
    pub fn commit(self) -> CliResult {
        match self {
            Output::Stdout(mut out) => out.flush().context(|| "writing to stdout"),
            Output::File { file, dest } => file.commit().context(|| dest.display()),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(buf),
            Output::File { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File { file, .. } => file.flush(),
        }
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
