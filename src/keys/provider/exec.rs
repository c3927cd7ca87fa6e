//! The Exec provider: a program prints the master key.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::{LazyKey, MasterKeyProvider, Protection, ProviderError};
use crate::key::{KEY_LEN, KeyError, MasterKey};

/// Most bytes of standard output kept; a key is at most 66 bytes (64 hex digits and `\r\n`).
const STDOUT_CAP: usize = 4096;
/// Most bytes of standard error kept.
const STDERR_CAP: usize = 4096;
/// Most characters of standard error shown in an error message.
const STDERR_SHOWN: usize = 512;
/// How long the output pipes may take to close after the program exited, at least.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// Runs a program that prints the master key on its standard output: the
/// `Security.MasterKey.Exec` setting.
///
/// The program is run directly (never through a shell) with the given arguments, an empty
/// standard input and the process's environment. It must print exactly 32 raw bytes, or standard
/// base64 (44 characters) or hexadecimal (64 digits) with ASCII whitespace around it
/// (`docs/KEYBLOB.md`, "Key text"), and exit with status 0 within the timeout ([`ExecProvider::DEFAULT_TIMEOUT`], 30 s);
/// otherwise it is killed and the error says so. It runs once, on first use; the key is kept
/// in memory (zeroized on drop) for the provider's lifetime.
///
/// On Unix the program runs in a process group of its own, and everything in that group (the
/// programs it started too) is killed with it: on timeout, when its output stays held open, and
/// when the embedding process calls [`ExecProvider::kill_running_programs`] (on its way out after
/// SIGINT or SIGTERM, say).
///
/// `Debug` shows the program, the number of arguments (arguments may carry credentials, so
/// not their values), the timeout and the key's fingerprint once loaded.
///
/// ```no_run
/// use std::time::Duration;
/// use strongbox::MasterKeyProvider;
/// use strongbox::keys::ExecProvider;
///
/// let provider = ExecProvider::new("/usr/local/bin/give-me-key")
///     .with_args(["--vault", "prod"])
///     .with_timeout(Duration::from_secs(10));
/// println!("master key {:?}", provider.fingerprint()?);
/// # Ok::<(), strongbox::keys::ProviderError>(())
/// ```
pub struct ExecProvider {
    program: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
    key: LazyKey,
}

