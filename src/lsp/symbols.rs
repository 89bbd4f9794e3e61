//! An index of one file's names: where each agent, workflow, task, input
//! and typed-answer field is declared and every place it is used, prompt
//! templates, conditions and the output included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::ast::{self, ExpectationKind, Item, Member, TestStep, TypeKind, ValueKind};
use crate::check::template::{Read, Templates};
use crate::source::Span;

/// Whose fields a typed answer has: a schema's, or a task's own.
#[derive(Clone, Copy)]
enum Shape<'m> {
    Schema(&'m ast::Schema),
    Inline(&'m str, &'m [ast::Field]),
}

impl<'m> Shape<'m> {
    fn fields(self) -> &'m [ast::Field] {
        match self {
            Shape::Schema(schema) => &schema.fields,
            Shape::Inline(_, fields) => fields,
        }
    }

    fn key(self, workflow: &str, field: &str) -> Key {
        match self {
            Shape::Schema(schema) => Key {
                kind: Kind::Field,
                workflow: None,
                name: format!("{}.{field}", schema.name.text),
            },
            Shape::Inline(task, _) => Key {
                kind: Kind::Field,
                workflow: Some(workflow.to_string()),
                name: format!("{task}.{field}"),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Agent,
    Corpus,
    Workflow,
    Input,
    Task,
    /// A field of a typed answer: `name` is `Owner.field`, the owner being
    /// a schema (no workflow) or the task whose inline `json { ... }`
    /// declares it.
    Field,
}

/// What a name refers to. Tasks, inputs and inline fields belong to a
/// workflow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub kind: Kind,
    pub workflow: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone)]
pub(super) struct Occurrence {
    pub key: Key,
    pub span: Span,
    pub declaration: bool,
}

#[derive(Debug, Default)]
pub(super) struct Index {
    /// In source order.
    pub occurrences: Vec<Occurrence>,
    /// Each `import "..."` string with the path it leads to.
    pub imports: Vec<(Span, PathBuf)>,
}

