//! The `strongbox` tool with object URLs, against a real local S3 (`moto_server`, from
//! `pip install 'moto[server]'`), every object checked or altered with boto3: backups written
//! to `s3://` and read back (snapshot, logical full and incremental, the chain of a prefix),
//! `verify`, `inspect`, `encrypt` / `decrypt`, `backup list`, refusals (an existing object, a
//! tampered one, a fork, a gap), and uploads that fail or are interrupted leaving nothing.
//! Also reads from Google Cloud Storage (fake-gcs-server).

mod cli_support;
mod servers;

use std::path::{Path, PathBuf};

use cli_support::*;
use servers::moto::{Moto, SECRET_KEY};
use servers::store_client::StoreClient;

const BUCKET: &str = "strongbox-cli";

/// A moto server with a bucket, and a scratch directory for the tool.
struct S3 {
    moto: Moto,
    client: StoreClient,
    env: Env,
    /// Every stderr seen, checked for the secret access key at the end.
    stderr: std::cell::RefCell<String>,
}

impl S3 {
    fn start(test: &str) -> Option<Self> {
        let moto = Moto::start(test)?;
        let client = moto.s3_client();
        client.make_bucket(BUCKET);
        Some(Self {
            moto,
            client,
            env: Env::new(),
            stderr: Default::default(),
        })
    }

    fn url(key: &str) -> String {
        format!("s3://{BUCKET}/{key}")
    }

    /// The tool, with the environment that reaches moto.
    fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd();
        cmd.envs(self.moto.s3_env());
        cmd
    }

    /// Runs `args`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).run().success();
        self.keep_stderr(out.get_output());
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    }

    /// Runs `args` (with `--quiet`), which must fail with one `error:` line; that line.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd().arg("--quiet").args(args).run();
        self.keep_stderr(out.get_output());
        assert_failure(out)
    }

    fn keep_stderr(&self, output: &std::process::Output) {
        self.stderr
            .borrow_mut()
            .push_str(&String::from_utf8_lossy(&output.stderr));
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self.client.list(BUCKET, prefix);
        listed.into_iter().map(|(key, _)| key).collect()
    }

    fn path(&self, name: &str) -> String {
        self.env.path(name).to_str().unwrap().to_owned()
    }

    /// A file of `len` pseudo-random bytes; its path.
    fn data_file(&self, name: &str, len: usize, seed: u64) -> String {
        std::fs::write(self.env.path(name), data(len, seed)).unwrap();
        self.path(name)
    }

    /// Checks that no output so far showed the secret access key.
    fn check_no_secret(&self) {
        let seen = self.stderr.borrow();
        assert!(!seen.is_empty());
        assert!(!seen.contains(SECRET_KEY), "{seen}");
    }
}

/// An encrypted database directory with two files.
fn database(s3: &S3) -> PathBuf {
    let (db, _) = s3.env.init_db("db");
    std::fs::write(db.join("data.db"), data(300_000, 1)).unwrap();
    std::fs::write(db.join("log"), b"log line\n").unwrap();
    db
}

fn same_file(a: &Path, b: &Path) {
    assert_eq!(
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        "{a:?}"
    );
}

