#!/usr/bin/env bash
# Cross-compile strongbox for x86_64-pc-windows-gnu and run its tests (the DPAPI provider
# included) under Wine, on Linux.
#
#   ci/windows-tests.sh [extra `cargo test` arguments, e.g. a test-name filter]
#
# What it does, in order:
#   1. installs mingw-w64 gcc and wine64 with apt-get when they are missing (root only) and adds
#      the Rust target x86_64-pc-windows-gnu with rustup when it is missing;
#   2. creates a throwaway WINEPREFIX, removed on exit;
#   3. installs a stand-in bcryptprimitives.dll (ci/wine/bcryptprimitives.c) when Wine has none
#      (Wine 8.0 does not; Rust's std needs its `ProcessPrng`);
#   4. starts one persistent wineserver for the whole run (with its stdio detached, or a piped
#      `ci/windows-tests.sh | tee` would never end);
#   5. runs `cargo clippy --target x86_64-pc-windows-gnu --all-targets -- -D warnings`, then
#      `cargo test --target x86_64-pc-windows-gnu --no-fail-fast` with Wine as the target runner,
#      each test binary (and doctest) under `timeout` (STRONGBOX_WINDOWS_TEST_TIMEOUT seconds,
#      300 by default), so that a test hanging under Wine fails instead of stalling CI.
#
# Exit status: 0 after the tests passed, or after a visible `SKIP windows tests: <reason>` line
# when mingw, Wine or the Rust target cannot be had on this machine. Any other failure (an
# install that half-worked, a broken prefix, a lint, a failing test) exits non-zero.
#
# Environment: STRONGBOX_WINDOWS_TESTS_NO_INSTALL=1 never installs anything (skips instead).
# Build artefacts go to the usual target dir (target/x86_64-pc-windows-gnu), so a second run
# reuses the first one's build (ring's C code is compiled once).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly TARGET=x86_64-pc-windows-gnu
readonly MINGW_GCC=x86_64-w64-mingw32-gcc
started=$SECONDS

skip() {
    echo "SKIP windows tests: $*"
    exit 0
}
fail() {
    echo "windows tests: error: $*" >&2
    exit 1
}
step() { echo "windows tests: $* ($((SECONDS - started)) s)"; }

per_binary_timeout=${STRONGBOX_WINDOWS_TEST_TIMEOUT:-300}
case $per_binary_timeout in
'' | *[!0-9]*) fail "STRONGBOX_WINDOWS_TEST_TIMEOUT must be a number of seconds, not '$per_binary_timeout'" ;;
esac
command -v timeout >/dev/null || fail "no timeout command (coreutils)"

# --- 1. tools -----------------------------------------------------------------------------------

# x86_64 Windows binaries run under Wine only on an x86_64 host (wine64 elsewhere is not x86).
[ "$(uname -m)" = x86_64 ] || skip "Wine cannot run x86_64 Windows binaries on a $(uname -m) host"

find_wine() {
    WINE=
    for candidate in /usr/lib/wine/wine64 "$(command -v wine64 || true)" "$(command -v wine || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            WINE=$candidate
            break
        fi
    done
}

have_tools() {
    find_wine
    command -v "$MINGW_GCC" >/dev/null && [ -n "$WINE" ]
}

if ! have_tools; then
    if [ "${STRONGBOX_WINDOWS_TESTS_NO_INSTALL:-}" = 1 ]; then
        skip "mingw-w64 gcc or wine64 missing and STRONGBOX_WINDOWS_TESTS_NO_INSTALL=1"
    fi
    [ "$(id -u)" = 0 ] || skip "mingw-w64 gcc or wine64 missing, and not root to install them"
    command -v apt-get >/dev/null || skip "mingw-w64 gcc or wine64 missing, and no apt-get"
    step "installing gcc-mingw-w64-x86-64 and wine64 with apt-get (about 1.2 GB)"
    apt_log=$(mktemp)
    # Another process may hold the dpkg lock for a while (a parallel install): wait for it.
    if ! {
        apt-get -o DPkg::Lock::Timeout=600 update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
                --no-install-recommends gcc-mingw-w64-x86-64 wine64
    } </dev/null >"$apt_log" 2>&1; then
        tail -n 15 "$apt_log"
        rm -f "$apt_log"
        skip "apt-get could not install gcc-mingw-w64-x86-64 and wine64 (log tail above)"
    fi
    rm -f "$apt_log"
    # The packages installed, so from here on a missing tool is a real failure, not a skip.
    have_tools || fail "apt-get installed the packages, but $MINGW_GCC or wine64 is still missing"
