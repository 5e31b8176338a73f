//! `cerebros-runner` binary entry point.

fn main() {}
