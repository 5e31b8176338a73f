//! Tabular datasets: numeric features plus one target, parsed from CSV bytes or JSON rows.
//!
//! Errors name rows and columns by position (1-based data row, 1-based column) and never repeat
//! what the input contained, so a dataset read on a caller's behalf cannot leak into a response.
//!
//! Task inference: the target is a classification target when every value is an integer, there
//! are between 2 and [`MAX_CLASSES`] distinct values, and the rows number at least twice the
//! distinct values (so each class has two rows on average). Anything else numeric is regression.

use serde_json::Value;

use super::csv::{CsvFault, Reader};

/// Most distinct integer labels still read as classes.
pub const MAX_CLASSES: usize = 50;
/// Most feature columns a dataset may have.
pub const MAX_FEATURES: usize = 100_000;

/// What the target column asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Predict one of `classes` labels (softmax head, cross-entropy loss).
    Classification {
        /// Number of distinct labels.
        classes: usize,
    },
    /// Predict a real number (linear head, mean squared error).
    Regression,
}

/// A numeric table: features in row-major `f32`, one target per row, and the inferred task.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    features: Vec<f32>,
    n_rows: usize,
    n_features: usize,
    feature_names: Vec<String>,
    target_name: String,
    targets: Vec<f64>,
    task: Task,
    class_labels: Vec<i64>,
}

/// Why input could not become a dataset. Messages give positions, never cell contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    /// No data rows.
    #[error("the dataset has no data rows")]
    Empty,
    /// The first CSV record is all numbers, so there is no header.
    #[error("the CSV has no header row (the first row is all numbers); add column names")]
    NoHeader,
    /// Fewer than two columns: no feature, or no target.
    #[error("need at least one feature column and a target column, found {columns} column(s)")]
    NoTarget {
        /// Columns found.
        columns: usize,
    },
    /// The target has a single distinct value, so there is nothing to learn.
    #[error("the target (column {column}) has a single distinct value; nothing to learn")]
    ConstantTarget {
        /// 1-based position of the target column.
        column: usize,
    },
    /// A row has a different number of fields than the header.
    #[error("data row {row} has {found} fields, expected {expected}")]
    Ragged {
        /// 1-based data row.
        row: usize,
        /// Fields expected.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A cell is empty or a missing-value marker.
    #[error("data row {row}, column {column}: missing value")]
    Missing {
        /// 1-based data row.
        row: usize,
        /// 1-based column.
        column: usize,
    },
    /// A cell is not a finite number.
    #[error("data row {row}, column {column}: not a finite number")]
    NotNumeric {
        /// 1-based data row.
        row: usize,
        /// 1-based column.
        column: usize,
    },
    /// Broken quoting in the CSV.
    #[error("CSV record {record}: {problem}")]
    Malformed {
        /// 1-based record (the header is record 1).
        record: usize,
        /// What is wrong, in general terms.
        problem: &'static str,
    },
    /// The header is not valid UTF-8.
    #[error("the CSV header is not valid UTF-8")]
    NotUtf8,
    /// Too many columns.
    #[error("{columns} feature columns exceed the limit of {limit}")]
    TooWide {
        /// Feature columns found.
        columns: usize,
        /// The limit.
        limit: usize,
    },
    /// The JSON rows are not in a supported shape.
    #[error("{0}")]
    Shape(String),
    /// Datasets being concatenated disagree on their columns.
    #[error("dataset part {part} has different columns from part 1")]
    Mismatch {
        /// 1-based part index.
        part: usize,
    },
}

