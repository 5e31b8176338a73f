//! Drawing a candidate's wiring: which earlier outputs each dense unit concatenates.
//!
//! Node 0 is the input (level 0); node `k ≥ 1` is the `k`-th unit in level-major order. A unit in
//! level `l` makes as many draws as the previous level has nodes; each draw comes from the previous
//! level with probability `predecessor_affinity`, otherwise from any earlier level, and repeated
//! draws collapse. It also reads each unit to its left in its own level with probability
//! `p_lateral_connection`. Edges only go to later levels or to the right, so the graph is acyclic.
//! The head reads every unit of the last level plus every unit nobody else reads, so every unit
//! reaches the output.

use serde_json::{Value, json};

use crate::rng::Rng;

/// One dense unit of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitPlan {
    /// Level, from 1.
    pub level: usize,
    /// Position within the level, from 0.
    pub index: usize,
    /// Nodes concatenated as input, in ascending node order.
    pub inputs: Vec<usize>,
    /// Width of the unit's dense layer.
    pub neurons: usize,
}

/// The whole plan: units in topological order plus the head's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wiring {
    /// Units; unit `i` is node `i + 1`.
    pub units: Vec<UnitPlan>,
    /// Nodes the head concatenates, ascending.
    pub head_inputs: Vec<usize>,
}

/// Shape of the graph to draw.
pub(crate) struct Shape<'a> {
    pub units_per_level: &'a [usize],
    pub neurons_per_unit: &'a [usize],
    pub p_lateral_connection: f64,
    pub predecessor_affinity: f64,
}

/// Draws a wiring; the same shape and generator state always give the same wiring.
pub(crate) fn draw(shape: &Shape<'_>, rng: &mut Rng) -> Wiring {
    let mut units: Vec<UnitPlan> = Vec::new();
    // Node ids of each level; level 0 is the input.
    let mut level_nodes: Vec<Vec<usize>> = vec![vec![0]];
    for (l, (&count, &neurons)) in shape
        .units_per_level
        .iter()
        .zip(shape.neurons_per_unit)
        .enumerate()
    {
        let level = l + 1;
        let previous = &level_nodes[level - 1];
        let earlier: Vec<usize> = level_nodes[..level - 1].iter().flatten().copied().collect();
        let first_node = units.len() + 1;
        for index in 0..count {
            let mut inputs = Vec::with_capacity(previous.len() + index);
            for _ in 0..previous.len() {
                let from_previous =
                    earlier.is_empty() || rng.next_f64() < shape.predecessor_affinity;
                let pool = if from_previous { previous } else { &earlier };
                inputs.push(pool[rng.below(pool.len() as u64) as usize]);
            }
            for left in 0..index {
                if rng.next_f64() < shape.p_lateral_connection {
                    inputs.push(first_node + left);
                }
            }
            inputs.sort_unstable();
            inputs.dedup();
            units.push(UnitPlan {
                level,
                index,
                inputs,
                neurons,
            });
        }
        level_nodes.push((first_node..first_node + count).collect());
    }

    let mut read = vec![false; units.len() + 1];
    for u in &units {
        for &i in &u.inputs {
            read[i] = true;
        }
    }
    let last = level_nodes.last().cloned().unwrap_or_default();
    let mut head_inputs: Vec<usize> = (1..=units.len())
        .filter(|&node| !read[node] || last.contains(&node))
        .collect();
    if head_inputs.is_empty() {
        head_inputs.push(0);
    }
    Wiring { units, head_inputs }
}

impl Wiring {
    /// Human-readable name of a node (`input`, `u<level>_<index>`).
    pub(crate) fn node_name(&self, node: usize) -> String {
        match node {
            0 => "input".to_string(),
            k => {
                let u = &self.units[k - 1];
                format!("u{}_{}", u.level, u.index)
            }
        }
    }

    /// The units as JSON, for the architecture description.
    pub(crate) fn units_json(&self) -> Value {
        Value::Array(
            self.units
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    json!({
                        "name": self.node_name(i + 1),
                        "level": u.level,
                        "inputs": u.inputs.iter().map(|&n| self.node_name(n)).collect::<Vec<_>>(),
                        "neurons": u.neurons,
                    })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape<'a>(
        units: &'a [usize],
        neurons: &'a [usize],
        lateral: f64,
        affinity: f64,
    ) -> Shape<'a> {
        Shape {
            units_per_level: units,
            neurons_per_unit: neurons,
            p_lateral_connection: lateral,
            predecessor_affinity: affinity,
        }
    }

    #[test]
    fn affinity_one_without_laterals_is_a_chain() {
        let w = draw(
            &shape(&[1, 1, 1], &[8, 4, 2], 0.0, 1.0),
            &mut Rng::seed_from_u64(1),
        );
        let inputs: Vec<_> = w.units.iter().map(|u| u.inputs.clone()).collect();
        assert_eq!(inputs, vec![vec![0], vec![1], vec![2]]);
        assert_eq!(w.head_inputs, vec![3]);
    }

    #[test]
    fn every_unit_has_inputs_from_earlier_nodes_and_reaches_the_head() {
        for seed in 0..200 {
            let mut rng = Rng::seed_from_u64(seed);
            let w = draw(&shape(&[3, 5, 2, 4], &[4, 4, 4, 4], 0.5, 0.5), &mut rng);
            let mut consumers = vec![0usize; w.units.len() + 1];
            for (i, u) in w.units.iter().enumerate() {
                assert!(!u.inputs.is_empty());
                assert!(
                    u.inputs.iter().all(|&n| n <= i),
                    "unit {} reads a later node",
                    i + 1
                );
                u.inputs.iter().for_each(|&n| consumers[n] += 1);
            }
            w.head_inputs.iter().for_each(|&n| consumers[n] += 1);
            assert!(
                consumers[1..].iter().all(|&c| c > 0),
                "seed {seed}: a unit is dangling"
            );
        }
    }

    #[test]
    fn laterals_appear_when_likely_and_seeds_change_the_wiring() {
        let s = shape(&[4, 4], &[4, 4], 1.0, 0.7);
        let w = draw(&s, &mut Rng::seed_from_u64(3));
        assert!(
            w.units[3].inputs.contains(&3),
            "full lateral probability links neighbours"
        );
        let wirings: std::collections::HashSet<_> = (0..10)
            .map(|seed| {
                format!(
                    "{:?}",
                    draw(
                        &shape(&[3, 3, 3], &[4; 3], 0.3, 0.5),
                        &mut Rng::seed_from_u64(seed)
                    )
                )
            })
            .collect();
        assert!(
            wirings.len() > 5,
            "only {} distinct wirings from 10 seeds",
            wirings.len()
        );
    }
}
