//! Schema types of the OpenAPI description (`GET /openapi.json`).
//!
//! The handlers parse request bodies by hand from JSON (to accept the flat and nested dialects and to name the
//! field at fault), and most replies are built as JSON; these types describe those shapes for the API
//! description only. They are never deserialized: what they state is checked against the running service by
//! `scripts/test-api-fuzz.sh` (schemathesis, response schema conformance).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

/// Every error reply: `{"error": {"code", "message", "field"?}}`.
#[derive(ToSchema, Serialize)]
#[schema(example = json!({"error": {"code": "invalid_request", "message": "must be an integer from 1 to 64", "field": "k"}}))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The body of an error reply.
#[derive(ToSchema, Serialize)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation; never echoes the content of a dataset that was read.
    pub message: String,
    /// The request field at fault (`k`, `space.lr`, `params.epochs`, `metrics.acc`…); set on 422 only.
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// Error codes and the status they come with.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not valid JSON (or is empty, or nests deeper than 128 levels).
    MalformedJson,
    /// 400: a path segment cannot be decoded (a percent-encoded id that is not UTF-8).
    MalformedPath,
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 404: unknown run, trial or route.
    NotFound,
    /// 405: the method is not served on this path.
    MethodNotAllowed,
    /// 409: the request conflicts with what is stored (a trial id reused with different content, an objective
    /// that differs from the run's).
    Conflict,
    /// 413: the body is larger than `RUNNER_MAX_BODY_BYTES`.
    PayloadTooLarge,
    /// 415: the body is not `application/json` (or `application/*+json`).
    UnsupportedMediaType,
    /// 422: well-formed JSON, but a field is invalid; `field` names it.
    InvalidRequest,
    /// 429: the training queue is full; see `Retry-After`.
    QueueFull,
    /// 503: a dependency the request needs is unavailable.
    Unavailable,
    /// 500: a bug or an infrastructure failure; the detail is logged, not returned.
    Internal,
}

// ---------------------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------------------

/// A run or trial id: 1–256 printable characters.
#[derive(ToSchema, Serialize)]
#[schema(
    min_length = 1,
    max_length = 256,
    pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
)]
pub struct Identifier(String);

/// A metric or parameter name, following MLflow's key rules: letters, digits, `_ - . / :` and spaces, at most 250
/// characters, a relative path without `..` segments.
#[derive(ToSchema, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[schema(pattern = r"^[\w\-. :][\w\-. :/]{0,249}$")]
pub struct MetricKey(String);

/// Lifecycle of a trial.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Waiting for a training slot (`/train`).
    Queued,
    /// Being trained (`/train`).
    Running,
    /// Finished with metrics.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Not evaluated on purpose.
    Skipped,
    /// Stopped before finishing.
    Cancelled,
}

/// Lifecycle of a run.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and accepting trials.
    Running,
    /// Finalized as succeeded.
    Succeeded,
    /// Finalized as failed.
    Failed,
    /// Finalized as cancelled.
    Cancelled,
    /// Finalized as timed out.
    Timeout,
}

/// Optimisation direction (case-insensitive; `maximise`/`max` and `minimise`/`min` are accepted too).
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum Direction {
    /// Larger is better.
    Maximize,
    /// Smaller is better.
    Minimize,
}

/// What a run optimises: a metric name (its direction implied: `loss`, `rmse`, `latency_ms`… minimize, others
/// maximize) or `{metric, direction}`.
#[derive(ToSchema, Serialize)]
#[schema(example = json!({"metric": "val_loss", "direction": "minimize"}))]
#[serde(untagged)]
pub enum Objective {
    /// A metric name, following MLflow's key rules.
    Metric(MetricKey),
    /// An explicit objective.
    Spec(ObjectiveSpec),
}

/// An explicit objective.
#[derive(ToSchema, Serialize)]
pub struct ObjectiveSpec {
    /// Metric name (default `accuracy`); `name` is accepted as an alias.
    pub metric: Option<MetricKey>,
    /// Direction; implied by the metric when absent.
    pub direction: Option<Direction>,
}

/// The run's objective as stored (always explicit).
#[derive(ToSchema, Serialize)]
pub struct StoredObjective {
    /// Metric name.
    pub metric: String,
    /// Direction.
    pub direction: Direction,
}

// ---------------------------------------------------------------------------------------------------------
// Search spaces
// ---------------------------------------------------------------------------------------------------------

