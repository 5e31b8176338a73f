//! What the binary prints: exactly one JSON document, and the exit code that goes with it.

use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use crate::error::ClientError;

/// Exit code of a successful call.
pub const EXIT_OK: i32 = 0;
/// Exit code when the runner could not be reached or refused the call.
pub const EXIT_FAILED: i32 = 1;
/// Exit code for a call that cannot be made as given (bad payload, unknown op, no runner).
pub const EXIT_USAGE: i32 = 2;

/// The document to print on stdout and the process's exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// One JSON document followed by a newline.
    pub stdout: Vec<u8>,
    /// Process exit code.
    pub exit_code: i32,
}

impl Outcome {
    /// A JSON value and an exit code.
    pub fn json(value: &Value, exit_code: i32) -> Self {
        let mut stdout = value.to_string().into_bytes();
        stdout.push(b'\n');
        Self { stdout, exit_code }
    }

    /// The stub's local reply: `{"status":"ok","op":…,"echo":…}`.
    pub fn echo(op: &str, body: Value) -> Self {
        Self::json(&json!({"status": "ok", "op": op, "echo": body}), EXIT_OK)
    }

    /// The runner's 2xx reply, printed as it came when it is JSON; `{"status":"ok"}` for an empty body and
    /// `{"status":"ok","raw":…}` for a body that is not JSON, as the stub did.
    pub fn pass_through(body: &[u8]) -> Self {
        let trimmed = body.trim_ascii();
        if trimmed.is_empty() {
            return Self::json(&json!({"status": "ok"}), EXIT_OK);
        }
        if serde_json::from_slice::<IgnoredAny>(trimmed).is_ok() {
            let mut stdout = trimmed.to_vec();
            stdout.push(b'\n');
            return Self {
                stdout,
                exit_code: EXIT_OK,
            };
        }
        let raw = String::from_utf8_lossy(trimmed);
        Self::json(&json!({"status": "ok", "raw": raw}), EXIT_OK)
    }
}

/// A failed call, as reported in `{"status":"error","error":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Class of failure (`connect`, `timeout`, `http_status`, `invalid_payload`, `unsupported_op`, …).
    pub kind: String,
    /// What happened.
    pub message: String,
    /// Requests sent to the runner.
    pub attempts: u32,
    /// HTTP status of the runner's last answer, if it answered.
    pub http_status: Option<u16>,
    /// The runner's error code, if it gave one.
    pub code: Option<String>,
}

impl Failure {
    /// A failure that happened before any request was sent.
    pub fn local(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.into(),
            attempts: 0,
            http_status: None,
            code: None,
        }
    }

    /// The `error` object: `{kind, message, attempts}` plus `http_status` and `code` when known.
    pub fn error_object(&self) -> Value {
        let mut error = Map::new();
        error.insert("kind".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        error.insert("attempts".into(), json!(self.attempts));
        if let Some(status) = self.http_status {
            error.insert("http_status".into(), json!(status));
        }
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
        }
        Value::Object(error)
    }

    /// `{"status":"error","reason":…,"error":{…}}`: `reason` as the stub and the TPE CLI spelled it.
    pub fn to_json(&self) -> Value {
        json!({"status": "error", "reason": self.message, "error": self.error_object()})
    }

    /// The bridge's failure outcome.
    pub fn outcome(&self, exit_code: i32) -> Outcome {
        Outcome::json(&self.to_json(), exit_code)
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self {
            kind: error.kind.as_str().to_owned(),
            message: error.message,
            attempts: error.attempts,
            http_status: error.http_status,
            code: error.code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn parsed(outcome: &Outcome) -> Value {
        serde_json::from_slice(&outcome.stdout).unwrap()
    }

    #[test]
    fn echo_has_the_stub_shape() {
        let outcome = Outcome::echo("record_trial", json!({"a": 1}));
        assert_eq!(
            parsed(&outcome),
            json!({"status": "ok", "op": "record_trial", "echo": {"a": 1}})
        );
        assert_eq!(outcome.exit_code, EXIT_OK);
        assert!(outcome.stdout.ends_with(b"}\n"));
    }

    #[test]
    fn runner_json_is_printed_byte_for_byte() {
        let body = br#" {"run_id":"r","status":"started","zeta":1,"alpha":2} "#;
        let outcome = Outcome::pass_through(body);
        assert_eq!(
            outcome.stdout,
            b"{\"run_id\":\"r\",\"status\":\"started\",\"zeta\":1,\"alpha\":2}\n"
        );
    }

    #[test]
    fn empty_and_non_json_bodies_get_the_stub_fallbacks() {
        assert_eq!(parsed(&Outcome::pass_through(b"")), json!({"status": "ok"}));
        assert_eq!(
            parsed(&Outcome::pass_through(b"OK")),
            json!({"status": "ok", "raw": "OK"})
        );
        assert_eq!(
            parsed(&Outcome::pass_through(b"{} {}")),
            json!({"status": "ok", "raw": "{} {}"})
        );
    }

    #[test]
    fn a_client_error_becomes_the_error_document() {
        let error = ClientError {
            attempts: 3,
            http_status: Some(503),
            code: Some("not_ready".into()),
            ..ClientError::new(ErrorKind::HttpStatus, "503: database down")
        };
        let outcome = Failure::from(error).outcome(EXIT_FAILED);
        assert_eq!(
            parsed(&outcome),
            json!({"status": "error", "reason": "503: database down", "error": {
                "kind": "http_status", "message": "503: database down", "attempts": 3,
                "http_status": 503, "code": "not_ready"}})
        );
        assert_eq!(outcome.exit_code, EXIT_FAILED);
    }
}
