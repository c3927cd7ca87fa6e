//! Backups to and from S3 through `strongbox::object`, against a real local S3 (`moto_server`,
//! from `pip install 'moto[server]'`), checked with boto3, with a fault-injecting proxy
//! between `object_store` and moto.
//!
//! One test runs every scenario in turn: `object_store` reads its endpoint and credentials
//! from the environment, which is set once, before any other thread exists; and
//! `ObjectWriter::abort_running_uploads` acts on the whole process.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use strongbox::backup::{
    BackupError, BackupId, BackupInput, BackupKind, Channel, Compression, MasterKeys,
    RestoreConfig, VerifyConfig, inspect_reader, restore, verify,
};
use strongbox::object::{ObjectError, ObjectReader, ObjectUrl, ObjectWriter, UploadOptions, list};
use strongbox::{
    BackupWriter, DataKey, DatabaseKeyStore, LogicalBackup, RestoreReader, SnapshotBackup,
};

mod common;
#[path = "object_s3/proxy.rs"]
mod proxy;
mod servers;

use proxy::{Fault, Proxy};
use servers::moto::{ACCESS_KEY, Moto, REGION, SECRET_KEY};

const AUTH: Channel = Channel::Authenticated;
const BUCKET: &str = "strongbox-test";
/// The smallest part S3 accepts; objects of more than two parts are 11 MiB.
const PART: usize = 5 << 20;
const MULTIPART_LEN: usize = 11 << 20;

struct Env {
    moto: Moto,
    proxy: Proxy,
    tmp: tempfile::TempDir,
    keys: MasterKeys,
    db: PathBuf,
    /// The text (`Display` and `Debug`) of every error met, checked for the secret key.
    errors: Mutex<Vec<String>>,
}

impl Env {
    fn url(&self, key: &str) -> ObjectUrl {
        ObjectUrl::parse(&format!("s3://{BUCKET}/{key}")).unwrap()
    }

    fn options(&self) -> UploadOptions {
        UploadOptions::default().part_size(PART).parts_in_flight(2)
    }

    /// Runs a boto3 script with `s3`, a client of moto, and `B`, the bucket.
    fn s3(&self, script: &str, args: &[&str]) -> String {
        let program = format!(
            "s3 = boto3.client('s3', endpoint_url='{}', region_name='{REGION}')\nB = '{BUCKET}'\n{script}",
            self.moto.endpoint()
        );
        self.moto.boto3(&program, args)
    }

    /// The object's bytes, downloaded by boto3.
    fn download(&self, key: &str) -> Vec<u8> {
        let file = self.tmp.path().join("download");
        let _ = fs::remove_file(&file);
        let path = file.to_str().unwrap();
        self.s3(
            "s3.download_file(B, sys.argv[1], sys.argv[2])",
            &[key, path],
        );
        fs::read(&file).unwrap()
    }

    /// Uploads `bytes` as `key` with boto3 (replacing any object).
    fn upload(&self, key: &str, bytes: &[u8]) {
        let file = self.tmp.path().join("upload");
        fs::write(&file, bytes).unwrap();
        let path = file.to_str().unwrap();
        self.s3("s3.upload_file(sys.argv[2], B, sys.argv[1])", &[key, path]);
    }

    fn exists(&self, key: &str) -> bool {
        let script = "r = s3.list_objects_v2(Bucket=B, Prefix=sys.argv[1])\n\
                      print(any(o['Key'] == sys.argv[1] for o in r.get('Contents', [])))";
        self.s3(script, &[key]) == "True"
    }

    /// How many multipart uploads are unfinished in the bucket.
    fn unfinished_uploads(&self) -> usize {
        let script = "print(len(s3.list_multipart_uploads(Bucket=B).get('Uploads', [])))";
        self.s3(script, &[]).parse().unwrap()
    }

    /// Notes an error's text (for the final secret check) and returns it.
    fn noted<E: std::fmt::Display + std::fmt::Debug>(&self, err: E) -> E {
        self.errors.lock().unwrap().push(format!("{err} {err:?}"));
        err
    }

    fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join("out").join(name)
    }

    fn input(&self, key: &str) -> BackupInput {
        BackupInput::object(&self.url(key)).unwrap()
    }

    fn verify(&self, keys: &[&str]) -> Result<(), BackupError> {
        let config = VerifyConfig::from_inputs(keys.iter().map(|k| self.input(k)));
        verify(&config, &self.keys, AUTH).map(drop)
    }
}

/// A `Write` that copies what the object writer accepts.
struct Tee<'a> {
    object: &'a mut ObjectWriter,
    copy: Vec<u8>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.object.write(buf)?;
        self.copy.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.object.flush()
    }
}

/// A snapshot of more than two parts, written through the object writer: its bytes as
/// stored are those written, and it restores and verifies from the object.
fn snapshot_round_trip(env: &Env) {
    let url = env.url("orders/snapshot");
    let mut object = ObjectWriter::create_with(&url, env.options()).unwrap();
    let mut tee = Tee {
        object: &mut object,
        copy: Vec::new(),
    };
    SnapshotBackup::of_directory(&env.db)
        .write_to(&mut tee, &env.keys, AUTH)
        .unwrap();
    let written = tee.copy;
    assert!(written.len() > 2 * PART, "{} bytes", written.len());
    object.finish().unwrap();
    assert!(env.download("orders/snapshot") == written);

    let config = RestoreConfig::from_inputs([env.input("orders/snapshot")], env.out("snapshot"));
    restore(&config, &env.keys, AUTH).unwrap();
    assert!(common::tree(&env.out("snapshot")) == common::tree(&env.db));
    env.verify(&["orders/snapshot"]).unwrap();

    let info = inspect_reader(url.to_string(), ObjectReader::open(&url).unwrap()).unwrap();
    assert_eq!(info.manifest().kind(), BackupKind::Snapshot);

    let entries = list(&env.url("orders")).unwrap();
    let found = entries.iter().find(|e| e.url == url).expect("listed");
    assert_eq!(found.size, written.len() as u64);
}

/// A logical full backup (one small object) and an incremental of more than two parts,
/// restored as a chain from the objects.
fn logical_chain(env: &Env) {
    let exports = [b"the full export".to_vec(), common::noise(MULTIPART_LEN, 7)];
    let mut previous: Option<BackupId> = None;
    for (i, export) in exports.iter().enumerate() {
        let builder = match previous {
            None => LogicalBackup::full(&env.db),
            Some(p) => LogicalBackup::incremental(&env.db, p),
        };
        let url = env.url(&format!("orders/logical.{i}"));
        let mut object = ObjectWriter::create_with(&url, env.options()).unwrap();
        let mut writer = builder
            .compression(Compression::None)
            .create_to(&mut object, &env.keys, AUTH)
            .unwrap();
        writer.write_all(export).unwrap();
        previous = Some(writer.finish().unwrap().backup_id());
        object.finish().unwrap();
    }
    let inputs = [env.input("orders/logical.0"), env.input("orders/logical.1")];
    let config = RestoreConfig::from_inputs(inputs, env.out("logical"));
    let report = restore(&config, &env.keys, AUTH).unwrap();
    for (path, export) in report.exports.iter().zip(&exports) {
        assert!(fs::read(path).unwrap() == *export);
    }
    env.verify(&["orders/logical.0", "orders/logical.1"])
        .unwrap();
}

