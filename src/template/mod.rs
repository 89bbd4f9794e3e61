//! The template engine's configuration, shared by the checker (which must know
//! every filter a template may call) and the renderer.

mod filters;

use std::collections::HashSet;

use minijinja::Environment;

/// Templates render prompts and plain-text documents, never HTML, so nothing
/// is escaped; an undefined name is an error rather than an empty string.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("dedupe", filters::dedupe);
    env.add_filter("section", filters::section);
    env.add_filter("redact", filters::redact);
    env
}

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

    fn ask(&self, question: &str, name: &str) -> bool {
        self.env
            .compile_expression(question)
            .and_then(|expression| expression.eval(minijinja::context! { name }))
            .is_ok_and(|answer| answer.is_true())
    }
}
