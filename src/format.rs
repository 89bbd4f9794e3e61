//! `wfc fmt`: the one canonical layout of a `.wf` file.
//!
//! The formatter prints the syntax tree, not the text, so layout choices
//! cannot leak through; comments, which the tree keeps aside with their
//! spans, are put back before the node that followed them or at the end of
//! the line they ended.

use std::collections::VecDeque;

use crate::ast::{
    Check, CheckKind, Comment, Docs, ExpectationKind, Field, Item, Member, Module, Property,
    Quotes, TestStep, Text, TypeExpr, TypeKind, Value, ValueKind,
};
use crate::source::{SourceFile, Span};

const INDENT: &str = "  ";

#[must_use]
pub fn format(source: &SourceFile, module: &Module) -> String {
    let mut printer = Printer {
        source,
        out: String::with_capacity(source.text().len() + 64),
        depth: 0,
        comments: module.comments.iter().collect(),
        line_open: false,
        last_line: None,
        blank_pending: false,
        after_comment: false,
    };
    let mut previous: Option<&Item> = None;
    for item in &module.items {
        let both_imports = matches!((previous, item), (Some(Item::Import(_)), Item::Import(_)));
        if previous.is_some() && !both_imports {
            printer.blank_line();
        }
        printer.item(item);
        previous = Some(item);
    }
    printer.comments_before(usize::MAX);
    printer.end_line();
    printer.out
}

struct Printer<'a> {
    source: &'a SourceFile,
    out: String,
    depth: usize,
    comments: VecDeque<&'a Comment>,
    /// Whether the last line written still waits for its line break, so a
    /// trailing comment can join it.
    line_open: bool,
    /// The source line where the last written node ended.
    last_line: Option<usize>,
    blank_pending: bool,
    /// Whether the last line written was a comment, after which a blank line
    /// of the source is kept: it separates a comment from what follows.
    after_comment: bool,
}

