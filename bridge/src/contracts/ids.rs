//! Run and trial identifiers: 1–256 printable characters, checked once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest identifier the runner accepts.
pub const MAX_ID_LEN: usize = 256;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is empty.
    #[error("identifier is empty")]
    Empty,
    /// The string is longer than [`MAX_ID_LEN`] characters.
    #[error("identifier is longer than {MAX_ID_LEN} characters")]
    TooLong,
    /// The string holds a control character (newline, tab, NUL, …).
    #[error("identifier holds a control character")]
    NotPrintable,
}

fn check(raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.chars().count() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if raw.chars().any(char::is_control) {
        return Err(IdError::NotPrintable);
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier: 1–256 characters, none of them a control character.
            pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
                let raw = raw.into();
                check(&raw)?;
                Ok(Self(raw))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// Identifier of a run (a study, in TPE terms).
    RunId
);
identifier!(
    /// Identifier of a trial within the runner (unique across runs).
    TrialId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_id_is_accepted() {
        assert_eq!(RunId::parse("run-01").unwrap().as_str(), "run-01");
    }

    #[test]
    fn an_empty_id_is_rejected() {
        assert_eq!(RunId::parse(""), Err(IdError::Empty));
    }

    #[test]
    fn an_id_of_257_characters_is_rejected_and_256_accepted() {
        assert!(TrialId::parse("é".repeat(256)).is_ok());
        assert_eq!(TrialId::parse("x".repeat(257)), Err(IdError::TooLong));
    }

    #[test]
    fn an_id_with_a_newline_is_rejected() {
        assert_eq!(TrialId::parse("a\nb"), Err(IdError::NotPrintable));
    }

    #[test]
    fn deserializing_checks_the_id() {
        assert!(serde_json::from_str::<RunId>("\"\"").is_err());
        let id: RunId = serde_json::from_str("\"r1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"r1\"");
    }
}