#[test]
fn snapshot_to_s3_and_back() {
    let Some(s3) = S3::start("snapshot_to_s3_and_back") else {
        return;
    };
    let db = database(&s3);
    let db_arg = db.to_str().unwrap();
    let url = S3::url("db/snap.sbx");
    s3.ok(&["backup", "snapshot", db_arg, "-o", &url]);
    assert_eq!(s3.keys("db/"), ["db/snap.sbx"]);

    let inspected = s3.ok(&["inspect", &url]);
    assert!(
        inspected.contains("kind:           snapshot"),
        "{inspected}"
    );
    let verified = s3.ok(&["verify", &url]);
    assert!(
        verified.contains("OK, snapshot, authenticated by key"),
        "{verified}"
    );
    s3.ok(&["restore", &url, "--to", "restored"]);
    for file in ["data.db", "log"] {
        same_file(&db.join(file), &s3.env.path("restored").join(file));
    }

    // An existing object is never replaced: refused, the object unchanged.
    let before = s3.client.get(BUCKET, "db/snap.sbx");
    let err = s3.fails(&["backup", "snapshot", db_arg, "-o", &url]);
    assert!(err.contains(&format!("{url} already exists")), "{err}");
    assert_eq!(s3.client.get(BUCKET, "db/snap.sbx"), before);

    // A copy with one byte changed, put by boto3, is refused.
    s3.client.flip_byte(BUCKET, "db/snap.sbx", before.len() / 2);
    let err = s3.fails(&["restore", &url, "--to", "tampered"]);
    assert!(
        err.contains("altered or corrupted") && err.contains(&url),
        "{err}"
    );
    assert!(!s3.env.path("tampered").exists());
    let err = s3.fails(&["verify", &url]);
    assert!(err.contains("altered or corrupted"), "{err}");

    let err = s3.fails(&["restore", &S3::url("db/absent.sbx"), "--to", "absent"]);
    assert!(
        err.contains("s3://strongbox-cli/db/absent.sbx does not exist"),
        "{err}"
    );
    let err = s3.fails(&["backup", "rewrap", &url, "--remove-database-key-copy"]);
    assert!(err.contains("download the object"), "{err}");
    s3.check_no_secret();
}

/// A logical full backup and two incrementals under `prefix`, each `--incremental-after` the
/// object before it; the export files.
fn logical_chain(s3: &S3, db: &str, prefix: &str, names: &[&str]) -> Vec<String> {
    let mut exports = Vec::new();
    let mut previous: Option<String> = None;
    for (i, name) in names.iter().enumerate() {
        let export = s3.data_file(
            &format!("{}{i}.export", prefix.replace('/', "-")),
            50_000 + i,
            10 + i as u64,
        );
        let url = S3::url(&format!("{prefix}{name}"));
        let mut args = vec!["backup", "logical", db, &export, "-o", &url];
        if let Some(previous) = &previous {
            args.extend(["--incremental-after", previous]);
        }
        s3.ok(&args);
        exports.push(export);
        previous = Some(url);
    }
    exports
}

#[test]
fn logical_chain_from_a_prefix_and_backup_list() {
    let Some(s3) = S3::start("logical_chain_from_a_prefix_and_backup_list") else {
        return;
    };
    let db = database(&s3);
    let db = db.to_str().unwrap();
    let names = ["0001.full", "0002.incr", "0003.incr"];
    let exports = logical_chain(&s3, db, "db1/", &names);

    let prefix = S3::url("db1/");
    s3.ok(&["restore", &prefix, "--to", "chain"]);
    for (i, export) in exports.iter().enumerate() {
        let kind = if i == 0 { "full" } else { "incremental" };
        let restored = s3
            .env
            .path("chain")
            .join(format!("{i:04}-logical-{kind}.export"));
        same_file(Path::new(export), &restored);
    }
    let verified = s3.ok(&["verify", &prefix]);
    assert_eq!(
        verified.matches("authenticated by key").count(),
        3,
        "{verified}"
    );

    // Not a backup, and a snapshot: listed as such.
    s3.client
        .put(BUCKET, "db1/notes.txt", b"not a backup at all");
    s3.ok(&[
        "backup",
        "snapshot",
        db,
        "-o",
        &S3::url("db1/0000.snapshot"),
    ]);
    let listed = s3.ok(&["backup", "list", &prefix]);
    let line = |name: &str| line_of(&listed, name);
    assert!(
        listed.starts_with(
            "# s3://strongbox-cli/db1: read from each object's header, NOT authenticated"
        ),
        "{listed}"
    );
    assert!(line("0000.snapshot").contains(" snapshot "), "{listed}");
    assert!(line("0001.full").contains(" full "), "{listed}");
    assert!(
        line("0002.incr").contains(" incremental ")
            && line("0002.incr").ends_with("after 0001.full"),
        "{listed}"
    );
    assert!(line("0003.incr").ends_with("after 0002.incr"), "{listed}");
    assert!(
        line("notes.txt").contains(" not-a-backup ") && line("notes.txt").contains(" 19 "),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s3.ok(&["backup", "list", &prefix, "--json"])).unwrap();
    assert_eq!(json["authenticated"], false);
    assert_eq!(json["objects"].as_array().unwrap().len(), 5);
    assert_eq!(json["objects"][2]["previous"], "0001.full");

    // The full backup gone: the first incremental's previous is MISSING; the chain has a gap.
    s3.client.delete(BUCKET, "db1/0001.full");
    let listed = s3.ok(&["backup", "list", &prefix]);
    assert!(
        line_of(&listed, "0002.incr").contains("MISSING: follows backup"),
        "{listed}"
    );
    let err = s3.fails(&["restore", &prefix, "--to", "gone"]);
    assert!(
        err.contains("no full logical backup under s3://strongbox-cli/db1 "),
        "{err}"
    );
    s3.check_no_secret();
}