impl Dataset {
    /// Parses CSV bytes with a header row. The target is the column named `label` (any case), else
    /// the last column; every other column is a numeric feature.
    pub fn from_csv(bytes: &[u8]) -> Result<Dataset, DatasetError> {
        let mut reader = Reader::new(bytes);
        let malformed = |record: usize, fault: CsvFault| DatasetError::Malformed {
            record,
            problem: match fault {
                CsvFault::UnterminatedQuote => "a quoted field is never closed",
                CsvFault::TextAfterQuote => "text follows a closing quote",
            },
        };
        if !reader.next_record().map_err(|f| malformed(1, f))? {
            return Err(DatasetError::Empty);
        }
        let width = reader.len();
        let mut header = Vec::with_capacity(width);
        for i in 0..width {
            let name = std::str::from_utf8(reader.field(i)).map_err(|_| DatasetError::NotUtf8)?;
            header.push(name.trim().to_string());
        }
        if width < 2 {
            return Err(DatasetError::NoTarget { columns: width });
        }
        if width - 1 > MAX_FEATURES {
            return Err(DatasetError::TooWide {
                columns: width - 1,
                limit: MAX_FEATURES,
            });
        }
        if header.iter().all(|h| parse_cell(h.as_bytes()).is_ok()) {
            return Err(DatasetError::NoHeader);
        }
        let target_col = header
            .iter()
            .position(|h| h.eq_ignore_ascii_case("label"))
            .unwrap_or(width - 1);

        let mut features = Vec::new();
        let mut targets = Vec::new();
        let mut row = 0;
        while reader.next_record().map_err(|f| malformed(row + 2, f))? {
            row += 1;
            if reader.len() != width {
                return Err(DatasetError::Ragged {
                    row,
                    expected: width,
                    found: reader.len(),
                });
            }
            for col in 0..width {
                let value = parse_cell(reader.field(col)).map_err(|bad| bad.at(row, col + 1))?;
                if col == target_col {
                    targets.push(value);
                } else {
                    features.push(value as f32);
                }
            }
        }
        let target_name = header.remove(target_col);
        let names = header
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                if h.is_empty() {
                    format!("column_{}", i + 1)
                } else {
                    h
                }
            })
            .collect();
        Dataset::assemble(features, names, target_name, targets, target_col + 1)
    }

    /// Builds a dataset from JSON rows: an array of arrays (numbers, label last) or an array of
    /// objects that all have the same keys, one of them `label`. Cells may be numbers or numeric
    /// strings; `null` and missing-value strings are errors.
    pub fn from_rows(rows: &Value) -> Result<Dataset, DatasetError> {
        let shape = |m: &str| DatasetError::Shape(m.to_string());
        let items = rows
            .as_array()
            .ok_or_else(|| shape("rows must be a JSON array of arrays or of objects"))?;
        let first = items.first().ok_or(DatasetError::Empty)?;
        match first {
            Value::Array(cells) => Self::from_array_rows(items, cells.len()),
            Value::Object(obj) => {
                let keys: Vec<&String> = obj.keys().collect();
                Self::from_object_rows(items, &keys)
            }
            _ => Err(shape("each row must be an array of numbers or an object")),
        }
    }

    fn from_array_rows(items: &[Value], width: usize) -> Result<Dataset, DatasetError> {
        if width < 2 {
            return Err(DatasetError::NoTarget { columns: width });
        }
        if width - 1 > MAX_FEATURES {
            return Err(DatasetError::TooWide {
                columns: width - 1,
                limit: MAX_FEATURES,
            });
        }
        let mut features = Vec::with_capacity(items.len() * (width - 1));
        let mut targets = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let row = i + 1;
            let cells = item.as_array().ok_or_else(|| {
                DatasetError::Shape(format!("row {row} is not an array like the first row"))
            })?;
            if cells.len() != width {
                return Err(DatasetError::Ragged {
                    row,
                    expected: width,
                    found: cells.len(),
                });
            }
            for (c, cell) in cells.iter().enumerate() {
                let v = json_number(cell).map_err(|bad| bad.at(row, c + 1))?;
                if c + 1 == width {
                    targets.push(v);
                } else {
                    features.push(v as f32);
                }
            }
        }
        let names = (0..width - 1).map(|i| format!("x{i}")).collect();
        Dataset::assemble(features, names, "label".to_string(), targets, width)
    }

    fn from_object_rows(items: &[Value], keys: &[&String]) -> Result<Dataset, DatasetError> {
        let target_col = keys
            .iter()
            .position(|k| k.as_str() == "label")
            .ok_or_else(|| DatasetError::Shape("row objects need a `label` key".to_string()))?;
        let width = keys.len();
        if width < 2 {
            return Err(DatasetError::NoTarget { columns: width });
        }
        if width - 1 > MAX_FEATURES {
            return Err(DatasetError::TooWide {
                columns: width - 1,
                limit: MAX_FEATURES,
            });
        }
        let mut features = Vec::with_capacity(items.len() * (width - 1));
        let mut targets = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let row = i + 1;
            let obj = item.as_object().ok_or_else(|| {
                DatasetError::Shape(format!("row {row} is not an object like the first row"))
            })?;
            if obj.len() != width {
                return Err(DatasetError::Ragged {
                    row,
                    expected: width,
                    found: obj.len(),
                });
            }
            for (c, key) in keys.iter().enumerate() {
                let cell = obj.get(key.as_str()).ok_or_else(|| {
                    DatasetError::Shape(format!(
                        "row {row} lacks the key of column {} of the first row",
                        c + 1
                    ))
                })?;
                let v = json_number(cell).map_err(|bad| bad.at(row, c + 1))?;
                if c == target_col {
                    targets.push(v);
                } else {
                    features.push(v as f32);
                }
            }
        }
        let names = keys
            .iter()
            .enumerate()
            .filter(|(c, _)| *c != target_col)
            .map(|(_, k)| k.to_string())
            .collect();
        Dataset::assemble(
            features,
            names,
            "label".to_string(),
            targets,
            target_col + 1,
        )
    }

    /// A dataset generated in code: `moons`, `spirals`, `xor` (classification), `friedman1`
    /// (regression), or the classic `iris` table. Deterministic; `None` for other names.
    pub fn builtin(name: &str) -> Option<Dataset> {
        super::builtin::generate(name.trim())
    }

    /// Names accepted by [`Dataset::builtin`].
    pub fn builtin_names() -> &'static [&'static str] {
        super::builtin::NAMES
    }

    /// Appends datasets with the same columns, in order; the task is inferred again from the
    /// combined targets.
    pub fn concat(parts: Vec<Dataset>) -> Result<Dataset, DatasetError> {
        let mut parts = parts.into_iter();
        let first = parts.next().ok_or(DatasetError::Empty)?;
        let Dataset {
            mut features,
            feature_names,
            target_name,
            mut targets,
            n_features,
            ..
        } = first;
        for (i, part) in parts.enumerate() {
            if part.n_features != n_features || part.feature_names != feature_names {
                return Err(DatasetError::Mismatch { part: i + 2 });
            }
            features.extend_from_slice(&part.features);
            targets.extend_from_slice(&part.targets);
        }
        Dataset::assemble(
            features,
            feature_names,
            target_name,
            targets,
            n_features + 1,
        )
    }

    /// Builds a dataset from parts already checked for shape; infers the task. `target_column`
    /// (1-based) is only used in error messages.
    pub(crate) fn assemble(
        features: Vec<f32>,
        feature_names: Vec<String>,
        target_name: String,
        targets: Vec<f64>,
        target_column: usize,
    ) -> Result<Dataset, DatasetError> {
        let n_rows = targets.len();
        let n_features = feature_names.len();
        if n_rows == 0 {
            return Err(DatasetError::Empty);
        }
        debug_assert_eq!(features.len(), n_rows * n_features);
        let (task, class_labels) = infer_task(&targets).ok_or(DatasetError::ConstantTarget {
            column: target_column,
        })?;
        Ok(Dataset {
            features,
            n_rows,
            n_features,
            feature_names,
            target_name,
            targets,
            task,
            class_labels,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.n_rows
    }

    /// Whether there are no rows (never true for a constructed dataset).
    pub fn is_empty(&self) -> bool {
        self.n_rows == 0
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Row-major features, `len() * n_features()` values.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// Feature column names (generated as `x0, x1, …` for array rows).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Name of the target column.
    pub fn target_name(&self) -> &str {
        &self.target_name
    }

    /// Raw target values, one per row.
    pub fn targets(&self) -> &[f64] {
        &self.targets
    }

    /// The inferred task.
    pub fn task(&self) -> Task {
        self.task
    }

    /// For classification, the distinct labels in ascending order (class `i` is `class_labels()[i]`);
    /// empty for regression.
    pub fn class_labels(&self) -> &[i64] {
        &self.class_labels
    }

    /// For classification, the class index of every row.
    pub(crate) fn class_indices(&self) -> Vec<usize> {
        self.targets
            .iter()
            .map(|t| self.class_labels.binary_search(&(*t as i64)).unwrap_or(0))
            .collect()
    }
}

/// A cell that is not a usable number, before its position is known.
enum BadCell {
    Missing,
    NotNumeric,
}

impl BadCell {
    fn at(self, row: usize, column: usize) -> DatasetError {
        match self {
            BadCell::Missing => DatasetError::Missing { row, column },
            BadCell::NotNumeric => DatasetError::NotNumeric { row, column },
        }
    }
}

fn parse_cell(raw: &[u8]) -> Result<f64, BadCell> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| BadCell::NotNumeric)?
        .trim();
    const MISSING: [&str; 7] = ["", "na", "n/a", "nan", "null", "none", "?"];
    if MISSING.iter().any(|m| text.eq_ignore_ascii_case(m)) {
        return Err(BadCell::Missing);
    }
    finite(text.parse::<f64>().map_err(|_| BadCell::NotNumeric)?)
}

