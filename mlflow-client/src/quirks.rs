//! Known server-side deviations of MLflow that the client normalises, each narrowly matched.
//!
//! **A missing artifact behind an S3 destination.** With `mlflow server --artifacts-destination s3://…`, the
//! artifact proxy (`GET /api/2.0/mlflow-artifacts/artifacts/<path>`) answers a missing file with HTTP 500
//! `INTERNAL_ERROR` and botocore's message "An error occurred (404) when calling the HeadObject operation: Not
//! Found" (seen with MLflow 3.17.2 against SeaweedFS): its S3 repository lets botocore's `ClientError` escape
//! instead of raising `RESOURCE_DOES_NOT_EXIST`, which the local-directory repository does (HTTP 404). Left
//! alone, the client would retry that 500 as a transient failure and report an internal error for what is a
//! missing file. Such a reply is turned into a `RESOURCE_DOES_NOT_EXIST` error (status kept at 500) without
//! retries, so [`Error::is_not_found`] holds on either destination.

use crate::error::Error;

/// The artifact proxy's endpoint label, as the artifact calls report it.
pub(crate) const ARTIFACTS_ENDPOINT: &str = "mlflow-artifacts/artifacts";

/// botocore's text for an object that does not exist, as MLflow's S3 repository passes it on.
const S3_MISSING_OBJECT: &str = "(404) when calling the HeadObject operation";

/// `error` rewritten as not-found when it is MLflow's 500 for a missing S3-backed artifact; else `Err(error)`.
pub(crate) fn missing_s3_artifact(error: Error) -> Result<Error, Error> {
    match error {
        Error::Api {
            endpoint,
            status: 500,
            message,
            attempts,
            ..
        } if endpoint == ARTIFACTS_ENDPOINT && message.contains(S3_MISSING_OBJECT) => {
            Ok(Error::Api {
                endpoint,
                status: 500,
                error_code: "RESOURCE_DOES_NOT_EXIST".to_owned(),
                message,
                attempts,
            })
        }
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(endpoint: &str, status: u16, message: &str) -> Error {
        Error::Api {
            endpoint: endpoint.to_owned(),
            status,
            error_code: "INTERNAL_ERROR".to_owned(),
            message: message.to_owned(),
            attempts: 1,
        }
    }

    #[test]
    fn only_the_s3_head_object_404_of_the_artifact_proxy_becomes_not_found() {
        let text = "The following failures occurred while downloading one or more artifacts from \
                    s3://mlflow/artifacts:\n##### File 6/x/artifacts/missing.bin #####\nAn error occurred (404) \
                    when calling the HeadObject operation: Not Found";
        let mapped = missing_s3_artifact(api(ARTIFACTS_ENDPOINT, 500, text)).expect("mapped");
        assert!(mapped.is_not_found(), "{mapped}");
        assert_eq!(mapped.status(), Some(500));
        for other in [
            api("runs/get", 500, text),
            api(ARTIFACTS_ENDPOINT, 502, text),
            api(
                ARTIFACTS_ENDPOINT,
                500,
                "An error occurred (403) when calling the HeadObject operation",
            ),
        ] {
            let kept = missing_s3_artifact(other).expect_err("left alone");
            assert!(!kept.is_not_found(), "{kept}");
        }
    }
}
