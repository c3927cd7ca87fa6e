//! A real local Azure Blob service for the tests: Azurite's `azurite-blob` (npm package
//! `azurite`), in memory, telemetry off, strict (no loose mode). `.ci/run` installs it under
//! `~/.cache/strongbox-npm` and sets `STRONGBOX_REQUIRE_AZURITE`; `AZURITE_BIN` overrides the
//! program.

use std::path::PathBuf;

use super::store_client::StoreClient;
use super::{Server, Spec};

/// The emulator's well-known development account and its key (public, the same everywhere).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite Blob service; derefs to its [`Server`].
pub struct Azurite(Server);

deref_to_server!(Azurite, 0);

/// `AZURITE_BIN`, else the copy `.ci/run` installs, else `azurite-blob` on the `PATH`.
fn program() -> PathBuf {
    if let Some(bin) = std::env::var_os("AZURITE_BIN") {
        return bin.into();
    }
    let installed = std::env::var_os("HOME").map(|home| {
        PathBuf::from(home).join(".cache/strongbox-npm/node_modules/.bin/azurite-blob")
    });
    installed
        .filter(|path| path.exists())
        .unwrap_or_else(|| "azurite-blob".into())
}

impl Azurite {
    /// Starts a server, or `None` (after printing a `SKIP` line) when Azurite is not installed
    /// and `STRONGBOX_REQUIRE_AZURITE` is unset.
    pub fn start(test: &str) -> Option<Self> {
        let port = super::free_port();
        let args = [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--disableTelemetry",
        ];
        let spec = Spec {
            name: "azurite-blob",
            require_var: "STRONGBOX_REQUIRE_AZURITE",
            install: "npm install azurite@3.34.0",
            program: Some(program()),
            args: args.iter().map(|arg| arg.to_string()).collect(),
        };
        Server::start(test, spec, port, super::server_dir(), Server::listening).map(Azurite)
    }

    /// The account's Blob endpoint, `http://127.0.0.1:PORT/devstoreaccount1` (path style).
    pub fn blob_endpoint(&self) -> String {
        format!("{}/{ACCOUNT}", self.endpoint())
    }

    /// The environment that points object_store's `MicrosoftAzureBuilder::from_env()` at this
    /// server: the account, its key, the endpoint, plain HTTP allowed.
    pub fn azure_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT.to_string()),
            ("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY.to_string()),
            ("AZURE_STORAGE_ENDPOINT", self.blob_endpoint()),
            ("AZURE_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// The Python `azure-storage-blob` client of this server, through `store_client.py`.
    pub fn client(&self) -> StoreClient {
        let connection = format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};\
             BlobEndpoint={};",
            self.blob_endpoint()
        );
        let env = vec![("AZURE_STORAGE_CONNECTION_STRING", connection)];
        StoreClient::new("azure", env, self.dir.path())
    }
}
