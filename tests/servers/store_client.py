#!/usr/bin/env python3
"""The tests' view of an object store through the store's own client library.

    store_client.py STORE COMMAND ARGS...

STORE is `s3` (boto3; the standard AWS environment, AWS_ENDPOINT_URL included), `azure`
(azure-storage-blob; AZURE_STORAGE_CONNECTION_STRING) or `gcs` (google-cloud-storage, anonymous;
STORAGE_EMULATOR_HOST). COMMAND is one of:

    make-bucket BUCKET        create a bucket (a container on Azure)
    put BUCKET KEY FILE       upload FILE's bytes as KEY
    get BUCKET KEY FILE       download KEY into FILE
    list BUCKET [PREFIX]      print `KEY<TAB>SIZE` per object, in key order
    start-upload BUCKET KEY   begin an upload of KEY, send one part (a block on Azure), and leave
                              it unfinished
    list-uploads BUCKET       print `KEY<TAB>ID` per unfinished upload: S3 and GCS multipart
                              uploads; on Azure, blobs with uncommitted blocks (ID = their count)
    delete BUCKET KEY         delete KEY

Errors go to standard error with a non-zero exit status.
"""

import os
import sys
import xml.etree.ElementTree as ET

# The newest Blob service version Azurite 3.34.0 accepts (the client's default is newer).
AZURE_API_VERSION = "2025-05-05"


class S3:
    def __init__(self):
        import boto3

        self.s3 = boto3.client("s3")

    def make_bucket(self, bucket):
        self.s3.create_bucket(Bucket=bucket)

    def put(self, bucket, key, path):
        with open(path, "rb") as f:
            self.s3.put_object(Bucket=bucket, Key=key, Body=f)

    def get(self, bucket, key, path):
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(path, "wb") as f:
            f.write(body.read())

    def list(self, bucket, prefix):
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]

    def start_upload(self, bucket, key):
        upload = self.s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        self.s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"part")

    def list_uploads(self, bucket):
        pages = self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
        return [(u["Key"], u["UploadId"]) for page in pages for u in page.get("Uploads", [])]

    def delete(self, bucket, key):
        self.s3.delete_object(Bucket=bucket, Key=key)


class Azure:
    def __init__(self):
        from azure.storage.blob import BlobServiceClient

        connection = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        self.service = BlobServiceClient.from_connection_string(
            connection, api_version=AZURE_API_VERSION
        )

    def make_bucket(self, bucket):
        self.service.create_container(bucket)

    def put(self, bucket, key, path):
        with open(path, "rb") as f:
            self.service.get_blob_client(bucket, key).upload_blob(f, overwrite=True)

    def get(self, bucket, key, path):
        data = self.service.get_blob_client(bucket, key).download_blob().readall()
        with open(path, "wb") as f:
            f.write(data)

    def list(self, bucket, prefix):
        container = self.service.get_container_client(bucket)
        return [(b.name, b.size) for b in container.list_blobs(name_starts_with=prefix)]

    def start_upload(self, bucket, key):
        self.service.get_blob_client(bucket, key).stage_block("YmxvY2stMQ==", b"block")

    def list_uploads(self, bucket):
        container = self.service.get_container_client(bucket)
        found = []
        for blob in container.list_blobs(include=["uncommittedblobs"]):
            blocks = container.get_blob_client(blob.name).get_block_list("uncommitted")[1]
            if blocks:
                found.append((blob.name, len(blocks)))
        return found

    def delete(self, bucket, key):
        self.service.get_blob_client(bucket, key).delete_blob()


class Gcs:
    def __init__(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        self.client = storage.Client(project="test", credentials=AnonymousCredentials())

    def make_bucket(self, bucket):
        self.client.create_bucket(bucket)

    def put(self, bucket, key, path):
        self.client.bucket(bucket).blob(key).upload_from_filename(path)

    def get(self, bucket, key, path):
        self.client.bucket(bucket).blob(key).download_to_filename(path)

    def list(self, bucket, prefix):
        return [(b.name, b.size) for b in self.client.list_blobs(bucket, prefix=prefix)]

    def start_upload(self, bucket, key):
        # The XML API's multipart upload; the JSON client library has no call for it.
        import requests

        url = f"{os.environ['STORAGE_EMULATOR_HOST']}/{bucket}/{key}"
        response = requests.post(f"{url}?uploads", timeout=60)
        response.raise_for_status()
        upload = ET.fromstring(response.content).findtext("{*}UploadId")
        if not upload:
            sys.exit(f"the server started no multipart upload: {response.text}")
        params = {"partNumber": "1", "uploadId": upload}
        requests.put(url, params=params, data=b"part", timeout=60).raise_for_status()

    def list_uploads(self, bucket):
        # The XML API's ListMultipartUploads; the JSON client library has no call for it.
        import requests

        url = f"{os.environ['STORAGE_EMULATOR_HOST']}/{bucket}?uploads"
        response = requests.get(url, timeout=60)
        response.raise_for_status()
        root = ET.fromstring(response.content)
        if not root.tag.endswith("ListMultipartUploadsResult"):
            sys.exit(f"the server does not list multipart uploads (it answered <{root.tag}>)")
        ns = root.tag[: -len("ListMultipartUploadsResult")]
        return [
            (u.findtext(f"{ns}Key"), u.findtext(f"{ns}UploadId"))
            for u in root.iter(f"{ns}Upload")
        ]

    def delete(self, bucket, key):
        self.client.bucket(bucket).blob(key).delete()


STORES = {"s3": S3, "azure": Azure, "gcs": Gcs}


def main(argv):
    if len(argv) < 3 or argv[1] not in STORES:
        sys.exit(__doc__)
    store, command, args = STORES[argv[1]](), argv[2], argv[3:]
    if command == "make-bucket" and len(args) == 1:
        store.make_bucket(*args)
    elif command in ("put", "get") and len(args) == 3:
        getattr(store, command)(*args)
    elif command == "list" and len(args) in (1, 2):
        for key, size in store.list(args[0], args[1] if len(args) == 2 else ""):
            print(f"{key}\t{size}")
    elif command == "list-uploads" and len(args) == 1:
        for key, upload in store.list_uploads(*args):
            print(f"{key}\t{upload}")
    elif command == "start-upload" and len(args) == 2:
        store.start_upload(*args)
    elif command == "delete" and len(args) == 2:
        store.delete(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
