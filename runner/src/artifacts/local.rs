//! The local-directory store used when no S3 endpoint is configured: atomic writes under one root.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::ArtifactError;
use super::location::RelPath;

/// Writes `bytes` to `root/rel` atomically (temporary file in the same directory, fsync, rename) and returns the
/// `file://` URI of the result.
pub(crate) async fn put(
    root: &Path,
    rel: &RelPath,
    bytes: bytes::Bytes,
) -> Result<String, ArtifactError> {
    let root = absolute(root)?;
    let rel = rel.clone();
    tokio::task::spawn_blocking(move || put_blocking(&root, &rel, &bytes))
        .await
        .map_err(|e| ArtifactError::Io {
            path: "artifact write task".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// Checks that `root` exists (creating it if needed) and accepts a new file.
pub(crate) async fn check(root: &Path) -> Result<(), ArtifactError> {
    let root = absolute(root)?;
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
        let probe = root.join(format!(".readyz-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&probe, b"").map_err(|e| io_err(&probe, e))?;
        std::fs::remove_file(&probe).map_err(|e| io_err(&probe, e))
    })
    .await
    .map_err(|e| ArtifactError::Io {
        path: "artifact check task".into(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// `root/rel` as a `file://` URI.
pub(crate) fn file_uri(path: &Path) -> String {
    url::Url::from_file_path(path)
        .map_or_else(|()| format!("file://{}", path.display()), |u| u.to_string())
}

fn put_blocking(root: &Path, rel: &RelPath, bytes: &[u8]) -> Result<String, ArtifactError> {
    let target = rel.components().fold(root.to_path_buf(), |p, c| p.join(c));
    let dir = target.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&target, e));
    }
    Ok(file_uri(&target))
}

fn absolute(root: &Path) -> Result<PathBuf, ArtifactError> {
    std::path::absolute(root).map_err(|e| io_err(root, e))
}

fn io_err(path: &Path, source: std::io::Error) -> ArtifactError {
    ArtifactError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_writes_under_the_root_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let rel = RelPath::join("cerebros/r1/t1", "metrics.json").unwrap();
        let uri = put(dir.path(), &rel, bytes::Bytes::from_static(b"{\"a\":1}"))
            .await
            .unwrap();
        let target = dir.path().join("cerebros/r1/t1/metrics.json");
        assert_eq!(std::fs::read(&target).unwrap(), b"{\"a\":1}");
        assert_eq!(uri, url::Url::from_file_path(&target).unwrap().to_string());
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["metrics.json"]);
    }

    #[tokio::test]
    async fn put_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let rel = RelPath::parse("a.bin", "name").unwrap();
        put(dir.path(), &rel, bytes::Bytes::from_static(b"first"))
            .await
            .unwrap();
        put(dir.path(), &rel, bytes::Bytes::from_static(b"second"))
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.bin")).unwrap(), b"second");
    }

    #[tokio::test]
    async fn check_fails_when_the_root_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("occupied");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(check(&file).await, Err(ArtifactError::Io { .. })));
        check(&dir.path().join("new/root")).await.unwrap();
        assert!(dir.path().join("new/root").is_dir());
    }
}
