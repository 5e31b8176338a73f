//! Artifacts through the tracking server's proxy, against a real MLflow server.

mod common;

use std::io::Write;

use bytes::Bytes;
use futures::StreamExt;
use mlflow_client::{ArtifactRoot, CreateRun, Error, MlflowClient, Run};
use sha2::{Digest, Sha256};

async fn new_run(client: &MlflowClient, prefix: &str) -> Run {
    let exp = client
        .get_or_create_experiment(&common::unique(prefix))
        .await
        .expect("experiment");
    client
        .create_run(&CreateRun::in_experiment(exp))
        .await
        .expect("run")
}

/// Deterministic pseudo-random bytes (xorshift), so the content is not trivially compressible.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn bytes_upload_list_download_delete() {
    let client = common::client();
    let run = new_run(&client, "art-bytes").await;
    let root = ArtifactRoot::run(&run.info.run_id);
    client
        .upload_artifact(
            &root,
            "notes/hello.txt",
            Bytes::from_static(b"hello artifact\n"),
        )
        .await
        .expect("upload");
    client
        .upload_artifact(&root, "notes/deeper/x y.json", b"{\"a\":1}".to_vec())
        .await
        .expect("upload with a space in the name");
    client
        .upload_artifact(
            &ArtifactRoot::uri(&run.info.artifact_uri),
            "top.txt",
            b"top".to_vec(),
        )
        .await
        .expect("upload by artifact URI");

    let top = client.list_artifacts(&root, None).await.expect("list root");
    let mut names: Vec<_> = top.iter().map(|f| (f.path.as_str(), f.is_dir)).collect();
    names.sort_unstable();
    assert_eq!(names, vec![("notes", true), ("top.txt", false)]);

    let notes = client
        .list_artifacts(&root, Some("notes"))
        .await
        .expect("list notes");
    let hello = notes
        .iter()
        .find(|f| f.path == "notes/hello.txt")
        .expect("paths are relative to the run root");
    assert_eq!(hello.file_size, Some(15));
    assert!(notes.iter().any(|f| f.path == "notes/deeper" && f.is_dir));

    let got = client
        .download_artifact_bytes(&root, "notes/deeper/x y.json")
        .await
        .expect("download");
    assert_eq!(&got[..], b"{\"a\":1}");

    client
        .delete_artifact(&root, "notes/hello.txt")
        .await
        .expect("delete");
    let err = client
        .download_artifact_bytes(&root, "notes/hello.txt")
        .await
        .expect_err("deleted");
    assert!(err.is_not_found(), "{err}");
    assert!(
        client
            .list_artifacts(&root, Some("notes"))
            .await
            .expect("list")
            .iter()
            .all(|f| f.path != "notes/hello.txt")
    );
}

#[tokio::test]
async fn sixty_four_mib_file_round_trip_with_checksum() {
    let client = common::client();
    let run = new_run(&client, "art-64mib").await;
    let root = ArtifactRoot::run(&run.info.run_id);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("blob.bin");
    let data = pseudo_random(64 * 1024 * 1024, 42);
    let expected = hex::encode(Sha256::digest(&data));
    std::fs::File::create(&src)
        .and_then(|mut f| f.write_all(&data))
        .expect("write source");
    drop(data);

    client
        .upload_artifact(&root, "model/blob.bin", src.as_path())
        .await
        .expect("upload 64 MiB");
    let listed = client
        .list_artifacts(&root, Some("model"))
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].file_size, Some(64 * 1024 * 1024));

    let download = client
        .download_artifact(&root, "model/blob.bin")
        .await
        .expect("start download");
    // A local destination sends the file with Content-Length; MLflow's proxy streams an S3-backed file chunked,
    // without one (MLflow 3.17.2). The byte count and checksum below are checked either way.
    assert!(
        matches!(download.content_length(), None | Some(0x400_0000)),
        "{:?}",
        download.content_length()
    );
    let mut hasher = Sha256::new();
    let mut chunks = 0usize;
    let mut total = 0usize;
    let mut stream = std::pin::pin!(download.into_stream());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        total += chunk.len();
        chunks += 1;
        hasher.update(&chunk);
    }
    assert_eq!(total, 64 * 1024 * 1024);
    assert!(chunks > 1, "the body arrives as a stream");
    assert_eq!(hex::encode(hasher.finalize()), expected);

    let dst = dir.path().join("back.bin");
    let written = client
        .download_artifact_to_file(&root, "model/blob.bin", &dst)
        .await
        .expect("download to file");
    assert_eq!(written, 64 * 1024 * 1024);
    let back = std::fs::read(&dst).expect("read back");
    assert_eq!(hex::encode(Sha256::digest(&back)), expected);
}

#[tokio::test]
async fn s3_and_other_uris_are_refused_clearly() {
    let client = common::client();
    let before = client.requests_total();
    let err = client
        .upload_artifact(
            &ArtifactRoot::uri("s3://bucket/1/abc/artifacts"),
            "x.txt",
            b"x".to_vec(),
        )
        .await
        .expect_err("s3 is not proxied");
    match &err {
        Error::UnsupportedArtifactUri { uri } => assert_eq!(uri, "s3://bucket/1/abc/artifacts"),
        other => panic!("expected UnsupportedArtifactUri, got {other:?}"),
    }
    assert!(err.to_string().contains("s3://bucket/1/abc/artifacts"));
    assert!(matches!(
        client
            .list_artifacts(&ArtifactRoot::uri("file:///tmp/mlruns/1"), None)
            .await,
        Err(Error::UnsupportedArtifactUri { .. })
    ));
    assert_eq!(client.requests_total(), before, "nothing was sent");
}

#[tokio::test]
async fn bad_paths_and_missing_files() {
    let client = common::client();
    let run = new_run(&client, "art-bad").await;
    let root = ArtifactRoot::uri(&run.info.artifact_uri);
    for bad in ["", "/etc/passwd", "../escape", "a/../../b"] {
        assert!(
            matches!(
                client.upload_artifact(&root, bad, b"x".to_vec()).await,
                Err(Error::InvalidArgument(_))
            ),
            "{bad:?}"
        );
    }
    let err = client
        .download_artifact(&root, "missing.bin")
        .await
        .expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    let err = client
        .upload_artifact(
            &root,
            "from-file.bin",
            std::path::Path::new("/nonexistent/file"),
        )
        .await
        .expect_err("missing local file");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    let err = client
        .upload_artifact(&ArtifactRoot::run("doesnotexist0000"), "x", b"x".to_vec())
        .await
        .expect_err("unknown run");
    assert!(err.is_not_found(), "{err}");
}