impl ExecProvider {
    /// The default time limit for the program (30 s, as RavenDB's
    /// `Security.MasterKey.Exec.TimeoutInSec`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A provider that runs `program` (a path, or a name looked up on `PATH`) without arguments.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            key: LazyKey::default(),
        }
    }

    /// Sets the program's arguments (passed as they are, no shell).
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the time limit, after which the program is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program as configured.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Kills the process group of every key program running now, in any provider of this
    /// process (SIGKILL to the whole group). For a process that is about to exit on a signal:
    /// call it from an ordinary thread (it takes a lock, so not from an async signal handler).
    /// A no-op where process groups do not exist (Windows).
    pub fn kill_running_programs() {
        #[cfg(unix)]
        for pgid in groups::lock().iter() {
            groups::kill(*pgid);
        }
    }

    /// Starts the program, in a process group of its own on Unix.
    fn spawn(&self) -> Result<RunningChild, ProviderError> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut attempts = 0;
        loop {
            match command.spawn() {
                Ok(child) => return Ok(RunningChild::new(child)),
                // "Text file busy": the program is being written, or another thread of this
                // process forked while holding it open for writing; it clears within moments.
                Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                    attempts += 1;
                    thread::sleep(Duration::from_millis(5 * attempts));
                }
                Err(e) => return Err(spawn_error(self.program.clone(), e)),
            }
        }
    }

    fn run(&self) -> Result<MasterKey, ProviderError> {
        let mut child = self.spawn()?;
        let deadline = Instant::now() + self.timeout;
        let (stdout, stderr) = self.drain_pipes(&mut child)?;
        let status = match wait_until(&mut child, deadline) {
            Ok(Some(status)) => status,
            Ok(None) => {
                kill_and_reap(&mut child);
                // Whatever it wrote so far; a grandchild may still hold the pipe.
                stderr.wait(Instant::now() + Duration::from_millis(50));
                return Err(ProviderError::ExecTimeout {
                    program: self.program.clone(),
                    timeout: self.timeout,
                    stderr: shown_stderr(&stderr, &stdout),
                });
            }
            Err(e) => {
                kill_and_reap(&mut child);
                return Err(self.io_error(e));
            }
        };
        if !status.success() {
            // The program has exited, so its own output is already in the pipe: a short wait
            // drains it, without waiting on a background process that inherited the pipe.
            stderr.wait(Instant::now() + PIPE_GRACE);
            stdout.wait(Instant::now() + Duration::from_millis(50));
            return Err(ProviderError::ExecFailed {
                program: self.program.clone(),
                code: status.code(),
                stderr: shown_stderr(&stderr, &stdout),
            });
        }
        self.key_from_pipe(&child, &stdout, deadline.max(Instant::now() + PIPE_GRACE))
    }

    fn io_error(&self, source: io::Error) -> ProviderError {
        ProviderError::ExecIo {
            program: self.program.clone(),
            source,
        }
    }

    /// Starts draining the child's standard output and error, each on its own thread.
    ///
    /// A program that fills one pipe while we wait cannot deadlock, and a pipe held open by a
    /// grandchild cannot block us past the deadline: we wait for the readers with a timeout and
    /// never join them. On failure the child is killed and reaped.
    fn drain_pipes(&self, child: &mut RunningChild) -> Result<(Pipe, Pipe), ProviderError> {
        let pipes = child
            .stdout
            .take()
            .zip(child.stderr.take())
            .ok_or_else(|| io::Error::other("the child's output pipes are missing"))
            .and_then(|(out, err)| {
                Ok((Pipe::spawn(out, STDOUT_CAP)?, Pipe::spawn(err, STDERR_CAP)?))
            });
        pipes.map_err(|e| {
            kill_and_reap(child);
            self.io_error(e)
        })
    }

    /// The key on the standard output of a child that exited successfully, once the pipe closes
    /// by `deadline`.
    fn key_from_pipe(
        &self,
        child: &RunningChild,
        stdout: &Pipe,
        deadline: Instant,
    ) -> Result<MasterKey, ProviderError> {
        match stdout.wait(deadline) {
            Some(Ok(())) => self.key_from(&stdout.take()),
            Some(Err(e)) => Err(self.io_error(e)),
            None => {
                // Whatever holds the pipe was started by the program, in its group; the program
                // is not reaped yet, so the group's id has not been reused.
                #[cfg(unix)]
                groups::kill(child.id());
                #[cfg(not(unix))]
                let _ = child;
                Err(ProviderError::ExecOutputHeldOpen {
                    program: self.program.clone(),
                    timeout: self.timeout,
                })
            }
        }
    }

    /// The key in the program's whole standard output.
    fn key_from(&self, out: &Captured) -> Result<MasterKey, ProviderError> {
        let program = || self.program.clone();
        if out.total > STDOUT_CAP {
            return Err(ProviderError::ExecWrongLength {
                program: program(),
                len: out.total,
            });
        }
        MasterKey::from_encoded(&out.bytes).map_err(|e| match e {
            KeyError::UnrecognizedEncoding { len } => ProviderError::ExecWrongLength {
                program: program(),
                len,
            },
            source => ProviderError::ExecBadEncoding {
                program: program(),
                source,
            },
        })
    }
}

impl MasterKeyProvider for ExecProvider {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        self.key
            .get_or_try_init(|| self.run())
            .map(Protection::MasterKey)
    }
}

impl fmt::Debug for ExecProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecProvider")
            .field("program", &self.program)
            .field("args", &format_args!("[{} redacted]", self.args.len()))
            .field("timeout", &self.timeout)
            .field("key", &self.key)
            .finish()
    }
}

fn spawn_error(program: PathBuf, source: io::Error) -> ProviderError {
    // ENOEXEC ("exec format error", e.g. a script without a `#!` line) is 8 on every Unix
    // strongbox supports.
    let not_a_program = cfg!(unix) && source.raw_os_error() == Some(8);
    match source.kind() {
        io::ErrorKind::NotFound => ProviderError::ExecNotFound { program },
        io::ErrorKind::PermissionDenied => ProviderError::ExecNotExecutable { program, source },
        _ if not_a_program => ProviderError::ExecNotExecutable { program, source },
        _ => ProviderError::ExecIo { program, source },
    }
}