/// A search space, in the map dialect (`{"lr": {"loguniform": [1e-5, 0.1]}}`, names may be dotted) or the list
/// dialect (`[{"name": "lr", "type": "float", "low": 1e-5, "high": 0.1, "log": true}]`). Bounds must be finite with
/// lo < hi, lo > 0 on log scales, q > 0, choices non-empty; at most 256 parameters and 1024 choices. A bad spec is a
/// 422 naming the parameter.
#[derive(ToSchema, Serialize)]
#[schema(example = json!({"lr": {"loguniform": [1e-5, 0.1]}, "head": {"choice": ["kgam", "irope"]}}))]
#[serde(untagged)]
pub enum SearchSpace {
    /// Map dialect: parameter name → spec.
    Map(BTreeMap<String, ParamSpec>),
    /// List dialect.
    List(Vec<ListParam>),
}

/// One parameter of the map dialect.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum ParamSpec {
    /// One of the values; JSON types are kept.
    Choice(ChoiceSpec),
    /// Float in [lo, hi].
    Uniform(UniformSpec),
    /// Float in [lo, hi] on a log scale, lo > 0.
    LogUniform(LogUniformSpec),
    /// Float on the grid lo + n·q.
    QUniform(QUniformSpec),
    /// Integer in [lo, hi], both ends included.
    Int(IntSpec),
    /// A fixed value.
    Const(ConstSpec),
}

/// `{"choice": [v, …]}`.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSpec {
    /// The values (1 to 1024).
    #[schema(min_items = 1, max_items = 1024)]
    pub choice: Vec<Value>,
}

/// `{"uniform": [lo, hi]}`.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UniformSpec {
    /// `[lo, hi]`.
    #[schema(min_items = 2, max_items = 2)]
    pub uniform: Vec<f64>,
}

/// `{"loguniform": [lo, hi]}`.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogUniformSpec {
    /// `[lo, hi]`, lo > 0.
    #[schema(min_items = 2, max_items = 2)]
    pub loguniform: Vec<f64>,
}

/// `{"quniform": [lo, hi, q]}`.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QUniformSpec {
    /// `[lo, hi, q]`, q > 0.
    #[schema(min_items = 3, max_items = 3)]
    pub quniform: Vec<f64>,
}

/// `{"int": [lo, hi], "log"?, "step"?}`.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IntSpec {
    /// `[lo, hi]`, integers.
    #[schema(min_items = 2, max_items = 2)]
    pub int: Vec<i64>,
    /// Log scale (lo > 0).
    pub log: Option<bool>,
    /// Grid step (> 0; not with `log`).
    #[schema(minimum = 1)]
    pub step: Option<i64>,
}

/// `{"const": v}`.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConstSpec {
    /// The value.
    #[serde(rename = "const")]
    pub value: Value,
}

/// Kind of a list-dialect parameter.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum ListParamType {
    /// Float in [low, high] (`log`, `step` optional).
    Float,
    /// Integer in [low, high] (`log`, `step` optional).
    Int,
    /// One of `choices`.
    Categorical,
}

/// One parameter of the list dialect.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListParam {
    /// Parameter name (MLflow key rules, at most 250 characters).
    #[schema(min_length = 1, max_length = 250)]
    pub name: String,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: ListParamType,
    /// Lower bound (float and int).
    pub low: Option<f64>,
    /// Upper bound (float and int).
    pub high: Option<f64>,
    /// Values (categorical, 1 to 1024).
    #[schema(min_items = 1, max_items = 1024)]
    pub choices: Option<Vec<Value>>,
    /// Log scale.
    pub log: Option<bool>,
    /// Grid step.
    pub step: Option<f64>,
}

// ---------------------------------------------------------------------------------------------------------
// /propose
// ---------------------------------------------------------------------------------------------------------

/// How `/propose` draws candidates.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum Strategy {
    /// Tree-structured Parzen estimator over the run's history (random for the first 10 observations).
    Tpe,
    /// Uniform random.
    Random,
}

/// `POST /propose` request. The run is created when it does not exist.
#[derive(ToSchema, Serialize)]
#[schema(example = json!({"run_id": "run-1", "k": 4, "space": {"lr": {"loguniform": [1e-5, 0.1]}}, "objective": "val_loss"}))]
pub struct ProposeBody {
    /// The run (study): 1–256 printable characters.
    pub run_id: Identifier,
    /// Number of candidates (default 1).
    #[schema(minimum = 1, maximum = 64)]
    pub k: Option<u64>,
    /// Search space; when absent, the one `/bridge/start` stored for the run (422 if there is none).
    pub space: Option<SearchSpace>,
    /// Objective; adopted by the run when it has none yet, 409 when it differs from the run's.
    pub objective: Option<Objective>,
    /// `tpe` (default) or `random`, case-insensitive.
    pub strategy: Option<Strategy>,
    /// Seed: same history and seed give the same proposals.
    pub seed: Option<u64>,
    /// TPE settings; each one left out keeps its default.
    pub tpe: Option<TpeSettings>,
}

