//! The pipeline's layers point one way: a module of `src/` may use only
//! modules of lower layers, never one of its own layer or above. The table
//! is the README's layout table, bottom up; a new module must be placed in
//! it, so this test fails until it is.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom up. Within a row, modules are independent of each other.
const LAYERS: &[&[&str]] = &[
    // shared foundations: files and spans, the task record, retry policy,
    // the token estimate, the template environment, the code texts
    &[
        "source",
        "files",
        "record",
        "policy",
        "tokens",
        "template",
        "explain",
        "trace_context",
        "overlap",
    ],
    &["ast", "diagnostics"],
    &["parse", "format"],
    &["loader"],
    &["plan"],
    &["check"],
    &["catalog", "client", "render", "retrieve", "mock"],
    &["router"],
    &["run"],
    &["durable", "timeline"],
    &["testing", "serve", "lsp"],
    &["cli"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|row| row.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer of tests/it/layers.rs"))
}

/// The top-level modules the Rust files at `path` name (`crate::x`, and
/// `wfc::x` in the binary's modules).
fn uses(path: &Path, found: &mut BTreeSet<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            uses(&entry.path(), found);
        }
        return;
    }
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        !text.contains("crate::{") && !text.contains("wfc::{"),
        "{}: name each module in its own path, so that this test can see it",
        path.display()
    );
    for prefix in ["crate::", "wfc::"] {
        for (at, _) in text.match_indices(prefix) {
            let name: String = text[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
}

#[test]
fn no_module_uses_one_of_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let path = entry.path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let mut found = BTreeSet::new();
        uses(&path, &mut found);
        found.remove(&module);
        for used in &found {
            assert!(
                layer(used) < layer(&module),
                "`{module}` (layer {}) uses `{used}` (layer {}): move what both need below both",
                layer(&module),
                layer(used)
            );
        }
        checked += 1;
    }
    assert_eq!(checked, LAYERS.iter().map(|row| row.len()).sum::<usize>());
}