fn json_number(v: &Value) -> Result<f64, BadCell> {
    match v {
        Value::Null => Err(BadCell::Missing),
        Value::Number(n) => finite(n.as_f64().ok_or(BadCell::NotNumeric)?),
        Value::String(s) => parse_cell(s.as_bytes()),
        _ => Err(BadCell::NotNumeric),
    }
}

/// Accepts values that stay finite as `f32` features.
fn finite(x: f64) -> Result<f64, BadCell> {
    if x.is_finite() && (x as f32).is_finite() {
        Ok(x)
    } else {
        Err(BadCell::NotNumeric)
    }
}

/// Classification with its sorted labels, or regression; `None` when the target is constant.
fn infer_task(targets: &[f64]) -> Option<(Task, Vec<i64>)> {
    let integral = targets.iter().all(|t| t.fract() == 0.0 && t.abs() < 1e15);
    if integral {
        let mut labels: Vec<i64> = Vec::new();
        for t in targets {
            let l = *t as i64;
            if let Err(at) = labels.binary_search(&l) {
                labels.insert(at, l);
                if labels.len() > MAX_CLASSES {
                    break;
                }
            }
        }
        if labels.len() < 2 {
            return None;
        }
        if labels.len() <= MAX_CLASSES && targets.len() >= 2 * labels.len() {
            return Some((
                Task::Classification {
                    classes: labels.len(),
                },
                labels,
            ));
        }
        return Some((Task::Regression, Vec::new()));
    }
    let first = targets[0];
    if targets.iter().all(|t| *t == first) {
        return None;
    }
    Some((Task::Regression, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn csv(text: &str) -> Result<Dataset, DatasetError> {
        Dataset::from_csv(text.as_bytes())
    }

    #[test]
    fn label_column_is_the_target_wherever_it_is() {
        let d = csv("a,label,b\n1,0,2\n3,1,4\n5,0,6\n7,1,8\n").unwrap();
        assert_eq!(d.feature_names(), ["a", "b"]);
        assert_eq!(d.features(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(d.targets(), [0.0, 1.0, 0.0, 1.0]);
        assert_eq!(d.task(), Task::Classification { classes: 2 });
    }

    #[test]
    fn without_a_label_column_the_last_column_is_the_target() {
        let d = csv("a,b,y\n1,2,0.5\n3,4,1.5\n5,6,2.25\n").unwrap();
        assert_eq!(d.target_name(), "y");
        assert_eq!(d.task(), Task::Regression);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn quoted_fields_and_crlf_parse() {
        let d = csv("\"feat, one\",\"label\"\r\n\"1.5\",0\r\n2,\"1\"\r\n3,0\r\n4,1\r\n").unwrap();
        assert_eq!(d.feature_names(), ["feat, one"]);
        assert_eq!(d.features(), [1.5, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn missing_values_are_errors_with_position() {
        assert_eq!(
            csv("a,b,label\n1,2,0\n3,,1\n").unwrap_err(),
            DatasetError::Missing { row: 2, column: 2 }
        );
        assert_eq!(
            csv("a,label\nNA,1\n2,0\n").unwrap_err(),
            DatasetError::Missing { row: 1, column: 1 }
        );
    }

    #[test]
    fn ragged_rows_are_errors() {
        assert_eq!(
            csv("a,b,label\n1,2,0\n3,1\n").unwrap_err(),
            DatasetError::Ragged {
                row: 2,
                expected: 3,
                found: 2
            }
        );
    }

    #[test]
    fn a_numeric_first_row_means_no_header() {
        assert_eq!(csv("1,2,0\n3,4,1\n").unwrap_err(), DatasetError::NoHeader);
    }

    #[test]
    fn unusable_targets_are_errors() {
        assert_eq!(
            csv("label\n1\n2\n").unwrap_err(),
            DatasetError::NoTarget { columns: 1 }
        );
        assert_eq!(
            csv("a,label\n1,3\n2,3\n").unwrap_err(),
            DatasetError::ConstantTarget { column: 2 }
        );
        assert_eq!(csv("a,label\n").unwrap_err(), DatasetError::Empty);
        assert_eq!(csv("").unwrap_err(), DatasetError::Empty);
    }

    #[test]
    fn text_cells_are_rejected_without_echoing_them() {
        let err = csv("a,label\nsecret-token-123,1\n2,0\n").unwrap_err();
        assert_eq!(err, DatasetError::NotNumeric { row: 1, column: 1 });
        assert!(!err.to_string().contains("secret"));
        let err = csv("a,label\n1,\"unclosed secret\n").unwrap_err();
        assert!(
            matches!(err, DatasetError::Malformed { record: 2, .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn many_distinct_integers_are_regression_few_are_classes() {
        let rows: String = (0..200).map(|i| format!("{i},{}\n", i % 120)).collect();
        assert_eq!(
            csv(&format!("x,label\n{rows}")).unwrap().task(),
            Task::Regression
        );
        let rows: String = (0..200).map(|i| format!("{i},{}\n", 10 + i % 3)).collect();
        let d = csv(&format!("x,label\n{rows}")).unwrap();
        assert_eq!(d.task(), Task::Classification { classes: 3 });
        assert_eq!(d.class_labels(), [10, 11, 12]);
        assert_eq!(&d.class_indices()[..4], [0, 1, 2, 0]);
    }

    #[test]
    fn rows_as_arrays_and_objects_agree() {
        let arrays =
            Dataset::from_rows(&json!([[0.0, 1.0, 0], [1.0, 0.0, 1], [1, 1, 0], [0, 0, 1]]))
                .unwrap();
        let objects = Dataset::from_rows(&json!([
            {"x0": 0.0, "x1": 1.0, "label": 0}, {"x0": 1.0, "x1": 0.0, "label": 1},
            {"x0": 1, "x1": 1, "label": 0}, {"label": 1, "x1": 0, "x0": 0}
        ]))
        .unwrap();
        assert_eq!(arrays, objects);
    }

    #[test]
    fn malformed_rows_are_errors() {
        assert!(matches!(
            Dataset::from_rows(&json!({"a": 1})),
            Err(DatasetError::Shape(_))
        ));
        assert_eq!(Dataset::from_rows(&json!([])), Err(DatasetError::Empty));
        assert_eq!(
            Dataset::from_rows(&json!([[1, 0], [2, 1, 3]])),
            Err(DatasetError::Ragged {
                row: 2,
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            Dataset::from_rows(&json!([[1, 0], [null, 1]])),
            Err(DatasetError::Missing { row: 2, column: 1 })
        );
        assert!(matches!(
            Dataset::from_rows(&json!([{"x": 1}])),
            Err(DatasetError::Shape(_))
        ));
        assert!(matches!(
            Dataset::from_rows(&json!([{"x": 1, "label": 0}, {"y": 1, "label": 1}])),
            Err(DatasetError::Shape(_))
        ));
    }

    #[test]
    fn concat_appends_and_rejects_other_columns() {
        let a = csv("a,label\n1,0\n2,1\n").unwrap_or_else(|e| panic!("{e}"));
        let b = csv("a,label\n3,0\n4,1\n").unwrap();
        let both = Dataset::concat(vec![a.clone(), b]).unwrap();
        assert_eq!(both.features(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(both.task(), Task::Classification { classes: 2 });
        let other = csv("z,label\n3,0\n4,1\n").unwrap();
        assert_eq!(
            Dataset::concat(vec![a, other]),
            Err(DatasetError::Mismatch { part: 2 })
        );
        assert_eq!(Dataset::concat(vec![]), Err(DatasetError::Empty));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(|x| json!(x)),
            any::<i64>().prop_map(|x| json!(x)),
            "[a-z0-9.\\-]{0,6}".prop_map(Value::String),
            Just(json!("label")),
        ];
        leaf.prop_recursive(3, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec(
                    (prop_oneof![Just("label".to_string()), "[a-c]{1,2}"], inner),
                    0..5
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn from_csv_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Dataset::from_csv(&bytes);
        }

        #[test]
        fn from_csv_never_panics_on_csv_like_text(text in "[0-9a-z,.\"\\r\\n -]{0,300}") {
            let _ = Dataset::from_csv(text.as_bytes());
        }

        #[test]
        fn from_rows_never_panics(v in json_value()) {
            let _ = Dataset::from_rows(&v);
        }

        #[test]
        fn parsed_csv_has_consistent_shape(rows in prop::collection::vec((-1e6f64..1e6, 0u8..3), 6..40)) {
            let text: String = rows.iter().map(|(x, y)| format!("{x},{y}\n")).collect();
            if let Ok(d) = Dataset::from_csv(format!("x,label\n{text}").as_bytes()) {
                prop_assert_eq!(d.len(), rows.len());
                prop_assert_eq!(d.features().len(), d.len() * d.n_features());
            }
        }
    }
}
