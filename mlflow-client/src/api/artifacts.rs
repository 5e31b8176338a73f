//! Artifacts through the tracking server's proxy (`mlflow-artifacts:/` URIs): upload, download, list,
//! delete.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{Body, Response};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use url::Url;

use crate::client::{FullBody, MlflowClient, Streamed, decode, error_chain};
use crate::error::{Error, Result};
use crate::types::{ArtifactRoot, ArtifactSource, FileInfo};

const ENDPOINT: &str = crate::quirks::ARTIFACTS_ENDPOINT;
const SCHEME: &str = "mlflow-artifacts:";
const UPLOAD_CHUNK: usize = 256 * 1024;

/// The proxy path of an artifact URI: `mlflow-artifacts:/1/<run>/artifacts` → `1/<run>/artifacts`.
///
/// Any other scheme (`s3://`, `gs://`, `file:` …) is [`Error::UnsupportedArtifactUri`]: the tracking
/// server does not proxy it, so the caller must write to that store itself.
pub fn proxy_path(artifact_uri: &str) -> Result<String> {
    let unsupported = || Error::UnsupportedArtifactUri {
        uri: artifact_uri.to_owned(),
    };
    let rest = artifact_uri.strip_prefix(SCHEME).ok_or_else(unsupported)?;
    let path = match rest.strip_prefix("//") {
        // mlflow-artifacts://host:port/path: the path after the authority.
        Some(with_authority) => with_authority.split_once('/').map_or("", |(_, path)| path),
        None => rest,
    };
    let path = path.trim_matches('/');
    if path.split('/').any(|s| s == "..") {
        return Err(unsupported());
    }
    Ok(path.to_owned())
}

/// Checks a path relative to an artifact root: not empty, not absolute, no `..`, no empty segments.
fn relative_segments(relative_path: &str, allow_empty: bool) -> Result<Vec<&str>> {
    let trimmed = relative_path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if allow_empty {
            Ok(Vec::new())
        } else {
            Err(Error::InvalidArgument("artifact path is empty".into()))
        };
    }
    if trimmed.starts_with('/') || trimmed.contains('\\') {
        return Err(Error::InvalidArgument(format!(
            "artifact path {relative_path:?} must be relative and use '/'"
        )));
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(Error::InvalidArgument(format!(
            "artifact path {relative_path:?} has an empty, '.' or '..' segment"
        )));
    }
    Ok(segments)
}

#[derive(Deserialize)]
struct ListReply {
    #[serde(default)]
    files: Vec<FileInfo>,
}

/// A download in progress; the body has not been read yet.
#[derive(Debug)]
pub struct ArtifactDownload {
    response: Response,
    endpoint: String,
}

impl ArtifactDownload {
    /// Size announced by the server, when it sent `Content-Length`.
    pub fn content_length(&self) -> Option<u64> {
        self.response.content_length()
    }

    /// The body as a stream of chunks.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        let endpoint = self.endpoint;
        self.response
            .bytes_stream()
            .map_err(move |e| Error::Transport {
                endpoint: endpoint.clone(),
                attempts: 1,
                message: error_chain(&e),
                source: e,
            })
    }

    /// The whole body in memory.
    pub async fn bytes(self) -> Result<Bytes> {
        let endpoint = self.endpoint;
        self.response.bytes().await.map_err(|e| Error::Transport {
            endpoint,
            attempts: 1,
            message: error_chain(&e),
            source: e,
        })
    }
}

impl MlflowClient {
    /// The proxy path of `root` (looks the run up for [`ArtifactRoot::Run`]).
    pub async fn artifact_proxy_path(&self, root: &ArtifactRoot) -> Result<String> {
        match root {
            ArtifactRoot::Uri(uri) => proxy_path(uri),
            ArtifactRoot::Run(run_id) => proxy_path(&self.get_run(run_id).await?.info.artifact_uri),
        }
    }

    /// `…/api/2.0/mlflow-artifacts/artifacts/<root>/<relative_path>` with each segment escaped.
    async fn artifact_url(&self, root: &ArtifactRoot, relative_path: &str) -> Result<Url> {
        let root_path = self.artifact_proxy_path(root).await?;
        let relative = relative_segments(relative_path, false)?;
        let mut url = Url::parse(&self.api_url(ENDPOINT)).map_err(|e| Error::Config {
            name: "tracking_uri".into(),
            message: e.to_string(),
        })?;
        {
            let mut segments = url.path_segments_mut().map_err(|()| Error::Config {
                name: "tracking_uri".into(),
                message: "cannot be a base URL".into(),
            })?;
            segments.extend(root_path.split('/').filter(|s| !s.is_empty()));
            segments.extend(relative);
        }
        Ok(url)
    }

