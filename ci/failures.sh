#!/usr/bin/env bash
# Runs a `cargo test` command, its output going to the terminal as usual and to a log, and when
# it fails prints every failure again at the end, where a CI log's tail shows it: each test
# binary's `failures:` section (panic messages, shortened) and cargo's lines naming a binary
# that failed or was killed (a timeout under Wine is `signal: 9`).
#
#   ci/failures.sh cargo test [arguments]
#
# Exit status: the command's.
set -uo pipefail

log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo "=== the failures of \`$*\` again (exit $status) ==="
    awk '/^failures:$/, /^test result:/' "$log" | cut -c1-400 | head -n 300
    grep -E "process didn't exit successfully|^error: test failed|^error: [0-9]+ targets? failed|^    \`" "$log" |
        cut -c1-400
fi
exit "$status"
