//! What a run says on stderr besides warnings and errors, and whether stdout gets colour: the one
//! place where the global flags `--quiet`, `-v` and `--color` act. The command line sets them once
//! at the start ([`set`]); every layer reports through `info!` and `verbose!`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

/// How much a run says on stderr. Warnings and errors are always printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `--quiet`: no progress and no informational lines.
    Quiet,
    /// Progress on a terminal and one line per file written.
    Normal,
    /// `-v`: also what the run did (files read, queries run, API calls made).
    Verbose,
}

/// When stdout gets colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (<https://no-color.org>).
    Auto,
    /// Always, even with `NO_COLOR` set: the user asked for it explicitly.
    Always,
    Never,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);
static COLOR: AtomicU8 = AtomicU8::new(ColorChoice::Auto as u8);

/// Sets the run's verbosity and colour; the command line calls this once, before any output.
pub fn set(verbosity: Verbosity, color: ColorChoice) {
    VERBOSITY.store(verbosity as u8, Ordering::Relaxed);
    COLOR.store(color as u8, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// Whether progress and informational lines are shown (not `--quiet`).
pub fn shows_info() -> bool {
    verbosity() >= Verbosity::Normal
}

/// Whether `-v` was given.
pub fn shows_verbose() -> bool {
    verbosity() >= Verbosity::Verbose
}

/// Whether stdout gets colour, by `--color` and the environment.
pub fn stdout_color() -> bool {
    let choice = match COLOR.load(Ordering::Relaxed) {
        0 => ColorChoice::Auto,
        1 => ColorChoice::Always,
        _ => ColorChoice::Never,
    };
    color(
        choice,
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    )
}

/// The precedence: an explicit `always` or `never` wins; `auto` colours a terminal unless `NO_COLOR`.
fn color(choice: ColorChoice, terminal: bool, no_color: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && !no_color,
    }
}

/// An informational line on stderr (`wrote ...`, `saved ...`), left out under `--quiet`.
macro_rules! info {
    ($($arg:tt)*) => {
        if $crate::util::term::shows_info() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use info;

/// A line on stderr under `-v` only: what the run read, queried or called.
macro_rules! verbose {
    ($($arg:tt)*) => {
        if $crate::util::term::shows_verbose() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use verbose;

#[cfg(test)]
mod tests {
    use super::{ColorChoice, color};

    #[test]
    fn an_explicit_choice_wins_over_no_color_and_the_terminal() {
        assert!(color(ColorChoice::Always, false, true));
        assert!(!color(ColorChoice::Never, true, false));
        assert!(color(ColorChoice::Auto, true, false));
        assert!(!color(ColorChoice::Auto, true, true));
        assert!(!color(ColorChoice::Auto, false, false));
    }
}
