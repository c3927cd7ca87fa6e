//! The local object-store servers the tests use (`servers`): moto's S3, Azurite's Blob service
//! and fake-gcs-server, each started on a free 127.0.0.1 port and checked through the store's
//! own client library (`store_client.py`) and through the `object_store` crate configured from
//! the environment the harness gives, as an engine's process would be (`from_env()`).

mod servers;

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutPayload};
use servers::azurite::Azurite;
use servers::gcs::FakeGcs;
use servers::moto::Moto;
use servers::store_client::StoreClient;

const BUCKET: &str = "strongbox-test";
/// A part of a multipart upload: 5 MiB, the least S3 takes for every part but the last.
const PART: usize = 5 << 20;

/// `len` bytes that differ from one offset to the next.
fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Puts, gets, damages, lists and deletes through the store's own client, and lists an
/// unfinished upload.
fn check_store_client(client: &StoreClient) {
    client.make_bucket(BUCKET);
    let bytes = sample(100_000);
    client.put(BUCKET, "backups/db/full.sbx", &bytes);
    client.put(BUCKET, "elsewhere.sbx", b"x");
    assert_eq!(client.get(BUCKET, "backups/db/full.sbx"), bytes);
    let listed = client.list(BUCKET, "backups/");
    assert_eq!(listed, [("backups/db/full.sbx".to_string(), 100_000)]);

    client.flip_byte(BUCKET, "backups/db/full.sbx", 10);
    let flipped = client.get(BUCKET, "backups/db/full.sbx");
    assert_eq!(flipped[10], bytes[10] ^ 1);
    assert_eq!(flipped[11..], bytes[11..]);
    client.truncate(BUCKET, "backups/db/full.sbx", 99);
    assert_eq!(client.get(BUCKET, "backups/db/full.sbx"), flipped[..99]);

    client.delete(BUCKET, "backups/db/full.sbx");
    assert_eq!(client.list(BUCKET, "backups/"), []);
    assert_eq!(client.list_uploads(BUCKET), Vec::<String>::new());
    client.start_upload(BUCKET, "backups/db/unfinished.sbx");
    assert_eq!(client.list_uploads(BUCKET), ["backups/db/unfinished.sbx"]);
    assert_eq!(client.list(BUCKET, "backups/"), []);
}

#[test]
fn moto_s3_through_boto3() {
    let Some(moto) = Moto::start("moto_s3_through_boto3") else {
        return;
    };
    check_store_client(&moto.s3_client());
}

#[test]
fn azurite_through_azure_storage_blob() {
    let Some(azurite) = Azurite::start("azurite_through_azure_storage_blob") else {
        return;
    };
    check_store_client(&azurite.client());
}

/// fake-gcs-server has no XML multipart upload, so no unfinished upload can be made or listed:
/// the rest of the checks pass.
#[test]
fn fake_gcs_through_google_cloud_storage() {
    let Some(gcs) = FakeGcs::start("fake_gcs_through_google_cloud_storage") else {
        return;
    };
    let client = gcs.client();
    client.make_bucket(BUCKET);
    let bytes = sample(100_000);
    client.put(BUCKET, "backups/db/full.sbx", &bytes);
    assert_eq!(client.get(BUCKET, "backups/db/full.sbx"), bytes);
    let listed = client.list(BUCKET, "backups/");
    assert_eq!(listed, [("backups/db/full.sbx".to_string(), 100_000)]);
    client.flip_byte(BUCKET, "backups/db/full.sbx", 10);
    assert_eq!(client.get(BUCKET, "backups/db/full.sbx")[10], bytes[10] ^ 1);
    client.delete(BUCKET, "backups/db/full.sbx");
    assert_eq!(client.list(BUCKET, "backups/"), []);

    let started = client.try_run(&["start-upload", BUCKET, "backups/db/unfinished.sbx"]);
    assert!(
        started.is_err(),
        "fake-gcs-server now starts XML multipart uploads"
    );
    let listed = client.try_run(&["list-uploads", BUCKET]).unwrap_err();
    assert!(
        listed.contains("does not list multipart uploads"),
        "{listed}"
    );
}

/// Applies `env` to a builder the way its `from_env()` does: each variable whose lower-cased
/// name is one of its configuration keys.
fn configure<B, K: std::str::FromStr>(
    mut builder: B,
    env: &[(&str, String)],
    with_config: impl Fn(B, K, &str) -> B,
) -> B {
    for (name, value) in env {
        if let Ok(key) = name.to_ascii_lowercase().parse() {
            builder = with_config(builder, key, value);
        }
    }
    builder
}

