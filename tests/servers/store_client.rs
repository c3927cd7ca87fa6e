//! The tests' view of an object store through the store's own client library (boto3,
//! azure-storage-blob, google-cloud-storage): `store_client.py` beside this file, run by
//! `python3`, to check the bytes a test wrote and to damage objects.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The client script.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/store_client.py");

/// One store's client: `store_client.py STORE ...` with the environment that reaches it.
pub struct StoreClient {
    store: &'static str,
    env: Vec<(&'static str, String)>,
    home: PathBuf,
}

impl StoreClient {
    /// A client of `store` (`s3`, `azure` or `gcs`), run with `env` and `HOME` = `home`.
    pub fn new(store: &'static str, env: Vec<(&'static str, String)>, home: &Path) -> Self {
        Self {
            store,
            env,
            home: home.to_path_buf(),
        }
    }

    /// Runs `store_client.py STORE ARGS`; its standard output, or its standard error.
    pub fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("python3")
            .arg(SCRIPT)
            .arg(self.store)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("HOME", &self.home)
            .stdin(Stdio::null())
            .output()
            .expect("running python3");
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        if out.status.success() {
            Ok(text(out.stdout))
        } else {
            Err(text(out.stderr))
        }
    }

    /// Runs `store_client.py STORE ARGS`, which must succeed; its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .unwrap_or_else(|e| panic!("store_client.py {} {args:?} failed: {e}", self.store))
    }

    pub fn make_bucket(&self, bucket: &str) {
        self.run(&["make-bucket", bucket]);
    }

    /// Uploads `bytes` as `key`.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("object");
        std::fs::write(&file, bytes).unwrap();
        self.run(&["put", bucket, key, path_str(&file)]);
    }

    /// The bytes of `key`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("object");
        self.run(&["get", bucket, key, path_str(&file)]);
        std::fs::read(file).unwrap()
    }

    /// The objects under `prefix`: (key, size), in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let out = self.run(&["list", bucket, prefix]);
        out.lines()
            .map(|line| {
                let (key, size) = line.rsplit_once('\t').unwrap();
                (key.to_string(), size.parse().unwrap())
            })
            .collect()
    }

    /// Begins an upload of `key`, sends one part (one block on Azure) and leaves it unfinished.
    pub fn start_upload(&self, bucket: &str, key: &str) {
        self.run(&["start-upload", bucket, key]);
    }

    /// The keys that have an unfinished upload (S3 and GCS multipart uploads; Azure blobs with
    /// uncommitted blocks).
    pub fn list_uploads(&self, bucket: &str) -> Vec<String> {
        let out = self.run(&["list-uploads", bucket]);
        out.lines()
            .map(|line| line.split('\t').next().unwrap().to_string())
            .collect()
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        self.run(&["delete", bucket, key]);
    }

    /// Flips the low bit of byte `offset` of `key`, on the server.
    pub fn flip_byte(&self, bucket: &str, key: &str, offset: usize) {
        let mut bytes = self.get(bucket, key);
        bytes[offset] ^= 1;
        self.put(bucket, key, &bytes);
    }

    /// Cuts `key` to its first `len` bytes, on the server.
    pub fn truncate(&self, bucket: &str, key: &str, len: usize) {
        let bytes = self.get(bucket, key);
        self.put(bucket, key, &bytes[..len]);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