/// Waits until `child` exits (`Some`) or `deadline` passes (`None`). On Unix the program is
/// not reaped: until [`RunningChild`] is dropped its id, which is also its process group's,
/// cannot be reused, so killing the group stays safe.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> io::Result<Option<std::process::ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = exit_status(child)? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The exit status of `child` if it has exited, without reaping it (`waitid` with `WNOWAIT`).
#[cfg(unix)]
fn exit_status(child: &Child) -> io::Result<Option<std::process::ExitStatus>> {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    use std::os::unix::process::ExitStatusExt as _;
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::other("the key program has no valid process id"))?;
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    let Some(status) = waitid(WaitId::Pid(pid), options)? else {
        return Ok(None);
    };
    // The wait status encoding: the exit code in the second byte, or the signal in the first.
    Ok(match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => Some(std::process::ExitStatus::from_raw((code & 0xff) << 8)),
        (None, Some(signal)) => Some(std::process::ExitStatus::from_raw(signal & 0x7f)),
        (None, None) => None,
    })
}

#[cfg(not(unix))]
fn exit_status(child: &mut Child) -> io::Result<Option<std::process::ExitStatus>> {
    child.try_wait()
}

/// A key program, its process group registered while it runs (so that
/// [`ExecProvider::kill_running_programs`] can end it) and unregistered on drop.
struct RunningChild {
    child: Child,
}

impl RunningChild {
    fn new(child: Child) -> Self {
        #[cfg(unix)]
        groups::lock().push(child.id());
        Self { child }
    }
}

impl std::ops::Deref for RunningChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for RunningChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl RunningChild {
    /// Takes the program's group off the list [`ExecProvider::kill_running_programs`] kills,
    /// before it is reaped and its id may be reused.
    fn unregister(&self) {
        #[cfg(unix)]
        groups::lock().retain(|pgid| *pgid != self.child.id());
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        self.unregister();
        // Reaps the program if it has exited (it was only waited for without reaping).
        let _ = self.child.try_wait();
    }
}

/// Kills the program's whole process group, then reaps the program.
fn kill_and_reap(child: &mut RunningChild) {
    // Errors are ignored: the child may have exited in the meantime. While it is not reaped its
    // id cannot be reused, so the group signalled is its own. `wait` returns promptly after
    // SIGKILL; it reaps only the direct child and does not wait for its pipes.
    #[cfg(unix)]
    groups::kill(child.id());
    let _ = child.kill();
    child.unregister();
    let _ = child.wait();
}

/// The process groups of the key programs running now (each the id of its leader, the program).
#[cfg(unix)]
mod groups {
    use std::sync::{Mutex, MutexGuard};

    static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

    pub(super) fn lock() -> MutexGuard<'static, Vec<u32>> {
        // A panic while holding the lock leaves the list itself intact.
        RUNNING.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SIGKILL to every process in group `pgid`; errors (the group is gone) are ignored. Groups
    /// 0 and 1 are never signalled (`kill(-1)` would reach every process).
    pub(super) fn kill(pgid: u32) {
        let pid = i32::try_from(pgid)
            .ok()
            .filter(|&id| id > 1)
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// What a reader thread collected from a pipe.
#[derive(Default)]
struct Captured {
    /// The first bytes (at most the cap), zeroized when dropped.
    bytes: Zeroizing<Vec<u8>>,
    /// How many bytes the pipe delivered in all.
    total: usize,
}

/// A pipe drained by its own thread into a shared buffer, readable at any moment.
struct Pipe {
    data: Arc<Mutex<Captured>>,
    done: mpsc::Receiver<io::Result<()>>,
}

impl Pipe {
    fn spawn<R: Read + Send + 'static>(mut pipe: R, cap: usize) -> io::Result<Self> {
        let data = Arc::new(Mutex::new(Captured {
            bytes: Zeroizing::new(Vec::with_capacity(cap)),
            total: 0,
        }));
        let (tx, done) = mpsc::sync_channel(1);
        let shared = Arc::clone(&data);
        thread::Builder::new()
            .name("strongbox-exec-pipe".into())
            .spawn(move || {
                // The receiver may be gone (timeout); nothing to do then.
                let _ = tx.send(read_capped(&mut pipe, cap, &shared));
            })?;
        Ok(Self { data, done })
    }

    /// Waits until the pipe is closed (`Some`) or `until` passes (`None`).
    fn wait(&self, until: Instant) -> Option<io::Result<()>> {
        match self
            .done
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            Ok(result) => Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Some(Err(io::Error::other("the output reader stopped")))
            }
        }
    }

    fn take(&self) -> Captured {
        std::mem::take(&mut *lock(&self.data))
    }
}

fn lock(data: &Mutex<Captured>) -> std::sync::MutexGuard<'_, Captured> {
    // Poisoning only means the reader panicked; the bytes are still what was read.
    data.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `pipe` to its end into `out`, keeping the first `cap` bytes and counting the rest. The
