//! A workflow input: its type, its default and its attributes.

use super::problem::{Problem, did_you_mean};
use super::program::InputDef;
use super::types;
use crate::ast;

const INPUT_ATTRIBUTES: &[&str] = &["phi", "max_len"];
const MAX_LEN: f64 = 10_000_000.0;

fn source_text(value: &ast::Value) -> String {
    match &value.kind {
        ast::ValueKind::Number(n) => n.to_string(),
        other => other.describe().to_string(),
    }
}

/// Checks one input declaration.
pub(super) fn input_def(
    input: &ast::Input,
    schemas: &types::Schemas,
    problems: &mut Vec<Problem>,
) -> InputDef {
    let ty = types::resolve(&input.ty, schemas, problems);
    let default = match (&ty, &input.default) {
        (ty, Some(value)) if ty.is_known() => types::literal(&input.name.text, ty, value)
            .map_err(|problem| problems.push(problem))
            .ok(),
        _ => None,
    };
    let (mut phi, mut max_len) = (false, None);
    for attribute in &input.attributes {
        match (attribute.name.text.as_str(), &attribute.argument) {
            ("phi", None) => phi = true,
            ("max_len", Some(value)) => {
                max_len = match value.kind {
                    ast::ValueKind::Number(n)
                        if n.fract() == 0.0 && (1.0..=MAX_LEN).contains(&n) =>
                    {
                        Some(n as u32)
                    }
                    _ => {
                        problems.push(Problem::OutOfRange {
                            key: "@max_len".into(),
                            value: source_text(value),
                            span: value.span,
                            range: "a whole number of characters from 1 to 10000000".into(),
                        });
                        None
                    }
                }
            }
            (name, _) => {
                problems.push(Problem::UnknownProperty {
                    owner: "input",
                    key: format!("@{name}"),
                    span: attribute.span,
                    help: Some(match name {
                        "phi" => "`@phi` takes no argument".into(),
                        "max_len" => "write `@max_len(4000)`".into(),
                        _ => did_you_mean(name, INPUT_ATTRIBUTES.iter().copied()).unwrap_or_else(
                            || "the input attributes are `@phi` and `@max_len(N)`".into(),
                        ),
                    }),
                });
            }
        }
    }
    InputDef {
        name: input.name.text.clone(),
        doc: input.docs.text(),
        ty,
        default,
        phi,
        max_len,
    }
}