fn line_of(listing: &str, name: &str) -> String {
    let found = listing.lines().find(|l| l.starts_with(&format!("{name} ")));
    found
        .unwrap_or_else(|| panic!("no {name} in {listing}"))
        .to_owned()
}

#[test]
fn chains_with_a_fork_or_a_gap_are_refused() {
    let Some(s3) = S3::start("chains_with_a_fork_or_a_gap_are_refused") else {
        return;
    };
    let db = database(&s3);
    let db = db.to_str().unwrap();
    logical_chain(&s3, db, "fork/", &["1.full", "2.incr"]);
    let full = S3::url("fork/1.full");
    let export = s3.data_file("other.export", 1000, 99);
    s3.ok(&[
        "backup",
        "logical",
        db,
        &export,
        "--incremental-after",
        &full,
        "-o",
        &S3::url("fork/2b.incr"),
    ]);
    let err = s3.fails(&["restore", &S3::url("fork/"), "--to", "forked"]);
    assert!(
        err.contains("forks: 2.incr, 2b.incr all follow 1.full"),
        "{err}"
    );
    let err = s3.fails(&["verify", &S3::url("fork/")]);
    assert!(err.contains("forks"), "{err}");

    logical_chain(&s3, db, "gap/", &["1.full", "2.incr", "3.incr"]);
    s3.client.delete(BUCKET, "gap/2.incr");
    let err = s3.fails(&["restore", &S3::url("gap/"), "--to", "gapped"]);
    assert!(err.contains("has a gap: 3.incr"), "{err}");
    assert!(!s3.env.path("gapped").exists());
    // Named one by one, the chain is checked by the library as always.
    let err = s3.fails(&[
        "restore",
        &S3::url("gap/1.full"),
        &S3::url("gap/3.incr"),
        "--to",
        "gapped",
    ]);
    assert!(err.contains("gap/3.incr"), "{err}");
    s3.check_no_secret();
}

#[test]
fn encrypt_to_s3_and_decrypt() {
    let Some(s3) = S3::start("encrypt_to_s3_and_decrypt") else {
        return;
    };
    let key = s3.env.key_file("k", KEY_A);
    let key = key.to_str().unwrap();
    let plain = s3.data_file("plain", 200_000, 5);
    let url = S3::url("streams/plain.sbx");
    s3.ok(&["encrypt", "--key-file", key, &plain, "-o", &url]);

    // Downloaded by boto3, decrypted from a local file.
    let local = s3.env.path("downloaded.sbx");
    std::fs::write(&local, s3.client.get(BUCKET, "streams/plain.sbx")).unwrap();
    s3.ok(&[
        "decrypt",
        "--key-file",
        key,
        local.to_str().unwrap(),
        "-o",
        "from-file",
    ]);
    same_file(Path::new(&plain), &s3.env.path("from-file"));
    // Decrypted straight from the object.
    s3.ok(&["decrypt", "--key-file", key, &url, "-o", "from-object"]);
    same_file(Path::new(&plain), &s3.env.path("from-object"));
    let verified = s3.ok(&["verify", "--key-file", key, &url]);
    assert!(
        verified.contains("OK, 200000 bytes of plaintext"),
        "{verified}"
    );
    let inspected = s3.ok(&["inspect", &url]);
    assert!(inspected.contains("raw stream"), "{inspected}");

    let err = s3.fails(&["encrypt", "--key-file", key, &plain, "-o", &url]);
    assert!(err.contains("already exists"), "{err}");
    let err = s3.fails(&[
        "decrypt",
        "--key-file",
        key,
        &url,
        "-o",
        &S3::url("streams/plain"),
    ]);
    assert!(err.contains("never to an object store"), "{err}");
    let err = s3.fails(&[
        "encrypt",
        "--key-file",
        key,
        &plain,
        "-o",
        "s3://strongbox-cli/a?X-Amz-Signature=SIG",
    ]);
    assert!(!err.contains("SIG"), "{err}");

    s3.client.truncate(BUCKET, "streams/plain.sbx", 100_000);
    let err = s3.fails(&["decrypt", "--key-file", key, &url, "-o", "cut"]);
    assert!(err.contains("truncated"), "{err}");
    assert!(!s3.env.path("cut").exists());
    s3.check_no_secret();
}

