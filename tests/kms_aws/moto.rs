//! A real local AWS KMS for the tests: `moto_server` (from `pip install 'moto[server]'`) on a
//! free 127.0.0.1 port, killed when dropped, and boto3 (which moto installs) as the server's
//! own client. `.ci/run` installs moto; `MOTO_BIN` overrides the program.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// How long to wait for the server to answer: 300 tries, 100 ms apart.
const READY_TRIES: u32 = 300;
/// The credentials given to moto (which accepts any) and to strongbox.
pub const ACCESS_KEY: &str = "AKIDTESTING";
pub const SECRET_KEY: &str = "TESTSECRETACCESSKEY";
pub const REGION: &str = "us-east-1";

pub struct Moto {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

fn program() -> PathBuf {
    std::env::var_os("MOTO_BIN").map_or_else(|| PathBuf::from("moto_server"), PathBuf::from)
}

impl Moto {
    /// Starts a server, or `None` (after printing a `SKIP` line) when `moto_server` is not
    /// installed and `STRONGBOX_REQUIRE_MOTO` is unset (`.ci/run` sets it once it installed
    /// moto).
    pub fn start(test: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let spawned = Command::new(program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("STRONGBOX_REQUIRE_MOTO").is_none(),
                    "moto_server is not installed, but STRONGBOX_REQUIRE_MOTO is set"
                );
                eprintln!(
                    "SKIP {test}: `moto_server` (pip install 'moto[server]') is not installed"
                );
                return None;
            }
            Err(e) => panic!("starting moto_server: {e}"),
        };
        let mut moto = Moto { child, port, dir };
        moto.wait_ready();
        Some(moto)
    }

    fn wait_ready(&mut self) {
        for _ in 0..READY_TRIES {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("moto_server exited ({status}); its log:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not start; its log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment of a process that talks to this server with the standard AWS chain.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }

    /// Runs a boto3 script with `kms`, a client of this server, and `sys.argv[1:]` = `args`;
    /// its standard output, trimmed.
    pub fn boto3(&self, script: &str, args: &[&str]) -> String {
        let program = format!(
            "import sys, json, base64, boto3\n\
             kms = boto3.client('kms', endpoint_url='{}', region_name='{REGION}')\n{script}",
            self.endpoint()
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(program)
            .args(args)
            .envs(self.aws_env())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("running python3");
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Creates a symmetric key; its ARN.
    pub fn create_key(&self) -> String {
        self.boto3("print(kms.create_key()['KeyMetadata']['Arn'])", &[])
    }

    /// Points alias `alias/NAME` at the key `arn`.
    pub fn create_alias(&self, name: &str, arn: &str) {
        self.boto3(
            "kms.create_alias(AliasName=sys.argv[1], TargetKeyId=sys.argv[2])",
            &[&format!("alias/{name}"), arn],
        );
    }

    /// The `aws-kms://` URI of `key` on this server.
    pub fn uri(&self, key: &str) -> String {
        format!(
            "aws-kms://{key}?region={REGION}&endpoint={}",
            self.endpoint()
        )
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