/// `RestoreReader`'s random access over an object: seeks start new ranged GETs.
fn restore_reader_seeks(env: &Env) {
    let key = DataKey::generate().unwrap();
    // Longer than one GET (16 MiB): reading it whole takes two.
    let data = common::noise(20 << 20, 9);
    let url = env.url("stream/seek");
    let mut writer = BackupWriter::new(
        ObjectWriter::create_with(&url, env.options()).unwrap(),
        &key,
    )
    .unwrap();
    writer.write_all(&data).unwrap();
    writer.finish().unwrap().finish().unwrap();

    let object = ObjectReader::open(&url).unwrap();
    assert!(object.len() > data.len() as u64);
    let mut reader = RestoreReader::new(object, &key).unwrap();
    for at in [7_000_000u64, 10, 11_000_000, 0] {
        reader.seek(SeekFrom::Start(at)).unwrap();
        let mut got = vec![0; 5000];
        reader.read_exact(&mut got).unwrap();
        assert!(got[..] == data[at as usize..at as usize + 5000], "at {at}");
    }
    let mut rest = Vec::new();
    reader.seek(SeekFrom::Start(9_000_000)).unwrap();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest[..] == data[9_000_000..]);

    let mut whole = Vec::new();
    let mut object = ObjectReader::open(&url).unwrap();
    object.read_to_end(&mut whole).unwrap();
    assert!(whole == env.download("stream/seek"));
}

/// An existing object is refused when the writer is created, and when another writer
/// completed it first (a conditional put for a small object, a check before completing a
/// multipart one); no unfinished upload is left.
fn existing_objects_are_kept(env: &Env) {
    for (key, len) in [("exists/small", 1000), ("exists/multipart", MULTIPART_LEN)] {
        let url = env.url(key);
        let content = common::noise(len, 11);
        let mut first = ObjectWriter::create_with(&url, env.options()).unwrap();
        let mut second = ObjectWriter::create_with(&url, env.options()).unwrap();
        first.write_all(&content).unwrap();
        second.write_all(&common::noise(len, 12)).unwrap();
        first.finish().unwrap();
        let err = env.noted(second.finish().unwrap_err());
        assert!(
            matches!(err, ObjectError::AlreadyExists { .. }),
            "{key}: {err}"
        );
        let err = env.noted(ObjectWriter::create(&url).unwrap_err());
        assert!(
            matches!(err, ObjectError::AlreadyExists { .. }),
            "{key}: {err}"
        );
        assert!(err.to_string().contains(&url.to_string()));
        assert!(env.download(key) == content, "{key} replaced");
    }
    assert_eq!(env.unfinished_uploads(), 0);
}

/// A writer dropped unfinished, mid-upload, leaves no object and no unfinished upload.
fn dropped_writer_aborts(env: &Env) {
    let mut writer = ObjectWriter::create_with(&env.url("dropped"), env.options()).unwrap();
    writer.write_all(&common::noise(MULTIPART_LEN, 13)).unwrap();
    drop(writer);
    assert!(!env.exists("dropped"));
    assert_eq!(env.unfinished_uploads(), 0);
}

/// `abort_running_uploads` aborts an upload another part of the process is writing; the
/// writer's next call fails, even a writer never dropped (a process exiting) leaves nothing
/// behind, and no upload starts afterwards. Last: uploads stay refused in this process.
fn abort_running_uploads(env: &Env) {
    let url = env.url("aborted");
    let mut writer = ObjectWriter::create_with(&url, env.options()).unwrap();
    let mut later = ObjectWriter::create_with(&env.url("later"), env.options()).unwrap();
    writer.write_all(&common::noise(MULTIPART_LEN, 14)).unwrap();
    ObjectWriter::abort_running_uploads();
    assert_eq!(env.unfinished_uploads(), 0);
    let err = env.noted(writer.write_all(&common::noise(2 * PART, 15)).unwrap_err());
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<ObjectError>());
    assert!(
        matches!(inner, Some(ObjectError::Cancelled { .. })),
        "{err}"
    );
    std::mem::forget(writer);
    assert!(!env.exists("aborted"));

    let err = env.noted(
        later
            .write_all(&common::noise(MULTIPART_LEN, 16))
            .unwrap_err(),
    );
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<ObjectError>());
    assert!(
        matches!(inner, Some(ObjectError::Cancelled { .. })),
        "{err}"
    );
    let mut small = ObjectWriter::create(&env.url("small-later")).unwrap();
    small.write_all(b"too late").unwrap();
    let err = env.noted(small.finish().unwrap_err());
    assert!(matches!(err, ObjectError::Cancelled { .. }), "{err}");
    assert!(!env.exists("later") && !env.exists("small-later"));
    assert_eq!(env.unfinished_uploads(), 0);
}