impl Printer<'_> {
    fn blank_line(&mut self) {
        self.blank_pending = true;
    }

    fn end_line(&mut self) {
        if self.line_open {
            self.out.push('\n');
            self.line_open = false;
        }
    }

    fn start_line(&mut self) {
        self.end_line();
        if self.blank_pending && !self.out.is_empty() {
            self.out.push('\n');
        }
        self.blank_pending = false;
        for _ in 0..self.depth {
            self.out.push_str(INDENT);
        }
        self.line_open = true;
    }

    /// Writes the comments that stand before `offset`: on the line of the
    /// last node when they were there, else on lines of their own.
    fn comments_before(&mut self, offset: usize) {
        while let Some(comment) = self
            .comments
            .front()
            .copied()
            .filter(|c| c.span.start < offset)
        {
            self.comments.pop_front();
            let line = self.source.line_index(comment.span.start);
            if self.line_open && self.last_line == Some(line) {
                self.out.push_str("  ");
            } else {
                self.keep_blank_after_comment(line);
                self.start_line();
            }
            self.out.push_str(&comment.text);
            self.last_line = Some(line);
            self.after_comment = true;
        }
    }

    fn keep_blank_after_comment(&mut self, line: usize) {
        if self.after_comment && self.last_line.is_some_and(|last| line > last + 1) {
            let text = self.source.text();
            let gap_start = self.source.line_start(self.last_line.unwrap_or(0) + 1);
            let gap_end = self.source.line_start(line);
            if text[gap_start..gap_end]
                .lines()
                .any(|l| l.trim().is_empty())
            {
                self.blank_line();
            }
        }
    }

    /// Starts a new line with `text` for the node spanning `start..end`.
    fn line(&mut self, text: &str, start: usize, end: usize) {
        self.comments_before(start);
        self.keep_blank_after_comment(self.source.line_index(start));
        self.start_line();
        self.out.push_str(text);
        self.mark_end(end);
        self.after_comment = false;
    }

    fn mark_end(&mut self, end: usize) {
        self.last_line = Some(self.source.line_index(end.saturating_sub(1)));
    }

    fn docs(&mut self, docs: &Docs, start: usize) {
        for line in &docs.lines {
            let text = if line.is_empty() {
                "///".to_string()
            } else {
                format!("/// {line}")
            };
            self.line(&text, start, start);
        }
    }

    /// `header {`, the body one level deeper, then `}` at the end of `span`.
    fn block(
        &mut self,
        header: &str,
        start: usize,
        header_end: usize,
        end: usize,
        body: impl FnOnce(&mut Self),
    ) {
        self.line(&format!("{header} {{"), start, header_end);
        self.depth += 1;
        body(self);
        self.comments_before(end.saturating_sub(1));
        self.depth -= 1;
        self.line("}", end.saturating_sub(1), end);
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Import(import) => {
                let text = format!("import {}", self.text(&import.path));
                self.line(&text, import.span.start, import.span.end);
            }
            Item::Agent(agent) => {
                self.docs(&agent.docs, agent.span.start);
                let header = format!("agent {}", agent.name.text);
                self.block(
                    &header,
                    agent.span.start,
                    agent.name.span.end,
                    agent.span.end,
                    |p| {
                        p.properties(&agent.properties);
                    },
                );
            }
            Item::Corpus(corpus) => {
                self.docs(&corpus.docs, corpus.span.start);
                let header = format!("corpus {}", corpus.name.text);
                self.block(
                    &header,
                    corpus.span.start,
                    corpus.name.span.end,
                    corpus.span.end,
                    |p| {
                        p.properties(&corpus.properties);
                    },
                );
            }
            Item::Schema(schema) => {
                self.docs(&schema.docs, schema.span.start);
                let header = format!("schema {}", schema.name.text);
                self.block(
                    &header,
                    schema.span.start,
                    schema.name.span.end,
                    schema.span.end,
                    |p| {
                        for field in &schema.fields {
                            p.docs(&field.docs, field.span.start);
                            let text = format!("{}: {},", field.name.text, p.type_text(&field.ty));
                            p.line(&text, field.span.start, field.span.end);
                        }
                    },
                );
            }
            Item::Workflow(workflow) => {
                self.docs(&workflow.docs, workflow.span.start);
                let header = format!("workflow {}", workflow.name.text);
                self.block(
                    &header,
                    workflow.span.start,
                    workflow.name.span.end,
                    workflow.span.end,
                    |p| {
                        let mut previous: Option<&Member> = None;
                        for member in &workflow.members {
                            let both_inputs = matches!(
                                (previous, member),
                                (Some(Member::Input(_)), Member::Input(_))
                            );
                            if previous.is_some() && !both_inputs {
                                p.blank_line();
                            }
                            p.member(member);
                            previous = Some(member);
                        }
                    },
                );
            }
        }
    }

    fn member(&mut self, member: &Member) {
        match member {
            Member::Input(input) => {
                self.docs(&input.docs, input.span.start);
                let mut text = format!("input {}: {}", input.name.text, self.type_text(&input.ty));
                if let Some(default) = &input.default {
                    text.push_str(" = ");
                    text.push_str(&self.value(default));
                }
                for attribute in &input.attributes {
                    text.push_str(" @");
                    text.push_str(&attribute.name.text);
                    if let Some(argument) = &attribute.argument {
                        text.push_str(&format!("({})", self.value(argument)));
                    }
                }
                self.line(&text, input.span.start, input.span.end);
            }
            Member::Task(task) => {
                self.docs(&task.docs, task.span.start);
                let header = format!(
                    "{} {} {} {}",
                    task.kind.keyword(),
                    task.name.text,
                    task.kind.joiner(),
                    task.target.text
                );
                self.block(
                    &header,
                    task.span.start,
                    task.target.span.end,
                    task.span.end,
                    |p| {
                        let mut lines: Vec<(String, Span)> =
                            task.properties
                                .iter()
                                .map(|property| (p.property(property), property.span))
                                .chain(task.checks.iter().map(|check| {
                                    (format!("expect {}", p.check(check)), check.span)
                                }))
                                .collect();
                        lines.sort_by_key(|(_, span)| span.start);
                        for (text, span) in lines {
                            p.line(&text, span.start, span.end);
                        }
                    },
                );
            }
            Member::Output(output) => {
                self.docs(&output.docs, output.span.start);
                let text = format!("output = {}", self.text(&output.template));
                self.line(&text, output.span.start, output.span.end);
            }
            Member::Test(test) => {
                self.docs(&test.docs, test.span.start);
                let header = format!("test {}", self.text(&test.name));
                self.block(
                    &header,
                    test.span.start,
                    test.name.span.end,
                    test.span.end,
                    |p| {
                        for step in &test.steps {
                            let text = p.test_step(step);
                            p.line(&text, step.span().start, step.span().end);
                        }
                    },
                );
            }
        }
    }

    fn properties(&mut self, properties: &[Property]) {
        for property in properties {
            let text = self.property(property);
            self.line(&text, property.span.start, property.span.end);
        }
    }

    fn property(&self, property: &Property) -> String {
        format!("{} = {}", property.key.text, self.value(&property.value))
    }

    fn check(&self, check: &Check) -> String {
        match &check.kind {
            CheckKind::Contains(text) => format!("contains {}", self.text(text)),
            CheckKind::Matches(text) => format!("matches {}", self.text(text)),
            CheckKind::Heading(text) => format!("heading {}", self.text(text)),
            CheckKind::MinLength(value) => format!("min_length {}", self.value(value)),
            CheckKind::Json => "json".to_string(),
            CheckKind::Cites(task) => format!("cites {}", task.text),
        }
    }

    fn test_step(&self, step: &TestStep) -> String {
        match step {
            TestStep::Input { name, value, .. } => {
                format!("input {} = {}", name.text, self.value(value))
            }
            TestStep::Mock {
                task,
                response,
                fails: false,
                ..
            } => format!("mock {} = {}", task.text, self.text(response)),
            TestStep::Mock { task, response, .. } => {
                format!("mock {} fails {}", task.text, self.text(response))
            }
            TestStep::Expect(expectation) => match &expectation.kind {
                ExpectationKind::Output(check) => {
                    format!("expect output {}", self.check(check))
                }
                ExpectationKind::TaskState { task, state } => {
                    format!("expect task {} {}", task.text, state.keyword())
                }
                ExpectationKind::Order { first, then } => {
                    format!("expect order {} before {}", first.text, then.text)
                }
            },
        }
    }

    fn value(&self, value: &Value) -> String {
        match &value.kind {
            ValueKind::Text(text) => self.text(text),
            ValueKind::List(items) => {
                let items: Vec<String> = items.iter().map(|item| self.value(item)).collect();
                format!("[{}]", items.join(", "))
            }
            ValueKind::Schema(fields) => self.schema(fields),
            ValueKind::Table(properties) => {
                let entries: Vec<String> = properties.iter().map(|p| self.property(p)).collect();
                format!("{{ {} }}", entries.join(", "))
            }
            ValueKind::Number(_)
            | ValueKind::Duration(_)
            | ValueKind::Bool(_)
            | ValueKind::Name(_)
            | ValueKind::OptionalName(_) => {
                self.source.text()[value.span.start..value.span.end].to_string()
            }
        }
    }

    /// One field a line, with its doc comment, one level in.
    fn schema(&self, fields: &[Field]) -> String {
        let inner = INDENT.repeat(self.depth + 1);
        let mut out = String::from("json {\n");
        for field in fields {
            for line in &field.docs.lines {
                let space = if line.is_empty() { "" } else { " " };
                out.push_str(&format!("{inner}///{space}{line}\n"));
            }
            out.push_str(&format!(
                "{inner}{}: {},\n",
                field.name.text,
                self.type_text(&field.ty)
            ));
        }
        out.push_str(&INDENT.repeat(self.depth));
        out.push('}');
        out
    }

    /// A string as written for basic strings; triple-quoted strings are laid
    /// out again at the current depth.
    fn text(&self, text: &Text) -> String {
        if text.quotes == Quotes::Basic {
            return self.source.text()[text.span.start..text.span.end].to_string();
        }
        let value = &text.value;
        if !value.contains('\n') && !value.ends_with('"') {
            return format!("\"\"\"{value}\"\"\"");
        }
        let inner = INDENT.repeat(self.depth + 1);
        let mut out = String::from("\"\"\"\n");
        for line in value.split('\n') {
            if !line.is_empty() {
                out.push_str(&inner);
                out.push_str(line);
            }
            out.push('\n');
        }
        out.push_str(&INDENT.repeat(self.depth));
        out.push_str("\"\"\"");
        out
    }

    fn type_text(&self, ty: &TypeExpr) -> String {
        let base = match &ty.kind {
            TypeKind::Named(name) => name.text.clone(),
            TypeKind::List(item) => format!("list<{}>", self.type_text(item)),
            TypeKind::OneOf(choices) => {
                let choices: Vec<String> = choices.iter().map(|choice| self.text(choice)).collect();
                format!("one_of({})", choices.join(", "))
            }
        };
        if ty.optional {
            format!("{base}?")
        } else {
            base
        }
    }
}
