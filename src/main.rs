//! The `strongbox` command-line tool.

fn main() {
    eprintln!("error: no commands yet");
    std::process::exit(2);
}
