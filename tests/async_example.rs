//! Runs `examples/async_backup.rs` so that it cannot rot: same code, in a temporary directory.
#[allow(dead_code)]
#[path = "../examples/async_backup.rs"]
mod example;

#[test]
fn the_async_example_runs_and_checks_what_it_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let outcome = runtime.block_on(example::run(tmp.path())).unwrap();
    assert!(outcome.restored_identical);
    assert!(outcome.uploaded > 100);
    assert_eq!(outcome.byte_at_1000, 1000u32 as u8);
}
