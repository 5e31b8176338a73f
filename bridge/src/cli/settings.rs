//! Settings read from the environment, once, at the edge.

use std::time::Duration;

/// Budget of a bridge call when `CEREBROS_TIMEOUT_MS` is unset (Thunderline's default).
pub const DEFAULT_TIMEOUT_MS: u64 = 15_000;
/// Budget of a TPE call when `CEREBROS_TPE_TIMEOUT_MS` is unset (Thunderline's `TPEClient` waits 30 s).
pub const DEFAULT_TPE_TIMEOUT_MS: u64 = 30_000;
/// How long stdin may stay silent before the payload read gives up, when nothing says otherwise.
pub const DEFAULT_STDIN_IDLE_MS: u64 = 200;
/// Largest payload read from stdin (the runner's default body limit).
pub const MAX_STDIN_BYTES: usize = 32 * 1024 * 1024;

/// Everything the environment says about this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `CEREBROS_REMOTE_URL`, when non-empty: forward to the runner.
    pub remote_url: Option<String>,
    /// `CEREBROS_URL` (the Livebook's variable), used by the TPE protocol when no remote URL is set.
    pub runner_url: Option<String>,
    /// `CEREBROS_REMOTE_TOKEN`, else `RUNNER_API_TOKEN`: bearer token for the runner.
    pub token: Option<String>,
    /// `CEREBROS_TIMEOUT_MS`: the invoker's per-attempt timeout.
    pub timeout: Duration,
    /// `CEREBROS_TPE_TIMEOUT_MS`: the TPE client's timeout.
    pub tpe_timeout: Duration,
    /// `CEREBROS_BRIDGE_STDIN_IDLE_MS`: longest silence on stdin before the read stops.
    pub stdin_idle: Duration,
    /// `CEREBROS_BRIDGE_OP`.
    pub op: Option<String>,
    /// `CEREBROS_BRIDGE_PAYLOAD`, when set at all (even empty: then stdin is not read).
    pub payload: Option<String>,
    /// `CEREBROS_BRIDGE_RUN_ID`.
    pub run_id: Option<String>,
    /// `CEREBROS_BRIDGE_TRIAL_ID`.
    pub trial_id: Option<String>,
    /// `CEREBROS_BRIDGE_STATUS`.
    pub status: Option<String>,
    /// `CEREBROS_BRIDGE_CORRELATION`.
    pub correlation: Option<String>,
    /// `CEREBROS_BRIDGE_LOG=debug`: log decisions to stderr.
    pub debug: bool,
    /// Problems found while reading the environment (bad numbers), for the log.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Reads the settings through `lookup` (`std::env::var` in the binary, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut warnings = Vec::new();
        let mut millis = |name: &str, default: u64| {
            let Some(raw) = non_empty(name) else {
                return Duration::from_millis(default);
            };
            match raw.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    warnings.push(format!(
                        "{name}={raw:?} is not a positive number of milliseconds; using {default}"
                    ));
                    Duration::from_millis(default)
                }
            }
        };
        let timeout = millis("CEREBROS_TIMEOUT_MS", DEFAULT_TIMEOUT_MS);
        let tpe_timeout = millis("CEREBROS_TPE_TIMEOUT_MS", DEFAULT_TPE_TIMEOUT_MS);
        let stdin_idle = millis("CEREBROS_BRIDGE_STDIN_IDLE_MS", DEFAULT_STDIN_IDLE_MS);
        Self {
            remote_url: non_empty("CEREBROS_REMOTE_URL").map(|u| u.trim().to_owned()),
            runner_url: non_empty("CEREBROS_URL").map(|u| u.trim().to_owned()),
            token: non_empty("CEREBROS_REMOTE_TOKEN").or_else(|| non_empty("RUNNER_API_TOKEN")),
            timeout,
            tpe_timeout,
            stdin_idle,
            op: non_empty("CEREBROS_BRIDGE_OP").map(|op| op.trim().to_owned()),
            payload: lookup("CEREBROS_BRIDGE_PAYLOAD"),
            run_id: non_empty("CEREBROS_BRIDGE_RUN_ID"),
            trial_id: non_empty("CEREBROS_BRIDGE_TRIAL_ID"),
            status: non_empty("CEREBROS_BRIDGE_STATUS"),
            correlation: non_empty("CEREBROS_BRIDGE_CORRELATION"),
            debug: non_empty("CEREBROS_BRIDGE_LOG")
                .is_some_and(|v| v.eq_ignore_ascii_case("debug")),
            warnings,
        }
    }

    /// The runner the TPE protocol talks to: the remote URL, else `CEREBROS_URL`.
    pub fn tpe_runner_url(&self) -> Option<&str> {
        self.remote_url.as_deref().or(self.runner_url.as_deref())
    }
}

/// The part of `timeout` a call may spend: the timeout minus a safety margin of a tenth, at most one second,
/// so the answer is written before the invoker gives up on the process.
pub fn budget(timeout: Duration) -> Duration {
    let margin = (timeout / 10).min(Duration::from_secs(1));
    timeout - margin
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_to_an_empty_environment() {
        let s = settings(&[]);
        assert_eq!(s.remote_url, None);
        assert_eq!(s.timeout, Duration::from_millis(15_000));
        assert_eq!(s.payload, None);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn an_empty_remote_url_means_local_mode_but_an_empty_payload_is_still_a_payload() {
        let s = settings(&[
            ("CEREBROS_REMOTE_URL", " "),
            ("CEREBROS_BRIDGE_PAYLOAD", ""),
        ]);
        assert_eq!(s.remote_url, None);
        assert_eq!(s.payload.as_deref(), Some(""));
    }

    #[test]
    fn a_bad_timeout_falls_back_with_a_warning() {
        let s = settings(&[("CEREBROS_TIMEOUT_MS", "soon")]);
        assert_eq!(s.timeout, Duration::from_millis(15_000));
        assert_eq!(s.warnings.len(), 1);
        let s = settings(&[("CEREBROS_TIMEOUT_MS", "0")]);
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn the_token_falls_back_to_the_runners_variable() {
        assert_eq!(
            settings(&[("RUNNER_API_TOKEN", "t")]).token.as_deref(),
            Some("t")
        );
        let both = settings(&[("RUNNER_API_TOKEN", "t"), ("CEREBROS_REMOTE_TOKEN", "u")]);
        assert_eq!(both.token.as_deref(), Some("u"));
    }

    #[test]
    fn the_tpe_runner_prefers_the_remote_url() {
        let s = settings(&[
            ("CEREBROS_URL", "http://b"),
            ("CEREBROS_REMOTE_URL", "http://a"),
        ]);
        assert_eq!(s.tpe_runner_url(), Some("http://a"));
        assert_eq!(
            settings(&[("CEREBROS_URL", "http://b")]).tpe_runner_url(),
            Some("http://b")
        );
    }

    #[test]
    fn the_budget_keeps_a_margin() {
        assert_eq!(
            budget(Duration::from_millis(15_000)),
            Duration::from_millis(14_000)
        );
        assert_eq!(
            budget(Duration::from_millis(2_000)),
            Duration::from_millis(1_800)
        );
    }
}