/// TPE settings of one `/propose` call. The defaults are Optuna 5's `TPESampler` defaults except `clip_count` and
/// `good_weights`, which were measured better with multivariate kernels (docs/benchmarks/search.md);
/// `{"clip_count": "group", "good_weights": "age"}` is Optuna 5's sampler.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TpeSettings {
    /// Finished trials drawn at random before TPE starts (default 10).
    #[schema(minimum = 0)]
    pub n_startup_trials: Option<u64>,
    /// Candidates drawn from l(x) per proposal (default 24).
    #[schema(minimum = 1, maximum = 1024)]
    pub n_ei_candidates: Option<u64>,
    /// Joint kernels over all parameters (default true) or one TPE per parameter.
    pub multivariate: Option<bool>,
    /// Weight of the prior component (default 1).
    #[schema(minimum = 0)]
    pub prior_weight: Option<f64>,
    /// Clip kernel widths from below (default true).
    pub consider_magic_clip: Option<bool>,
    /// Let the extreme observations' kernels reach the bounds (default false).
    pub consider_endpoints: Option<bool>,
    /// Size of the good group: `optuna` `min(ceil(0.1·n), 25)` (default) or `hyperopt` `min(ceil(0.25·√n), 25)`.
    pub gamma: Option<TpeGamma>,
    /// Weights of group members by age: `ramp` (Optuna's, default) or `uniform`.
    pub weights: Option<TpeWeights>,
    /// What the magic clip counts: `auto` (default: `mean` with multivariate kernels, `group` without), `group`
    /// (Optuna's), `trials` or `mean`.
    pub clip_count: Option<TpeClipCount>,
    /// Weights of the good group: `auto` (default: `improvement` with multivariate kernels, `age` without), `age`
    /// (Optuna's) or `improvement`.
    pub good_weights: Option<TpeGoodWeights>,
}

/// Size rule of TPE's good group.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum TpeGamma {
    /// `min(ceil(0.1·n), 25)`.
    Optuna,
    /// `min(ceil(0.25·√n), 25)`.
    Hyperopt,
}

/// Age weighting of TPE's groups.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum TpeWeights {
    /// 1 for the newest 25, a linear ramp below.
    Ramp,
    /// All equal.
    Uniform,
}

/// What TPE's magic clip counts.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum TpeClipCount {
    /// `mean` with multivariate kernels, `group` without.
    Auto,
    /// The estimator's own kernels (Optuna).
    Group,
    /// Every trial and pending proposal.
    Trials,
    /// The geometric mean of the two.
    Mean,
}

/// How TPE weights its good group.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum TpeGoodWeights {
    /// `improvement` with multivariate kernels, `age` without.
    Auto,
    /// By age, like the bad group (Optuna).
    Age,
    /// By age times the improvement over the best value outside the good group.
    Improvement,
}

/// One candidate of the `/propose` reply.
#[derive(ToSchema, Serialize)]
pub struct Proposal {
    /// Parameter values, keyed by the space's names.
    pub params: BTreeMap<String, Value>,
    /// Log-densities under the good (`l`) and bad (`g`) Parzen estimators; 0 for random proposals.
    pub score: ProposalScore,
    /// 1 = best (by l − g).
    #[schema(minimum = 1)]
    pub rank: u64,
}

/// A candidate's TPE score.
#[derive(ToSchema, Serialize)]
pub struct ProposalScore {
    /// Log-density under the good estimator (null when not finite).
    pub l: Option<f64>,
    /// Log-density under the bad estimator (null when not finite).
    pub g: Option<f64>,
}

// ---------------------------------------------------------------------------------------------------------
// /train
// ---------------------------------------------------------------------------------------------------------

/// `sync` (default) trains before answering; `async` answers 202 at once. Case-insensitive.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum TrainMode {
    /// Train, then answer 200 with the metrics.
    Sync,
    /// Queue the training and answer 202 with `Location: /trials/{id}`.
    Async,
}

