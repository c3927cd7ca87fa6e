//! A real local AWS (KMS and S3) for the tests: `moto_server` (from `pip install
//! 'moto[server]'`), with boto3 (which moto installs) as the server's own client. `.ci/run`
//! installs moto and sets `STRONGBOX_REQUIRE_MOTO`; `MOTO_BIN` overrides the program.

use std::process::{Command, Stdio};

use super::store_client::StoreClient;
use super::{Server, Spec};

/// The credentials given to moto (which accepts any) and to strongbox.
pub const ACCESS_KEY: &str = "AKIDTESTING";
pub const SECRET_KEY: &str = "TESTSECRETACCESSKEY";
pub const REGION: &str = "us-east-1";

/// A running `moto_server`; derefs to its [`Server`].
pub struct Moto(Server);

deref_to_server!(Moto, 0);

impl Moto {
    /// Starts a server, or `None` (after printing a `SKIP` line) when `moto_server` is not
    /// installed and `STRONGBOX_REQUIRE_MOTO` is unset.
    pub fn start(test: &str) -> Option<Self> {
        let port = super::free_port();
        let spec = Spec {
            name: "moto_server",
            require_var: "STRONGBOX_REQUIRE_MOTO",
            install: "pip install 'moto[server]'",
            program: Some(super::program_from_env("MOTO_BIN", "moto_server")),
            args: vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
        };
        Server::start(test, spec, port, super::server_dir(), Server::listening).map(Moto)
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

    /// The environment that points object_store's `AmazonS3Builder::from_env()` (and boto3) at
    /// this server's S3: [`Moto::aws_env`], the endpoint, plain HTTP allowed.
    pub fn s3_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.aws_env();
        env.push(("AWS_ENDPOINT_URL", self.endpoint()));
        env.push(("AWS_ALLOW_HTTP", "true".to_string()));
        env
    }

    /// boto3's S3 client of this server, through `store_client.py`.
    pub fn s3_client(&self) -> StoreClient {
        StoreClient::new("s3", self.s3_env(), self.dir.path())
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
}
