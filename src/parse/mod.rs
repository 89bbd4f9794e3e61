//! Source text to syntax tree, with pest. One `parse_<rule>` function per
//! grammar rule; syntax errors are explained in words in `error.rs`.

mod error;
mod parts;
mod pieces;
mod recover;
mod strings;

use pest::Parser as _;
use pest::iterators::Pair;

use crate::ast::{
    Agent, Attribute, Check, CheckKind, Comment, Corpus, Docs, Expectation, ExpectationKind, Field,
    Import, Input, Item, Member, Module, Name, Output, Property, Schema, Task, TaskKind, TaskState,
    Test, TestStep, Text, TypeExpr, TypeKind, Value, ValueKind, Workflow,
};
use crate::source::{SourceFile, Span};
pub use error::SyntaxError;
pub use recover::{Broken, Recovered, recover};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/wf.pest"]
struct WfParser;

/// Brackets nested deeper than this are refused before pest sees them, so a
/// hostile file cannot exhaust the stack of the recursive-descent parser.
const MAX_NESTING: usize = 64;

pub fn parse(source: &SourceFile) -> Result<Module, SyntaxError> {
    let text = source.text();
    // Each part's thread checks the nesting of its own text.
    if let Some(module) = parts::parse_in_parts(text) {
        return Ok(module);
    }
    error::check_nesting(text, MAX_NESTING)?;
    parse_whole(text)
}

/// Parses `text` in one piece, on this thread.
fn parse_whole(text: &str) -> Result<Module, SyntaxError> {
    let mut pairs = WfParser::parse(Rule::file, text).map_err(|first| {
        let detailed = error::with_detail(|| WfParser::parse(Rule::file, text)).err();
        error::translate(text, detailed.unwrap_or(first))
    })?;
    Ok(parse_file(
        pairs.next().expect("the file rule always yields one pair"),
    ))
}

fn parse_file(file: Pair<'_, Rule>) -> Module {
    let comments = comments(&file);
    let items = children(file)
        .filter(|pair| pair.as_rule() != Rule::EOI)
        .map(parse_item)
        .collect();
    Module { items, comments }
}

/// Every `//` comment inside `pair`, in the order of the file.
fn comments(pair: &Pair<'_, Rule>) -> Vec<Comment> {
    pair.clone()
        .into_inner()
        .flatten()
        .filter(|pair| pair.as_rule() == Rule::COMMENT)
        .map(|pair| Comment {
            text: pair.as_str().trim_end().to_string(),
            span: pair.as_span().into(),
        })
        .collect()
}

/// The children of a pair, without the comments pest interleaves.
fn children(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner()
        .filter(|pair| pair.as_rule() != Rule::COMMENT)
}

/// The span of a pair. An input or a type ends with an optional part; when
/// that part is absent, pest's span still holds the spaces and comments it
/// skipped looking for it, which are trimmed here.
fn span(pair: &Pair<'_, Rule>) -> Span {
    let full = pair.as_span();
    if !matches!(
        pair.as_rule(),
        Rule::input | Rule::type_expr | Rule::attribute
    ) {
        return full.into();
    }
    let text = full.get_input();
    // A comment after the last part may sit inside that part's pair
    // (pest skips it while looking for the part's own optional end).
    let comments: Vec<Span> = pair
        .clone()
        .into_inner()
        .flatten()
        .filter(|child| child.as_rule() == Rule::COMMENT)
        .map(|child| child.as_span().into())
        .collect();
    let mut end = full.end();
    loop {
        end = full.start() + text[full.start()..end].trim_end().len();
        // A comment's own trailing blanks were just trimmed with the rest.
        match comments
            .iter()
            .rev()
            .find(|comment| comment.start < end && end <= comment.end)
        {
            Some(comment) => end = comment.start,
            None => return Span::new(full.start(), end),
        }
    }
}