/// Training parameters. Every key has a default (a small network that trains in seconds); numbers may be
/// numeric strings; unknown keys are kept, logged to MLflow and reported in `warnings`.
#[derive(ToSchema, Serialize)]
#[schema(example = json!({"levels": 2, "units_per_level": 2, "neurons_per_unit": 16, "epochs": 5, "lr": 0.01}))]
pub struct TrainParams {
    /// Hidden levels (default 2).
    #[schema(minimum = 1, maximum = 16, nullable = false)]
    pub levels: Option<u64>,
    /// Units per level: one number for every level, or one per level (1–64 each; default 2).
    #[schema(nullable = false)]
    pub units_per_level: Option<PerLevel>,
    /// Width of each unit's dense layer: one number, or one per level (1–4096 each; default 32).
    #[schema(nullable = false)]
    pub neurons_per_unit: Option<PerLevel>,
    /// Activation (default `relu`).
    #[schema(nullable = false)]
    pub activation: Option<Activation>,
    /// Probability of a lateral connection to each unit on the left, in [0, 1] (default 0.25).
    #[schema(minimum = 0.0, maximum = 1.0, nullable = false)]
    pub p_lateral_connection: Option<f64>,
    /// Probability an input is drawn from the previous level, in [0, 1] (default 0.7).
    #[schema(minimum = 0.0, maximum = 1.0, nullable = false)]
    pub predecessor_affinity: Option<f64>,
    /// Dropout on each unit's input, in [0, 1) (default 0).
    #[schema(minimum = 0.0, exclusive_maximum = 1.0, nullable = false)]
    pub dropout: Option<f64>,
    /// Layer normalisation (default false).
    #[schema(nullable = false)]
    pub normalization: Option<bool>,
    /// Step size, in (0, 10] (default 0.01; alias `lr`).
    #[schema(exclusive_minimum = 0.0, maximum = 10.0, nullable = false)]
    pub learning_rate: Option<f64>,
    /// Passes over the training split (default 30).
    #[schema(minimum = 1, maximum = 10000, nullable = false)]
    pub epochs: Option<u64>,
    /// Mini-batch size (default 32).
    #[schema(minimum = 1, maximum = 65536, nullable = false)]
    pub batch_size: Option<u64>,
    /// `sgd`, `adam` (default) or `adamw`.
    #[schema(nullable = false)]
    pub optimizer: Option<Optimizer>,
    /// Weight decay on dense weights, in [0, 1].
    #[schema(minimum = 0.0, maximum = 1.0, nullable = false)]
    pub weight_decay: Option<f64>,
    /// Early-stopping patience in epochs (default none).
    #[schema(minimum = 1, nullable = false)]
    pub patience: Option<u64>,
    /// Seed for wiring, initialisation, shuffling and dropout (default 0).
    #[schema(nullable = false)]
    pub seed: Option<u64>,
}

/// Activation of the hidden units (case-insensitive; `swish` = silu, `identity`/`none` = linear).
#[derive(ToSchema, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// Leaky rectifier.
    LeakyRelu,
    /// Exponential linear unit.
    Elu,
    /// Gaussian error linear unit.
    Gelu,
    /// x·sigmoid(x).
    Silu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic.
    Sigmoid,
    /// Identity.
    Linear,
}

/// Optimiser (case-insensitive).
#[derive(ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with momentum.
    Sgd,
    /// Adam.
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
}

/// A count of at least 1.
#[derive(ToSchema, Serialize)]
#[schema(minimum = 1)]
pub struct PositiveCount(u64);

/// One count per level (1 to 16 entries).
#[derive(ToSchema, Serialize)]
#[schema(min_items = 1, max_items = 16)]
pub struct PerLevelList(Vec<PositiveCount>);

/// A per-level count: one number for all levels, or one per level.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum PerLevel {
    /// The same count on every level.
    All(PositiveCount),
    /// One count per level.
    Each(PerLevelList),
}

/// A dataset: inline rows (arrays with the label last, or objects with a `label` key), a list of dataset
/// references (URIs or built-in names, concatenated), one reference, or `{uri}` / `{rows}`. References:
/// `s3://bucket/key.csv`, `file://…` (inside `RUNNER_DATASET_DIRS`), `http(s)://…` (hosts in
/// `RUNNER_DATASET_HTTP_ALLOW`), or a built-in name (`moons`, `spirals`, `xor`, `friedman1`, `iris`).
#[derive(ToSchema, Serialize)]
#[schema(example = json!("moons"))]
#[serde(untagged)]
pub enum Dataset {
    /// One dataset reference.
    Reference(DatasetReference),
    /// Dataset references, read and concatenated (as the Livebook notebook sends them).
    References(DatasetReferences),
    /// Inline rows.
    Rows(Rows),
    /// `{uri}` or `{rows}`.
    Object(DatasetObject),
}

/// A dataset reference: a built-in name or a URI.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum DatasetReference {
    /// A dataset generated in code.
    Builtin(BuiltinDataset),
    /// `s3://bucket/key.csv`, `file://…` (inside `RUNNER_DATASET_DIRS`) or `http(s)://…` (hosts in
    /// `RUNNER_DATASET_HTTP_ALLOW`): CSV with a header, the `label` column (or the last one) is the target.
    Uri(DatasetUri),
}

/// Datasets generated in code.
#[derive(ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinDataset {
    /// Two interleaved half circles (classification).
    Moons,
    /// Two spirals (classification).
    Spirals,
    /// XOR quadrants (classification).
    Xor,
    /// Friedman #1 (regression).
    Friedman1,
    /// Fisher's iris (classification).
    Iris,
}

