//! `GET /openapi.json`: the OpenAPI 3.1 description, generated from the handlers' `#[utoipa::path]` annotations
//! and the schema types in [`super::schemas`]. A checked-in copy lives at `runner/openapi.json`; the test
//! `runner/tests/openapi.rs` fails when it drifts from what this module generates.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Responses, Type};

use super::schemas::ErrorBody;

/// Name of the bearer security scheme in the description.
pub const BEARER: &str = "bearer";

/// Paths served without a token even when `RUNNER_API_TOKEN` is set.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The static part of the description: info, tags, security scheme and the responses every operation shares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cerebros runner",
        description = "TPE proposals, Cerebros-style NAS training and Thunderline's bridge endpoints (Thunderhelm). \
Errors are JSON `{\"error\": {\"code\", \"message\", \"field\"?}}`; every response carries `x-request-id` (the caller's, \
or a generated one). When `RUNNER_API_TOKEN` is set, every route but `/healthz`, `/readyz` and `/metrics` needs \
`Authorization: Bearer <token>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "bridge", description = "Thunderline's bridge contracts (RunStartedV1, TrialReportedV1, RunFinalizedV1), stored durably and idempotently"),
        (name = "search", description = "Hyperparameter proposals (TPE or random)"),
        (name = "training", description = "Training real Cerebros-style networks"),
        (name = "runs", description = "What is stored: runs, trials, reports"),
        (name = "operations", description = "Health, readiness, metrics and this description"),
    )
)]
pub struct ApiDoc;

/// Adds what every operation shares: the bearer scheme (on protected routes), the body errors (400, 413, 415)
/// on operations with a request body, 500, and the `x-request-id` header on every response.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`RUNNER_API_TOKEN`; required only when the runner is configured with one",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = PUBLIC_PATHS.contains(&path.as_str());
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let mut extra: Vec<(&str, &str)> = Vec::new();
                if op.request_body.is_some() {
                    extra.push(("400", "Malformed JSON"));
                    extra.push(("413", "Body larger than `RUNNER_MAX_BODY_BYTES`"));
                    extra.push(("415", "Body not `application/json`"));
                }
                if !public {
                    extra.push((
                        "401",
                        "Missing or wrong bearer token (when `RUNNER_API_TOKEN` is set)",
                    ));
                    // The token is optional: an empty requirement says "no auth" is acceptable too.
                    op.security = Some(vec![
                        SecurityRequirement::new::<_, _, &str>(BEARER, []),
                        SecurityRequirement::default(),
                    ]);
                }
                extra.push((
                    "500",
                    "Internal error (a bug or an infrastructure failure; the detail is logged)",
                ));
                for (status, description) in extra {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                }
                sort_responses(&mut op.responses);
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert(
                            "x-request-id".to_string(),
                            HeaderBuilder::new()
                                .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(Type::String)))
                                .description(Some(
                                    "The request id: the caller's `x-request-id`, or a generated UUID",
                                ))
                                .build()
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

/// An error response with the [`ErrorBody`] schema.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// Orders an operation's responses by status code, so the description reads (and diffs) well.
fn sort_responses(responses: &mut Responses) {
    let mut entries: Vec<_> = std::mem::take(&mut responses.responses)
        .into_iter()
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    responses.responses.extend(entries);
}

/// The full description: [`ApiDoc`], the routes of [`super::api_routes`] and the shared responses.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = super::api_routes().split_for_parts();
    Common.modify(&mut api);
    api
}

/// The description as pretty-printed JSON with a trailing newline, the form `runner/openapi.json` is kept in.
pub fn openapi_json() -> String {
    let mut text = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 description.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description", content_type = "application/json", body = Object))
)]
pub async fn serve() -> Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(openapi_json);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text.as_str(),
    )
        .into_response()
}
