#!/bin/sh
# An encrypted stream sent to a local S3 (moto_server, in memory) and read back by
# `examples/object_store_throughput.rs` (ObjectWriter up, ObjectReader down), next to boto3's
# `upload_file` / `download_file` of the same object to and from the same server, in one run,
# for each size in SIZES (MiB of incompressible plaintext; default "100 1024"). Every program
# runs under GNU time, which reports its peak resident memory.
#
#   cargo build --release --example object_store_throughput --features object-store
#   sh benches/object_store.sh
#
# Needs moto (`pip install 'moto[server]'`, which brings boto3) and GNU time. BIN names another
# build of the example. boto3's file lives in a temporary directory on tmpfs (/dev/shm unless
# TMPDIR_BENCH says otherwise), removed at the end.
set -eu
bin=$(realpath "${BIN:-target/release/examples/object_store_throughput}")
sizes=${SIZES:-100 1024}
dir=$(mktemp -d "${TMPDIR_BENCH:-/dev/shm}/strongbox-object.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" > "$dir/moto.log" 2>&1 &
moto=$!
trap 'kill $moto; rm -rf "$dir"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true

# transfer.py OP KEY FILE: boto3's download_file or upload_file with its default transfer
# settings (8 MiB parts, 10 threads), timed; `create` makes the bucket.
cat > "$dir/transfer.py" << 'END'
import os, sys, time
import boto3

op, key, path = sys.argv[1:]
s3 = boto3.client("s3")
started = time.monotonic()
if op == "create":
    s3.create_bucket(Bucket="bench")
    sys.exit()
if op == "download":
    s3.download_file("bench", key, path)
else:
    s3.upload_file(path, "bench", key)
seconds = time.monotonic() - started
size = os.path.getsize(path)
print(f"{op}: {size} bytes in {seconds:.2f} s, {size / 2**20 / seconds:.1f} MiB/s")
END
boto3() {
    printf 'boto3 '
    /usr/bin/time -f "  boto3 $1: peak RSS %M KiB" python3 "$dir/transfer.py" "$@"
}

for _ in $(seq 100); do
    python3 "$dir/transfer.py" create - - 2> "$dir/create.log" && break
    sleep 0.1
done
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for mib in $sizes; do
    echo "== $mib MiB"
    /usr/bin/time -f "  strongbox: peak RSS %M KiB, %e s in all" "$bin" "s3://bench/$mib.sbx" "$mib"
    boto3 download "$mib.sbx" "$dir/$mib.sbx"
    boto3 upload "copy-$mib.sbx" "$dir/$mib.sbx"
    rm -f "$dir/$mib.sbx"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