/// A dataset URI.
#[derive(ToSchema, Serialize)]
#[schema(pattern = r"^(s3|file|https?)://")]
pub struct DatasetUri(String);

/// At least one dataset reference.
#[derive(ToSchema, Serialize)]
#[schema(min_items = 1)]
pub struct DatasetReferences(Vec<DatasetReference>);

/// Inline rows: arrays with the label last, or objects with a `label` key.
#[derive(ToSchema, Serialize)]
#[schema(min_items = 1)]
pub struct Rows(Vec<Row>);

/// One inline row.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum Row {
    /// Feature values, the label last.
    Values(Vec<Value>),
    /// Named values with a `label` key.
    Named(BTreeMap<String, Value>),
}

/// A dataset given as an object.
#[derive(ToSchema, Serialize)]
pub struct DatasetObject {
    /// A dataset reference.
    pub uri: Option<DatasetReference>,
    /// Inline rows.
    pub rows: Option<Rows>,
}

/// `POST /train` request.
#[derive(ToSchema, Serialize)]
#[schema(example = json!({"trial_id": "t-1", "run_id": "run-1", "params": {"epochs": 5}, "dataset": "moons"}))]
pub struct TrainBody {
    /// The trial: 1–256 printable characters. Reusing it with different parameters is a 409; with the same ones
    /// the stored result is returned.
    pub trial_id: Identifier,
    /// The run; when absent, the run whose pending proposal has these params, else `default`.
    pub run_id: Option<Identifier>,
    /// Training parameters.
    pub params: Option<TrainParams>,
    /// The data; when absent, `dataset_id`, then the run's `dataset_id` (422 when none is given).
    pub dataset: Option<Dataset>,
    /// A dataset reference.
    pub dataset_id: Option<DatasetReference>,
    /// `sync` (default) or `async`.
    pub mode: Option<TrainMode>,
}

/// `POST /train` reply (200 when trained, 202 when queued).
#[derive(ToSchema, Serialize)]
pub struct TrainReply {
    /// The trial.
    pub trial_id: String,
    /// Its run.
    pub run_id: String,
    /// Status.
    pub status: TrialStatus,
    /// Measured metrics (`accuracy`, `loss`, `val_loss` or `rmse`, `mae`, `r2`; `latency_ms`, `param_count`,
    /// `artifact_bytes`, `train_seconds`, `epochs_run`).
    pub metrics: BTreeMap<String, Value>,
    /// Rows trained on.
    pub dataset_size: Option<i64>,
    /// MLflow child run, once mirrored.
    pub mlflow_run_id: Option<String>,
    /// Where the artifacts are, once written.
    pub artifact_uri: Option<String>,
    /// Training time.
    pub duration_ms: Option<i64>,
    /// Unknown parameters and other remarks.
    pub warnings: Vec<String>,
    /// Why the training failed.
    pub error: Option<String>,
    /// Tracking and artifact writes still in flight (they are retried until delivered).
    pub pending: Vec<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Bridge
// ---------------------------------------------------------------------------------------------------------

/// Run and trial ids: printable characters (no control characters).
const ID_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]+$";

/// The schema of a bridge body: the contract's fields (`$fields`) flat at top level, or nested under one of the
/// `$nested` keys, with the `$required` ids (non-empty strings) present at top level or under one key.
fn flat_or_nested(
    fields: &str,
    required: &[&str],
    nested: &[&str],
    description: &str,
) -> RefOr<Schema> {
    let id = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(256))
            .pattern(Some(ID_PATTERN))
    };
    let with_ids = || {
        required.iter().fold(ObjectBuilder::new(), |o, field| {
            o.property(*field, id()).required(*field)
        })
    };
    let alternatives = nested
        .iter()
        .fold(AnyOfBuilder::new().item(with_ids()), |a, key| {
            a.item(
                ObjectBuilder::new()
                    .property(*key, with_ids())
                    .required(*key),
            )
        });
    let containers = nested.iter().fold(ObjectBuilder::new(), |o, key| {
        o.property(*key, Ref::from_schema_name(fields))
    });
    AllOfBuilder::new()
        .item(Ref::from_schema_name(fields))
        .item(containers)
        .item(alternatives)
        .description(Some(description))
        .into()
}

/// Implements the schema traits of a bridge body type with [`flat_or_nested`].
macro_rules! flat_or_nested {
    ($body:ident, $fields:ident, [$($required:literal),*], [$($nested:literal),*], $description:literal) => {
        impl PartialSchema for $body {
            fn schema() -> RefOr<Schema> {
                flat_or_nested(stringify!($fields), &[$($required),*], &[$($nested),*], $description)
            }
        }

        impl ToSchema for $body {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push(($fields::name().into_owned(), $fields::schema()));
                <$fields as ToSchema>::schemas(schemas);
            }
        }
    };
}