fi
WINESERVER=$(dirname "$WINE")/wineserver
[ -x "$WINESERVER" ] || WINESERVER=$(command -v wineserver || true)
[ -n "$WINESERVER" ] || fail "found $WINE but no wineserver beside it or on PATH"

target_installed() {
    [ -d "$(rustc --print sysroot)/lib/rustlib/$TARGET/lib" ]
}
if ! target_installed; then
    command -v rustup >/dev/null || skip "the Rust target $TARGET is not installed and there is no rustup"
    step "adding the Rust target $TARGET"
    rustup target add "$TARGET" </dev/null || skip "rustup could not add the Rust target $TARGET"
    target_installed || fail "rustup added $TARGET, but its standard library is not in the sysroot"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "using $WINE ($("$WINE" --version 2>/dev/null || echo 'unknown version')), $($MINGW_GCC -dumpversion | sed 's/^/mingw gcc /')"

# --- 2. a throwaway Wine prefix -------------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/strongbox-wine.XXXXXX")
export WINEPREFIX="$work/prefix"
export WINEDEBUG=-all
# No Mono / Gecko installer dialogs: nothing here needs .NET or HTML.
export WINEDLLOVERRIDES="mscoree,mshtml="
export WINEARCH=win64
cleanup() {
    # Stop this prefix's wineserver (and the Wine services it keeps) before removing the prefix.
    "$WINESERVER" -k >/dev/null 2>&1 || true
    "$WINESERVER" -w >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "creating the Wine prefix $WINEPREFIX"
if ! "$WINE" wineboot --init </dev/null >"$work/wineboot.log" 2>&1; then
    tail -n 20 "$work/wineboot.log"
    fail "wineboot --init failed (log tail above)"
fi
"$WINESERVER" -w
system32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$system32" ] || fail "wineboot did not create $system32"

# --- 3. bcryptprimitives.dll stand-in ---------------------------------------------------------------

if [ ! -e "$system32/bcryptprimitives.dll" ]; then
    step "Wine has no bcryptprimitives.dll: installing the stand-in from ci/wine/bcryptprimitives.c"
    "$MINGW_GCC" -shared -O2 -s -Wall -Werror -o "$system32/bcryptprimitives.dll" \
        ci/wine/bcryptprimitives.c -lbcrypt
fi

# --- 4. one persistent wineserver for all test binaries ----------------------------------------------

# Started with stdio on /dev/null: it outlives this script's children and would otherwise keep
# the caller's pipe open. `wineboot` (no --init) brings the Wine services up once, for all tests.
"$WINESERVER" -p </dev/null >/dev/null 2>&1
"$WINE" wineboot </dev/null >/dev/null 2>&1 || fail "wineboot failed on the fresh prefix"

# --- 5. lint and test -------------------------------------------------------------------------------

# Every test binary (and doctest) runs under `timeout`: one that hangs under Wine is killed after
# this many seconds (and its Windows children with it: they share its process group) and fails,
# instead of stalling CI. Far above the slowest binary's run (see the README).
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="timeout --kill-after=10 $per_binary_timeout $WINE"

step "cargo clippy --target $TARGET --all-targets -- -D warnings"
cargo clippy --target "$TARGET" --all-targets -- -D warnings </dev/null

# Every failing test binary is reported, not only the first one.
fail_fast=--no-fail-fast
for arg in "$@"; do
    case $arg in
    --) break ;; # what follows goes to the test binaries
    --no-fail-fast) fail_fast= ;;
    esac
done
step "cargo test --target $TARGET $fail_fast (test binaries run under Wine)"
# The failures are printed again at the end, where a CI log's tail shows them.
ci/failures.sh cargo test --target "$TARGET" ${fail_fast:+"$fail_fast"} "$@" </dev/null

step "windows tests passed"