#[cfg(unix)]
/// The requests of moto's log that touched `key`'s multipart uploads: (started, aborted).
fn multipart_requests(moto: &Moto, key: &str) -> (bool, bool) {
    let log = moto.log();
    let path = format!("/{BUCKET}/{key}?");
    let started = log
        .lines()
        .any(|l| l.contains("POST") && l.contains(&path) && l.contains("uploads"));
    let aborted = log
        .lines()
        .any(|l| l.contains("DELETE") && l.contains(&path) && l.contains("uploadId="));
    (started, aborted)
}

#[cfg(unix)]
#[test]
fn a_failed_upload_leaves_nothing() {
    let Some(s3) = S3::start("a_failed_upload_leaves_nothing") else {
        return;
    };
    // 20 MiB that do not compress, then a symbolic link, which a snapshot refuses: the refusal
    // comes after two 8 MiB parts were sent.
    let db = s3.env.mkdir("big");
    std::fs::write(db.join("a.big"), data(20 << 20, 3)).unwrap();
    std::os::unix::fs::symlink("a.big", db.join("z.link")).unwrap();
    let url = S3::url("big/snap.sbx");
    let err = s3.fails(&[
        "backup",
        "snapshot",
        db.to_str().unwrap(),
        "--encryption",
        "none",
        "-o",
        &url,
    ]);
    assert!(err.contains("z.link"), "{err}");
    assert_eq!(multipart_requests(&s3.moto, "big/snap.sbx"), (true, true));
    assert!(s3.keys("big/").is_empty());
    assert!(s3.client.list_uploads(BUCKET).is_empty());
    s3.check_no_secret();
}

/// Runs the tool with `args`, its input a FIFO (`{fifo}` in `args`) fed more than two 8 MiB
/// parts and kept open; once moto shows the multipart upload, sends `signal`: the tool must
/// exit with `128 + signal`, leaving neither the object `key` nor an unfinished upload.
#[cfg(unix)]
fn interrupt_upload(s3: &S3, args: &[&str], key: &str, signal: rustix::process::Signal) {
    use std::io::Write as _;

    let fifo = s3.path(&format!("{}.fifo", key.replace('/', "-")));
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "{fifo}" { fifo.as_str() } else { a })
        .collect();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_strongbox"))
        .current_dir(s3.env.dir.path())
        .env("HOME", s3.env.home())
        .envs(s3.moto.s3_env())
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    input.write_all(&data(20 << 20, 4)).unwrap();
    let mut tries = 0;
    while s3.client.list_uploads(BUCKET).is_empty() {
        tries += 1;
        assert!(tries < 600, "no multipart upload started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
    let output = child.wait_with_output().unwrap();
    drop(input);
    s3.keep_stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(128 + signal.as_raw()),
        "{output:?}"
    );
    assert!(s3.keys(key).is_empty());
    assert!(s3.client.list_uploads(BUCKET).is_empty());
    assert_eq!(multipart_requests(&s3.moto, key), (true, true));
}

#[cfg(unix)]
#[test]
fn an_interrupted_upload_leaves_nothing() {
    let Some(s3) = S3::start("an_interrupted_upload_leaves_nothing") else {
        return;
    };
    let key = s3.env.key_file("k", KEY_A);
    let key = key.to_str().unwrap();
    let url = S3::url("big/stream.sbx");
    let encrypt = ["encrypt", "--key-file", key, "{fifo}", "-o", &url];
    interrupt_upload(
        &s3,
        &encrypt,
        "big/stream.sbx",
        rustix::process::Signal::INT,
    );
    let db = database(&s3);
    let url = S3::url("big/export.full");
    let args = [
        "backup",
        "logical",
        db.to_str().unwrap(),
        "{fifo}",
        "--compression",
        "none",
    ];
    let backup: Vec<&str> = args.into_iter().chain(["-o", &url]).collect();
    interrupt_upload(
        &s3,
        &backup,
        "big/export.full",
        rustix::process::Signal::TERM,
    );
}