/// An object with one byte changed, or cut short, on the server is refused.
fn tampered_objects_are_refused(env: &Env) {
    let mut bytes = env.download("orders/snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    env.upload("bad/flipped", &bytes);
    let err = env.noted(env.verify(&["bad/flipped"]).unwrap_err());
    assert!(matches!(err, BackupError::Tampered { .. }), "{err}");

    bytes[middle] ^= 1;
    bytes.truncate(bytes.len() - 1000);
    env.upload("bad/cut", &bytes);
    let err = env.noted(env.verify(&["bad/cut"]).unwrap_err());
    assert!(matches!(err, BackupError::Truncated { .. }), "{err}");
}

/// A missing object: `NotFound`, naming it.
fn missing_objects(env: &Env) {
    let url = env.url("missing/object");
    let err = env.noted(ObjectReader::open(&url).unwrap_err());
    assert!(matches!(err, ObjectError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("s3://strongbox-test/missing/object")
    );
    assert!(list(&env.url("missing")).unwrap().is_empty());
}

/// 503 answered to the first requests: retried, then the upload and the read succeed.
fn transient_errors_are_retried(env: &Env) {
    let url = env.url("retried");
    env.proxy.set(Fault::First {
        status: 503,
        left: 3,
    });
    let mut writer = ObjectWriter::create(&url).unwrap();
    writer.write_all(b"after three 503s").unwrap();
    writer.finish().unwrap();
    assert_eq!(env.proxy.injected(), 3);

    env.proxy.set(Fault::First {
        status: 503,
        left: 2,
    });
    let mut read = Vec::new();
    ObjectReader::open(&url)
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert_eq!(read, b"after three 503s");
    assert_eq!(env.proxy.injected(), 2);
    env.proxy.set(Fault::None);
}

/// 500 answered to every UploadPart: after the retries, an error naming the object, and no
/// object or unfinished upload left.
fn failing_parts_abort(env: &Env) {
    let url = env.url("failing");
    env.proxy.set(Fault::UploadParts { status: 500 });
    let options = env.options().retries(2, std::time::Duration::from_secs(60));
    let mut writer = ObjectWriter::create_with(&url, options).unwrap();
    let err = match writer.write_all(&common::noise(MULTIPART_LEN, 16)) {
        Err(e) => ObjectError::clone(e.get_ref().unwrap().downcast_ref().unwrap()),
        Ok(()) => writer.finish().unwrap_err(),
    };
    let err = env.noted(err);
    assert!(matches!(err, ObjectError::Store { .. }), "{err}");
    assert!(
        err.to_string().contains("s3://strongbox-test/failing"),
        "{err}"
    );
    assert!(
        env.proxy.injected() >= 3,
        "{} injected",
        env.proxy.injected()
    );
    env.proxy.set(Fault::None);
    assert!(!env.exists("failing"));
    assert_eq!(env.unfinished_uploads(), 0);
}

/// Wrong credentials (a moto that checks them): `Denied`, a clear message.
fn wrong_credentials_are_denied(env: &Env, checking: &Moto) {
    env.proxy.upstream(checking.port);
    let url = env.url("denied");
    let err = env.noted(ObjectReader::open(&url).unwrap_err());
    assert!(matches!(err, ObjectError::Denied { .. }), "{err}");
    let err = env.noted(ObjectWriter::create(&url).unwrap_err());
    assert!(matches!(err, ObjectError::Denied { .. }), "{err}");
    assert!(err.to_string().contains("credentials"), "{err}");
    env.proxy.upstream(env.moto.port);
}

/// The same writer and reader on `file://` URLs: a multipart file appears only complete, is
/// never replaced, and a dropped writer leaves nothing in the directory.
fn local_files(env: &Env) {
    let dir = env.tmp.path().join("objects");
    fs::create_dir(&dir).unwrap();
    let prefix = ObjectUrl::parse(&format!("file://{}", dir.display())).unwrap();
    let content = common::noise(MULTIPART_LEN, 17);
    let url = prefix.join("whole").unwrap();
    let mut writer = ObjectWriter::create_with(&url, env.options()).unwrap();
    writer.write_all(&content).unwrap();
    assert!(!dir.join("whole").exists());
    writer.finish().unwrap();
    assert!(fs::read(dir.join("whole")).unwrap() == content);
    let mut read = Vec::new();
    ObjectReader::open(&url)
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert!(read == content);
    let err = env.noted(ObjectWriter::create(&url).unwrap_err());
    assert!(matches!(err, ObjectError::AlreadyExists { .. }), "{err}");

    let mut dropped =
        ObjectWriter::create_with(&prefix.join("dropped").unwrap(), env.options()).unwrap();
    dropped.write_all(&content).unwrap();
    drop(dropped);
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["whole"]);
    let listed = list(&prefix).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0].url, listed[0].size),
        (&url, content.len() as u64)
    );
}

