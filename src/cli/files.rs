//! Inputs and outputs: a file or stdin/stdout (`-` or omitted), an object in a store (an
//! object URL, [`super::object`]), and output files ([`OutputFile`]: a regular file appears only
//! when complete; a FIFO or a device is written in place; an object appears only when complete).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use strongbox::fs::OutputFile;

use super::error::{CliError, CliResult, Context as _};
use super::object::{self, ObjectReader, ObjectUrl, ObjectWriter};

/// An input: a file, stdin, or an object.
#[derive(Debug, Clone)]
pub enum InputSpec {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
    /// An object in a store.
    Object(ObjectUrl),
}

impl InputSpec {
    /// `None` or `-`: stdin; an object URL: that object; else the file.
    pub fn of(path: Option<&Path>) -> CliResult<Self> {
        Ok(match path {
            None => InputSpec::Stdin,
            Some(p) if p == Path::new("-") => InputSpec::Stdin,
            Some(p) => match object::url_of(p)? {
                Some(url) => InputSpec::Object(url),
                None => InputSpec::File(p.to_path_buf()),
            },
        })
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
            InputSpec::Object(url) => url.to_string(),
        }
    }

    /// Opens it.
    pub fn open(&self) -> CliResult<Input> {
        match self {
            InputSpec::Stdin => Ok(Input {
                reader: InputReader::File(stdin_file().context(|| "stdin")?),
                len: None,
                name: self.name(),
            }),
            InputSpec::Object(url) => {
                let reader = ObjectReader::open(url).context(|| "reading")?;
                Ok(Input {
                    len: Some(reader.len()),
                    reader: InputReader::Object(Box::new(reader)),
                    name: self.name(),
                })
            }
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
                    reader: InputReader::File(file),
                    len: meta.is_file().then_some(meta.len()),
                    name: self.name(),
                })
            }
        }
    }
}

/// An open input.
pub struct Input {
    /// The bytes.
    pub reader: InputReader,
    /// Its size, for a regular file.
    pub len: Option<u64>,
    /// How messages name it.
    pub name: String,
}

/// The bytes of an input.
pub enum InputReader {
    /// A file, or stdin (a duplicate of its descriptor, unbuffered).
    File(File),
    /// An object, read with ranged GETs.
    Object(Box<ObjectReader>),
}

impl InputReader {
    /// A duplicate of the file's descriptor; `None` for an object.
    pub fn try_clone_file(&self) -> io::Result<Option<File>> {
        match self {
            InputReader::File(file) => file.try_clone().map(Some),
            InputReader::Object(_) => Ok(None),
        }
    }
}

impl Read for InputReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            InputReader::File(file) => file.read(buf),
            InputReader::Object(object) => object.read(buf),
        }
    }
}

/// An output: stdout, a file ([`OutputFile`]: a regular file or a new name appears only on
/// [`Output::commit`]; a FIFO or a device is written in place), or an object (it appears only
/// on [`Output::commit`]; dropped before, its upload is aborted).
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
    /// An object, never one that exists.
    Object(Box<ObjectWriter>, ObjectUrl),
}

impl Output {
    /// `None` or `-`: stdout; an object URL: a new object; else the file `path`.
    pub fn create(path: Option<&Path>) -> CliResult<Self> {
        match path {
            None => Ok(Output::Stdout(stdout_file().context(|| "stdout")?)),
            Some(p) if p == Path::new("-") => {
                Ok(Output::Stdout(stdout_file().context(|| "stdout")?))
            }
            Some(dest) => match object::url_of(dest)? {
                Some(url) => {
                    let writer = ObjectWriter::create(&url).context(|| "writing")?;
                    Ok(Output::Object(Box::new(writer), url))
                }
                None => Ok(Output::File {
                    file: OutputFile::create(dest).context(|| dest.display())?,
                    dest: dest.to_path_buf(),
                }),
            },
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
            Output::Object(_, url) => url.to_string(),
        }
    }

    /// Refuses an input that is the regular file this output writes or replaces (`cat`'s
    /// "input file is output file"): reading a file while appending to it never ends. An
    /// object is never an input file (and an existing object is never written).
    pub fn check_not_input(&self, input: Option<&File>, input_name: &str) -> CliResult {
        let Some(input) = input else {
            return Ok(());
        };
        let same = match self {
            Output::Stdout(out) => strongbox::fs::is_same_file(input, out).context(|| "stdout")?,
            Output::File { file, .. } => file.is_same_file(input).context(|| self.name())?,
            Output::Object(..) => false,
        };
        if same
            && input
                .metadata()
                .context(|| input_name.to_owned())?
                .is_file()
        {
            return Err(CliError::fail(format!(
                "{}: input file is output file",
                input_name
            )));
        }
        Ok(())
    }

    /// Flushes; a regular file is synced and renamed into place (replacing a file there); an
    /// object's upload is completed.
    pub fn commit(self) -> CliResult {
        match self {
            Output::Stdout(mut out) => out.flush().context(|| "writing to stdout"),
            Output::File { file, dest } => file.commit().context(|| dest.display()),
            Output::Object(writer, _) => writer.finish().context(|| "writing"),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File { file, .. } => file.write(buf),
            Output::Object(writer, _) => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(buf),
            Output::File { file, .. } => file.write_all(buf),
            Output::Object(writer, _) => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File { file, .. } => file.flush(),
            Output::Object(writer, _) => writer.flush(),
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
