#!/bin/sh
# Builds the seed corpora of the fuzz targets from the test vectors (tests/vectors/), into
# fuzz/corpus/<target>/ (git-ignored). Run from anywhere; idempotent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vectors="$here/../tests/vectors"
corpus="$here/corpus"
mkdir -p "$corpus/stream_read_arbitrary" "$corpus/keyblob" "$corpus/settings" \
    "$corpus/stream_read_mutated"

# stream_read_arbitrary: first byte = flags (see the target). Each vector as a whole stream
# (encrypted and integrity-only readers), and its body behind the target's genuine header.
for f in "$vectors"/*.sbx; do
    name=$(basename "$f" .sbx)
    for flags in 00 02 1c 5e; do
        { printf "\\x$flags"; cat "$f"; } > "$corpus/stream_read_arbitrary/${name}_$flags"
    done
    { printf '\001'; tail -c +99 "$f"; } > "$corpus/stream_read_arbitrary/${name}_body"
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

# stream_read_mutated: structured inputs; a few arbitrary byte strings to start from.
for i in 0 1 2 3 4 5 6 7; do
    head -c $((64 + 64 * i)) /dev/urandom > "$corpus/stream_read_mutated/random_$i"
done
