//! The `strongbox` command-line tool: offline key operations, encrypt, decrypt, verify, inspect,
//! backup and restore. Run `strongbox --help`.
#![forbid(unsafe_code)]
// At most 60 lines of code per function (clippy.toml).
#![warn(clippy::too_many_lines)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
