//! Parsed artifact locations: `s3://bucket/key` URIs and sanitised relative paths.
//!
//! Both are checked once here, so the stores only ever see a bucket name S3 accepts and a key or path made of
//! plain components (no `..`, no `.`, no empty component, no absolute path, no control characters).

use std::fmt;

use super::ArtifactError;

/// Longest object key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// A relative path made of plain `/`-separated components, safe both as an S3 key suffix and under a local root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath(String);

impl RelPath {
    /// Parses `raw` as a relative path; `what` names the argument in the error.
    ///
    /// Refused: empty paths, a leading `/` (absolute), `\`, empty, `.` or `..` components, and control characters.
    /// A trailing `/` is refused too, because it names a directory, not an object.
    pub fn parse(raw: &str, what: &str) -> Result<Self, ArtifactError> {
        let bad = |why: &str| ArtifactError::BadUri(format!("{what} {raw:?}: {why}"));
        if raw.is_empty() {
            return Err(bad("is empty"));
        }
        if raw.starts_with('/') {
            return Err(bad("must be relative"));
        }
        if raw.contains('\\') {
            return Err(bad("must not contain a backslash"));
        }
        if raw.chars().any(char::is_control) {
            return Err(bad("must not contain control characters"));
        }
        for component in raw.split('/') {
            match component {
                "" => return Err(bad("has an empty path component")),
                "." | ".." => return Err(bad("must not contain `.` or `..` components")),
                _ => {}
            }
        }
        if raw.len() > MAX_KEY_BYTES {
            return Err(bad("is too long"));
        }
        Ok(Self(raw.to_string()))
    }

    /// Joins `prefix` and `name` into one relative path; an empty prefix means `name` alone.
    pub fn join(prefix: &str, name: &str) -> Result<Self, ArtifactError> {
        let name = Self::parse(name, "artifact name")?;
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Ok(name);
        }
        let prefix = Self::parse(prefix, "artifact prefix")?;
        Self::parse(&format!("{}/{}", prefix.0, name.0), "artifact path")
    }

    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's components, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed `s3://bucket/key` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    bucket: String,
    key: RelPath,
}

impl S3Uri {
    /// Parses `s3://bucket/key`. The bucket must follow S3's naming rules (3–63 characters of lowercase letters,
    /// digits, `.` and `-`, starting and ending with a letter or digit); the key must be a [`RelPath`].
    pub fn parse(raw: &str) -> Result<Self, ArtifactError> {
        let bad = |why: &str| ArtifactError::BadUri(format!("{raw:?}: {why}"));
        let rest = raw
            .strip_prefix("s3://")
            .ok_or_else(|| bad("expected s3://bucket/key"))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing object key"))?;
        let bucket = Self::bucket_name(bucket).map_err(|why| bad(&why))?;
        let key = RelPath::parse(key, "object key")
            .map_err(|_| bad("the object key must be a relative path of plain components"))?;
        Ok(Self { bucket, key })
    }

    /// Builds a URI from a bucket name and a key already checked.
    pub fn new(bucket: &str, key: RelPath) -> Result<Self, ArtifactError> {
        let bucket = Self::bucket_name(bucket)
            .map_err(|why| ArtifactError::BadUri(format!("bucket {bucket:?}: {why}")))?;
        Ok(Self { bucket, key })
    }

    /// Checks a bucket name against S3's rules, returning it owned.
    pub fn bucket_name(bucket: &str) -> Result<String, String> {
        if !(3..=63).contains(&bucket.len()) {
            return Err("the bucket name must have 3 to 63 characters".into());
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(
                "the bucket name may only hold lowercase letters, digits, `.` and `-`".into(),
            );
        }
        let edge_ok =
            |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !edge_ok(bucket.bytes().next()) || !edge_ok(bucket.bytes().last()) {
            return Err("the bucket name must start and end with a letter or digit".into());
        }
        if bucket.contains("..") {
            return Err("the bucket name must not contain `..`".into());
        }
        Ok(bucket.to_string())
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_split_into_bucket_and_key() {
        let uri = S3Uri::parse("s3://thunderline-artifacts/cerebros/run-1/t-2/model.safetensors")
            .unwrap();
        assert_eq!(uri.bucket(), "thunderline-artifacts");
        assert_eq!(uri.key(), "cerebros/run-1/t-2/model.safetensors");
        assert_eq!(
            uri.to_string(),
            "s3://thunderline-artifacts/cerebros/run-1/t-2/model.safetensors"
        );
    }

    #[test]
    fn malformed_s3_uris_are_refused() {
        for raw in [
            "",
            "s3:/bucket/key",
            "http://bucket/key",
            "s3://bucket",
            "s3://bucket/",
            "s3:///key",
            "s3://Bucket/key",
            "s3://b/key",
            "s3://bucket_name/key",
            "s3://-bucket/key",
            "s3://bucket-/key",
            "s3://my..bucket/key",
            "s3://bucket/../other/key",
            "s3://bucket/a/./b",
            "s3://bucket/a//b",
            "s3://bucket//abs",
            "s3://bucket/dir/",
            "s3://bucket/a\\b",
            "s3://bucket/a\nb",
        ] {
            let err = S3Uri::parse(raw).expect_err(raw);
            assert!(matches!(err, ArtifactError::BadUri(_)), "{raw}: {err}");
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn long_keys_are_refused() {
        let key = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(S3Uri::parse(&format!("s3://bucket/{key}")).is_err());
        let key = "k".repeat(MAX_KEY_BYTES);
        assert!(S3Uri::parse(&format!("s3://bucket/{key}")).is_ok());
    }

    #[test]
    fn relative_paths_refuse_escapes() {
        for raw in [
            "",
            "/etc/passwd",
            "..",
            "a/../../b",
            "./a",
            "a/.",
            "a//b",
            "a\\b",
            "a/\u{0}b",
            "dir/",
        ] {
            assert!(RelPath::parse(raw, "name").is_err(), "{raw:?} accepted");
        }
        let p = RelPath::parse("cerebros/run-1/model.safetensors", "name").unwrap();
        assert_eq!(
            p.components().collect::<Vec<_>>(),
            ["cerebros", "run-1", "model.safetensors"]
        );
    }

    #[test]
    fn prefix_and_name_join_with_one_slash() {
        assert_eq!(
            RelPath::join("cerebros/r1/t1/", "metrics.json")
                .unwrap()
                .as_str(),
            "cerebros/r1/t1/metrics.json"
        );
        assert_eq!(
            RelPath::join("", "metrics.json").unwrap().as_str(),
            "metrics.json"
        );
        assert!(RelPath::join("../up", "x").is_err());
        assert!(RelPath::join("ok", "../x").is_err());
        assert!(RelPath::join("/abs", "x").is_err());
    }

    #[test]
    fn error_messages_name_the_location() {
        let err = S3Uri::parse("s3://bucket/../secret")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://bucket/../secret"), "{err}");
    }
}
