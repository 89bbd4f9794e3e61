//! Checking a file: imports, agents, workflows, their templates and tests.
//! Every problem is collected, so one run reports all of them.

mod agents;
mod answers;
pub mod budget;
pub mod phi;
pub mod problem;
pub mod program;
mod properties;
pub mod template;
mod templates;
mod tests;
mod types;
mod workflow;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ast::{self, Item};
use crate::loader::{Loaded, Loader};
use crate::source::{SourceFile, Span};
pub use agents::PROPERTIES as AGENT_PROPERTIES;
pub use problem::Problem;
pub use program::*;
use templates::Templates;
pub use workflow::TASK_PROPERTIES;

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

/// Checks the file at `path`, reading the files it imports through `loader`.
/// Fails only when the file itself cannot be read.
pub fn check_file(loader: &mut Loader, path: &Path) -> std::io::Result<FileReport> {
    check_file_with(loader, path, phi::Policy::Declared)
}

/// [`check_file`], with `phi` saying which agents may receive PHI.
pub fn check_file_with(
    loader: &mut Loader,
    path: &Path,
    phi: phi::Policy<'_>,
) -> std::io::Result<FileReport> {
    let loaded = loader.load(path)?;
    let module = match &loaded.module {
        Ok(module) => module,
        Err(syntax) => {
            return Ok(FileReport {
                source: loaded.source.clone(),
                problems: vec![Problem::Syntax(syntax.clone())],
                program: None,
            });
        }
    };
    let mut problems = Vec::new();
    let imported = imports(loader, &loaded, module, &mut problems);
    let agents = visible_agents(module, &imported, &mut problems);
    let own_agents: Vec<&ast::Agent> = own(module, |item| match item {
        Item::Agent(agent) => Some(agent),
        _ => None,
    });
    agents::check_fallbacks(&own_agents, &agents, &mut problems);
    let schemas = visible_schemas(module, &imported, &mut problems);

    let mut templates = Templates::default();
    let mut workflows: Vec<WorkflowDef> = Vec::new();
    let mut first_span: HashMap<String, Span> = HashMap::new();
    for workflow in own(module, |item| match item {
        Item::Workflow(workflow) => Some(workflow),
        _ => None,
    }) {
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
        let def = workflow::check(workflow, &agents, &schemas, &mut templates, &mut problems);
        phi::check(workflow, &def, &agents, phi, &mut problems);
        budget::check(workflow, &def, &agents, &mut problems);
        workflows.push(def);
    }
    problems.sort_by_key(primary_offset);

    let mut agents: Vec<AgentDef> = agents.into_values().collect();
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(FileReport {
        source: loaded.source.clone(),
        problems,
        program: Some(Program { agents, workflows }),
    })
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

/// A file reached through the imports of the file being checked, with the
/// import statement (in the checked file) that leads to it.
/// The schemas this file can name: those of the files it imports (whose
/// own problems are reported when those files are checked), then its own,
/// each able to use the ones declared before it.
fn visible_schemas(
    module: &ast::Module,
    imported: &[Imported],
    problems: &mut Vec<Problem>,
) -> types::Schemas {
    let mut schemas = types::Schemas::new();
    for file in imported {
        let Ok(module) = &file.loaded.module else {
            continue;
        };
        for item in &module.items {
            if let Item::Schema(schema) = item
                && let Some(ty) = types::schema(&schema.fields, &schemas, &mut Vec::new())
            {
                schemas.entry(schema.name.text.clone()).or_insert(ty);
            }
        }
    }
    let mut own_spans: HashMap<&str, Span> = HashMap::new();
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
        if let Some(ty) = types::schema(&schema.fields, &schemas, problems) {
            schemas.insert(schema.name.text.clone(), ty);
        }
    }
    schemas
}

struct Imported {
    loaded: Arc<Loaded>,
    via: Span,
}

/// Loads every file the module imports, directly or not, reporting imports
/// that cannot be read and imports that lead back to the file itself.
fn imports(
    loader: &mut Loader,
    root: &Loaded,
    module: &ast::Module,
    problems: &mut Vec<Problem>,
) -> Vec<Imported> {
    let root_path = canonical(root.source.path());
    let mut seen: HashSet<PathBuf> = HashSet::from([root_path.clone()]);
    let mut found = Vec::new();
    for import in import_items(module) {
        let path = import_path(&root.source, import);
        let loaded = match load_import(loader, &path, import, problems) {
            Some(loaded) => loaded,
            None => continue,
        };
        let mut chain = vec![file_name(root.source.path()), file_name(&path)];
        if let Some(cycle) = walk(
            loader,
            &loaded,
            &root_path,
            &mut seen,
            &mut chain,
            &mut found,
            import.span,
        ) {
            problems.push(Problem::ImportCycle {
                path: import.path.value.clone(),
                chain: cycle.join(" → "),
                span: import.span,
            });
        }
        if seen.insert(canonical(&path)) {
            found.push(Imported {
                loaded,
                via: import.span,
            });
        }
    }
    found
}

