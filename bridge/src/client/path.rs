//! Percent-encoding of ids placed in URL paths.

/// Encodes `segment` for use as one path segment: unreserved characters stay, every other byte becomes `%XX`.
///
/// The dots of `.` and `..` are escaped too, so no URL normaliser can read them as a relative path.
pub fn encode_segment(segment: &str) -> String {
    let dots_only = segment.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'~')
            || (byte == b'.' && !dots_only);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_unchanged() {
        assert_eq!(encode_segment("run-01_a.b~c"), "run-01_a.b~c");
    }

    #[test]
    fn slashes_spaces_and_unicode_are_escaped() {
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("v1.2"), "v1.2");
    }
}
