//! Every kind of backup through `strongbox::object` on each local store: S3 (`moto_server`),
//! Azure Blob (Azurite) and Google Cloud Storage (fake-gcs-server), checked on the store's
//! side by downloading the object with the store's own client (`servers/store_client.py`)
//! and restoring or decrypting the downloaded file; then the faults each server allows.
//!
//! fake-gcs-server answers 400 to both requests `object_store` writes a GCS object with (the
//! XML API's PUT and multipart upload): on GCS the backups are uploaded with the
//! google-cloud-storage client, and every read path (restore, verify, inspect, seeks, list)
//! goes through `gs://` URLs.
//!
//! One test runs every scenario in turn: `object_store` reads endpoints and credentials from
//! the environment, which is set once, before any other thread exists. S3 is reached through a
//! proxy (`object_s3/proxy.rs`), so that a scenario can send its requests to another server:
//! one that checks credentials, one that answers 503, or one killed mid-upload. A wrong Azure
//! key is tried in a child process (this binary again) whose environment holds it.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use strongbox::backup::{
    BackupError, BackupId, BackupInput, BackupKind, Channel, Compression, MasterKeys,
    RestoreConfig, VerifyConfig, inspect, inspect_reader, restore, verify,
};
use strongbox::object::{ObjectError, ObjectReader, ObjectUrl, ObjectWriter, UploadOptions, list};
use strongbox::{
    BackupWriter, DataKey, DatabaseKeyStore, LogicalBackup, RestoreReader, SnapshotBackup,
};

mod common;
#[allow(dead_code)]
#[path = "../examples/backup_to_object_store.rs"]
mod example;
#[allow(dead_code)] // `Fault::UploadParts` serves tests/object_s3.rs
#[path = "object_s3/proxy.rs"]
mod proxy;
mod servers;

use common::{noise, tree};
use proxy::{Fault, Proxy};
use servers::azurite::{ACCOUNT_KEY, Azurite};
use servers::gcs::FakeGcs;
use servers::moto::{ACCESS_KEY, Moto, REGION, SECRET_KEY};
use servers::store_client::StoreClient;

const AUTH: Channel = Channel::Authenticated;
const BUCKET: &str = "strongbox-stores";
/// The smallest part S3 accepts; a database file of 11 MiB makes a backup of three parts.
const PART: usize = 5 << 20;
const MULTIPART_LEN: usize = 11 << 20;
/// A key Azurite's development account does not have.
const OTHER_AZURE_KEY: &str =
    "c3Ryb25nYm94IHRlc3RzOiBhIGtleSB0aGUgZGV2ZWxvcG1lbnQgYWNjb3VudCBkb2VzIG5vdCBoYXZlLi4hIQ==";

/// One store under test.
struct Store {
    /// `s3`, `az` or `gs`.
    scheme: &'static str,
    /// Its own client library.
    client: StoreClient,
    /// Whether `object_store` can write to its server (not fake-gcs-server).
    writable: bool,
    /// The proxy `object_store` reaches the store through, with the port of the server it
    /// normally forwards to, and a server that checks credentials (one the usual ones fail).
    proxy: Option<(Proxy, u16, u16)>,
}

/// What every scenario shares.
struct Fixture {
    tmp: tempfile::TempDir,
    keys: MasterKeys,
    db: PathBuf,
    /// The text (`Display` and `Debug`) of every error met, checked for secrets at the end.
    errors: Mutex<Vec<String>>,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let keys = MasterKeys::new(Arc::new(common::InMemory::new(3)));
        let db = tmp.path().join("orders");
        fs::create_dir_all(db.join("data")).unwrap();
        fs::write(db.join("data/0001.db"), noise(MULTIPART_LEN, 1)).unwrap();
        fs::write(db.join("data/leaf"), b"leaf").unwrap();
        DatabaseKeyStore::new(Arc::clone(keys.current()))
            .create(&db)
            .unwrap();
        Self {
            tmp,
            keys,
            db,
            errors: Mutex::new(Vec::new()),
        }
    }

    /// A fresh path under the fixture's folder.
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Notes an error's text for the final secret check, and returns it.
    fn noted<E: std::fmt::Display + std::fmt::Debug>(&self, err: E) -> E {
        self.errors.lock().unwrap().push(format!("{err} {err:?}"));
        err
    }
}

