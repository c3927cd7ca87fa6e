//! The progress bar: on stderr, only when stderr is a terminal and `--quiet` was not given.

use std::io::{IsTerminal as _, Read};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressBarIter, ProgressDrawTarget, ProgressStyle};

/// A progress bar counting the bytes read through [`Progress::wrap`]; invisible (and free) when
/// stderr is not a terminal or `--quiet` was given.
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar for `len` bytes (a spinner with a byte count if the length is unknown).
    pub fn new(quiet: bool, len: Option<u64>, label: &'static str) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress(ProgressBar::hidden());
        }
        let bar = match len {
            Some(len) => ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{msg} {spinner} {bytes} {binary_bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(label);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(bar)
    }

    /// `reader`, counting what is read from it.
    pub fn wrap<R: Read>(&self, reader: R) -> ProgressBarIter<R> {
        self.0.wrap_read(reader)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // On an error path the bar must not linger above the `error:` line.
        self.0.finish_and_clear();
    }
}
