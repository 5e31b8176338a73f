//! The `cerebros-bridge` command: a drop-in for Thunderline's bridge stub and TPE CLI.
//!
//! [`run`] does the whole call and returns what to print and the exit code; `main` only gathers the process's
//! argv, environment and stdin and writes the outcome.

mod args;
mod input;
mod log;
mod ops;
mod reply;
mod settings;
mod tpe;

use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::Method;

pub use args::Args;
pub use input::{Envelope, ReadEnd, ReadLimits, StopAt, read_bounded};
pub use log::Log;
pub use ops::{BridgeOp, PayloadError, contract_body};
pub use reply::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, Failure, Outcome};
pub use settings::{Settings, budget};
pub use tpe::{VALUE_METRIC, runner_trial_id};

use crate::client::{ClientConfig, RunnerClient};
use settings::MAX_STDIN_BYTES;

/// Everything a call starts from.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `argv[0]`.
    pub program: Option<String>,
    /// The arguments after it.
    pub args: Vec<String>,
    /// The environment, read once.
    pub settings: Settings,
}

/// Runs one call. `stdin` is read only when the request is not in the environment, and never past the limits.
pub fn run<R>(
    invocation: Invocation,
    stdin: R,
    stdin_is_terminal: bool,
    started: Instant,
) -> Outcome
where
    R: Read + Send + 'static,
{
    let Invocation {
        program,
        args,
        settings,
    } = invocation;
    let args = Args::parse(args);
    let log = Log::new(settings.debug);
    if args.help {
        return text(&help());
    }
    if args.version {
        return text(&format!("cerebros-bridge {}\n", env!("CARGO_PKG_VERSION")));
    }
    for warning in &settings.warnings {
        log.warn(warning);
    }
    if !args.ignored.is_empty() {
        log.debug(format_args!("ignored arguments: {:?}", args.ignored));
    }
    if args.is_tpe(program.as_deref()) {
        run_tpe(&settings, stdin, started, log)
    } else {
        run_bridge(&settings, &args, stdin, stdin_is_terminal, started, log)
    }
}

fn run_bridge<R>(
    settings: &Settings,
    args: &Args,
    stdin: R,
    stdin_is_terminal: bool,
    started: Instant,
    log: Log,
) -> Outcome
where
    R: Read + Send + 'static,
{
    let deadline = started + budget(settings.timeout);
    let input = match &settings.payload {
        Some(payload) => payload.clone().into_bytes(),
        None if stdin_is_terminal => Vec::new(),
        None => {
            let limits = ReadLimits {
                idle: settings.stdin_idle,
                deadline,
                max_bytes: MAX_STDIN_BYTES,
            };
            let (bytes, end) = read_bounded(stdin, StopAt::Document, limits);
            log.debug(format_args!(
                "stdin: {} bytes, ended by {end:?}",
                bytes.len()
            ));
            if end == ReadEnd::TooLarge {
                return fail(
                    log,
                    Failure::local(
                        "invalid_payload",
                        format!("payload on stdin exceeds {MAX_STDIN_BYTES} bytes"),
                    ),
                    EXIT_USAGE,
                );
            }
            bytes
        }
    };
    let envelope = Envelope::parse(&input);
    if let Some(warning) = &envelope.warning {
        log.warn(warning);
    }
    let op = settings
        .op
        .clone()
        .or_else(|| args.bridge_op.clone())
        .or(envelope.op)
        .unwrap_or_else(|| "unknown".to_owned());
    let Some(remote_url) = &settings.remote_url else {
        log.debug(format_args!("local mode: echoing op {op}"));
        return Outcome::echo(&op, envelope.body);
    };
    let Some(bridge_op) = BridgeOp::parse(&op) else {
        let message = format!(
            "op {op:?} cannot be forwarded: the runner serves start_run, record_trial and finalize_run"
        );
        return fail(log, Failure::local("unsupported_op", message), EXIT_USAGE);
    };
    let body = match contract_body(bridge_op, envelope.body, settings, &now()) {
        Ok(body) => body,
        Err(e) => return fail(log, Failure::local("invalid_payload", e.0), EXIT_USAGE),
    };
    let client = match client(remote_url, settings, deadline) {
        Ok(client) => client,
        Err(failure) => return fail(log, failure, EXIT_USAGE),
    };
    log.debug(format_args!(
        "POST {}{}",
        client.base_url(),
        bridge_op.path()
    ));
    let result = block_on(client.execute(Method::POST, bridge_op.path(), Some(&body)));
    match result {
        Ok(Ok(reply)) => Outcome::pass_through(&reply.body),
        Ok(Err(error)) => fail(log, Failure::from(error), EXIT_FAILED),
        Err(failure) => fail(log, failure, EXIT_FAILED),
    }
}