    /// Uploads `source` to `relative_path` under `root` with one streamed `PUT`.
    ///
    /// Files are streamed from disk and reopened on each retry; bytes are resent from memory.
    pub async fn upload_artifact(
        &self,
        root: &ArtifactRoot,
        relative_path: &str,
        source: impl Into<ArtifactSource>,
    ) -> Result<()> {
        let url = self.artifact_url(root, relative_path).await?;
        let http = self.http();
        let octet = HeaderValue::from_static("application/octet-stream");
        match source.into() {
            ArtifactSource::Bytes(bytes) => {
                self.execute::<FullBody, _, _>(ENDPOINT, || {
                    let req = http
                        .put(url.clone())
                        .header(CONTENT_TYPE, octet.clone())
                        .body(bytes.clone());
                    async move { Ok(req) }
                })
                .await?;
            }
            ArtifactSource::File(path) => {
                self.execute::<FullBody, _, _>(ENDPOINT, || {
                    let req = http.put(url.clone()).header(CONTENT_TYPE, octet.clone());
                    let path = path.clone();
                    async move {
                        let (body, len) = file_body(&path).await?;
                        Ok(req.header(CONTENT_LENGTH, len).body(body))
                    }
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Starts downloading `relative_path` under `root`; read the body from the returned handle.
    pub async fn download_artifact(
        &self,
        root: &ArtifactRoot,
        relative_path: &str,
    ) -> Result<ArtifactDownload> {
        let url = self.artifact_url(root, relative_path).await?;
        let http = self.http();
        let response = self
            .execute::<Streamed, _, _>(ENDPOINT, || {
                let req = http.get(url.clone());
                async move { Ok(req) }
            })
            .await?;
        Ok(ArtifactDownload {
            response,
            endpoint: ENDPOINT.to_owned(),
        })
    }

    /// Downloads `relative_path` under `root` into memory.
    pub async fn download_artifact_bytes(
        &self,
        root: &ArtifactRoot,
        relative_path: &str,
    ) -> Result<Bytes> {
        self.download_artifact(root, relative_path)
            .await?
            .bytes()
            .await
    }

    /// Streams `relative_path` under `root` into the local file `destination`; returns the bytes written.
    pub async fn download_artifact_to_file(
        &self,
        root: &ArtifactRoot,
        relative_path: &str,
        destination: &Path,
    ) -> Result<u64> {
        let download = self.download_artifact(root, relative_path).await?;
        let io_error = |source| Error::Io {
            path: destination.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(destination)
            .await
            .map_err(io_error)?;
        let mut stream = std::pin::pin!(download.into_stream());
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await.map_err(io_error)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(io_error)?;
        Ok(written)
    }

    /// Lists the directory `path` (the root when `None`) under `root`; returned paths are relative to
    /// the root, as in MLflow's `list_artifacts`.
    pub async fn list_artifacts(
        &self,
        root: &ArtifactRoot,
        path: Option<&str>,
    ) -> Result<Vec<FileInfo>> {
        let root_path = self.artifact_proxy_path(root).await?;
        let dir = relative_segments(path.unwrap_or(""), true)?.join("/");
        let full = [root_path.as_str(), dir.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        let url = self.api_url(ENDPOINT);
        let http = self.http();
        let body = self
            .execute::<FullBody, _, _>(ENDPOINT, || {
                let req = http.get(&url).query(&[("path", full.as_str())]);
                async move { Ok(req) }
            })
            .await?;
        let reply: ListReply = decode(ENDPOINT, &body)?;
        Ok(reply
            .files
            .into_iter()
            .map(|f| FileInfo {
                path: if dir.is_empty() {
                    f.path
                } else {
                    format!("{dir}/{}", f.path)
                },
                ..f
            })
            .collect())
    }

    /// Deletes the artifact (file or directory) at `relative_path` under `root`.
    pub async fn delete_artifact(&self, root: &ArtifactRoot, relative_path: &str) -> Result<()> {
        let url = self.artifact_url(root, relative_path).await?;
        let http = self.http();
        self.execute::<FullBody, _, _>(ENDPOINT, || {
            let req = http.delete(url.clone());
            async move { Ok(req) }
        })
        .await
        .map(drop)
    }
}

async fn file_body(path: &PathBuf) -> Result<(Body, u64)> {
    let io_error = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io_error)?;
    let len = file.metadata().await.map_err(io_error)?.len();
    let stream = ReaderStream::with_capacity(file, UPLOAD_CHUNK);
    Ok((Body::wrap_stream(stream), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths() {
        assert_eq!(
            proxy_path("mlflow-artifacts:/1/abc/artifacts").expect("ok"),
            "1/abc/artifacts"
        );
        assert_eq!(
            proxy_path("mlflow-artifacts://mlflow:5000/1/abc/artifacts/").expect("ok"),
            "1/abc/artifacts"
        );
        for bad in [
            "s3://bucket/1/abc/artifacts",
            "file:///tmp/mlruns/1",
            "/tmp/mlruns",
            "gs://b/x",
            "mlflow-artifacts:/1/../etc",
        ] {
            assert!(
                matches!(proxy_path(bad), Err(Error::UnsupportedArtifactUri { ref uri }) if uri == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(
            relative_segments("a/b.txt", false).expect("ok"),
            vec!["a", "b.txt"]
        );
        assert_eq!(relative_segments("dir/", true).expect("ok"), vec!["dir"]);
        assert!(relative_segments("", true).expect("ok").is_empty());
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(relative_segments(bad, false).is_err(), "{bad:?}");
        }
    }
}
