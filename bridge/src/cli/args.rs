//! The command line as Thunderline's invoker builds it: `[SCRIPT] --bridge-op OP [anything else]`.

use std::path::Path;

/// What the command line asks for. Unknown flags and extra positional arguments are tolerated and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// The leading path argument (the script the binary stands in for), if any.
    pub script: Option<String>,
    /// Value of `--bridge-op`.
    pub bridge_op: Option<String>,
    /// `--tpe`: speak the TPE CLI protocol.
    pub tpe_flag: bool,
    /// `--help` / `-h`.
    pub help: bool,
    /// `--version` / `-V`.
    pub version: bool,
    /// Arguments that were ignored, for the debug log.
    pub ignored: Vec<String>,
}

impl Args {
    /// Parses the arguments after the program name. Never fails: the invoker's argv must always be accepted.
    pub fn parse<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut parsed = Self::default();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bridge-op" => match args.next() {
                    Some(op) => parsed.bridge_op = Some(op),
                    None => parsed.ignored.push(arg),
                },
                "--tpe" => parsed.tpe_flag = true,
                "--help" | "-h" => parsed.help = true,
                "--version" | "-V" => parsed.version = true,
                _ => {
                    if let Some(op) = arg.strip_prefix("--bridge-op=") {
                        parsed.bridge_op = Some(op.to_owned());
                    } else if parsed.script.is_none()
                        && parsed.bridge_op.is_none()
                        && !arg.starts_with('-')
                    {
                        parsed.script = Some(arg);
                    } else {
                        parsed.ignored.push(arg);
                    }
                }
            }
        }
        parsed
    }

    /// Whether the binary stands in for Thunderline's `tpe_cli.py`: `--tpe`, or a script or program
    /// named `tpe_cli` (with any extension).
    pub fn is_tpe(&self, program: Option<&str>) -> bool {
        let named_tpe = |path: &str| {
            Path::new(path)
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|stem| stem == "tpe_cli")
        };
        self.tpe_flag
            || self.script.as_deref().is_some_and(named_tpe)
            || program.is_some_and(named_tpe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invokers_argv_gives_script_and_op() {
        let args = Args::parse([
            "/app/priv/cerebros_bridge_stub.py",
            "--bridge-op",
            "record_trial",
        ]);
        assert_eq!(
            args.script.as_deref(),
            Some("/app/priv/cerebros_bridge_stub.py")
        );
        assert_eq!(args.bridge_op.as_deref(), Some("record_trial"));
        assert!(!args.is_tpe(None));
    }

    #[test]
    fn the_script_is_optional_and_the_equals_form_works() {
        let args = Args::parse(["--bridge-op=start_run"]);
        assert_eq!(args.script, None);
        assert_eq!(args.bridge_op.as_deref(), Some("start_run"));
    }

    #[test]
    fn unknown_flags_and_extra_words_are_ignored() {
        let args = Args::parse(["s.py", "--bridge-op", "x", "--verbose", "extra", "-q"]);
        assert_eq!(args.bridge_op.as_deref(), Some("x"));
        assert_eq!(args.ignored, vec!["--verbose", "extra", "-q"]);
    }

    #[test]
    fn a_dangling_bridge_op_is_ignored() {
        let args = Args::parse(["--bridge-op"]);
        assert_eq!(args.bridge_op, None);
        assert_eq!(args.ignored, vec!["--bridge-op"]);
    }

    #[test]
    fn help_and_version_are_recognised() {
        assert!(Args::parse(["--help"]).help);
        assert!(Args::parse(["-V"]).version);
    }

    #[test]
    fn tpe_mode_comes_from_the_flag_the_script_or_the_program_name() {
        assert!(Args::parse(["--tpe"]).is_tpe(None));
        assert!(Args::parse(["python/cerebros/service/tpe_cli.py"]).is_tpe(None));
        assert!(Args::parse(Vec::<String>::new()).is_tpe(Some("/usr/local/bin/tpe_cli")));
        assert!(!Args::parse(["tpe_cli_old.py"]).is_tpe(Some("cerebros-bridge")));
    }
}
