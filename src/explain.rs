//! The long explanations behind `wfc explain CODE`, one Markdown file per
//! diagnostic code under `docs/codes/`.

pub struct Entry {
    pub code: &'static str,
    pub text: &'static str,
}

impl Entry {
    /// The first line of the explanation, without its Markdown heading mark.
    #[must_use]
    pub fn summary(&self) -> &'static str {
        self.text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches('#')
            .trim()
    }
}

macro_rules! codes {
    ($($name:literal),* $(,)?) => {
        &[$(Entry {
            code: concat!("wf::", $name),
            text: include_str!(concat!("../docs/codes/", $name, ".md")),
        }),*]
    };
}

pub const CODES: &[Entry] = codes![
    "syntax",
    "unknown-agent",
    "unknown-corpus",
    "unknown-task",
    "unknown-input",
    "unknown-name",
    "unknown-filter",
    "unknown-property",
    "unknown-type",
    "duplicate-name",
    "cycle",
    "template-syntax",
    "import-unreadable",
    "import-cycle",
    "invalid-value",
    "out-of-range",
    "missing-property",
    "missing-input",
    "invalid-regex",
    "fallback-loop",
    "no-tasks",
    "empty-file",
    "unused-input",
    "unused-task",
    "redundant-after",
    "shared-context-late",
    "unknown-field",
    "untyped-answer",
    "loop-over-non-list",
    "unguarded-field",
    "reserved-field",
    "type-mismatch",
    "phi-flow",
    "context-budget",
];

/// The codes whose diagnostics are warnings; the rest are errors.
const WARNINGS: &[&str] = &[
    "wf::unused-input",
    "wf::unused-task",
    "wf::redundant-after",
    "wf::shared-context-late",
    "wf::loop-over-non-list",
    "wf::unguarded-field",
    "wf::context-budget",
];

/// Whether diagnostics of `code` are warnings (they do not fail `wfc
/// check` without `--deny-warnings`).
#[must_use]
pub fn is_warning(code: &str) -> bool {
    WARNINGS.contains(&code)
}

/// The entry for `code`, written with or without its `wf::` prefix.
#[must_use]
pub fn lookup(code: &str) -> Option<&'static Entry> {
    let name = code.trim().trim_start_matches("wf::");
    CODES
        .iter()
        .find(|entry| entry.code.trim_start_matches("wf::") == name)
}