#[test]
fn backup_list_of_a_local_directory() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    std::fs::write(db.join("data.db"), b"rows").unwrap();
    let folder = env.mkdir("backups");
    env.cmd()
        .args(["backup", "snapshot"])
        .arg(&db)
        .arg("-o")
        .arg(folder.join("a.snapshot"))
        .run()
        .success();
    std::fs::write(folder.join("b.txt"), b"notes").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("nowhere", folder.join("c.link")).unwrap();
    let out = env
        .cmd()
        .args(["backup", "list"])
        .arg(&folder)
        .run()
        .success();
    let listed = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        line_of(&listed, "a.snapshot").contains(" snapshot "),
        "{listed}"
    );
    assert!(
        line_of(&listed, "b.txt").contains(" not-a-backup "),
        "{listed}"
    );
    assert!(listed.contains("NOT authenticated"), "{listed}");
    #[cfg(unix)]
    assert!(
        line_of(&listed, "c.link").contains("cannot be read"),
        "{listed}"
    );
}

/// A local directory named alone takes its newest logical chain, as a prefix does: restored and
/// verified in order; named with another argument it is a usage error; a fork is refused.
#[test]
fn a_chain_from_a_local_directory() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    let folder = env.mkdir("chain");
    let mut exports = Vec::new();
    let mut previous: Option<PathBuf> = None;
    for (i, name) in ["1.full", "2.incr", "3.incr"].iter().enumerate() {
        let export = env.path(&format!("{i}.export"));
        std::fs::write(&export, data(40_000 + i, 20 + i as u64)).unwrap();
        let mut cmd = env.cmd();
        cmd.args(["backup", "logical"]).arg(&db).arg(&export);
        cmd.arg("-o").arg(folder.join(name));
        if let Some(previous) = &previous {
            cmd.arg("--incremental-after").arg(previous);
        }
        cmd.run().success();
        exports.push(export);
        previous = Some(folder.join(name));
    }
    std::fs::write(folder.join("notes.txt"), b"not a backup").unwrap();

    let out = env.path("restored");
    let run = env
        .cmd()
        .arg("restore")
        .arg(&folder)
        .arg("--to")
        .arg(&out)
        .run();
    let stderr = String::from_utf8_lossy(&run.success().get_output().stderr).into_owned();
    assert!(stderr.contains("1.full, 2.incr, 3.incr"), "{stderr}");
    for (i, export) in exports.iter().enumerate() {
        let kind = if i == 0 { "full" } else { "incremental" };
        same_file(export, &out.join(format!("{i:04}-logical-{kind}.export")));
    }
    let run = env.cmd().arg("verify").arg(&folder).run().success();
    let verified = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    assert_eq!(
        verified.matches("authenticated by key").count(),
        3,
        "{verified}"
    );

    // `--incremental-after FOLDER` follows the end of that chain.
    let mut next = env.cmd();
    next.args(["backup", "logical"]).arg(&db).arg(&exports[0]);
    next.arg("--incremental-after").arg(&folder);
    let run = next.arg("-o").arg(folder.join("4.incr")).run().success();
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(stderr.contains("following 3.incr"), "{stderr}");
    let run = env.cmd().arg("verify").arg(&folder).run().success();
    let verified = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    assert_eq!(
        verified.matches("authenticated by key").count(),
        4,
        "{verified}"
    );

    let usage = assert_usage(
        env.cmd()
            .arg("restore")
            .arg(&folder)
            .arg(folder.join("2.incr"))
            .args(["--to", "twice"])
            .run(),
    );
    assert!(usage.contains("given alone"), "{usage}");

    let mut fork = env.cmd();
    fork.args(["backup", "logical"]).arg(&db).arg(&exports[1]);
    fork.arg("--incremental-after").arg(folder.join("1.full"));
    fork.arg("-o").arg(folder.join("2b.incr")).run().success();
    let err = assert_failure(env.cmd().arg("verify").arg(&folder).run());
    assert!(
        err.contains("forks: 2.incr, 2b.incr all follow 1.full"),
        "{err}"
    );
}

