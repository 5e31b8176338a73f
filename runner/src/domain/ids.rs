//! Run and trial identifiers: 1–256 printable characters.

use std::fmt;

use super::FieldError;

const MAX_ID_CHARS: usize = 256;

fn parse_id(field: &str, raw: &str) -> Result<String, FieldError> {
    let count = raw.chars().count();
    if count == 0 {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if count > MAX_ID_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_ID_CHARS} characters, got {count}"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must contain printable characters only",
        ));
    }
    Ok(raw.to_string())
}

macro_rules! id_type {
    ($name:ident, $field:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier, naming the field on failure.
            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                parse_id($field, raw).map(Self)
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    RunId,
    "run_id",
    "Identifier of a run (a study): 1–256 printable characters."
);
id_type!(
    TrialId,
    "trial_id",
    "Identifier of a trial: 1–256 printable characters."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_id_is_rejected() {
        assert_eq!(RunId::parse("").unwrap_err().field, "run_id");
    }

    #[test]
    fn an_id_longer_than_256_characters_is_rejected() {
        assert!(TrialId::parse(&"é".repeat(257)).is_err());
        assert!(TrialId::parse(&"é".repeat(256)).is_ok());
    }

    #[test]
    fn control_characters_are_rejected() {
        assert!(RunId::parse("a\nb").is_err());
        assert!(RunId::parse("run 1/ä").is_ok());
    }
}
