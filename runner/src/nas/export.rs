//! Describing a trained model: the architecture as JSON and the weights as safetensors.

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::{Value, json};

use super::dataset::{Dataset, Task};
use super::network::Network;
use super::params::TrainSpec;
use super::split::Prepared;
use super::wiring::Wiring;

/// Identifies the layout of the architecture JSON and tensor names.
pub const FORMAT: &str = "thunderhelm-nas/1";

/// Everything needed to describe a trained network.
pub(crate) struct Model<'a> {
    pub spec: &'a TrainSpec,
    pub data: &'a Dataset,
    pub prep: &'a Prepared,
    pub wiring: &'a Wiring,
    pub net: &'a Network,
    pub params: &'a [f32],
}

impl Model<'_> {
    /// Self-contained description: task, input standardisation, graph and training settings.
    pub(crate) fn architecture(&self) -> Value {
        let task = match self.data.task() {
            Task::Classification { classes } => json!({
                "kind": "classification",
                "classes": classes,
                "class_labels": self.data.class_labels(),
                "output": "softmax",
            }),
            Task::Regression => json!({
                "kind": "regression",
                "output": "linear",
                "target_mean": self.prep.target_mean,
                "target_std": self.prep.target_std,
            }),
        };
        json!({
            "format": FORMAT,
            "task": task,
            "target": self.data.target_name(),
            "inputs": {
                "features": self.data.feature_names(),
                "mean": self.prep.feature_mean,
                "std": self.prep.feature_std,
            },
            "activation": self.spec.activation.name(),
            "normalization": self.spec.normalization,
            "dropout": self.spec.dropout,
            "units": self.wiring.units_json(),
            "head": {
                "inputs": self.wiring.head_inputs.iter().map(|&n| self.wiring.node_name(n)).collect::<Vec<_>>(),
                "outputs": self.net.n_outputs,
            },
            "param_count": self.net.n_params,
            "layout": "inputs are standardised with inputs.mean/std; each unit concatenates its inputs \
                in order, applies layer norm (units with `<name>.norm.*` tensors), dropout (training only), \
                x·weight + bias with weight shaped [in, out], then the activation; the head is linear \
                (softmax for classification; regression outputs are scaled by target_std and shifted \
                by target_mean)",
            "training": self.spec.to_json(),
        })
    }

    /// Weights (and standardisation statistics) as a safetensors file; the architecture JSON is
    /// stored in the `architecture` metadata entry.
    pub(crate) fn safetensors(&self, architecture: &Value) -> Result<Vec<u8>, String> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let last = self.net.layers.len() - 1;
        for (i, l) in self.net.layers.iter().enumerate() {
            let name = if i == last {
                "head".to_string()
            } else {
                self.wiring.node_name(i + 1)
            };
            let (iw, ow) = (l.in_width, l.out_width);
            if let Some(g) = l.norm {
                tensors.push((
                    format!("{name}.norm.weight"),
                    vec![iw],
                    bytes(&self.params[g..g + iw]),
                ));
                tensors.push((
                    format!("{name}.norm.bias"),
                    vec![iw],
                    bytes(&self.params[g + iw..g + 2 * iw]),
                ));
            }
            tensors.push((
                format!("{name}.weight"),
                vec![iw, ow],
                bytes(&self.params[l.weight..l.weight + iw * ow]),
            ));
            tensors.push((
                format!("{name}.bias"),
                vec![ow],
                bytes(&self.params[l.bias..l.bias + ow]),
            ));
        }
        let d = self.prep.feature_mean.len();
        tensors.push(("input.mean".into(), vec![d], bytes(&self.prep.feature_mean)));
        tensors.push(("input.std".into(), vec![d], bytes(&self.prep.feature_std)));
        let views = tensors
            .iter()
            .map(|(name, shape, data)| {
                TensorView::new(Dtype::F32, shape.clone(), data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = Some(
            [("architecture".to_string(), architecture.to_string())]
                .into_iter()
                .collect(),
        );
        safetensors::serialize(views, &metadata).map_err(|e| e.to_string())
    }
}
