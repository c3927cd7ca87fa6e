//! Real local servers for the tests, each on a free 127.0.0.1 port with its log in a temporary
//! folder, started by one harness ([`Server`]) and killed with its children when dropped:
//! OpenBao ([`bao`]), moto's AWS KMS and S3 ([`moto`]), Azurite's Blob service ([`azurite`]) and
//! fake-gcs-server ([`gcs`]). [`store_client`] checks and alters objects through each store's own
//! client library.
//!
//! A server whose program is not installed prints `SKIP <test>: ...` and gives `None`, unless
//! its `STRONGBOX_REQUIRE_<NAME>` variable is set (`.ci/run` sets it once it installed the
//! program): then the test fails. A server that is installed but does not start always fails
//! the test, with its log.
#![allow(dead_code)] // each test file uses some of the servers

/// `Deref` and `DerefMut` from the server type `$name` to its [`Server`], field `$field`.
macro_rules! deref_to_server {
    ($name:ident, $field:tt) => {
        impl std::ops::Deref for $name {
            type Target = super::Server;
            fn deref(&self) -> &super::Server {
                &self.$field
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut super::Server {
                &mut self.$field
            }
        }
    };
}

pub mod azurite;
pub mod bao;
pub mod gcs;
pub mod moto;
pub mod store_client;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long to wait for a server to answer: 300 tries, 100 ms apart.
const READY_TRIES: u32 = 300;

/// What to start: the program (`None` when it is not installed) and how to report it missing.
pub struct Spec<'a> {
    /// The server's name in messages, e.g. `moto_server`.
    pub name: &'a str,
    /// Set in the environment to make a missing program a failure instead of a `SKIP`.
    pub require_var: &'a str,
    /// How to install the program, for the `SKIP` line.
    pub install: &'a str,
    pub program: Option<PathBuf>,
    pub args: Vec<String>,
}

/// A running server program; killed, with its children, when dropped.
pub struct Server {
    child: Child,
    name: String,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its `HOME` and working folder, holding its log (`server.log`).
    pub dir: TempDir,
}

impl Server {
    /// Starts `spec` on `port` in `dir` (give both to the program through `spec.args`) and waits
    /// until `ready` holds (bounded); `None` after a `SKIP` line when the program is missing
    /// and `spec.require_var` is unset.
    pub fn start(
        test: &str,
        spec: Spec<'_>,
        port: u16,
        dir: TempDir,
        ready: impl Fn(&Server) -> bool,
    ) -> Option<Server> {
        let started = Instant::now();
        let Some(child) = spawn(&spec, dir.path()) else {
            assert!(
                std::env::var_os(spec.require_var).is_none(),
                "{} is not installed, but {} is set",
                spec.name,
                spec.require_var
            );
            eprintln!(
                "SKIP {test}: `{}` ({}) is not installed",
                spec.name, spec.install
            );
            return None;
        };
        let mut server = Server {
            child,
            name: spec.name.to_string(),
            port,
            dir,
        };
        server.wait_ready(ready);
        eprintln!(
            "{} started in {:.1} s",
            server.name,
            started.elapsed().as_secs_f64()
        );
        Some(server)
    }

    fn wait_ready(&mut self, ready: impl Fn(&Server) -> bool) {
        for _ in 0..READY_TRIES {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}); its log:\n{}", self.name, self.log());
            }
            if ready(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not start; its log:\n{}", self.name, self.log());
    }

    /// Whether something accepts connections on the server's port.
    pub fn listening(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server and every process it started, and waits for it.
    pub fn stop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the program in a process group of its own, output to `dir/server.log`; `None` when
/// it is not installed.
fn spawn(spec: &Spec<'_>, dir: &Path) -> Option<Child> {
    let program = spec.program.as_ref()?;
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut command = Command::new(program);
    command
        .args(&spec.args)
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    match command.spawn() {
        Ok(child) => Some(child),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("starting {}: {e}", spec.name),
    }
}

/// The program named by the variable `var`, else `name`.
pub fn program_from_env(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(name), PathBuf::from)
}

/// A port nothing listens on now (the listener that found it is closed at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new temporary folder for a server.
pub fn server_dir() -> TempDir {
    tempfile::tempdir().unwrap()
}
