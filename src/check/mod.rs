//! Checking a file: imports, agents, workflows, their templates and tests.
//! Every problem is collected, so one run reports all of them.

mod agents;
mod answers;
pub mod budget;
pub mod conform;
mod corpora;
mod inputs;
mod lints;
pub mod phi;
pub mod problem;
pub mod program;
mod properties;
mod shapes;
mod tasks;
pub mod template;
mod test_blocks;
mod types;
mod workflow;

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::ast::{self, Item};
use crate::loader::{Imported, Loader, Unit, file_name};
use crate::parse::{Broken, Recovered};
use crate::source::{SourceFile, Span};
pub use agents::PROPERTIES as AGENT_PROPERTIES;
pub use corpora::PROPERTIES as CORPUS_PROPERTIES;
pub use problem::Problem;
pub use program::*;
pub use tasks::{RETRIEVE_PROPERTIES, TASK_PROPERTIES};
use template::Templates;

/// The outcome of checking one file.
#[derive(Debug)]
pub struct FileReport {
    pub source: Arc<SourceFile>,
    pub problems: Vec<Problem>,
    /// What the file declares; absent when it could not be parsed.
    pub program: Option<Program>,
}

impl FileReport {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }
}

/// Loads the file at `path` with its imports through `loader`, then checks
/// it. Fails only when the file itself cannot be read.
pub fn check_file(loader: &mut Loader, path: &Path) -> std::io::Result<FileReport> {
    Ok(check(&loader.load_unit(path)?, phi::Policy::Declared))
}

/// Checks a loaded file, with `phi` saying which agents may receive PHI.
/// Pure: every file it needs is already in `unit`.
pub fn check(unit: &Unit, phi: phi::Policy<'_>) -> FileReport {
    let loaded = &unit.root;
    let (module, recovered) = match (&loaded.module, &loaded.recovered) {
        (Ok(module), _) => (module, None),
        (
            Err(_),
            Some(
                recovered @ Recovered {
                    module: Some(module),
                    ..
                },
            ),
        ) => (module, Some(recovered)),
        (Err(syntax), recovered) => {
            let errors = recovered
                .as_ref()
                .map_or_else(|| vec![syntax.clone()], |r| r.errors.clone());
            return FileReport {
                source: loaded.source.clone(),
                problems: errors.into_iter().map(Problem::Syntax).collect(),
                program: None,
            };
        }
    };
    let mut problems: Vec<Problem> = unit.errors.iter().cloned().map(Problem::from).collect();
    if !module
        .items
        .iter()
        .any(|item| !matches!(item, Item::Import(_)))
    {
        problems.push(Problem::EmptyFile {
            span: Span::new(0, loaded.source.text().len().min(1)),
        });
    }
    let imported = &unit.imports;
    let agents = visible_agents(module, imported, &mut problems);
    let own_agents: Vec<&ast::Agent> = own(module, |item| match item {
        Item::Agent(agent) => Some(agent),
        _ => None,
    });
    agents::check_fallbacks(&own_agents, &agents, &mut problems);
    let corpora = visible_corpora(module, imported, &mut problems);
    corpora::check_names(module, &agents, &corpora, &mut problems);
    let schemas = visible_schemas(module, imported, &mut problems);

    let own_workflows = own(module, |item| match item {
        Item::Workflow(workflow) => Some(workflow),
        _ => None,
    });
    let mut templates = Templates::analysing_ahead(tasks::sent_texts(&own_workflows));
    let mut workflows: Vec<WorkflowDef> = Vec::new();
    let mut first_span: HashMap<String, Span> = HashMap::default();
    for workflow in own_workflows {
        if let Some(first) = first_span.get(&workflow.name.text) {
            problems.push(Problem::Duplicate {
                what: "workflow",
                name: workflow.name.text.clone(),
                span: workflow.name.span,
                first: Some(*first),
                help: Some("workflow names are their API names, so each must be unique".into()),
            });
            continue;
        }
        first_span.insert(workflow.name.text.clone(), workflow.name.span);
        let mut checked = workflow::check(
            workflow,
            &agents,
            &corpora,
            &schemas,
            &mut templates,
            &mut problems,
        );
        let tainted = phi::check(&checked, &agents, &corpora, phi, &mut problems);
        for (task, reads_phi) in checked.def.tasks.iter_mut().zip(tainted) {
            task.reads_phi = reads_phi;
        }
        budget::check(&checked, &agents, &mut problems);
        workflows.push(checked.def);
    }
    if let Some(recovered) = recovered {
        // Only what the syntax errors do not explain: no warnings about a
        // file that does not parse, no unknown names the broken parts
        // declared, and no program.
        problems.retain(|problem| problem.is_error() && !explained(&recovered.broken, problem));
        problems.extend(recovered.errors.iter().cloned().map(Problem::Syntax));
        problems.sort_by_key(primary_offset);
        return FileReport {
            source: loaded.source.clone(),
            problems,
            program: None,
        };
    }
    problems.sort_by_key(primary_offset);

    let mut agents: Vec<AgentDef> = agents.into_values().collect();
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    let mut corpora: Vec<CorpusDef> = corpora.into_values().collect();
    corpora.sort_by(|a, b| a.name.cmp(&b.name));
    FileReport {
        source: loaded.source.clone(),
        problems,
        program: Some(Program {
            agents,
            corpora,
            workflows,
        }),
    }
}