/// Depth-first through the imports of `loaded`; returns the chain of file
/// names when it reaches `root`.
fn walk(
    loader: &mut Loader,
    loaded: &Arc<Loaded>,
    root: &Path,
    seen: &mut HashSet<PathBuf>,
    chain: &mut Vec<String>,
    found: &mut Vec<Imported>,
    via: Span,
) -> Option<Vec<String>> {
    let Ok(module) = &loaded.module else {
        return None;
    };
    for import in import_items(module) {
        let path = import_path(&loaded.source, import);
        let key = canonical(&path);
        if key == root {
            let mut cycle = chain.clone();
            cycle.push(file_name(&path));
            return Some(cycle);
        }
        if !seen.insert(key) {
            continue;
        }
        let Ok(next) = loader.load(&path) else {
            continue;
        };
        chain.push(file_name(&path));
        let cycle = walk(loader, &next, root, seen, chain, found, via);
        chain.pop();
        found.push(Imported { loaded: next, via });
        if cycle.is_some() {
            return cycle;
        }
    }
    None
}

fn load_import(
    loader: &mut Loader,
    path: &Path,
    import: &ast::Import,
    problems: &mut Vec<Problem>,
) -> Option<Arc<Loaded>> {
    let unreadable = |reason: String, help: Option<String>| Problem::ImportUnreadable {
        path: import.path.value.clone(),
        reason,
        span: import.span,
        help,
    };
    match loader.load(path) {
        Err(err) => {
            problems.push(unreadable(
                io_reason(&err),
                Some(format!(
                    "the path is relative to this file's folder: {}",
                    path.display()
                )),
            ));
            None
        }
        Ok(loaded) => match &loaded.module {
            Err(syntax) => {
                let at = loaded.source.line_column(syntax.span.start);
                problems.push(unreadable(
                    format!(
                        "it has a syntax error at line {}, column {}",
                        at.line, at.column
                    ),
                    Some(format!("run `wfc check {}` to see it", path.display())),
                ));
                None
            }
            Ok(_) => Some(loaded),
        },
    }
}

/// The agents a file can use: its own and those of every file it imports.
fn visible_agents(
    module: &ast::Module,
    imported: &[Imported],
    problems: &mut Vec<Problem>,
) -> HashMap<String, AgentDef> {
    let mut agents: HashMap<String, AgentDef> = HashMap::new();
    let mut own_spans: HashMap<String, Span> = HashMap::new();
    for item in &module.items {
        let Item::Agent(agent) = item else { continue };
        let def = agents::agent_def(agent, problems);
        if let Some(first) = own_spans.get(&def.name) {
            problems.push(Problem::Duplicate {
                what: "agent",
                name: def.name.clone(),
                span: agent.name.span,
                first: Some(*first),
                help: Some("rename one of the two agents".into()),
            });
            continue;
        }
        own_spans.insert(def.name.clone(), agent.name.span);
        agents.insert(def.name.clone(), def);
    }
    let mut origin: HashMap<String, String> = HashMap::new();
    for file in imported {
        let Ok(module) = &file.loaded.module else {
            continue;
        };
        for item in &module.items {
            let Item::Agent(agent) = item else { continue };
            let name = &agent.name.text;
            let here = file_name(file.loaded.source.path());
            let clash = own_spans
                .get(name)
                .map(|span| (*span, "this file".to_string()))
                .or_else(|| origin.get(name).map(|other| (file.via, other.clone())));
            match clash {
                Some((span, elsewhere)) if elsewhere != here => problems.push(Problem::Duplicate {
                    what: "agent",
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
                    agents.insert(name.clone(), agents::agent_def(agent, &mut Vec::new()));
                }
            }
        }
    }
    agents
}

fn import_items(module: &ast::Module) -> impl Iterator<Item = &ast::Import> {
    module.items.iter().filter_map(|item| match item {
        Item::Import(import) => Some(import),
        _ => None,
    })
}

fn import_path(from: &SourceFile, import: &ast::Import) -> PathBuf {
    from.path()
        .parent()
        .unwrap_or(Path::new("."))
        .join(&import.path.value)
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "there is no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission to read it is denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a folder, not a file".into(),
        _ => err.to_string(),
    }
}