fn options() -> UploadOptions {
    UploadOptions::default().part_size(PART).parts_in_flight(2)
}

impl Store {
    fn url(&self, key: &str) -> ObjectUrl {
        ObjectUrl::parse(&format!("{}://{BUCKET}/{key}", self.scheme)).unwrap()
    }

    /// Writes the object `key` with `body`: through an `ObjectWriter` where `object_store`
    /// can write, else into memory and then up with the store's own client.
    fn write<T>(&self, key: &str, body: impl FnOnce(&mut dyn Write) -> T) -> T {
        if self.writable {
            let mut object = ObjectWriter::create_with(&self.url(key), options()).unwrap();
            let out = body(&mut object);
            object.finish().unwrap();
            out
        } else {
            let mut bytes = Vec::new();
            let out = body(&mut bytes);
            self.client.put(BUCKET, key, &bytes);
            out
        }
    }

    /// The object `key` downloaded by the store's own client into a local file.
    fn download(&self, fx: &Fixture, key: &str) -> PathBuf {
        let file = fx.path(&format!("{}-{}", self.scheme, key.replace('/', "-")));
        fs::write(&file, self.client.get(BUCKET, key)).unwrap();
        file
    }

    fn input(&self, key: &str) -> BackupInput {
        BackupInput::object(&self.url(key)).unwrap()
    }

    fn verify(&self, fx: &Fixture, keys: &[&str]) -> Result<(), BackupError> {
        let config = VerifyConfig::from_inputs(keys.iter().map(|k| self.input(k)));
        verify(&config, &fx.keys, AUTH).map(drop)
    }

    /// The keys of the objects under `prefix`, as the store's own client lists them.
    fn listed(&self, prefix: &str) -> Vec<String> {
        let listed = self.client.list(BUCKET, prefix);
        listed.into_iter().map(|(key, _)| key).collect()
    }
}

/// A snapshot of three parts: the object downloaded by the store's client restores to the
/// database; restored, verified, inspected and listed through the URL too.
fn snapshot(store: &Store, fx: &Fixture) {
    let key = "orders/snapshot";
    store.write(key, |out| {
        SnapshotBackup::of_directory(&fx.db)
            .write_to(out, &fx.keys, AUTH)
            .unwrap()
    });
    let file = store.download(fx, key);
    let len = fs::metadata(&file).unwrap().len();
    assert!(len > 2 * PART as u64, "{}: {len} bytes", store.scheme);
    let target = fx.path(&format!("{}-snapshot-file", store.scheme));
    let config = RestoreConfig::from_inputs([BackupInput::path(&file)], &target);
    restore(&config, &fx.keys, AUTH).unwrap();
    assert!(tree(&target) == tree(&fx.db), "{}", store.scheme);

    let target = fx.path(&format!("{}-snapshot-url", store.scheme));
    restore(
        &RestoreConfig::from_inputs([store.input(key)], &target),
        &fx.keys,
        AUTH,
    )
    .unwrap();
    assert!(tree(&target) == tree(&fx.db), "{}", store.scheme);
    store.verify(fx, &[key]).unwrap();
    let url = store.url(key);
    let info = inspect_reader(url.to_string(), ObjectReader::open(&url).unwrap()).unwrap();
    assert_eq!(info.manifest().kind(), BackupKind::Snapshot);
    assert_eq!(info.manifest(), inspect(&file).unwrap().manifest());
    let entries = list(&store.url("orders")).unwrap();
    let found = entries.iter().find(|e| e.url == url).expect("listed");
    assert_eq!(found.size, len);
}