fn run_tpe<R>(settings: &Settings, stdin: R, started: Instant, log: Log) -> Outcome
where
    R: Read + Send + 'static,
{
    let deadline = started + budget(settings.tpe_timeout);
    let limits = ReadLimits {
        idle: deadline.saturating_duration_since(Instant::now()),
        deadline,
        max_bytes: MAX_STDIN_BYTES,
    };
    let (line, end) = read_bounded(stdin, StopAt::Line, limits);
    log.debug(format_args!(
        "TPE request: {} bytes, ended by {end:?}",
        line.len()
    ));
    let runner = match settings.tpe_runner_url() {
        Some(url) => client(url, settings, deadline),
        None => Err(Failure::local(
            "no_runner",
            "no runner configured: set CEREBROS_REMOTE_URL (or CEREBROS_URL)",
        )),
    };
    let reply = block_on(tpe::respond(
        &line,
        runner.as_ref().map_err(Clone::clone),
        &now(),
    ))
    .unwrap_or_else(|failure| failure.to_json());
    if let Some(reason) = reply.get("reason").filter(|_| reply["status"] == "error") {
        log.error(reason);
    }
    Outcome::json(&reply, EXIT_OK)
}

fn client(url: &str, settings: &Settings, deadline: Instant) -> Result<RunnerClient, Failure> {
    let mut config = ClientConfig::new(url);
    config.token = settings.token.clone();
    config.call_timeout = deadline.saturating_duration_since(Instant::now());
    config.connect_timeout = Duration::from_secs(2).min(config.call_timeout);
    config.deadline = Some(deadline);
    RunnerClient::new(config).map_err(Failure::from)
}

/// Runs `future` on a single-threaded runtime built for this one call.
fn block_on<F: Future>(future: F) -> Result<F::Output, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::local("internal", format!("cannot start the I/O runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

fn fail(log: Log, failure: Failure, exit_code: i32) -> Outcome {
    log.error(format_args!("{}: {}", failure.kind, failure.message));
    failure.outcome(exit_code)
}

fn text(message: &str) -> Outcome {
    Outcome {
        stdout: message.as_bytes().to_vec(),
        exit_code: EXIT_OK,
    }
}

/// The current time in RFC 3339, for contracts that need a timestamp the caller did not give.
fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn help() -> String {
    format!(
        "cerebros-bridge {version}: Thunderline's Cerebros bridge and TPE CLI, served by the Cerebros runner.

Usage:
  cerebros-bridge [SCRIPT] [--bridge-op OP] [ignored…]    bridge call (SCRIPT is accepted and ignored)
  cerebros-bridge [tpe_cli.py | --tpe]                     TPE CLI: one JSON line in, one out
  cerebros-bridge --help | --version

Bridge call: op from CEREBROS_BRIDGE_OP, then --bridge-op, then the payload's \"op\". Payload
{{\"op\",\"payload\"}} from CEREBROS_BRIDGE_PAYLOAD, else stdin (read until one JSON document, end of
file, or CEREBROS_BRIDGE_STDIN_IDLE_MS of silence, default 200). With CEREBROS_REMOTE_URL set,
start_run, record_trial and finalize_run go to the runner's /bridge/start, /bridge/record and
/bridge/finalize and its JSON reply is printed; without it the reply is the echo
{{\"status\":\"ok\",\"op\",\"echo\"}}. The call ends within CEREBROS_TIMEOUT_MS (default 15000) less a margin,
retrying connection failures, timeouts, 408, 429 and 5xx inside it.

Exit codes: 0 success; 1 the runner failed or could not be reached; 2 the call cannot be made as given.
Failures print {{\"status\":\"error\",\"reason\",\"error\":{{\"kind\",\"message\",\"attempts\"}}}}.
TPE replies always exit 0, errors as {{\"status\":\"error\",\"reason\"}} (the protocol's convention).

Environment: CEREBROS_REMOTE_URL, CEREBROS_URL (TPE fallback), CEREBROS_REMOTE_TOKEN or
RUNNER_API_TOKEN (bearer token), CEREBROS_TIMEOUT_MS, CEREBROS_TPE_TIMEOUT_MS (default 30000),
CEREBROS_BRIDGE_OP, CEREBROS_BRIDGE_PAYLOAD, CEREBROS_BRIDGE_RUN_ID, CEREBROS_BRIDGE_TRIAL_ID,
CEREBROS_BRIDGE_STATUS, CEREBROS_BRIDGE_CORRELATION, CEREBROS_BRIDGE_LOG=debug.
",
        version = env!("CARGO_PKG_VERSION")
    )
}