impl Index {
    pub(super) fn build(module: &ast::Module, file: &Path) -> Index {
        let mut index = Index::default();
        let folder = file.parent().unwrap_or(Path::new("."));
        let schemas: HashMap<&str, &ast::Schema> = module
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Schema(schema) => Some((schema.name.text.as_str(), schema)),
                _ => None,
            })
            .collect();
        let mut templates = Templates::default();
        for item in &module.items {
            match item {
                Item::Import(import) => index
                    .imports
                    .push((import.path.span, folder.join(&import.path.value))),
                Item::Agent(agent) => {
                    index.add(agent_key(&agent.name.text), agent.name.span, true);
                    index.agent_names(&agent.properties);
                }
                Item::Corpus(corpus) => {
                    index.add(corpus_key(&corpus.name.text), corpus.name.span, true);
                }
                Item::Workflow(workflow) => index.workflow(workflow, &schemas, &mut templates),
                Item::Schema(schema) => {
                    for field in &schema.fields {
                        let key = Shape::Schema(schema).key("", &field.name.text);
                        index.add(key, field.name.span, true);
                    }
                }
            }
        }
        index.occurrences.sort_by_key(|occurrence| occurrence.span);
        index
    }

    /// The name under `offset` (a cursor just after a name is on it too).
    pub(super) fn at(&self, offset: usize) -> Option<&Occurrence> {
        self.occurrences
            .iter()
            .filter(|o| o.span.start <= offset && offset <= o.span.end)
            .min_by_key(|o| o.span.len())
    }

    pub(super) fn declaration(&self, key: &Key) -> Option<&Occurrence> {
        self.occurrences
            .iter()
            .find(|o| o.declaration && &o.key == key)
    }

    pub(super) fn occurrences_of<'a>(
        &'a self,
        key: &'a Key,
    ) -> impl Iterator<Item = &'a Occurrence> {
        self.occurrences.iter().filter(move |o| &o.key == key)
    }

    fn add(&mut self, key: Key, span: Span, declaration: bool) {
        self.occurrences.push(Occurrence {
            key,
            span,
            declaration,
        });
    }

    /// `fallback = Agent` in an agent or a task.
    fn agent_names(&mut self, properties: &[ast::Property]) {
        for property in properties {
            if property.key.text == "fallback"
                && let ValueKind::Name(name) = &property.value.kind
            {
                self.add(agent_key(&name.text), name.span, false);
            }
        }
    }

    fn workflow<'m>(
        &mut self,
        workflow: &'m ast::Workflow,
        schemas: &HashMap<&str, &'m ast::Schema>,
        templates: &mut Templates,
    ) {
        let scope = Some(workflow.name.text.clone());
        let key = |kind, name: &str| Key {
            kind,
            workflow: scope.clone(),
            name: name.to_string(),
        };
        self.add(
            Key {
                kind: Kind::Workflow,
                workflow: None,
                name: workflow.name.text.clone(),
            },
            workflow.name.span,
            true,
        );
        // Inputs and tasks share one namespace; the first declaration wins,
        // as in the checker.
        let mut declared: HashMap<&str, Kind> = HashMap::new();
        for member in &workflow.members {
            let (name, kind) = match member {
                Member::Input(input) => (&input.name, Kind::Input),
                Member::Task(task) => (&task.name, Kind::Task),
                Member::Output(_) | Member::Test(_) => continue,
            };
            if declared.contains_key(name.text.as_str()) {
                continue;
            }
            declared.insert(&name.text, kind);
            self.add(key(kind, &name.text), name.span, true);
        }
        // What each typed task answers, its inline fields declared here.
        let mut shapes: HashMap<&str, Shape<'m>> = HashMap::new();
        for member in &workflow.members {
            let Member::Task(task) = member else { continue };
            let output = task.properties.iter().find(|p| p.key.text == "output");
            let shape = match output.map(|p| &p.value.kind) {
                Some(ValueKind::Schema(fields)) => Shape::Inline(&task.name.text, fields),
                Some(ValueKind::Name(name)) => match schemas.get(name.text.as_str()) {
                    Some(schema) => Shape::Schema(schema),
                    None => continue,
                },
                _ => continue,
            };
            if let Shape::Inline(..) = shape {
                for field in shape.fields() {
                    let key = shape.key(&workflow.name.text, &field.name.text);
                    self.add(key, field.name.span, true);
                }
            }
            shapes.entry(&task.name.text).or_insert(shape);
        }
        let reads = Reads {
            workflow: &workflow.name.text,
            declared: &declared,
            shapes: &shapes,
            schemas,
        };
        for member in &workflow.members {
            match member {
                Member::Input(_) => {}
                Member::Task(task) => {
                    let target = match task.kind {
                        ast::TaskKind::Chat => agent_key(&task.target.text),
                        ast::TaskKind::Retrieve => corpus_key(&task.target.text),
                    };
                    self.add(target, task.target.span, false);
                    self.agent_names(&task.properties);
                    for property in &task.properties {
                        match (property.key.text.as_str(), &property.value.kind) {
                            ("prompt", ValueKind::Text(text)) => {
                                self.reads(templates.read(text, &mut Vec::new()), &reads, &key);
                            }
                            ("when", ValueKind::Text(text)) => {
                                let read = templates.read_expression(text, &mut Vec::new());
                                self.reads(read, &reads, &key);
                            }
                            ("after", ValueKind::List(items)) => {
                                for item in items {
                                    if let ValueKind::Name(name) = &item.kind {
                                        self.add(key(Kind::Task, &name.text), name.span, false);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Member::Output(output) => {
                    let read = templates.read(&output.template, &mut Vec::new());
                    self.reads(read, &reads, &key);
                }
                Member::Test(test) => {
                    for step in &test.steps {
                        let names: Vec<(&ast::Name, Kind)> = match step {
                            TestStep::Input { name, .. } => vec![(name, Kind::Input)],
                            TestStep::Mock {
                                task,
                                response,
                                fails: false,
                                ..
                            } => {
                                self.mocked_fields(task, response, &reads);
                                vec![(task, Kind::Task)]
                            }
                            TestStep::Mock { task, .. } => vec![(task, Kind::Task)],
                            TestStep::Expect(expectation) => match &expectation.kind {
                                ExpectationKind::Output(_) => vec![],
                                ExpectationKind::TaskState { task, .. } => vec![(task, Kind::Task)],
                                ExpectationKind::Order { first, then } => {
                                    vec![(first, Kind::Task), (then, Kind::Task)]
                                }
                            },
                        };
                        for (name, kind) in names {
                            self.add(key(kind, &name.text), name.span, false);
                        }
                    }
                }
            }
        }
    }

    /// The inputs, tasks and fields a template reads; a template that does
    /// not parse (yet) adds nothing.
    fn reads(
        &mut self,
        read: Option<Read>,
        reads: &Reads<'_, '_>,
        key: &impl Fn(Kind, &str) -> Key,
    ) {
        let Some(read) = read else {
            return;
        };
        for (name, span) in read.variables {
            if let Some(kind) = reads.declared.get(name.as_str()) {
                self.add(key(*kind, &name), span, false);
            }
        }
        for chain in read.fields {
            let mut shape = reads.shapes.get(chain.variable.as_str()).copied();
            for (part, span) in &chain.path {
                let Some(current) = shape else { break };
                let Some(field) = current.fields().iter().find(|f| f.name.text == *part) else {
                    break;
                };
                self.add(current.key(reads.workflow, part), *span, false);
                shape = reads.shape_of(&field.ty);
            }
        }
    }
}

impl Index {
    /// The keys of a typed task's mocked JSON answer, as uses of the
    /// fields they name.
    fn mocked_fields(&mut self, task: &ast::Name, response: &ast::Text, reads: &Reads<'_, '_>) {
        let Some(&shape) = reads.shapes.get(task.text.as_str()) else {
            return;
        };
        for key in json_keys(&response.value) {
            let mut current = Some(shape);
            for parent in &key.parents {
                current = current.and_then(|shape| {
                    let field = shape.fields().iter().find(|f| f.name.text == *parent)?;
                    reads.shape_of(&field.ty)
                });
            }
            if let Some(current) = current
                && current.fields().iter().any(|f| f.name.text == key.name)
            {
                let span = response.file_span(key.range.start, key.range.end);
                self.add(current.key(reads.workflow, &key.name), span, false);
            }
        }
    }
}

/// What a workflow's templates can read.
struct Reads<'a, 'm> {
    workflow: &'a str,
    declared: &'a HashMap<&'m str, Kind>,
    shapes: &'a HashMap<&'m str, Shape<'m>>,
    schemas: &'a HashMap<&'m str, &'m ast::Schema>,
}

impl<'m> Reads<'_, 'm> {
    /// The fields a value of type `ty` has: a schema's, or a list's items'.
    fn shape_of(&self, ty: &ast::TypeExpr) -> Option<Shape<'m>> {
        match &ty.kind {
            TypeKind::Named(name) => self
                .schemas
                .get(name.text.as_str())
                .map(|s| Shape::Schema(s)),
            TypeKind::List(item) => self.shape_of(item),
            TypeKind::OneOf(_) => None,
        }
    }
}

/// A key of a JSON object, with the keys of the objects around it.
struct JsonKey {
    parents: Vec<String>,
    name: String,
    /// The name's bytes, quotes excluded.
    range: std::ops::Range<usize>,
}

/// Every object key of a JSON text, read as far as it goes: a mock that
/// is not JSON has none, or some.
fn json_keys(text: &str) -> Vec<JsonKey> {
    struct Frame {
        object: bool,
        key: Option<String>,
        expects_key: bool,
    }
    let bytes = text.as_bytes();
    let mut frames: Vec<Frame> = Vec::new();
    let mut keys = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                let start = at + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let end = end.min(bytes.len());
                if let Some(frame) = frames.last_mut()
                    && frame.object
                    && frame.expects_key
                {
                    let name = text[start..end].to_string();
                    let parents = frames[..frames.len() - 1]
                        .iter()
                        .filter_map(|frame| frame.key.clone())
                        .collect();
                    keys.push(JsonKey {
                        parents,
                        name: name.clone(),
                        range: start..end,
                    });
                    let frame = frames.last_mut().expect("a frame");
                    frame.key = Some(name);
                    frame.expects_key = false;
                }
                at = end + 1;
                continue;
            }
            b'{' | b'[' => frames.push(Frame {
                object: bytes[at] == b'{',
                key: None,
                expects_key: bytes[at] == b'{',
            }),
            b'}' | b']' => {
                frames.pop();
            }
            b',' => {
                if let Some(frame) = frames.last_mut().filter(|frame| frame.object) {
                    frame.expects_key = true;
                }
            }
            _ => {}
        }
        at += 1;
    }
    keys
}

fn agent_key(name: &str) -> Key {
    Key {
        kind: Kind::Agent,
        workflow: None,
        name: name.to_string(),
    }
}

fn corpus_key(name: &str) -> Key {
    Key {
        kind: Kind::Corpus,
        workflow: None,
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    #[test]
    fn template_reads_point_into_the_file() {
        let text = "agent A { model = \"m\" }\nworkflow w {\n  input x: text\n  task t -> A {\n    prompt = \"\"\"\n      Read {{ x }}\n    \"\"\"\n  }\n  output = \"{{ t }}\"\n}\n";
        let source = SourceFile::new("a.wf", text);
        let module = crate::parse::parse(&source).expect("parses");
        let index = Index::build(&module, Path::new("a.wf"));
        let uses: Vec<&str> = index
            .occurrences
            .iter()
            .filter(|o| !o.declaration)
            .map(|o| &text[o.span.start..o.span.end])
            .collect();
        assert_eq!(uses, ["A", "x", "t"]);
        let x = text.find("{{ x").expect("a use") + 3;
        let at = index.at(x).expect("a name");
        assert_eq!((at.key.kind, at.key.name.as_str()), (Kind::Input, "x"));
    }
}