/// A logical full backup (one small object) and an incremental of three parts, restored as a
/// chain from the downloaded files and from the URLs.
fn logical_chain(store: &Store, fx: &Fixture) {
    let exports = [b"the full export".to_vec(), noise(MULTIPART_LEN, 7)];
    let keys = ["orders/logical.0", "orders/logical.1"];
    let mut previous: Option<BackupId> = None;
    for (export, key) in exports.iter().zip(keys) {
        let builder = match previous {
            None => LogicalBackup::full(&fx.db),
            Some(p) => LogicalBackup::incremental(&fx.db, p),
        };
        previous = Some(store.write(key, |out| {
            let builder = builder.compression(Compression::None);
            let mut writer = builder.create_to(out, &fx.keys, AUTH).unwrap();
            writer.write_all(export).unwrap();
            writer.finish().unwrap().backup_id()
        }));
    }
    let files = keys.map(|key| BackupInput::path(store.download(fx, key)));
    let from_files = fx.path(&format!("{}-logical-files", store.scheme));
    let from_urls = fx.path(&format!("{}-logical-urls", store.scheme));
    let urls = keys.map(|key| store.input(key));
    for (inputs, target) in [(files, &from_files), (urls, &from_urls)] {
        let report = restore(&RestoreConfig::from_inputs(inputs, target), &fx.keys, AUTH).unwrap();
        assert_eq!(report.exports.len(), 2);
        for (path, export) in report.exports.iter().zip(&exports) {
            assert!(fs::read(path).unwrap() == *export, "{}", store.scheme);
        }
    }
    store.verify(fx, &keys).unwrap();
}

/// A plain stream (`BackupWriter` into the object) of more than one 16 MiB GET: the
/// downloaded file decrypts to the data, and `RestoreReader` seeks over the URL.
fn plain_stream(store: &Store, fx: &Fixture) {
    let key = DataKey::generate().unwrap();
    let data = noise(20 << 20, 9);
    store.write("stream/plain", |out| {
        let mut writer = BackupWriter::new(out, &key).unwrap();
        writer.write_all(&data).unwrap();
        writer.finish().unwrap();
    });
    let file = store.download(fx, "stream/plain");
    let mut decrypted = Vec::new();
    let mut reader = RestoreReader::new(fs::File::open(&file).unwrap(), &key).unwrap();
    reader.read_to_end(&mut decrypted).unwrap();
    assert!(decrypted == data, "{}", store.scheme);

    let object = ObjectReader::open(&store.url("stream/plain")).unwrap();
    let mut reader = RestoreReader::new(object, &key).unwrap();
    for at in [7_000_000usize, 10, 18_000_000, 0] {
        reader.seek(SeekFrom::Start(at as u64)).unwrap();
        let mut got = vec![0; 5000];
        reader.read_exact(&mut got).unwrap();
        assert!(got[..] == data[at..at + 5000], "{} at {at}", store.scheme);
    }
    let mut rest = Vec::new();
    reader.seek(SeekFrom::Start(9_000_000)).unwrap();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest[..] == data[9_000_000..], "{}", store.scheme);
}

/// The snapshot with one byte flipped, then cut short, by the store's client (download,
/// change, upload): refused as tampered, then as truncated.
fn damaged_objects_are_refused(store: &Store, fx: &Fixture) {
    let bytes = store.client.get(BUCKET, "orders/snapshot");
    store.client.put(BUCKET, "bad/flipped", &bytes);
    store
        .client
        .flip_byte(BUCKET, "bad/flipped", bytes.len() / 2);
    let err = fx.noted(store.verify(fx, &["bad/flipped"]).unwrap_err());
    assert!(
        matches!(err, BackupError::Tampered { .. }),
        "{}: {err}",
        store.scheme
    );

    store.client.put(BUCKET, "bad/cut", &bytes);
    store.client.truncate(BUCKET, "bad/cut", bytes.len() - 1000);
    let err = fx.noted(store.verify(fx, &["bad/cut"]).unwrap_err());
    assert!(
        matches!(err, BackupError::Truncated { .. }),
        "{}: {err}",
        store.scheme
    );
}