/// RunStartedV1 fields.
#[derive(ToSchema, Serialize)]
pub struct RunStartedV1 {
    /// The run: 1–256 printable characters.
    pub run_id: Option<Identifier>,
    /// Dataset reference for the run's trainings.
    pub dataset_id: Option<String>,
    /// Search space `/propose` uses when it is given none.
    pub search_space: Option<SearchSpace>,
    /// Objective.
    pub objective: Option<Objective>,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Budget map.
    pub budget: Option<BTreeMap<String, Value>>,
    /// Priors / overrides (names follow MLflow's key rules).
    pub parameters: Option<BTreeMap<MetricKey, Value>>,
    /// Temperature.
    pub tau: Option<f64>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Caller's timestamp (ISO-8601, kept verbatim).
    pub timestamp: Option<String>,
    /// Extra map.
    pub extra: Option<BTreeMap<String, Value>>,
}

/// `POST /bridge/start` request: RunStartedV1 fields flat at top level (as the stub sends them), or nested under
/// `payload` (or Thunderline's `spec` / `opts`); top-level fields win. Idempotent: the same content again is a 200,
/// different content for a started run a 409.
pub struct BridgeStartBody;

flat_or_nested!(
    BridgeStartBody,
    RunStartedV1,
    ["run_id"],
    ["payload", "spec", "opts"],
    "RunStartedV1 fields flat at top level (as the stub sends them), or nested under `payload` (or Thunderline's \
     `spec` / `opts`); top-level fields win. `run_id` is required in one of them."
);

/// `POST /bridge/start` reply.
#[derive(ToSchema, Serialize)]
pub struct BridgeStartReply {
    /// The run.
    pub run_id: String,
    /// Always `started`.
    #[schema(pattern = "^started$")]
    pub status: String,
    /// MLflow parent run, once mirrored.
    pub mlflow_run_id: Option<String>,
}

/// Status a trial may be reported with (TrialReportedV1), case-insensitive.
#[derive(ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportedStatus {
    /// Finished with metrics.
    Succeeded,
    /// Alias of `succeeded`.
    Success,
    /// Alias of `succeeded`.
    Completed,
    /// Alias of `succeeded`.
    Complete,
    /// Finished with an error.
    Failed,
    /// Alias of `failed`.
    Failure,
    /// Alias of `failed`.
    Error,
    /// Not evaluated on purpose.
    Skipped,
    /// Stopped before finishing.
    Cancelled,
    /// Alias of `cancelled`.
    Canceled,
}

/// Status a run may be finalized with (RunFinalizedV1), case-insensitive.
#[derive(ToSchema, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalStatus {
    /// Finalized as succeeded.
    Succeeded,
    /// Alias of `succeeded`.
    Success,
    /// Alias of `succeeded`.
    Completed,
    /// Alias of `succeeded`.
    Complete,
    /// Finalized as failed.
    Failed,
    /// Alias of `failed`.
    Failure,
    /// Alias of `failed`.
    Error,
    /// Finalized as cancelled.
    Cancelled,
    /// Alias of `cancelled`.
    Canceled,
    /// Finalized as timed out.
    Timeout,
    /// Alias of `timeout`.
    TimedOut,
}

/// 0 or 1.
#[derive(ToSchema, Serialize)]
#[schema(minimum = 0, maximum = 1)]
pub struct ZeroOrOne(i64);

/// A boolean spelled as text.
#[derive(ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoolText {
    /// True.
    True,
    /// False.
    False,
}

/// A flexible boolean: `true`, `false`, `"true"`, `"false"`, `1` or `0`.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum FlexBool {
    /// A JSON boolean.
    Bool(bool),
    /// `"true"` or `"false"` (case-insensitive).
    Text(BoolText),
    /// 1 or 0.
    Int(ZeroOrOne),
}

/// TrialReportedV1 fields.
#[derive(ToSchema, Serialize)]
pub struct TrialReportedV1 {
    /// The trial: 1–256 printable characters.
    pub trial_id: Option<Identifier>,
    /// The run: 1–256 printable characters.
    pub run_id: Option<Identifier>,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Candidate id.
    pub candidate_id: Option<String>,
    /// `succeeded` (default), `failed`, `skipped` or `cancelled`; case-insensitive, with the aliases listed.
    pub status: Option<ReportedStatus>,
    /// Metrics; names follow MLflow's key rules, nested objects are flattened with dots.
    pub metrics: Option<BTreeMap<MetricKey, Value>>,
    /// Parameters the trial ran with.
    pub parameters: Option<BTreeMap<MetricKey, Value>>,
    /// Where its artifacts are.
    pub artifact_uri: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: Option<u64>,
    /// Rank in its batch.
    pub rank: Option<u64>,
    /// Warnings.
    pub warnings: Option<Vec<String>>,
    /// Whether spectral normalisation was on.
    pub spectral_norm: Option<FlexBool>,
    /// MLflow run id the caller already has.
    pub mlflow_run_id: Option<String>,
}

