//! Status enums of the contracts and the objective's direction, parsed case-insensitively.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A status or direction string that names none of the allowed values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct UnknownValue {
    what: &'static str,
    value: String,
    expected: &'static str,
}

macro_rules! string_enum {
    (
        $(#[$doc:meta])* $name:ident, $what:literal, $expected:literal,
        { $($(#[$vdoc:meta])* $variant:ident => $canon:literal $(| $alias:literal)*),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The canonical lower-case spelling sent on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $canon),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                let lower = raw.trim().to_ascii_lowercase();
                match lower.as_str() {
                    $($canon $(| $alias)* => Ok(Self::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: raw.to_owned(), expected: $expected }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum!(
    /// Outcome of one trial (`TrialReportedV1.status`).
    TrialStatus, "trial status", "succeeded, failed, skipped, cancelled",
    {
        /// The trial ran and reported its metrics.
        #[default]
        Succeeded => "succeeded",
        /// The trial ran and failed.
        Failed => "failed",
        /// The trial was not run.
        Skipped => "skipped",
        /// The trial was stopped before it finished.
        Cancelled => "cancelled" | "canceled",
    }
);

string_enum!(
    /// Outcome of a whole run (`RunFinalizedV1.status`).
    RunStatus, "run status", "succeeded, failed, cancelled, timeout",
    {
        /// The run finished.
        #[default]
        Succeeded => "succeeded",
        /// The run failed.
        Failed => "failed",
        /// The run was stopped.
        Cancelled => "cancelled" | "canceled",
        /// The run ran out of time.
        Timeout => "timeout",
    }
);

string_enum!(
    /// Whether the objective metric is to be made large or small.
    Direction, "direction", "maximize, minimize",
    {
        /// Larger is better.
        #[default]
        Maximize => "maximize" | "maximise" | "max",
        /// Smaller is better.
        Minimize => "minimize" | "minimise" | "min",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_case_insensitively_with_the_american_spelling() {
        assert_eq!("Succeeded".parse(), Ok(TrialStatus::Succeeded));
        assert_eq!("CANCELED".parse(), Ok(TrialStatus::Cancelled));
        assert_eq!("timeout".parse(), Ok(RunStatus::Timeout));
        assert_eq!("min".parse(), Ok(Direction::Minimize));
    }

    #[test]
    fn a_run_status_is_not_a_trial_status() {
        let err = "timeout".parse::<TrialStatus>().unwrap_err();
        assert!(
            err.to_string()
                .contains("succeeded, failed, skipped, cancelled")
        );
        assert!("skipped".parse::<RunStatus>().is_err());
    }

    #[test]
    fn statuses_serialize_in_their_canonical_form() {
        let json = serde_json::to_string(&TrialStatus::Cancelled).unwrap();
        assert_eq!(json, "\"cancelled\"");
        let back: TrialStatus = serde_json::from_str("\"canceled\"").unwrap();
        assert_eq!(back, TrialStatus::Cancelled);
    }
}