/// An existing object is refused when a writer is created for it.
fn existing_objects_are_refused(store: &Store, fx: &Fixture) {
    let url = store.url("orders/snapshot");
    let before = store.client.get(BUCKET, "orders/snapshot");
    let err = fx.noted(ObjectWriter::create(&url).unwrap_err());
    assert!(matches!(err, ObjectError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains(&url.to_string()), "{err}");
    assert!(store.client.get(BUCKET, "orders/snapshot") == before);
}

/// Two writers of one new object: the second to finish is refused and the first one's bytes
/// stay (a conditional put for a small object, a check before completing a multipart one).
fn second_writer_is_refused(store: &Store, fx: &Fixture) {
    for (key, len) in [("race/small", 1000), ("race/multipart", MULTIPART_LEN)] {
        let url = store.url(key);
        let content = noise(len, 11);
        let mut first = ObjectWriter::create_with(&url, options()).unwrap();
        let mut second = ObjectWriter::create_with(&url, options()).unwrap();
        first.write_all(&content).unwrap();
        second.write_all(&noise(len, 12)).unwrap();
        first.finish().unwrap();
        let err = fx.noted(second.finish().unwrap_err());
        assert!(
            matches!(err, ObjectError::AlreadyExists { .. }),
            "{key}: {err}"
        );
        assert!(
            store.client.get(BUCKET, key) == content,
            "{}: {key} replaced",
            store.scheme
        );
    }
}

/// A writer dropped after three parts leaves no object; `unfinished` is what the store's
/// client then lists as unfinished uploads.
fn dropped_writer_leaves_no_object(store: &Store, unfinished: &[&str]) {
    let mut writer = ObjectWriter::create_with(&store.url("dropped"), options()).unwrap();
    writer.write_all(&noise(MULTIPART_LEN, 13)).unwrap();
    drop(writer);
    assert_eq!(
        store.listed("dropped"),
        Vec::<String>::new(),
        "{}",
        store.scheme
    );
    assert_eq!(
        store.client.list_uploads(BUCKET),
        unfinished,
        "{}",
        store.scheme
    );
}

/// Requests sent to a server that refuses the credentials: `Denied`, naming the object.
fn wrong_credentials_are_denied(store: &Store, fx: &Fixture) {
    let (proxy, usual, checking) = store.proxy.as_ref().unwrap();
    proxy.upstream(*checking);
    let url = store.url("orders/snapshot");
    let err = fx.noted(ObjectReader::open(&url).unwrap_err());
    assert!(
        matches!(err, ObjectError::Denied { .. }),
        "{}: {err}",
        store.scheme
    );
    let err = fx.noted(ObjectWriter::create(&store.url("denied")).unwrap_err());
    assert!(
        matches!(err, ObjectError::Denied { .. }),
        "{}: {err}",
        store.scheme
    );
    let text = err.to_string();
    assert!(text.contains("credentials") && text.contains(&store.url("denied").to_string()));
    let err = fx.noted(list(&store.url("orders")).unwrap_err());
    assert!(
        matches!(err, ObjectError::Denied { .. }),
        "{}: {err}",
        store.scheme
    );
    proxy.upstream(*usual);
}

/// 503 answered to the first requests of a small upload and of a read: retried, both succeed.
fn transient_errors_are_retried(store: &Store) {
    let (proxy, _, _) = store.proxy.as_ref().unwrap();
    let url = store.url("retried");
    proxy.set(Fault::First {
        status: 503,
        left: 3,
    });
    let mut writer = ObjectWriter::create(&url).unwrap();
    writer.write_all(b"after three 503s").unwrap();
    writer.finish().unwrap();
    assert_eq!(proxy.injected(), 3, "{}", store.scheme);
    proxy.set(Fault::First {
        status: 503,
        left: 2,
    });
    let mut read = Vec::new();
    let mut reader = ObjectReader::open(&url).unwrap();
    reader.read_to_end(&mut read).unwrap();
    assert_eq!(read, b"after three 503s");
    assert_eq!(proxy.injected(), 2, "{}", store.scheme);
    proxy.set(Fault::None);
}

/// The example program, run with this process's environment, writes its backup below a
/// prefix; the store's client finds it there and it is a snapshot.
fn example_runs(store: &Store, fx: &Fixture) {
    let url = example::run(&store.url("example")).unwrap();
    let key = url.key().to_string();
    assert_eq!(store.listed("example/"), [key.as_str()], "{}", store.scheme);
    let info = inspect(store.download(fx, &key)).unwrap();
    assert_eq!(info.manifest().kind(), BackupKind::Snapshot);
}

/// Round trips, damage, an existing object, the example.
fn round_trips(store: &Store, fx: &Fixture) {
    store.client.make_bucket(BUCKET);
    snapshot(store, fx);
    logical_chain(store, fx);
    plain_stream(store, fx);
    damaged_objects_are_refused(store, fx);
    existing_objects_are_refused(store, fx);
    if store.writable {
        example_runs(store, fx);
    }
}

/// S3 on moto: everything, then moto killed while parts of an upload are in flight.
fn s3(store: &Store, fx: &Fixture) {
    round_trips(store, fx);
    second_writer_is_refused(store, fx);
    dropped_writer_leaves_no_object(store, &[]);
    transient_errors_are_retried(store);
    wrong_credentials_are_denied(store, fx);
    server_killed_mid_upload(store, fx);
}

/// Azure on Azurite. `object_store` cannot delete the blocks of an unfinished Azure upload
/// (Azure has no such request): an aborted upload leaves no blob, and its uncommitted blocks,
/// which Azure deletes after a week.
fn azure(store: &Store, fx: &Fixture) {
    round_trips(store, fx);
    second_writer_is_refused(store, fx);
    // The blocks of the dropped writer, and the last block of the refused second writer
    // (staged after the first writer committed the blob).
    dropped_writer_leaves_no_object(store, &["dropped", "race/multipart"]);
    wrong_azure_key_is_denied();
}

/// Set in the environment of the child process [`azure_with_a_wrong_key`] runs in.
const WRONG_KEY_CHILD: &str = "STRONGBOX_TEST_AZURE_WRONG_KEY";

/// This test binary run again, only [`azure_with_a_wrong_key`], with another account key than
/// the one Azurite has: every request is refused.
fn wrong_azure_key_is_denied() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "azure_with_a_wrong_key",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("AZURE_STORAGE_ACCOUNT_KEY", OTHER_AZURE_KEY)
        .env(WRONG_KEY_CHILD, "1")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(stderr.contains("denied"), "{stderr}");
}

