#!/bin/sh
# Whole-process speed of `strongbox encrypt` / `decrypt` next to `cat` and `age`, on one cached
# 512 MiB file on tmpfs, every command's output read from a pipe and dropped by hyperfine
# (`--output=pipe`: the same for every command, and no program sees /dev/null): one hyperfine
# run per direction, RUNS runs of each command (default 7). SINK chooses where the output goes:
# `pipe` (the default, above), `null` (hyperfine discards it: `--output=null`) or `file` (every
# command writes the file `out` beside the input, `cp` standing in for `cat`).
#
#   cargo build --release --bin strongbox && sh benches/cli.sh
#   SINK=null sh benches/cli.sh; SINK=file sh benches/cli.sh
#
# Needs hyperfine and age (Debian: apt-get install hyperfine age). STRONGBOX names another
# binary to measure; JSON results go to $OUT (default: a temporary directory, removed).
set -eu
bin=$(realpath "${STRONGBOX:-target/release/strongbox}")
runs=${RUNS:-7}
dir=$(mktemp -d "${TMPDIR_BENCH:-/dev/shm}/strongbox-cli.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"
head -c 512M /dev/urandom > in
head -c 32 /dev/urandom | base64 > key
age-keygen -o id 2> /dev/null
recipient=$(age-keygen -y id)
age -r "$recipient" in > in.age
"$bin" encrypt -q --key-file key in -o in.sbx
cores=$(nproc)
sink=${SINK:-pipe}
case $sink in
    file) output=pipe; o="-o out"; cat=cp; to=out ;;
    pipe | null) output=$sink; o=; cat=cat; to= ;;
    *) echo "SINK is pipe, null or file" >&2; exit 2 ;;
esac
hyperfine -N -w 2 -r "$runs" --output=$output --export-json "$dir/encrypt.json" \
    -n cat "$cat in $to" \
    -n age "age -r $recipient $o in" \
    -n "strongbox 1 thread" "$bin encrypt -q --threads 1 --key-file key in $o" \
    -n "strongbox $cores threads" "$bin encrypt -q --key-file key in $o"
hyperfine -N -w 2 -r "$runs" --output=$output --export-json "$dir/decrypt.json" \
    -n cat "$cat in.sbx $to" \
    -n age "age -d -i id $o in.age" \
    -n "strongbox 1 thread" "$bin decrypt -q --threads 1 --key-file key in.sbx $o" \
    -n "strongbox $cores threads" "$bin decrypt -q --key-file key in.sbx $o"
# Peak RSS (KiB): the same for 10 MiB as for 512 MiB.
head -c 10M in > small
"$bin" encrypt -q --key-file key small -o small.sbx
for size in small in; do
    for command in "encrypt -q --threads 1" "encrypt -q" "decrypt -q --threads 1" "decrypt -q"; do
        input=$size.sbx
        case $command in encrypt*) input=$size ;; esac
        rss=$(/usr/bin/time -f %M "$bin" $command --key-file key "$input" 2>&1 > out)
        rm out
        echo "peak RSS, $size, $command: $rss KiB"
    done
done
if [ -n "${OUT:-}" ]; then cp "$dir"/*.json "$OUT"/; fi
