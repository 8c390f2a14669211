//! A progress bar on stderr for long operations, drawn only when stderr is a terminal
//! (never in logs or pipes).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reports how far an operation has got; hidden unless made for a terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Draws nothing.
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    /// A bar on stderr labelled `label` when stderr is a terminal; hidden otherwise.
    pub fn on_terminal(label: &'static str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} entries ({per_sec}, {eta} left)",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label);
        Self { bar }
    }

    /// Whether anything is drawn.
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }

    pub(crate) fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub(crate) fn advance(&self, by: u64) {
        self.bar.inc(by);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bar_without_a_terminal() {
        // Under `cargo test` stderr is captured or piped, never a terminal here.
        if !std::io::stderr().is_terminal() {
            assert!(Progress::on_terminal("copy").is_hidden());
        }
        assert!(Progress::hidden().is_hidden());
    }
}