/// With a wrong Azure account key (in a child process of `object_stores`): reading, writing
/// and listing are `Denied`, naming the object and showing neither key.
#[test]
#[ignore = "run by `object_stores`, in a process whose Azure account key is wrong"]
fn azure_with_a_wrong_key() {
    if std::env::var_os(WRONG_KEY_CHILD).is_none() {
        return;
    }
    let url = |key: &str| ObjectUrl::parse(&format!("az://{BUCKET}/{key}")).unwrap();
    let errors = [
        ObjectReader::open(&url("orders/snapshot")).unwrap_err(),
        ObjectWriter::create(&url("denied")).unwrap_err(),
        list(&url("orders")).unwrap_err(),
    ];
    for (err, key) in errors.iter().zip(["orders/snapshot", "denied", "orders"]) {
        let text = format!("{err} {err:?}");
        eprintln!("{err}");
        assert!(matches!(err, ObjectError::Denied { .. }), "{text}");
        assert!(err.to_string().contains(&url(key).to_string()), "{text}");
        assert!(
            !text.contains(OTHER_AZURE_KEY) && !text.contains(ACCOUNT_KEY),
            "{text}"
        );
    }
}

/// GCS on fake-gcs-server: every read through `gs://`; a write fails (the server answers 400
/// to `object_store`'s uploads), naming the object, and leaves nothing.
fn gcs(store: &Store, fx: &Fixture) {
    round_trips(store, fx);
    for len in [1000, MULTIPART_LEN] {
        let url = store.url("unwritable");
        let mut writer = ObjectWriter::create_with(&url, options()).unwrap();
        let err = match writer.write_all(&noise(len, 14)) {
            Err(e) => ObjectError::clone(e.get_ref().unwrap().downcast_ref().unwrap()),
            Ok(()) => writer.finish().unwrap_err(),
        };
        let err = fx.noted(err);
        assert!(err.to_string().contains(&url.to_string()), "{err}");
        assert_eq!(store.listed("unwritable"), Vec::<String>::new());
    }
}

