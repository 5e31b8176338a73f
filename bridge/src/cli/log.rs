//! Plain-text log lines on stderr (stdout carries only the reply). No JSON here: the TPE client merges stderr
//! into stdout and takes the last line starting with `{` as the reply.

use std::fmt::Display;

/// Writes log lines to stderr.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    debug: bool,
}

impl Log {
    /// A log that writes warnings always and debug lines when `debug` is set.
    pub fn new(debug: bool) -> Self {
        Self { debug }
    }

    /// Something the caller should know about.
    pub fn warn(&self, message: impl Display) {
        eprintln!("cerebros-bridge: warning: {message}");
    }

    /// A failure reported in the reply.
    pub fn error(&self, message: impl Display) {
        eprintln!("cerebros-bridge: error: {message}");
    }

    /// A decision, for troubleshooting (`CEREBROS_BRIDGE_LOG=debug`).
    pub fn debug(&self, message: impl Display) {
        if self.debug {
            eprintln!("cerebros-bridge: debug: {message}");
        }
    }
}
