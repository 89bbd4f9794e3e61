//! Corpora: their properties, and the name a retrieval task searches.

use rustc_hash::FxHashMap as HashMap;

use super::problem::{Problem, did_you_mean};
use super::program::{AgentDef, CorpusDef};
use super::properties::Properties;
use crate::ast::{self, Item};

pub const PROPERTIES: &[&str] = &["phi_allowed", "holds_phi", "max_passage_len", "metadata"];

/// Passages long enough for a paragraph, short enough that several fit a
/// prompt.
const MAX_PASSAGE_LEN: std::ops::RangeInclusive<u32> = 200..=20_000;
pub(super) const DEFAULT_MAX_PASSAGE_LEN: u32 = 1200;

/// What every passage has; metadata may not take these names.
const PASSAGE_FIELDS: [&str; 5] = ["id", "source", "title", "text", "score"];

pub(super) fn corpus_def(corpus: &ast::Corpus, problems: &mut Vec<Problem>) -> CorpusDef {
    let properties = Properties::read("corpus", PROPERTIES, &corpus.properties, problems);
    let mut metadata: Vec<String> = Vec::new();
    for (name, optional) in properties.names("metadata", problems) {
        let text = name.text.as_str();
        if optional || PASSAGE_FIELDS.contains(&text) || metadata.iter().any(|m| m == text) {
            problems.push(Problem::InvalidValue {
                key: "metadata".into(),
                expected: "the names of the documents' own fields, each once".into(),
                found: format!("`{}`", name.text),
                span: name.span,
                help: Some(format!(
                    "every passage already has {}; list each other field once, without `?`",
                    PASSAGE_FIELDS.join(", ")
                )),
            });
            continue;
        }
        metadata.push(name.text.clone());
    }
    CorpusDef {
        name: corpus.name.text.clone(),
        doc: corpus.docs.text(),
        phi_allowed: properties.boolean("phi_allowed", problems).unwrap_or(false),
        holds_phi: properties.boolean("holds_phi", problems).unwrap_or(false),
        max_passage_len: properties
            .integer("max_passage_len", MAX_PASSAGE_LEN, problems)
            .unwrap_or(DEFAULT_MAX_PASSAGE_LEN),
        metadata,
    }
}

/// Agents and corpora are named in the same places (a task's target, the
/// router file), so one name may not be both.
pub(super) fn check_names(
    module: &ast::Module,
    agents: &HashMap<String, AgentDef>,
    corpora: &HashMap<String, CorpusDef>,
    problems: &mut Vec<Problem>,
) {
    for item in &module.items {
        let name = match item {
            Item::Corpus(corpus) if agents.contains_key(&corpus.name.text) => &corpus.name,
            Item::Agent(agent) if corpora.contains_key(&agent.name.text) => &agent.name,
            _ => continue,
        };
        problems.push(Problem::Duplicate {
            what: "name",
            name: name.text.clone(),
            span: name.span,
            first: None,
            help: Some(
                "an agent and a corpus are both named here; the router file names both, so rename one"
                    .into(),
            ),
        });
    }
}

/// The corpus a retrieval task searches, or an `unknown-corpus` problem
/// suggesting the closest one (or saying that the name is an agent's).
pub(super) fn resolve<'a>(
    name: &ast::Name,
    corpora: &'a HashMap<String, CorpusDef>,
    agents: &HashMap<String, AgentDef>,
    problems: &mut Vec<Problem>,
) -> Option<&'a CorpusDef> {
    let found = corpora.get(&name.text);
    if found.is_none() {
        let mut names: Vec<&str> = corpora.keys().map(String::as_str).collect();
        names.sort_unstable();
        let help = if agents.contains_key(&name.text) {
            Some(format!(
                "`{}` is an agent: ask it with `task NAME -> {}`, or search a corpus",
                name.text, name.text
            ))
        } else {
            did_you_mean(&name.text, names.iter().copied()).or_else(|| {
                Some(if names.is_empty() {
                    "declare one with `corpus Name { }` (where its documents live goes in the router file), or import a file that does".into()
                } else {
                    format!("the corpora here are {}", names.join(", "))
                })
            })
        };
        problems.push(Problem::UnknownCorpus {
            name: name.text.clone(),
            span: name.span,
            help,
        });
    }
    found
}
