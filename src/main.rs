//! The `strongbox` command-line tool: offline key operations, encrypt, decrypt, verify, inspect,
//! backup and restore. Run `strongbox --help`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