/// `POST /bridge/record` request: TrialReportedV1 fields flat or nested under `payload`; idempotent on
/// `(run_id, trial_id)`, 409 when the trial id is reused with different content.
pub struct BridgeRecordBody;

flat_or_nested!(
    BridgeRecordBody,
    TrialReportedV1,
    ["run_id", "trial_id"],
    ["payload"],
    "TrialReportedV1 fields flat at top level or nested under `payload`; top-level fields win. `run_id` and \
     `trial_id` are required."
);

/// `POST /bridge/record` reply.
#[derive(ToSchema, Serialize)]
pub struct BridgeRecordReply {
    /// The run.
    pub run_id: String,
    /// The trial id (the stub's field name).
    pub trial: String,
    /// The trial id.
    pub trial_id: String,
    /// Stored status.
    pub status: TrialStatus,
    /// MLflow child run, once mirrored.
    pub mlflow_run_id: Option<String>,
}

/// RunFinalizedV1 fields.
#[derive(ToSchema, Serialize)]
pub struct RunFinalizedV1 {
    /// The run: 1–256 printable characters.
    pub run_id: Option<Identifier>,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// `succeeded` (default), `failed`, `cancelled` or `timeout`; case-insensitive, with the aliases listed.
    pub status: Option<FinalStatus>,
    /// Aggregate metrics.
    pub metrics: Option<BTreeMap<MetricKey, Value>>,
    /// Best trial named by the caller.
    pub best_trial_id: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: Option<u64>,
    /// Exit code of the caller's process.
    pub returncode: Option<i64>,
    /// Artifact references.
    pub artifact_refs: Option<Vec<Value>>,
    /// Warnings.
    pub warnings: Option<Vec<String>>,
    /// Excerpt of the caller's stdout.
    pub stdout_excerpt: Option<String>,
}

/// `POST /bridge/finalize` request: RunFinalizedV1 fields flat or nested under `payload`; idempotent, 409 when a
/// finalized run is finalized again differently.
pub struct BridgeFinalizeBody;

flat_or_nested!(
    BridgeFinalizeBody,
    RunFinalizedV1,
    ["run_id"],
    ["payload"],
    "RunFinalizedV1 fields flat at top level or nested under `payload`; top-level fields win. `run_id` is required."
);

/// `POST /bridge/finalize` reply: the best trial among succeeded ones by the run's objective.
#[derive(ToSchema, Serialize)]
pub struct BridgeFinalizeReply {
    /// The run.
    pub run_id: String,
    /// Final status.
    pub status: RunStatus,
    /// Duration the caller reported.
    pub duration_ms: Option<i64>,
    /// Number of trials of the run.
    pub trials: u64,
    /// The best trial.
    pub best_trial: Option<Trial>,
    /// Its id (or the caller's when no trial qualifies).
    pub best_trial_id: Option<String>,
    /// The caller's final metrics, else the best trial's.
    pub metrics: BTreeMap<String, Value>,
    /// MLflow parent run, once mirrored.
    pub mlflow_run_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Runs and trials
// ---------------------------------------------------------------------------------------------------------

/// Where a trial came from.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum TrialSource {
    /// Reported through `/bridge/record`.
    Reported,
    /// Trained by this runner (`/train`).
    Trained,
}

/// A stored trial.
#[derive(ToSchema, Serialize)]
pub struct Trial {
    /// The trial id.
    pub trial_id: String,
    /// Its run.
    pub run_id: String,
    /// Status.
    pub status: TrialStatus,
    /// Origin.
    pub source: TrialSource,
    /// Parameters.
    pub parameters: BTreeMap<String, Value>,
    /// Metrics.
    pub metrics: BTreeMap<String, Value>,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Candidate id.
    pub candidate_id: Option<String>,
    /// Artifact location.
    pub artifact_uri: Option<String>,
    /// Duration (ms).
    pub duration_ms: Option<i64>,
    /// Rank in its batch.
    pub rank: Option<i64>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Spectral normalisation flag.
    pub spectral_norm: bool,
    /// MLflow child run id.
    pub mlflow_run_id: Option<String>,
    /// Rows trained on.
    pub dataset_size: Option<i64>,
    /// Failure reason.
    pub error: Option<String>,
    /// Times a training was attempted.
    pub attempts: i64,
    /// Creation time (ms since the epoch).
    pub created_at_ms: i64,
    /// Last update (ms since the epoch).
    pub updated_at_ms: i64,
}