/// Whether `problem` follows from the parts a syntax error broke: a
/// reference to what they declared, or a workflow or file left empty.
fn explained(broken: &Broken, problem: &Problem) -> bool {
    match problem {
        Problem::UnknownTask { name, .. }
        | Problem::UnknownInput { name, .. }
        | Problem::UnknownName { name, .. }
        | Problem::MissingInput { name, .. } => broken.names.contains(name),
        Problem::UnknownAgent { name, .. } | Problem::UnknownType { name, .. } => {
            broken.imports || broken.names.contains(name)
        }
        Problem::NoTasks { .. } | Problem::EmptyFile { .. } => true,
        _ => false,
    }
}

fn own<'a, T>(module: &'a ast::Module, pick: impl Fn(&'a Item) -> Option<&'a T>) -> Vec<&'a T> {
    module.items.iter().filter_map(pick).collect()
}

fn primary_offset(problem: &Problem) -> usize {
    use miette::Diagnostic;
    problem
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or(0, |label| label.offset())
}

/// The schemas this file can name: those of the files it imports (whose
/// own problems are reported when those files are checked), then its own,
/// each able to use the ones declared before it.
fn visible_schemas(
    module: &ast::Module,
    imported: &[Imported],
    problems: &mut Vec<Problem>,
) -> types::Schemas {
    let mut schemas = types::Schemas::default();
    for file in imported {
        let Ok(module) = &file.loaded.module else {
            continue;
        };
        for item in &module.items {
            if let Item::Schema(schema) = item {
                let ty = types::schema(&schema.fields, &schemas, &mut Vec::new());
                schemas.entry(schema.name.text.clone()).or_insert(ty);
            }
        }
    }
    let mut own_spans: HashMap<&str, Span> = HashMap::default();
    for item in &module.items {
        let Item::Schema(schema) = item else { continue };
        if let Some(first) = own_spans.get(schema.name.text.as_str()) {
            problems.push(Problem::Duplicate {
                what: "schema",
                name: schema.name.text.clone(),
                span: schema.name.span,
                first: Some(*first),
                help: Some("rename one of the two schemas".into()),
            });
            continue;
        }
        own_spans.insert(&schema.name.text, schema.name.span);
        let ty = types::schema(&schema.fields, &schemas, problems);
        schemas.insert(schema.name.text.clone(), ty);
    }
    schemas
}

/// The agents a file can use: its own and those of every file it imports.
fn visible_agents(
    module: &ast::Module,
    imported: &[Imported],
    problems: &mut Vec<Problem>,
) -> HashMap<String, AgentDef> {
    fn pick(item: &Item) -> Option<(&ast::Name, &ast::Agent)> {
        match item {
            Item::Agent(agent) => Some((&agent.name, agent)),
            _ => None,
        }
    }
    visible(
        ("agent", "agents"),
        module,
        imported,
        pick,
        agents::agent_def,
        problems,
    )
}

/// The corpora a file can search: its own and those of every file it
/// imports.
fn visible_corpora(
    module: &ast::Module,
    imported: &[Imported],
    problems: &mut Vec<Problem>,
) -> HashMap<String, CorpusDef> {
    fn pick(item: &Item) -> Option<(&ast::Name, &ast::Corpus)> {
        match item {
            Item::Corpus(corpus) => Some((&corpus.name, corpus)),
            _ => None,
        }
    }
    visible(
        ("corpus", "corpora"),
        module,
        imported,
        pick,
        corpora::corpus_def,
        problems,
    )
}

/// The declarations of one kind (`what`, and its plural) a file can name: its own, each
/// checked by `define`, and those of every file it imports, whose own
/// problems are reported when those files are checked. A name declared
/// twice is reported where this file declares or imports it.
fn visible<'m, A: 'm, D>(
    (what, plural): (&'static str, &'static str),
    module: &'m ast::Module,
    imported: &'m [Imported],
    pick: impl Fn(&'m Item) -> Option<(&'m ast::Name, &'m A)>,
    define: impl Fn(&A, &mut Vec<Problem>) -> D,
    problems: &mut Vec<Problem>,
) -> HashMap<String, D> {
    let mut defs: HashMap<String, D> = HashMap::default();
    let mut own_spans: HashMap<String, Span> = HashMap::default();
    for (name, declaration) in module.items.iter().filter_map(&pick) {
        let def = define(declaration, problems);
        if let Some(first) = own_spans.get(&name.text) {
            problems.push(Problem::Duplicate {
                what,
                name: name.text.clone(),
                span: name.span,
                first: Some(*first),
                help: Some(format!("rename one of the two {plural}")),
            });
            continue;
        }
        own_spans.insert(name.text.clone(), name.span);
        defs.insert(name.text.clone(), def);
    }
    let mut origin: HashMap<String, String> = HashMap::default();
    for file in imported {
        let Ok(module) = &file.loaded.module else {
            continue;
        };
        for (name, declaration) in module.items.iter().filter_map(&pick) {
            let name = &name.text;
            let here = file_name(file.loaded.source.path());
            let clash = own_spans
                .get(name)
                .map(|span| (*span, "this file".to_string()))
                .or_else(|| origin.get(name).map(|other| (file.via, other.clone())));
            match clash {
                Some((span, elsewhere)) if elsewhere != here => problems.push(Problem::Duplicate {
                    what,
                    name: name.clone(),
                    span,
                    first: None,
                    help: Some(format!(
                        "`{name}` is declared in {elsewhere} and in {here}; keep one"
                    )),
                }),
                Some(_) => {}
                None => {
                    origin.insert(name.clone(), here);
                    defs.insert(name.clone(), define(declaration, &mut Vec::new()));
                }
            }
        }
    }
    defs
}