fn parse_item(pair: Pair<'_, Rule>) -> Item {
    match pair.as_rule() {
        Rule::import => Item::Import(parse_import(pair)),
        Rule::agent => Item::Agent(parse_agent(pair)),
        Rule::corpus => Item::Corpus(parse_corpus(pair)),
        Rule::schema => Item::Schema(parse_schema(pair)),
        Rule::workflow => Item::Workflow(parse_workflow(pair)),
        rule => unreachable!("the grammar allows no {rule:?} at the top level"),
    }
}

fn parse_import(pair: Pair<'_, Rule>) -> Import {
    let span = span(&pair);
    let path = parse_string(children(pair).next().expect("import has a path"));
    Import { path, span }
}

fn parse_docs(pair: Pair<'_, Rule>) -> Docs {
    let lines = children(pair)
        .map(|line| {
            let text = line.as_str().trim_end()["///".len()..].to_string();
            text.strip_prefix(' ').map(str::to_string).unwrap_or(text)
        })
        .collect();
    Docs { lines }
}

fn parse_name(pair: Pair<'_, Rule>) -> Name {
    Name {
        text: pair.as_str().to_string(),
        span: span(&pair),
    }
}

fn parse_agent(pair: Pair<'_, Rule>) -> Agent {
    let span = span(&pair);
    let mut inner = children(pair);
    let docs = parse_docs(inner.next().expect("agent has docs"));
    let name = parse_name(inner.next().expect("agent has a name"));
    let properties = inner.map(parse_property).collect();
    Agent {
        docs,
        name,
        properties,
        span,
    }
}

fn parse_corpus(pair: Pair<'_, Rule>) -> Corpus {
    let span = span(&pair);
    let mut inner = children(pair);
    let docs = parse_docs(inner.next().expect("corpus has docs"));
    let name = parse_name(inner.next().expect("corpus has a name"));
    let properties = inner.map(parse_property).collect();
    Corpus {
        docs,
        name,
        properties,
        span,
    }
}

fn parse_workflow(pair: Pair<'_, Rule>) -> Workflow {
    let span = span(&pair);
    let mut inner = children(pair);
    let docs = parse_docs(inner.next().expect("workflow has docs"));
    let name = parse_name(inner.next().expect("workflow has a name"));
    let members = inner.map(parse_member).collect();
    Workflow {
        docs,
        name,
        members,
        span,
    }
}

fn parse_member(pair: Pair<'_, Rule>) -> Member {
    match pair.as_rule() {
        Rule::input => Member::Input(parse_input(pair)),
        Rule::task => Member::Task(parse_task(pair)),
        Rule::output => Member::Output(parse_output(pair)),
        Rule::test => Member::Test(parse_test(pair)),
        rule => unreachable!("the grammar allows no {rule:?} in a workflow"),
    }
}

fn parse_input(pair: Pair<'_, Rule>) -> Input {
    let span = span(&pair);
    let mut inner = children(pair);
    let docs = parse_docs(inner.next().expect("input has docs"));
    let name = parse_name(inner.next().expect("input has a name"));
    let ty = parse_type(inner.next().expect("input has a type"));
    let (mut default, mut attributes) = (None, Vec::new());
    for part in inner {
        if part.as_rule() == Rule::attribute {
            let span = self::span(&part);
            let mut parts = children(part);
            let name = parse_name(parts.next().expect("an attribute has a name"));
            let argument = parts.next().map(parse_value);
            attributes.push(Attribute {
                name,
                argument,
                span,
            });
        } else {
            default = Some(parse_value(part));
        }
    }
    Input {
        docs,
        name,
        ty,
        default,
        attributes,
        span,
    }
}

fn parse_type(pair: Pair<'_, Rule>) -> TypeExpr {
    let span = span(&pair);
    let mut inner = children(pair);
    let atom = inner.next().expect("a type has a body");
    let optional = inner.next().is_some();
    let kind = match atom.as_rule() {
        Rule::named_type => TypeKind::Named(parse_name(
            children(atom).next().expect("a named type has a name"),
        )),
        Rule::list_type => TypeKind::List(Box::new(parse_type(
            children(atom)
                .next()
                .expect("a list type has an element type"),
        ))),
        Rule::one_of_type => TypeKind::OneOf(children(atom).map(parse_string).collect()),
        rule => unreachable!("the grammar allows no {rule:?} as a type"),
    };
    TypeExpr {
        kind,
        optional,
        span,
    }
}

