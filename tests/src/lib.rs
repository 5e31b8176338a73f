//! Helpers shared by the end-to-end tests: locating the workspace's binaries.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives inside the workspace")
        .to_path_buf()
}

/// Path of a binary built from this workspace (`cargo build --bins` must have run first).
///
/// Honours `CARGO_TARGET_DIR` and prefers the profile this test was built with.
pub fn binary_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let preferred = target.join(profile).join(name);
    if preferred.exists() {
        return preferred;
    }
    let other = target
        .join(if profile == "debug" {
            "release"
        } else {
            "debug"
        })
        .join(name);
    assert!(
        other.exists(),
        "binary {name} not found under {}; run `cargo build --workspace --bins` first",
        target.display()
    );
    other
}
