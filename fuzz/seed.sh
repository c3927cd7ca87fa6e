#!/bin/sh
# Builds the seed corpora of the fuzz targets from the test vectors (tests/vectors/), into
# fuzz/corpus/<target>/ (git-ignored). Run from anywhere; idempotent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vectors="$here/../tests/vectors"
corpus="$here/corpus"
# One byte, given in hex (dash's printf has no \x escapes).
byte() { printf "\\$(printf '%03o' "0x$1")"; }

mkdir -p "$corpus/stream_read_arbitrary" "$corpus/keyblob" "$corpus/settings" \
    "$corpus/stream_read_mutated" "$corpus/stream_header" "$corpus/stream_reader"

# stream_read_arbitrary: first byte = flags (see the target). Each vector as a whole stream
# (encrypted and integrity-only readers), and its body behind the target's genuine header.
for f in "$vectors"/*.sbx; do
    name=$(basename "$f" .sbx)
    for flags in 00 02 1c 5e; do
        { byte "$flags"; cat "$f"; } > "$corpus/stream_read_arbitrary/${name}_$flags"
    done
    { printf '\001'; tail -c +99 "$f"; } > "$corpus/stream_read_arbitrary/${name}_body"
done

# stream_header: each vector whole (the parser reads only its header).
# stream_reader: first byte = control (bit 0: integrity-only; bits 1..: read size), then the bytes
# after the target's own header; each vector's body (the bytes after its header), both modes.
for f in "$vectors"/*.sbx; do
    name=$(basename "$f" .sbx)
    cp "$f" "$corpus/stream_header/$name"
    for control in 00 01 06 c9; do
        { byte "$control"; tail -c +99 "$f"; } > "$corpus/stream_reader/${name}_$control"
    done
done

# keyblob: the hex `blob:` lines of each key-blob vector, decoded.
for f in "$vectors"/keyblob/*.txt; do
    name=$(basename "$f" .txt)
    grep '^blob: ' "$f" | sed 's/^blob: //' | tr -d '\n' | xxd -r -p > "$corpus/keyblob/$name"
done

# settings: typical settings.json files.
s="$corpus/settings"
printf '{}' > "$s/empty"
printf '{"Security.MasterKey.Path": "/etc/strongbox/master.key"}' > "$s/path"
printf '{"Security.MasterKey.Path": "k", "Security.MasterKey.AllowInsecurePermissions": "true"}' > "$s/insecure"
printf '{"Security.MasterKey.Exec": "/bin/key", "Security.MasterKey.Exec.Arguments": "--vault \\"prod keys\\" %s", "Security.MasterKey.Exec.TimeoutInSec": 7}' "'a;b'" > "$s/exec"
printf '{"Security.MasterKey.Exec": "k", "Security.MasterKey.Exec.Arguments": ["a", "b"], "Security.MasterKey.Exec.TimeoutInSec": "30"}' > "$s/exec_array"
printf '{"Security.MasterKey.Exec": "k", "Security.MasterKey.Path": "p"}' > "$s/both"
printf '{"Security.MasterKey.Unknown": 1, "ServerUrl": "http://a"}' > "$s/unknown"
printf '{"Security.MasterKey.Exec.TimeoutInSec": 1e400}' > "$s/big_number"
# Letter case, nested sections, a byte-order mark, and the refusals of misspelt, repeated, null
# and empty master-key settings.
printf '{"security": {"masterKey.path": "/k"}, "Security": {"Other": 1}}' > "$s/nested"
printf '{"Security": {"MasterKey": {"Exec": "/bin/key", "exec": {"Arguments": ["a"], "TimeoutInSec": 9}}}}' > "$s/nested_exec"
{ byte ef; byte bb; byte bf; printf '{"Security.MasterKey.Path": "/k"}'; } > "$s/byte_order_mark"
printf '{"Security.Master.Key.Path": "/k"}' > "$s/misspelt"
printf '{"Security.MasterKey.Path": "/k", "Security": {"MasterKey": {"Path": "/j"}}}' > "$s/twice"
printf '{"Security.MasterKey.Path": null, "Security.MasterKey.Exec": ""}' > "$s/null_empty"

# stream_read_mutated: structured inputs; a few arbitrary byte strings to start from.
for i in 0 1 2 3 4 5 6 7; do
    head -c $((64 + 64 * i)) /dev/urandom > "$corpus/stream_read_mutated/random_$i"
done

# backup_manifest: flags, u16 length, manifest, wrapped keys (see the target). From docs/BACKUP.md.
m="$corpus/backup_manifest"
mkdir -p "$m"
seed_manifest() { # name flags manifest [wrapped-keys file]
    len=$(printf '%s' "$3" | wc -c)
    { printf "\\$(printf '%03o' "$2")"; printf "\\$(printf '%03o' $((len / 256)))\\$(printf '%03o' $((len % 256)))"
      printf "%s" "$3"; if [ -n "${4:-}" ]; then cat "$4"; fi; } > "$m/$1"
}
base='"backup_id":"01010101010101010101010101010101","database":"orders","created_unix":1700000000'
seed_manifest snapshot_none 0 "{\"version\":1,\"kind\":\"snapshot\",$base,\"compression\":\"none\",\"encryption\":\"None\",\"key_id\":null,\"previous_backup_id\":null}"
seed_manifest full_enc 1 "{\"version\":1,\"kind\":\"logical-full\",$base,\"compression\":\"zstd\",\"encryption\":\"UseDatabaseKey\",\"key_id\":\"KEYID\",\"previous_backup_id\":null}"
seed_manifest incr_enc 1 "{\"version\":1,\"kind\":\"logical-incremental\",$base,\"compression\":\"zstd\",\"encryption\":\"UseProvidedKey\",\"key_id\":\"KEYID\",\"previous_backup_id\":\"abababababababababababababababab\"}"
# With a wrapped-keys extension holding the master-key blob vectors.
w=$(mktemp)
{ printf '\002'; for f in ok_master_key ok_master_key_2; do
    printf '\000\000\000\172'; cat "$corpus/keyblob/$f"; done; } > "$w"
seed_manifest full_enc_wrapped 3 "{\"version\":1,\"kind\":\"logical-full\",$base,\"compression\":\"zstd\",\"encryption\":\"UseDatabaseKey\",\"key_id\":\"KEYID\",\"previous_backup_id\":null}" "$w"
# The wrapped-keys and manifest refusals: no copy, a copy's length past the end, a member twice.
printf '\000' > "$w"
seed_manifest full_enc_wrapped_none 3 "{\"version\":1,\"kind\":\"logical-full\",$base,\"compression\":\"zstd\",\"encryption\":\"UseDatabaseKey\",\"key_id\":\"KEYID\",\"previous_backup_id\":null}" "$w"
{ printf '\001\000\000\377\377'; cat "$corpus/keyblob/ok_master_key"; } > "$w"
seed_manifest full_enc_wrapped_past_end 3 "{\"version\":1,\"kind\":\"logical-full\",$base,\"compression\":\"zstd\",\"encryption\":\"UseDatabaseKey\",\"key_id\":\"KEYID\",\"previous_backup_id\":null}" "$w"
seed_manifest member_twice 0 "{\"version\":1,\"kind\":\"snapshot\",$base,\"database\":\"other\",\"compression\":\"none\",\"encryption\":\"None\",\"key_id\":null,\"previous_backup_id\":null}"
rm -f "$w"

# snapshot_archive: tar payloads. The hostile archives of tests/tar_cases/, decrypted from their
# vectors tests/vectors/backup/fail_tar_* (which hold the same bytes) with the `strongbox` CLI;
# and archives that restore, written by GNU tar (GNU and ustar formats, 512-byte records).
a="$corpus/snapshot_archive"
mkdir -p "$a"
cargo build -q --manifest-path "$here/../Cargo.toml" --bin strongbox
strongbox=$(cargo metadata -q --format-version 1 --manifest-path "$here/../Cargo.toml" --no-deps |
    sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/debug/strongbox
t=$(mktemp -d)
for f in "$vectors"/backup/fail_tar_*.sbx; do
    name=$(basename "$f" .sbx)
    (umask 077; sed -n 's/^key: //p' "${f%.sbx}.txt" | xxd -r -p | base64 > "$t/key")
    "$strongbox" decrypt --key-file "$t/key" "$f" -o "$a/$name"
done
mkdir -p "$t/db/d/e" "$t/db/empty"
printf 'data' > "$t/db/a"; printf '' > "$t/db/d/b"; head -c 1500 /dev/zero > "$t/db/d/e/c"
long="$t/db/d/$(printf 'n%.0s' $(seq 1 60))"
mkdir "$long"; printf 'x' > "$long/$(printf 'm%.0s' $(seq 1 60))"
for format in gnu ustar; do
    tar -C "$t/db" --format=$format -b 1 --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime=@1700000000 -cf "$a/tar_$format" a d empty
done
rm -rf "$t"

# vault_transit_uri: URIs that parse and near misses.
u="$corpus/vault_transit_uri"
mkdir -p "$u"
i=0
for uri in 'vault-transit://vault.example:8200/transit/db-keys' \
    'vault-transit://127.0.0.1:8200/team/transit/k.1?tls=false&timeout=30' \
    'vault-transit://[::1]:8200/t/k?tls=false&token_file=/run/token' \
    'vault-transit://v:8200/t/k?ca_file=/etc/ca.pem&tls=true' \
    'vault-transit://user@v:8200/t/k?token=x' 'vault-transit://v/t/k?tls=false#f'; do
    printf '%s' "$uri" > "$u/seed_$i"; i=$((i + 1))
done

# recipient_slots: the recipient-slots extension (kind 3) of the recipient vectors' backups,
# cut out of their headers (docs/FORMAT.md: extension area at offset 66, its length at 62).
r="$corpus/recipient_slots"
mkdir -p "$r"
for f in "$vectors"/recipients/*.sbx; do
    python3 - "$f" > "$r/$(basename "$f" .sbx)" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
area = b[66:66 + struct.unpack('>I', b[62:66])[0]]; i = 0
while i < len(area):
    kind, n = struct.unpack('>HI', area[i:i + 6]); i += 6
    if kind == 3: sys.stdout.buffer.write(area[i:i + n])
    i += n
PY
done

# aws_kms_uri: URIs that parse and near misses.
u="$corpus/aws_kms_uri"
mkdir -p "$u"
i=0
for uri in 'aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab' \
    'aws-kms://alias/db-keys?region=eu-west-1&timeout=30' \
    'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab?region=us-east-1&endpoint=http://127.0.0.1:4566/' \
    'aws-kms://arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/a/b?endpoint=https://[::1]:443' \
    'aws-kms://mrk-1?endpoint=http://kms.example' 'aws-kms://alias/k?aws_secret_access_key=x#f'; do
    printf '%s' "$uri" > "$u/seed_$i"; i=$((i + 1))
done

# object_url: URLs that parse and near misses.
u="$corpus/object_url"
mkdir -p "$u"
i=0
for url in 's3://backups/orders/2026-12-07.full' 'gs://my_bucket.example/a b/ü.sbx' \
    'az://container/' 'file:///var/backups/orders.snapshot' 's3://bucket' \
    's3://key:secret@bucket/x?X-Amz-Signature=abc#frag' 's3://bucket//x' 's3://b/a/../x' \
    'file://host/x' 'S3://Bucket/x' 's3://bucket:9000/x'; do
    printf '%s' "$url" > "$u/seed_$i"; i=$((i + 1))
done