/// rustls on ring, the crate's cryptography (rustls 0.23.48 deprecates ring's provider only for
/// its lack of post-quantum key exchange, which plain-HTTP local servers do not use).
#[allow(deprecated)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A single put, a 3 x 5 MiB multipart upload, a ranged get, a list, a conditional create, a
/// delete and an aborted multipart upload, each checked through the store's own client.
/// `aborted_left` is what the store's client lists as unfinished after the abort: object_store
/// cannot drop the blocks of an Azure upload (its `abort` does nothing; Azure deletes
/// uncommitted blocks after 7 days).
async fn check_object_store(
    store: Arc<dyn ObjectStore>,
    client: &StoreClient,
    aborted_left: &[&str],
) {
    let small = Path::from("backups/db/small.sbx");
    store
        .put(&small, PutPayload::from(sample(1000)))
        .await
        .unwrap();
    assert_eq!(client.get(BUCKET, "backups/db/small.sbx"), sample(1000));

    let large = Path::from("backups/db/large.sbx");
    let bytes = sample(3 * PART);
    let mut upload = store.put_multipart(&large).await.unwrap();
    for part in bytes.chunks(PART) {
        upload
            .put_part(PutPayload::from(part.to_vec()))
            .await
            .unwrap();
    }
    upload.complete().await.unwrap();
    assert_eq!(client.get(BUCKET, "backups/db/large.sbx"), bytes);

    let range = PART as u64 - 10..PART as u64 + 10;
    let got = store.get_range(&large, range).await.unwrap();
    assert_eq!(got[..], bytes[PART - 10..PART + 10]);

    let listed = store
        .list_with_delimiter(Some(&"backups/db".into()))
        .await
        .unwrap();
    let mut objects: Vec<_> = listed
        .objects
        .iter()
        .map(|o| (o.location.as_ref(), o.size))
        .collect();
    objects.sort();
    let expected = [
        ("backups/db/large.sbx", 3 * PART as u64),
        ("backups/db/small.sbx", 1000),
    ];
    assert_eq!(objects, expected);

    let create = PutMode::Create.into();
    let again = store
        .put_opts(&small, PutPayload::from_static(b"no"), create)
        .await;
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "{again:?}"
    );
    assert_eq!(client.get(BUCKET, "backups/db/small.sbx"), sample(1000));

    store.delete(&small).await.unwrap();
    assert_eq!(client.list(BUCKET, "backups/db/small"), []);
    assert_eq!(client.list_uploads(BUCKET), Vec::<String>::new());

    let mut upload = store
        .put_multipart(&"backups/db/aborted.sbx".into())
        .await
        .unwrap();
    upload
        .put_part(PutPayload::from(sample(PART)))
        .await
        .unwrap();
    upload.abort().await.unwrap();
    assert_eq!(client.list(BUCKET, "backups/db/aborted"), []);
    assert_eq!(client.list_uploads(BUCKET), aborted_left);
}

#[tokio::test]
async fn moto_s3_through_object_store() {
    let Some(moto) = Moto::start("moto_s3_through_object_store") else {
        return;
    };
    install_crypto_provider();
    let client = moto.s3_client();
    client.make_bucket(BUCKET);
    let builder = object_store::aws::AmazonS3Builder::new().with_bucket_name(BUCKET);
    let store = configure(builder, &moto.s3_env(), |b, k, v| b.with_config(k, v));
    check_object_store(Arc::new(store.build().unwrap()), &client, &[]).await;
}

#[tokio::test]
async fn azurite_through_object_store() {
    let Some(azurite) = Azurite::start("azurite_through_object_store") else {
        return;
    };
    install_crypto_provider();
    let client = azurite.client();
    client.make_bucket(BUCKET);
    let builder = object_store::azure::MicrosoftAzureBuilder::new().with_container_name(BUCKET);
    let store = configure(builder, &azurite.azure_env(), |b, k, v| b.with_config(k, v));
    let left = ["backups/db/aborted.sbx"];
    check_object_store(Arc::new(store.build().unwrap()), &client, &left).await;
}

/// object_store reads from fake-gcs-server (get, ranged get, head, list, delete) but cannot
/// write to it: fake-gcs-server has no XML PUT of an object nor XML multipart upload.
#[tokio::test]
async fn fake_gcs_through_object_store() {
    let Some(gcs) = FakeGcs::start("fake_gcs_through_object_store") else {
        return;
    };
    install_crypto_provider();
    let client = gcs.client();
    client.make_bucket(BUCKET);
    let bytes = sample(100_000);
    client.put(BUCKET, "backups/db/full.sbx", &bytes);
    let builder = object_store::gcp::GoogleCloudStorageBuilder::new().with_bucket_name(BUCKET);
    let store = configure(builder, &gcs.gcs_env(), |b, k, v| b.with_config(k, v));
    let store = store.build().unwrap();

    let path = Path::from("backups/db/full.sbx");
    let got = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(got[..], bytes[..]);
    assert_eq!(
        store.get_range(&path, 10..20).await.unwrap()[..],
        bytes[10..20]
    );
    assert_eq!(store.head(&path).await.unwrap().size, 100_000);
    let listed = store
        .list_with_delimiter(Some(&"backups/db".into()))
        .await
        .unwrap();
    assert_eq!(listed.objects.len(), 1);
    assert_eq!(listed.objects[0].location, path);

    let put = store
        .put(&Path::from("new.sbx"), PutPayload::from_static(b"new"))
        .await;
    assert!(put.is_err(), "fake-gcs-server now takes XML PUTs");
    let multipart = store.put_multipart(&Path::from("big.sbx")).await;
    assert!(
        multipart.is_err(),
        "fake-gcs-server now starts XML multipart uploads"
    );

    store.delete(&path).await.unwrap();
    assert_eq!(client.list(BUCKET, "backups/"), []);
}