/// The `file://` URL of a local absolute path.
fn file_url(path: &Path) -> String {
    let text = path.to_str().unwrap().replace('\\', "/");
    match text.starts_with('/') {
        true => format!("file://{text}"),
        false => format!("file:///{text}"),
    }
}

/// A snapshot to a `file://` URL is a local file: refused inside the directory it backs up, as
/// a local `-o` is, and written (and restorable) anywhere else.
#[test]
fn a_snapshot_to_a_file_url_is_a_local_file() {
    let env = Env::new();
    let (db, _) = env.init_db("db");
    std::fs::write(db.join("data.db"), b"rows").unwrap();
    let inside = file_url(&db.join("self.snapshot"));
    let before = listing(&db);
    let err = assert_failure(
        env.cmd()
            .args(["backup", "snapshot"])
            .arg(&db)
            .args(["-o", &inside])
            .run(),
    );
    assert!(err.contains("inside the database directory"), "{err}");
    assert_eq!(
        listing(&db),
        before,
        "nothing left in the database directory"
    );

    let elsewhere = env.mkdir("backups").join("db.snapshot");
    env.cmd()
        .args(["backup", "snapshot"])
        .arg(&db)
        .args(["-o", &file_url(&elsewhere)])
        .run()
        .success();
    let restored = env.path("restored");
    env.cmd()
        .arg("restore")
        .arg(&elsewhere)
        .arg("--to")
        .arg(&restored)
        .run()
        .success();
    same_file(&db.join("data.db"), &restored.join("data.db"));
}

/// Reads from Google Cloud Storage (fake-gcs-server takes no upload from `object_store`, so the
/// backups are written to files and put there by the GCS client): `backup list`, `inspect`,
/// `verify` and `restore` of a prefix's chain.
#[test]
fn backups_read_from_gcs() {
    let Some(gcs) = servers::gcs::FakeGcs::start("backups_read_from_gcs") else {
        return;
    };
    let client = gcs.client();
    client.make_bucket("strongbox-gcs");
    let env = Env::new();
    let (db, _) = env.init_db("db");
    std::fs::write(env.path("e0"), data(40_000, 7)).unwrap();
    std::fs::write(env.path("e1"), data(4_000, 8)).unwrap();
    let run = |args: &[&str]| {
        let out = env.cmd().envs(gcs.gcs_env()).args(args).run().success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    };
    let db = db.to_str().unwrap();
    run(&["backup", "logical", db, "e0", "-o", "full"]);
    run(&[
        "backup",
        "logical",
        db,
        "e1",
        "--incremental-after",
        "full",
        "-o",
        "incr",
    ]);
    for (file, key) in [("full", "db1/1.full"), ("incr", "db1/2.incr")] {
        client.put(
            "strongbox-gcs",
            key,
            &std::fs::read(env.path(file)).unwrap(),
        );
    }

    let listed = run(&["backup", "list", "gs://strongbox-gcs/db1/"]);
    assert!(line_of(&listed, "1.full").contains(" full "), "{listed}");
    assert!(
        line_of(&listed, "2.incr").ends_with("after 1.full"),
        "{listed}"
    );
    let inspected = run(&["inspect", "gs://strongbox-gcs/db1/2.incr"]);
    assert!(inspected.contains("logical-incremental"), "{inspected}");
    let verified = run(&["verify", "gs://strongbox-gcs/db1/"]);
    assert_eq!(
        verified.matches("authenticated by key").count(),
        2,
        "{verified}"
    );
    run(&["restore", "gs://strongbox-gcs/db1/", "--to", "restored"]);
    for (i, (export, kind)) in [("e0", "full"), ("e1", "incremental")].iter().enumerate() {
        let restored = env
            .path("restored")
            .join(format!("{i:04}-logical-{kind}.export"));
        same_file(&env.path(export), &restored);
    }
}