/// What `/bridge/finalize` stored.
#[derive(ToSchema, Serialize)]
pub struct RunFinal {
    /// Final status.
    pub status: RunStatus,
    /// The caller's final metrics.
    pub metrics: Value,
    /// Best trial at finalization.
    pub best_trial_id: Option<String>,
    /// Duration reported.
    pub duration_ms: Option<i64>,
    /// The caller's return code.
    pub returncode: Option<i64>,
    /// Artifact references.
    pub artifact_refs: Value,
    /// Warnings.
    pub warnings: Value,
    /// Excerpt of the caller's stdout.
    pub stdout_excerpt: Option<String>,
}

/// A run with its best trial and counts.
#[derive(ToSchema, Serialize)]
pub struct Run {
    /// The run id.
    pub run_id: String,
    /// Status.
    pub status: RunStatus,
    /// Whether `/bridge/start` was received.
    pub started: bool,
    /// What the run optimises.
    pub objective: StoredObjective,
    /// The objective's direction (kept for the original runner's clients).
    pub direction: Direction,
    /// Dataset reference for trainings.
    pub dataset_id: Option<String>,
    /// Search space from `/bridge/start`.
    pub search_space: Option<Value>,
    /// Pulse id.
    pub pulse_id: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Temperature.
    pub tau: Option<f64>,
    /// Budget map.
    pub budget: Value,
    /// Priors / overrides.
    pub parameters: Value,
    /// Extra map.
    pub extra: Value,
    /// Caller's start timestamp.
    pub started_at: Option<String>,
    /// Number of trials.
    pub n_trials: u64,
    /// Number of succeeded trials.
    pub n_complete: u64,
    /// Unexpired proposals not yet reported by a trial.
    pub pending_proposals: u64,
    /// Trials per status.
    pub trial_counts: BTreeMap<String, u64>,
    /// Best succeeded trial by the objective.
    pub best_trial_id: Option<String>,
    /// Its objective value.
    pub best_value: Option<f64>,
    /// Its parameters.
    pub best_params: Option<BTreeMap<String, Value>>,
    /// The best trial.
    pub best_trial: Option<Trial>,
    /// What `/bridge/finalize` stored, once finalized.
    #[serde(rename = "final")]
    pub finalized: Option<RunFinal>,
    /// MLflow parent run id.
    pub mlflow_run_id: Option<String>,
    /// Creation time (ms since the epoch).
    pub created_at_ms: i64,
    /// Last update (ms since the epoch).
    pub updated_at_ms: i64,
    /// Finalization time (ms since the epoch).
    pub finalized_at_ms: Option<i64>,
}

/// `GET /runs` reply: runs, newest first.
#[derive(ToSchema, Serialize)]
pub struct RunPage {
    /// This page.
    pub runs: Vec<Run>,
    /// All runs.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

/// `GET /runs/{run_id}/trials` reply: trials, oldest first.
#[derive(ToSchema, Serialize)]
pub struct TrialPage {
    /// The run.
    pub run_id: String,
    /// This page.
    pub trials: Vec<Trial>,
    /// All trials of the run.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

// ---------------------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------------------

/// `GET /healthz` reply.
#[derive(ToSchema, Serialize)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: String,
}

/// Readiness verdict.
#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum ReadyStatus {
    /// The database answers.
    Ready,
    /// The database does not answer (503).
    Unavailable,
}

/// `GET /readyz` reply. Only the database decides readiness; an MLflow or S3 outage shows in `dependencies` and
/// as a growing outbox backlog.
#[derive(ToSchema, Serialize)]
pub struct Readiness {
    /// Verdict.
    pub status: ReadyStatus,
    /// Probes.
    pub checks: ReadinessChecks,
    /// Outbox backlog (`{pending, retrying, oldest_age_ms}`), or `{error}` when it cannot be read.
    pub outbox: Value,
    /// Trainings on this replica.
    pub training: TrainingLoad,
}

/// Readiness probes.
#[derive(ToSchema, Serialize)]
pub struct ReadinessChecks {
    /// `{status: ok}` or `{status: error, error}`.
    pub database: Value,
    /// `{mlflow: {status: ok|down|disabled, …}, artifacts: {status: ok|down, store, …}}`.
    pub dependencies: Value,
}

/// Trainings on this replica.
#[derive(ToSchema, Serialize)]
pub struct TrainingLoad {
    /// Sync trainings waiting for a slot.
    pub waiting: u64,
    /// Trainings running.
    pub running: u64,
}
