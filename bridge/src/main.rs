//! `cerebros-bridge`: drop-in replacement for Thunderline's Python bridge stub and TPE CLI.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use bridge::cli::{Invocation, Settings, run};

fn main() {
    let started = Instant::now();
    let mut argv = std::env::args_os().map(|arg| arg.to_string_lossy().into_owned());
    let program = argv.next();
    let invocation = Invocation {
        program,
        args: argv.collect(),
        settings: Settings::from_lookup(|name| std::env::var(name).ok()),
    };
    let stdin = std::io::stdin();
    let stdin_is_terminal = stdin.is_terminal();
    let outcome = run(invocation, stdin, stdin_is_terminal, started);
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(&outcome.stdout)
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        eprintln!("cerebros-bridge: error: cannot write the reply: {e}");
        std::process::exit(1);
    }
    std::process::exit(outcome.exit_code);
}