/// Called from inside a tokio runtime (a current-thread one, in `block_on`), the blocking API
/// works instead of panicking.
fn inside_a_runtime(env: &Env) {
    let dir = env.tmp.path().join("from-tokio");
    fs::create_dir(&dir).unwrap();
    let url = ObjectUrl::parse(&format!("file://{}/object", dir.display())).unwrap();
    let content = common::noise(MULTIPART_LEN, 18);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let read = runtime.block_on(async {
        let mut writer = ObjectWriter::create_with(&url, env.options()).unwrap();
        writer.write_all(&content).unwrap();
        writer.finish().unwrap();
        let mut read = Vec::new();
        ObjectReader::open(&url)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        read
    });
    assert!(read == content);
}

#[test]
fn object_store_s3() {
    // Before any other thread exists: the proxy's port, a moto that checks credentials (from
    // the environment it inherits), the plain moto, and object_store's environment.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // SAFETY: no other thread exists yet (this binary's only test, before any is started).
    unsafe { std::env::set_var("INITIAL_NO_AUTH_ACTION_COUNT", "0") };
    let Some(checking) = Moto::start("object_store_s3") else {
        return;
    };
    // SAFETY: as above.
    unsafe { std::env::remove_var("INITIAL_NO_AUTH_ACTION_COUNT") };
    let moto = Moto::start("object_store_s3").unwrap();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", REGION),
        ("AWS_ALLOW_HTTP", "true"),
    ] {
        // SAFETY: as above.
        unsafe { std::env::set_var(name, value) };
    }
    let proxy = Proxy::start(listener);
    proxy.upstream(moto.port);
    let env = fixture(moto, proxy);
    env.s3("s3.create_bucket(Bucket=B)", &[]);

    snapshot_round_trip(&env);
    logical_chain(&env);
    restore_reader_seeks(&env);
    existing_objects_are_kept(&env);
    dropped_writer_aborts(&env);
    tampered_objects_are_refused(&env);
    missing_objects(&env);
    transient_errors_are_retried(&env);
    failing_parts_abort(&env);
    wrong_credentials_are_denied(&env, &checking);
    local_files(&env);
    inside_a_runtime(&env);
    abort_running_uploads(&env);

    let errors = env.errors.lock().unwrap();
    assert!(errors.len() >= 10);
    for text in errors.iter() {
        assert!(!text.contains(SECRET_KEY), "{text}");
    }
}

fn fixture(moto: Moto, proxy: Proxy) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let keys = MasterKeys::new(Arc::new(common::InMemory::new(1)));
    let db = tmp.path().join("orders");
    fs::create_dir_all(db.join("data")).unwrap();
    fs::write(db.join("data/0001.db"), common::noise(MULTIPART_LEN, 1)).unwrap();
    fs::write(db.join("data/leaf"), b"leaf").unwrap();
    DatabaseKeyStore::new(Arc::clone(keys.current()))
        .create(&db)
        .unwrap();
    fs::create_dir(tmp.path().join("out")).unwrap();
    Env {
        moto,
        proxy,
        tmp,
        keys,
        db,
        errors: Mutex::new(Vec::new()),
    }
}