fn parse_task(pair: Pair<'_, Rule>) -> Task {
    let span = span(&pair);
    let mut inner = children(pair);
    let docs = parse_docs(inner.next().expect("task has docs"));
    let kind = match inner.next().expect("task has a keyword").as_str() {
        "retrieve" => TaskKind::Retrieve,
        _ => TaskKind::Chat,
    };
    let name = parse_name(inner.next().expect("task has a name"));
    let target = parse_name(inner.next().expect("task has a target"));
    // Sized to the task's members: a vector grown one push at a time holds
    // room for four properties, twice what most tasks have, and a large
    // workflow's tasks all keep theirs until the check is done.
    let mut properties = Vec::with_capacity(inner.size_hint().1.unwrap_or_default());
    let mut checks = Vec::new();
    for member in inner {
        if member.as_rule() == Rule::answer_expect {
            let check = children(member).next().expect("`expect` has a check");
            checks.push(if check.as_rule() == Rule::cites {
                let span = self::span(&check);
                let task = parse_name(children(check).next().expect("`cites` has a task"));
                Check {
                    kind: CheckKind::Cites(task),
                    span,
                }
            } else {
                parse_check(check)
            });
        } else {
            properties.push(parse_property(member));
        }
    }
    Task {
        docs,
        kind,
        name,
        target,
        properties,
        checks,
        span,
    }
}

fn parse_output(pair: Pair<'_, Rule>) -> Output {
    let span = span(&pair);
    let mut inner = children(pair);
    let docs = parse_docs(inner.next().expect("output has docs"));
    let template = parse_string(inner.next().expect("output has a template"));
    Output {
        docs,
        template,
        span,
    }
}

fn parse_property(pair: Pair<'_, Rule>) -> Property {
    let span = span(&pair);
    let mut inner = children(pair);
    let key = parse_name(inner.next().expect("property has a key"));
    let value = parse_value(inner.next().expect("property has a value"));
    Property { key, value, span }
}

fn parse_value(pair: Pair<'_, Rule>) -> Value {
    let span = span(&pair);
    let kind = match pair.as_rule() {
        Rule::string => ValueKind::Text(parse_string(pair)),
        Rule::number => ValueKind::Number(pair.as_str().parse().unwrap_or(f64::NAN)),
        Rule::duration => ValueKind::Duration(parse_duration(pair.as_str())),
        Rule::boolean => ValueKind::Bool(pair.as_str() == "true"),
        Rule::name => ValueKind::Name(parse_name(pair)),
        Rule::list => ValueKind::List(children(pair).map(parse_value).collect()),
        Rule::json_schema => ValueKind::Schema(children(pair).map(parse_field).collect()),
        Rule::table => ValueKind::Table(children(pair).map(parse_property).collect()),
        Rule::optional_name => ValueKind::OptionalName(parse_name(
            children(pair).next().expect("an optional name has a name"),
        )),
        rule => unreachable!("the grammar allows no {rule:?} as a value"),
    };
    Value { kind, span }
}

fn parse_schema(pair: Pair<'_, Rule>) -> Schema {
    let span = span(&pair);
    let mut inner = children(pair);
    Schema {
        docs: parse_docs(inner.next().expect("a schema has docs")),
        name: parse_name(inner.next().expect("a schema has a name")),
        fields: inner.map(parse_field).collect(),
        span,
    }
}

fn parse_field(pair: Pair<'_, Rule>) -> Field {
    let span = span(&pair);
    let mut inner = children(pair);
    Field {
        docs: parse_docs(inner.next().expect("a field has docs")),
        name: parse_name(inner.next().expect("a field has a name")),
        ty: parse_type(inner.next().expect("a field has a type")),
        span,
    }
}

