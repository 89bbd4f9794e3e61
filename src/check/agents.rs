//! Agents: their properties and where their fallbacks lead.

use rustc_hash::FxHashMap as HashMap;

use super::problem::{Problem, did_you_mean};
use super::program::AgentDef;
use super::properties::Properties;
use crate::ast;
use crate::source::Span;

pub const PROPERTIES: &[&str] = &[
    "model",
    "system",
    "max_concurrency",
    "temperature",
    "fallback",
    "phi_allowed",
    "context_window",
];

/// The context windows an agent may declare, in tokens: from the smallest
/// models still served to the largest windows offered today.
pub(super) const CONTEXT_WINDOW: std::ops::RangeInclusive<u32> = 256..=10_000_000;

/// The valid sampling temperatures of OpenAI-compatible servers.
pub(super) const TEMPERATURE: std::ops::RangeInclusive<f64> = 0.0..=2.0;

pub(super) fn agent_def(agent: &ast::Agent, problems: &mut Vec<Problem>) -> AgentDef {
    let properties = Properties::read("agent", PROPERTIES, &agent.properties, problems);
    AgentDef {
        name: agent.name.text.clone(),
        doc: agent.docs.text(),
        model: properties.text("model", problems).map(|t| t.value.clone()),
        system: properties.text("system", problems).map(|t| t.value.clone()),
        max_concurrency: properties.integer("max_concurrency", 1..=1024, problems),
        temperature: properties.number("temperature", TEMPERATURE, problems),
        fallback: properties
            .name("fallback", problems)
            .map(|n| n.text.clone()),
        phi_allowed: properties.boolean("phi_allowed", problems).unwrap_or(false),
        context_window: properties.integer("context_window", CONTEXT_WINDOW, problems),
    }
}

/// The agent named by `name`, or an `unknown-agent` problem suggesting the
/// closest one.
pub(super) fn resolve<'a>(
    name: &ast::Name,
    agents: &'a HashMap<String, AgentDef>,
    problems: &mut Vec<Problem>,
) -> Option<&'a AgentDef> {
    let found = agents.get(&name.text);
    if found.is_none() {
        let mut names: Vec<&str> = agents.keys().map(String::as_str).collect();
        names.sort_unstable();
        problems.push(Problem::UnknownAgent {
            name: name.text.clone(),
            span: name.span,
            help: did_you_mean(&name.text, names.iter().copied()).or_else(|| {
                if names.is_empty() {
                    Some("declare one with `agent Name { model = \"...\" }`, or import a file that does".into())
                } else {
                    Some(format!("the agents here are {}", names.join(", ")))
                }
            }),
        });
    }
    found
}

/// Follows fallbacks from `first`, the fallback of `origin`; returns the
/// chain when it comes back to an agent already on it.
pub(super) fn fallback_loop(
    origin: &str,
    first: &str,
    agents: &HashMap<String, AgentDef>,
) -> Option<Vec<String>> {
    let mut chain = vec![origin.to_string()];
    let mut next = Some(first);
    while let Some(name) = next {
        let repeats = chain.iter().any(|seen| seen == name);
        chain.push(name.to_string());
        if repeats {
            return Some(chain);
        }
        next = agents.get(name).and_then(|agent| agent.fallback.as_deref());
    }
    None
}

/// Checks the fallback of each agent declared in this file: it must name an
/// agent, and following fallbacks must end. Each loop is reported once.
pub(super) fn check_fallbacks(
    own: &[&ast::Agent],
    agents: &HashMap<String, AgentDef>,
    problems: &mut Vec<Problem>,
) {
    let mut reported: Vec<Vec<String>> = Vec::new();
    for agent in own {
        let Some((name, span)) = fallback_property(agent) else {
            continue;
        };
        if resolve(name, agents, problems).is_none() {
            continue;
        }
        let Some(chain) = fallback_loop(&agent.name.text, &name.text, agents) else {
            continue;
        };
        let closes_at_start = chain.last() == chain.first();
        let mut members = chain[..chain.len() - 1].to_vec();
        members.sort();
        if !closes_at_start || reported.contains(&members) {
            continue;
        }
        reported.push(members);
        problems.push(Problem::FallbackLoop {
            chain: chain.join(" → "),
            span,
            start: agent.name.text.clone(),
        });
    }
}

fn fallback_property(agent: &ast::Agent) -> Option<(&ast::Name, Span)> {
    agent
        .properties
        .iter()
        .find_map(|property| match &property.value.kind {
            ast::ValueKind::Name(name) if property.key.text == "fallback" => {
                Some((name, property.value.span))
            }
            _ => None,
        })
}
