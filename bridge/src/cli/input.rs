//! Reading the request: stdin with a bound (the invoker never closes it), and the `{op, payload}` envelope.

use std::io::Read;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde_json::{Map, Value};

/// When a read of stdin is complete without an end of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// After one complete JSON document (the bridge payload).
    Document,
    /// After the first newline (the TPE protocol's one request line).
    Line,
}

/// Bounds of a stdin read.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Longest wait for the next chunk.
    pub idle: Duration,
    /// Time by which the read ends whatever happens.
    pub deadline: Instant,
    /// Largest input kept.
    pub max_bytes: usize,
}

/// Why a bounded read stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The writer closed its end.
    Eof,
    /// A complete document or line arrived.
    Complete,
    /// Nothing arrived for `idle`.
    Idle,
    /// The deadline passed.
    Deadline,
    /// More than `max_bytes` arrived.
    TooLarge,
    /// Reading failed.
    Failed,
}

/// Reads `reader` until `stop` is met, the writer closes it, or a limit is hit; never blocks past the limits.
///
/// The read runs on a helper thread; when the limits end the read first, that thread is left blocked and dies
/// with the process.
pub fn read_bounded<R>(reader: R, stop: StopAt, limits: ReadLimits) -> (Vec<u8>, ReadEnd)
where
    R: Read + Send + 'static,
{
    let (sender, receiver) = mpsc::channel::<std::io::Result<Vec<u8>>>();
    thread::spawn(move || {
        let mut reader = reader;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let message = match reader.read(&mut chunk) {
                Ok(n) => Ok(chunk[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let last = !matches!(&message, Ok(bytes) if !bytes.is_empty());
            if sender.send(message).is_err() || last {
                return;
            }
        }
    });

    let mut buffer = Vec::new();
    loop {
        let now = Instant::now();
        if now >= limits.deadline {
            return (buffer, ReadEnd::Deadline);
        }
        let wait = limits.idle.min(limits.deadline - now);
        match receiver.recv_timeout(wait) {
            Ok(Ok(bytes)) if bytes.is_empty() => return (buffer, ReadEnd::Eof),
            Ok(Ok(bytes)) => {
                buffer.extend_from_slice(&bytes);
                if buffer.len() > limits.max_bytes {
                    return (buffer, ReadEnd::TooLarge);
                }
                if let Some(end) = complete(&mut buffer, stop) {
                    return (buffer, end);
                }
            }
            Ok(Err(_)) => return (buffer, ReadEnd::Failed),
            Err(RecvTimeoutError::Disconnected) => return (buffer, ReadEnd::Eof),
            Err(RecvTimeoutError::Timeout) if Instant::now() >= limits.deadline => {
                return (buffer, ReadEnd::Deadline);
            }
            Err(RecvTimeoutError::Timeout) => return (buffer, ReadEnd::Idle),
        }
    }
}

/// Whether `buffer` already holds what `stop` asks for (cutting a line at its newline).
fn complete(buffer: &mut Vec<u8>, stop: StopAt) -> Option<ReadEnd> {
    match stop {
        StopAt::Line => {
            let newline = buffer.iter().position(|&b| b == b'\n')?;
            buffer.truncate(newline);
            Some(ReadEnd::Complete)
        }
        StopAt::Document => {
            // Only try a full parse when the input could have just ended a document.
            let last = buffer.iter().rev().find(|b| !b.is_ascii_whitespace())?;
            if !matches!(last, b'}' | b']') {
                return None;
            }
            serde_json::from_slice::<IgnoredAny>(buffer)
                .ok()
                .map(|_| ReadEnd::Complete)
        }
    }
}

/// The request of one bridge call: `{op, payload}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `op` of the envelope, when it names one.
    pub op: Option<String>,
    /// `payload` of the envelope; `{}` when absent, `null`, or the input is empty or not an object.
    pub body: Value,
    /// Why the input was treated as empty, when it was not empty.
    pub warning: Option<String>,
}

impl Envelope {
    /// Parses the raw input the way the stub did: empty or invalid JSON is an empty payload.
    pub fn parse(input: &[u8]) -> Self {
        let empty = |warning: Option<String>| Self {
            op: None,
            body: Value::Object(Map::new()),
            warning,
        };
        if input.iter().all(u8::is_ascii_whitespace) {
            return empty(None);
        }
        match serde_json::from_slice::<Value>(input) {
            Ok(Value::Object(mut object)) => {
                let op = match object.get("op") {
                    Some(Value::String(op)) if !op.trim().is_empty() => Some(op.trim().to_owned()),
                    _ => None,
                };
                let body = match object.remove("payload") {
                    None | Some(Value::Null) => Value::Object(Map::new()),
                    Some(body) => body,
                };
                Self {
                    op,
                    body,
                    warning: None,
                }
            }
            Ok(other) => empty(Some(format!(
                "payload is a JSON {}, not an object; treated as empty",
                json_type(&other)
            ))),
            Err(e) => empty(Some(format!(
                "payload is not valid JSON ({e}); treated as empty"
            ))),
        }
    }
}

/// Name of a JSON value's type, for messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Cursor;

    /// A reader that yields its chunks, then blocks forever like a pipe nobody closes.
    struct NeverClosed {
        chunks: Vec<Vec<u8>>,
    }

    impl Read for NeverClosed {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.chunks.is_empty() {
                loop {
                    thread::park();
                }
            }
            let chunk = self.chunks.remove(0);
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    fn limits(idle_ms: u64) -> ReadLimits {
        ReadLimits {
            idle: Duration::from_millis(idle_ms),
            deadline: Instant::now() + Duration::from_secs(10),
            max_bytes: 1024,
        }
    }

    #[test]
    fn a_closed_stdin_ends_at_eof() {
        let (bytes, end) = read_bounded(
            Cursor::new(b"{\"op\":".to_vec()),
            StopAt::Document,
            limits(5_000),
        );
        assert_eq!(end, ReadEnd::Eof);
        assert_eq!(bytes, b"{\"op\":");
    }

    #[test]
    fn a_complete_document_ends_the_read_without_eof() {
        let reader = NeverClosed {
            chunks: vec![b"{\"op\":\"x\",".to_vec(), b"\"payload\":{}}\n".to_vec()],
        };
        let (bytes, end) = read_bounded(reader, StopAt::Document, limits(5_000));
        assert_eq!(end, ReadEnd::Complete);
        assert_eq!(Envelope::parse(&bytes).op.as_deref(), Some("x"));
    }

    #[test]
    fn a_silent_stdin_ends_after_the_idle_time() {
        let started = Instant::now();
        let (bytes, end) =
            read_bounded(NeverClosed { chunks: vec![] }, StopAt::Document, limits(50));
        assert_eq!(end, ReadEnd::Idle);
        assert!(bytes.is_empty());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_deadline_ends_a_read_that_keeps_waiting() {
        let limits = ReadLimits {
            idle: Duration::from_secs(60),
            deadline: Instant::now() + Duration::from_millis(50),
            max_bytes: 1024,
        };
        let (_, end) = read_bounded(NeverClosed { chunks: vec![] }, StopAt::Line, limits);
        assert_eq!(end, ReadEnd::Deadline);
    }

    #[test]
    fn a_line_read_stops_at_the_first_newline() {
        let reader = NeverClosed {
            chunks: vec![b"{\"function\":\"ping\"}\n{\"next\":1}".to_vec()],
        };
        let (bytes, end) = read_bounded(reader, StopAt::Line, limits(5_000));
        assert_eq!(end, ReadEnd::Complete);
        assert_eq!(bytes, b"{\"function\":\"ping\"}");
    }

    #[test]
    fn oversized_input_is_cut_off() {
        let (_, end) = read_bounded(
            Cursor::new(vec![b' '; 4096]),
            StopAt::Document,
            limits(5_000),
        );
        assert_eq!(end, ReadEnd::TooLarge);
    }

    #[test]
    fn empty_and_invalid_input_are_empty_payloads() {
        let empty = Envelope::parse(b"  \n");
        assert_eq!(
            (empty.op, empty.body, empty.warning),
            (None, json!({}), None)
        );
        let invalid = Envelope::parse(b"{not json");
        assert_eq!(invalid.body, json!({}));
        assert!(invalid.warning.unwrap().contains("not valid JSON"));
        let array = Envelope::parse(b"[1,2]");
        assert_eq!(array.body, json!({}));
        assert!(array.warning.unwrap().contains("array"));
    }

    #[test]
    fn the_envelope_gives_op_and_payload() {
        let envelope = Envelope::parse(br#"{"op":"record_trial","payload":{"run_id":"r"}}"#);
        assert_eq!(envelope.op.as_deref(), Some("record_trial"));
        assert_eq!(envelope.body, json!({"run_id": "r"}));
        let no_payload = Envelope::parse(br#"{"op":"x","payload":null}"#);
        assert_eq!(no_payload.body, json!({}));
    }
}