fn parse_duration(text: &str) -> std::time::Duration {
    let digits = text.trim_end_matches(char::is_alphabetic);
    let amount: u64 = digits.parse().unwrap_or(u64::MAX);
    let millis = match &text[digits.len()..] {
        "ms" => Some(amount),
        "s" => amount.checked_mul(1_000),
        "m" => amount.checked_mul(60_000),
        _ => amount.checked_mul(3_600_000),
    };
    std::time::Duration::from_millis(millis.unwrap_or(u64::MAX))
}

fn parse_string(pair: Pair<'_, Rule>) -> Text {
    let span = span(&pair);
    let quoted = pair
        .into_inner()
        .next()
        .expect("a string is basic or triple");
    let body = quoted.into_inner().next().expect("a string has a body");
    let (raw, start) = (body.as_str(), body.as_span().start());
    match body.as_rule() {
        Rule::triple_text => strings::triple(raw, start, span),
        _ => strings::basic(raw, start, span),
    }
}

fn parse_test(pair: Pair<'_, Rule>) -> Test {
    let span = span(&pair);
    let mut inner = children(pair);
    let docs = parse_docs(inner.next().expect("test has docs"));
    let name = parse_string(inner.next().expect("test has a name"));
    let steps = inner.map(parse_test_step).collect();
    Test {
        docs,
        name,
        steps,
        span,
    }
}

fn parse_test_step(pair: Pair<'_, Rule>) -> TestStep {
    let span = span(&pair);
    let rule = pair.as_rule();
    let mut inner = children(pair);
    let mut next = || inner.next().expect("the grammar fixes a test step's parts");
    match rule {
        Rule::test_input => TestStep::Input {
            name: parse_name(next()),
            value: parse_value(next()),
            span,
        },
        Rule::mock => {
            let task = parse_name(next());
            let answer = next();
            let fails = answer.as_rule() == Rule::mock_failure;
            let response = if fails {
                parse_string(children(answer).next().expect("`fails` has a string"))
            } else {
                parse_string(answer)
            };
            TestStep::Mock {
                task,
                response,
                fails,
                span,
            }
        }
        Rule::expect => TestStep::Expect(Expectation {
            kind: parse_expectation(next()),
            span,
        }),
        rule => unreachable!("the grammar allows no {rule:?} in a test"),
    }
}

fn parse_check(pair: Pair<'_, Rule>) -> Check {
    let span = span(&pair);
    let rule = pair.as_rule();
    let argument = children(pair).next();
    let text = || parse_string(argument.clone().expect("the check has a string"));
    let kind = match rule {
        Rule::contains => CheckKind::Contains(text()),
        Rule::matches => CheckKind::Matches(text()),
        Rule::heading => CheckKind::Heading(text()),
        Rule::min_length => CheckKind::MinLength(parse_value(
            argument.clone().expect("min_length has a number"),
        )),
        Rule::valid_json => CheckKind::Json,
        rule => unreachable!("the grammar allows no {rule:?} as a check"),
    };
    Check { kind, span }
}

fn parse_expectation(pair: Pair<'_, Rule>) -> ExpectationKind {
    let rule = pair.as_rule();
    let mut inner = children(pair);
    let mut next = || {
        inner
            .next()
            .expect("the grammar fixes an expectation's parts")
    };
    match rule {
        Rule::expect_output => ExpectationKind::Output(parse_check(next())),
        Rule::expect_task => {
            let task = parse_name(next());
            let state = match next().as_str() {
                "ok" => TaskState::Ok,
                "failed" => TaskState::Failed,
                _ => TaskState::Skipped,
            };
            ExpectationKind::TaskState { task, state }
        }
        Rule::expect_order => ExpectationKind::Order {
            first: parse_name(next()),
            then: parse_name(next()),
        },
        rule => unreachable!("the grammar allows no {rule:?} after `expect`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_ends_before_the_comments_after_it_even_with_trailing_blanks() {
        let text = "workflow w {\n  input x: text // one  \n  // two \t\n  output = \"\"\n}\n";
        let module = parse_whole(text).expect("parses");
        let Item::Workflow(workflow) = &module.items[0] else {
            panic!("a workflow")
        };
        let span = workflow.members[0].span();
        assert_eq!(&text[span.start..span.end], "input x: text");
    }
}
