//! Launching `cerebros-bridge` the way Thunderline's invoker does, and small TCP servers that inject faults.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Variables the tests set themselves; removed from the inherited environment first.
const OWN_VARS: &[&str] = &[
    "CEREBROS_REMOTE_URL",
    "CEREBROS_URL",
    "CEREBROS_TIMEOUT_MS",
    "CEREBROS_TPE_TIMEOUT_MS",
    "CEREBROS_BRIDGE_OP",
    "CEREBROS_BRIDGE_PAYLOAD",
    "CEREBROS_BRIDGE_RUN_ID",
    "CEREBROS_BRIDGE_TRIAL_ID",
    "CEREBROS_BRIDGE_STATUS",
    "CEREBROS_BRIDGE_CORRELATION",
    "CEREBROS_REMOTE_TOKEN",
    "RUNNER_API_TOKEN",
];

/// What one call of the binary produced.
#[derive(Debug)]
pub struct Call {
    /// Raw stdout.
    pub stdout: Vec<u8>,
    /// Stderr as text.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
    /// Time from spawn to exit.
    pub elapsed: Duration,
}

impl Call {
    /// Stdout parsed as exactly one JSON document (panics otherwise: that is the contract).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {:?}; stderr: {}",
                String::from_utf8_lossy(&self.stdout),
                self.stderr
            )
        })
    }
}

/// Runs the binary with `args` and `env`, writes `stdin` (if any) and never closes stdin, as `System.cmd` does.
pub fn invoke(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Call {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cerebros-bridge"));
    for var in OWN_VARS {
        command.env_remove(var);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn cerebros-bridge");
    let mut child_stdin = child.stdin.take().expect("stdin is piped");
    if let Some(data) = stdin {
        child_stdin.write_all(data).expect("write stdin");
        child_stdin.flush().expect("flush stdin");
    }
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let code = wait(&mut child, Duration::from_secs(60));
    let elapsed = started.elapsed();
    drop(child_stdin);
    Call {
        stdout: stdout.join().expect("stdout reader"),
        stderr: String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned(),
        code,
        elapsed,
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for the child; a child still running after `limit` is killed and the test fails.
fn wait(child: &mut Child, limit: Duration) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code().unwrap_or(-1);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "cerebros-bridge still running after {limit:?}: it waited on stdin or the network"
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A server that accepts connections and never answers; returns its port.
pub fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// One request as the scripted server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Request line, e.g. `POST /bridge/start HTTP/1.1`.
    pub line: String,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body parsed as JSON (`null` when empty).
    pub body: Value,
}

/// A server that answers the n-th request with the n-th scripted `(status, body)` (the last one repeats).
pub struct ScriptedServer {
    /// Its port.
    pub port: u16,
    /// Requests received so far.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl ScriptedServer {
    /// Starts the server.
    pub fn start(script: Vec<(u16, &'static str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for (n, stream) in listener.incoming().flatten().enumerate() {
                let (status, body) = script[n.min(script.len() - 1)];
                if let Some(request) = serve(stream, status, body) {
                    log.lock().expect("lock").push(request);
                }
            }
        });
        Self { port, seen }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(stream: TcpStream, status: u16, body: &str) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
        if name == "content-length" {
            length = value.parse().ok()?;
        }
        headers.push((name, value));
    }
    let mut raw = vec![0u8; length];
    reader.read_exact(&mut raw).ok()?;
    let reason = match status {
        200 => "OK",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let reply = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    stream.write_all(reply.as_bytes()).ok()?;
    Some(Seen {
        line: line.trim_end().to_owned(),
        headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
    })
}