/// buffer never reallocates, so no copy of a key is left behind in freed memory.
fn read_capped(pipe: &mut impl Read, cap: usize, out: &Mutex<Captured>) -> io::Result<()> {
    let mut chunk = Zeroizing::new([0u8; 1024]);
    loop {
        match pipe.read(&mut chunk[..]) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                let mut out = lock(out);
                out.total = out.total.saturating_add(n);
                let room = cap.saturating_sub(out.bytes.len());
                out.bytes.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The program's standard error as shown in an error message: redacted (see [`ExecProvider`]),
/// trimmed and capped.
fn shown_stderr(stderr: &Pipe, stdout: &Pipe) -> String {
    let mut text = {
        let captured = lock(&stderr.data);
        let mut kept = &captured.bytes[..];
        if captured.total > kept.len() {
            // Cut off at the cap: the last word may be part of a secret, too short to be seen
            // as one.
            let last_space = kept.iter().rposition(u8::is_ascii_whitespace);
            kept = &kept[..last_space.unwrap_or(0)];
        }
        Zeroizing::new(kept.to_vec())
    };
    if let Ok(key) = MasterKey::from_encoded(&lock(&stdout.data).bytes) {
        redact_key(&mut text, &key);
    }
    stderr_start(&text)
}

/// Replaces every copy of `key` in `text`, raw, in base64 or in hexadecimal, by `[redacted]`.
fn redact_key(text: &mut Zeroizing<Vec<u8>>, key: &MasterKey) {
    use crate::base64::{STANDARD, URL_SAFE, encode};
    use secrecy::ExposeSecret as _;
    let raw = key.expose_secret();
    let hex: Zeroizing<String> = Zeroizing::new(raw.iter().map(|b| format!("{b:02x}")).collect());
    let encodings = [
        Zeroizing::new(raw.to_vec()),
        Zeroizing::new(encode(raw, STANDARD).into_bytes()),
        Zeroizing::new(encode(raw, URL_SAFE).into_bytes()),
        Zeroizing::new(hex.as_bytes().to_vec()),
        Zeroizing::new(hex.to_ascii_uppercase().into_bytes()),
    ];
    for secret in &encodings {
        while let Some(at) = text.windows(secret.len()).position(|w| w == &secret[..]) {
            text.splice(at..at + secret.len(), REDACTED.bytes());
        }
    }
}

/// What replaces a secret in a program's standard error.
const REDACTED: &str = "[redacted]";

/// The start of a program's standard error, for an error message: each word redacted where it
/// may be a secret, at most [`STDERR_SHOWN`] characters.
fn stderr_start(bytes: &[u8]) -> String {
    let mut shown = String::new();
    for line in bytes.split(|b| *b == b'\n') {
        let words: Vec<String> = line
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty())
            .map(redact_word)
            .collect();
        if !words.is_empty() {
            if !shown.is_empty() {
                shown.push('\n');
            }
            shown.push_str(&words.join(" "));
        }
    }
    match shown.char_indices().nth(STDERR_SHOWN) {
        Some((cut, _)) => format!("{}...", &shown[..cut]),
        None => shown,
    }
}

/// `word` as shown: `[redacted]` if it is not plain text (a raw key, or terminal control
/// sequences), else with its key- or token-like runs redacted.
fn redact_word(word: &[u8]) -> String {
    let word = match std::str::from_utf8(word) {
        Ok(w) if !w.chars().any(|c| c.is_control() && c != '\r') => w.trim_end_matches('\r'),
        _ => return REDACTED.to_string(),
    };
    if word.len() == KEY_LEN && mixed_case_and_digits(word) {
        // A raw key of printable bytes.
        return REDACTED.to_string();
    }
    let mut out = String::new();
    let mut rest = word;
    while !rest.is_empty() {
        let run_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-".contains(c)))
            .unwrap_or(rest.len());
        let (run, after) = rest.split_at(run_len);
        if looks_secret(run) {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        let mut chars = after.chars();
        out.extend(chars.next());
        rest = chars.as_str();
    }
    out
}

/// Whether a run of base64-alphabet characters may be a key or token: it holds 32 or more
/// consecutive hexadecimal digits anywhere (`key=<hex>`, `0x<hex>`), or it has 20 or more
/// characters mixing upper case, lower case and digits.
fn looks_secret(run: &str) -> bool {
    let longest_hex = run
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    longest_hex >= 32 || (run.len() >= 20 && mixed_case_and_digits(run))
}

fn mixed_case_and_digits(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_uppercase())
        && text.chars().any(|c| c.is_ascii_lowercase())
        && text.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_counts_past_the_cap() {
        let data = vec![7u8; 10_000];
        let out = Mutex::new(Captured {
            bytes: Zeroizing::new(Vec::with_capacity(100)),
            total: 0,
        });
        read_capped(&mut data.as_slice(), 100, &out).unwrap();
        let got = out.into_inner().unwrap();
        assert_eq!(got.bytes.len(), 100);
        assert_eq!(got.bytes.capacity(), 100, "never reallocated");
        assert_eq!(got.total, 10_000);
    }

    #[test]
    fn hex_keys_behind_a_prefix_are_redacted() {
        let hex = "0123456789abcdef".repeat(4);
        for line in [
            format!("vault: key={hex} expired"),
            format!("0x{hex}"),
            format!("k:{hex}"),
        ] {
            let shown = stderr_start(line.as_bytes());
            assert!(!shown.contains(&hex[..32]), "{shown}");
        }
        assert_eq!(stderr_start(b"exit code 0x1f"), "exit code 0x1f");
    }

    #[test]
    fn stderr_is_trimmed_and_capped() {
        assert_eq!(stderr_start(b"  oops\n"), "oops");
        let long = "x".repeat(2000);
        let shown = stderr_start(long.as_bytes());
        assert_eq!(shown.len(), STDERR_SHOWN + 3);
        assert!(shown.ends_with("..."));
        assert_eq!(stderr_start(&[0xff, b'a']), "[redacted]");
        assert_eq!(stderr_start(b"a\x1b[2Jb ok"), "[redacted] ok");
    }

    #[test]
    fn stderr_words_that_may_be_secrets_are_redacted() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"vault: token=hvs.CAESIJq7x2Lk9PzQw3rT8yNb denied",
                "vault: token=hvs.[redacted] denied",
            ),
            (
                b"key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= rejected",
                "key [redacted] rejected",
            ),
            (
                b"id 00112233445566778899aabbccddeeff00112233.",
                "id [redacted].",
            ),
            (
                b"/usr/local/bin/give-me-key: vault unreachable (x86_64)",
                "/usr/local/bin/give-me-key: vault unreachable (x86_64)",
            ),
            (b"line one\n\n  line two\r\n", "line one\nline two"),
            (b"a\tb", "a b"),
        ];
        for (input, shown) in cases {
            assert_eq!(
                stderr_start(input),
                shown,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn builder_settings_are_kept() {
        let provider = ExecProvider::new("give-me-key");
        assert_eq!(provider.timeout(), ExecProvider::DEFAULT_TIMEOUT);
        assert_eq!(provider.program(), Path::new("give-me-key"));
        let provider = provider
            .with_timeout(Duration::from_millis(1500))
            .with_args(["a", "b c"]);
        assert_eq!(provider.timeout(), Duration::from_millis(1500));
        assert_eq!(provider.args, [OsString::from("a"), OsString::from("b c")]);
    }

    #[cfg(unix)]
    #[test]
    fn a_program_that_stays_busy_is_an_error_after_a_few_retries() {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.sh");
        // Held open for writing for the whole test: every exec fails with "text file busy".
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .unwrap();
        file.write_all(b"#!/bin/sh\nprintf '%s' AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
            .unwrap();
        match ExecProvider::new(&path).fingerprint() {
            Err(ProviderError::ExecIo { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::ExecutableFileBusy);
            }
            other => panic!("{other:?}"),
        }
        drop(file);
    }

    #[test]
    fn read_capped_retries_interrupted_and_returns_other_errors() {
        /// Interrupted before every chunk of 10 bytes; then `end` (end of input or an error).
        struct Flaky {
            left: usize,
            interrupt: bool,
            fail: bool,
        }
        impl Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.interrupt = !self.interrupt;
                if self.interrupt {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                if self.left == 0 && self.fail {
                    return Err(io::Error::other("pipe broke"));
                }
                let n = buf.len().min(10).min(self.left);
                buf[..n].fill(b'k');
                self.left -= n;
                Ok(n)
            }
        }
        for fail in [false, true] {
            let out = Mutex::new(Captured::default());
            let mut pipe = Flaky {
                left: 95,
                interrupt: false,
                fail,
            };
            let result = read_capped(&mut pipe, 64, &out);
            match (fail, result) {
                (false, Ok(())) => {}
                (true, Err(e)) => assert_eq!(e.to_string(), "pipe broke"),
                (_, other) => panic!("{fail}: {other:?}"),
            }
            let got = out.into_inner().unwrap();
            assert_eq!((got.bytes.len(), got.total), (64, 95));
        }
    }
}
