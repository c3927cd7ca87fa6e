//! The Exec provider's process group: a key program's own children end with it, on timeout and
//! when the embedding process ends every running key program. `kill_running_programs` ends the
//! key programs of every test in the same process, so these tests live apart from the others and
//! run one at a time.
#![cfg(unix)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::script;
use strongbox::MasterKeyProvider;
use strongbox::keys::{ExecProvider, ProviderError};

/// Held by each test: `kill_running_programs` must not end another test's program.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether process `pid` has ended: gone, or a zombie waiting for whoever reaps orphans here.
fn has_ended(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Waits (up to a generous bound, for a loaded machine) until `pid` has ended; SIGKILL is
/// delivered asynchronously.
fn ends_soon(pid: &str) -> bool {
    for _ in 0..400 {
        if has_ended(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Reads the pid a key script wrote, once it has written it.
fn child_pid(pidfile: &std::path::Path) -> String {
    for _ in 0..400 {
        if let Ok(pid) = std::fs::read_to_string(pidfile)
            && pid.ends_with('\n')
        {
            return pid.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the key script never wrote {}", pidfile.display());
}

#[test]
fn a_timeout_kills_the_programs_children_too() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let body = format!("sleep 30 & echo $! > '{}'; sleep 30", pidfile.display());
    let program = script(dir.path(), "key.sh", &body);
    let provider = ExecProvider::new(program).with_timeout(Duration::from_secs(1));
    let result = provider.fingerprint();
    assert!(
        matches!(result, Err(ProviderError::ExecTimeout { .. })),
        "{result:?}"
    );
    let pid = child_pid(&pidfile);
    assert!(
        ends_soon(&pid),
        "the key program's child {pid} is still running"
    );
}

#[test]
fn kill_running_programs_ends_the_whole_group() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let body = format!("sleep 60 & echo $! > '{}'; sleep 60", pidfile.display());
    let program = script(dir.path(), "key.sh", &body);
    let provider = ExecProvider::new(program).with_timeout(Duration::from_secs(120));
    let running = std::thread::spawn(move || provider.fingerprint().map(|_| ()));
    let pid = child_pid(&pidfile);
    ExecProvider::kill_running_programs();
    let result = running.join().unwrap();
    // The program died of SIGKILL: no exit code.
    assert!(
        matches!(result, Err(ProviderError::ExecFailed { code: None, .. })),
        "{result:?}"
    );
    assert!(
        ends_soon(&pid),
        "the key program's child {pid} is still running"
    );
}