/// moto killed while parts are in flight: the writer fails within its retries, naming the
/// object, and nothing is written locally. (With an in-memory moto, a restarted server is
/// empty whatever the writer did: what the store keeps after a crash is not observable here;
/// `dropped_writer_leaves_no_object` checks the abort on a live server.)
fn server_killed_mid_upload(store: &Store, fx: &Fixture) {
    let (proxy, usual, _) = store.proxy.as_ref().unwrap();
    let Some(mut victim) = Moto::start("object_stores") else {
        return;
    };
    victim.s3_client().make_bucket(BUCKET);
    proxy.upstream(victim.port);
    let url = store.url("killed");
    let quick = options().retries(2, std::time::Duration::from_secs(10));
    let local_before = fs::read_dir(fx.tmp.path()).unwrap().count();
    let mut writer = ObjectWriter::create_with(&url, quick).unwrap();
    writer.write_all(&noise(3 * PART + 1, 15)).unwrap();
    victim.stop();
    let started = Instant::now();
    let err = match writer.write_all(&noise(3 * PART, 16)) {
        Err(e) => ObjectError::clone(e.get_ref().unwrap().downcast_ref().unwrap()),
        Ok(()) => writer.finish().unwrap_err(),
    };
    let err = fx.noted(err);
    eprintln!(
        "killed server: {:.1} s to `{err}`",
        started.elapsed().as_secs_f64()
    );
    assert!(matches!(err, ObjectError::Store { .. }), "{err}");
    assert!(err.to_string().contains(&url.to_string()), "{err}");
    assert_eq!(fs::read_dir(fx.tmp.path()).unwrap().count(), local_before);
    proxy.upstream(*usual);
    assert_eq!(store.listed("killed"), Vec::<String>::new());
}

/// Sets `name` to `value` in this process's environment.
fn set_env(name: &str, value: &str) {
    // SAFETY: called from the test's only thread before any other thread starts (this
    // binary's only test; the proxies and the object store's runtime start afterwards).
    unsafe { std::env::set_var(name, value) };
}

fn remove_env(name: &str) {
    // SAFETY: as for `set_env`.
    unsafe { std::env::remove_var(name) };
}

/// A listener for a proxy, and its `http://127.0.0.1:PORT`.
fn proxy_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

/// A moto that accepts any credentials, one that checks them (it knows none), and the S3
/// environment pointing at a proxy to the first.
fn start_s3() -> Option<(Moto, Moto, TcpListener)> {
    set_env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
    let checking = Moto::start("object_stores");
    remove_env("INITIAL_NO_AUTH_ACTION_COUNT");
    let checking = checking?;
    let moto = Moto::start("object_stores").unwrap();
    let (listener, endpoint) = proxy_listener();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", REGION),
        ("AWS_ALLOW_HTTP", "true"),
    ] {
        set_env(name, value);
    }
    Some((moto, checking, listener))
}

/// An Azurite, and the Azure environment pointing at it.
fn start_azure() -> Option<Azurite> {
    let azurite = Azurite::start("object_stores")?;
    for (name, value) in azurite.azure_env() {
        set_env(name, &value);
    }
    Some(azurite)
}

/// A proxy on `listener` to `usual`, with `checking` to switch to.
fn proxy_to(listener: TcpListener, usual: u16, checking: u16) -> Option<(Proxy, u16, u16)> {
    let proxy = Proxy::start(listener);
    proxy.upstream(usual);
    Some((proxy, usual, checking))
}

#[test]
fn object_stores() {
    // Every server and every variable before any other thread exists.
    let s3_servers = start_s3();
    let azure_server = start_azure();
    let gcs_server = FakeGcs::start("object_stores");
    if let Some(server) = &gcs_server {
        for (name, value) in server.gcs_env() {
            set_env(name, &value);
        }
    }
    let fx = Fixture::new();
    if let Some((moto, checking, listener)) = s3_servers {
        let proxy = proxy_to(listener, moto.port, checking.port);
        let (client, scheme) = (moto.s3_client(), "s3");
        s3(
            &Store {
                scheme,
                client,
                writable: true,
                proxy,
            },
            &fx,
        );
    }
    if let Some(azurite) = azure_server {
        let (client, scheme, proxy) = (azurite.client(), "az", None);
        azure(
            &Store {
                scheme,
                client,
                writable: true,
                proxy,
            },
            &fx,
        );
    }
    if let Some(server) = gcs_server {
        let (client, scheme) = (server.client(), "gs");
        gcs(
            &Store {
                scheme,
                client,
                writable: false,
                proxy: None,
            },
            &fx,
        );
    }
    let errors = fx.errors.lock().unwrap();
    for text in errors.iter() {
        assert!(
            !text.contains(SECRET_KEY) && !text.contains(ACCOUNT_KEY),
            "{text}"
        );
    }
}
