//! The template engine's configuration, shared by the checker (which must know
//! every filter a template may call) and the renderer.

mod filters;

/// Text with the identifiers the `redact` filter finds replaced.
#[must_use]
pub fn redact(text: &str) -> String {
    filters::redact(minijinja::Value::from(text))
}

use std::collections::HashSet;

use minijinja::Environment;

/// Templates render prompts and plain-text documents, never HTML, so nothing
/// is escaped; an undefined name is an error rather than an empty string;
/// booleans print as JSON writes them (`true`, not Python's `True`), as the
/// answers and inputs they come from do.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_formatter(|out, state, value| {
        if value.kind() == minijinja::value::ValueKind::Bool {
            let text = if value.is_true() { "true" } else { "false" };
            out.write_str(text).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write")
            })
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env.add_filter("dedupe", filters::dedupe);
    env.add_filter("section", filters::section);
    env.add_filter("redact", filters::redact);
    env
}

/// Names of filters and tests to offer as suggestions; only those the
/// environment answers to are offered.
const KNOWN_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "dedupe",
    "default",
    "dictsort",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "redact",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "section",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
];

const KNOWN_TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// What a template may call, answered from the environment itself so the
/// checker and the renderer never disagree.
pub struct Vocabulary {
    env: Environment<'static>,
    globals: HashSet<String>,
}

impl Default for Vocabulary {
    fn default() -> Self {
        let env = environment();
        let globals = env.globals().map(|(name, _)| name.to_string()).collect();
        Vocabulary { env, globals }
    }
}

impl Vocabulary {
    pub fn has_filter(&self, name: &str) -> bool {
        self.ask("name is filter", name)
    }

    pub fn has_test(&self, name: &str) -> bool {
        self.ask("name is test", name)
    }

    pub fn has_global(&self, name: &str) -> bool {
        self.globals.contains(name)
    }

    pub fn globals(&self) -> impl Iterator<Item = &str> {
        self.globals.iter().map(String::as_str)
    }

    /// The filters a template may call: minijinja cannot list them, so the
    /// names it documents and wfc's own are each asked of the environment.
    pub fn filters(&self) -> impl Iterator<Item = &'static str> + '_ {
        KNOWN_FILTERS
            .iter()
            .copied()
            .filter(|name| self.has_filter(name))
    }

    /// The tests a template may use, likewise.
    pub fn tests(&self) -> impl Iterator<Item = &'static str> + '_ {
        KNOWN_TESTS
            .iter()
            .copied()
            .filter(|name| self.has_test(name))
    }

    fn ask(&self, question: &str, name: &str) -> bool {
        self.env
            .compile_expression(question)
            .and_then(|expression| expression.eval(minijinja::context! { name }))
            .is_ok_and(|answer| answer.is_true())
    }
}
