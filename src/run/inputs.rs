//! Binding the values a caller supplies to a workflow's declared inputs:
//! every unknown, missing or ill-typed input is reported at once, before
//! anything is sent to a server.

use serde_json::{Map, Value};

use crate::check::conform::{Given, Mismatch, convert};
use crate::check::{InputDef, Type, WorkflowDef};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("workflow `{workflow}` has no input `{name}`{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Unknown {
        workflow: String,
        name: String,
        /// "did you mean `x`?", when a declared input is close.
        hint: Option<String>,
    },
    #[error("input `{name}` is required (declared as `{ty}`) but was not given")]
    Missing { name: String, ty: String },
    #[error("input `{name}` should be {expected}, but {found}")]
    WrongType {
        name: String,
        expected: String,
        found: Mismatch,
    },
    #[error(
        "input `{name}` is {} characters long, more than its @max_len({limit})",
        crate::tokens::grouped(*length)
    )]
    TooLong {
        name: String,
        /// In characters; a list's items together.
        length: u64,
        limit: u32,
    },
}

/// The inputs to render templates with: the given values converted to their
/// types, defaults filled in, optional inputs absent as `none`.
pub fn bind(
    workflow: &WorkflowDef,
    given: Vec<(String, Given)>,
) -> Result<Map<String, Value>, Vec<InputError>> {
    let mut errors = Vec::new();
    let mut bound = Map::new();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in given {
        let Some(input) = workflow.inputs.iter().find(|input| input.name == name) else {
            let names = workflow.inputs.iter().map(|input| input.name.as_str());
            errors.push(InputError::Unknown {
                workflow: workflow.name.clone(),
                hint: crate::check::problem::did_you_mean(&name, names),
                name,
            });
            continue;
        };
        seen.insert(name.clone());
        let shown = match (&value, input.phi) {
            (Given::Text(text) | Given::Json(Value::String(text)), false) => Some(text.clone()),
            _ => None,
        };
        match convert(&input.ty, value) {
            Ok(value) => match input.max_len {
                Some(limit) if length(&value) > u64::from(limit) => {
                    errors.push(InputError::TooLong {
                        length: length(&value),
                        name,
                        limit,
                    });
                }
                _ => {
                    bound.insert(name, value);
                }
            },
            Err(found) => {
                let found = match &shown {
                    Some(text) if found.is_at_top() => found.shown(text),
                    _ => found,
                };
                errors.push(wrong_type(input, found));
            }
        }
    }
    for input in &workflow.inputs {
        if seen.contains(&input.name) {
            continue;
        }
        match (&input.default, input.is_required()) {
            (Some(default), _) => {
                bound.insert(input.name.clone(), default.clone());
            }
            (None, true) => errors.push(InputError::Missing {
                name: input.name.clone(),
                ty: input.ty.to_string(),
            }),
            (None, false) => {
                bound.insert(input.name.clone(), Value::Null);
            }
        }
    }
    if errors.is_empty() {
        Ok(bound)
    } else {
        Err(errors)
    }
}

/// A value's length as `@max_len` counts it: a text's characters, a
/// list's items together, anything else as JSON text.
fn length(value: &Value) -> u64 {
    match value {
        Value::String(text) => crate::tokens::characters(text),
        Value::Array(items) => items.iter().map(length).sum(),
        Value::Null => 0,
        other => other.to_string().chars().count() as u64,
    }
}

fn wrong_type(input: &InputDef, found: Mismatch) -> InputError {
    InputError::WrongType {
        name: input.name.clone(),
        expected: expected(&input.ty),
        found,
    }
}

fn expected(ty: &Type) -> String {
    match ty {
        Type::Text => "text".into(),
        Type::Number => "a number".into(),
        Type::Bool => "true or false".into(),
        Type::Date => "a date such as 2026-01-04 or 01/04/2026".into(),
        Type::List(item) => format!("a JSON list of {}", expected(item)),
        Type::OneOf(choices) => format!("one of {}", ty_choices(choices)),
        Type::Optional(inner) => format!("{} (or null)", expected(inner)),
        Type::Object(_) => format!("a JSON object `{ty}`"),
        Type::Unknown => "a value of an unknown type".into(),
    }
}

fn ty_choices(choices: &[String]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::Loader;

    fn workflow() -> WorkflowDef {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.wf");
        std::fs::write(
            &path,
            r#"agent A { model = "m" phi_allowed = true }
workflow w {
  input note: text
  input age: number
  input day: date
  input setting: one_of("inpatient", "outpatient") = "inpatient" @phi
  input codes: list<text>?
  input urgent: bool?
  task t -> A { prompt = "{{ note }} {{ age }} {{ day }} {{ setting }} {{ codes }} {{ urgent }}" }
}
"#,
        )
        .unwrap();
        let report = crate::check::check_file(&mut Loader::default(), &path).unwrap();
        assert!(!report.has_errors(), "{:?}", report.problems);
        report.program.unwrap().workflows.remove(0)
    }

    fn text(pairs: &[(&str, &str)]) -> Vec<(String, Given)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Given::Text(v.to_string())))
            .collect()
    }

    #[test]
    fn converts_text_to_declared_types_and_fills_defaults() {
        let bound = bind(
            &workflow(),
            text(&[
                ("note", "{{ x }}"),
                ("age", "64"),
                ("day", "01/04/2026"),
                ("codes", r#"["I21.19"]"#),
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(bound),
            serde_json::json!({
                "note": "{{ x }}", "age": 64.0, "day": "01/04/2026",
                "setting": "inpatient", "codes": ["I21.19"], "urgent": null
            })
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let errors = bind(
            &workflow(),
            text(&[
                ("nte", "x"),
                ("age", "sixty"),
                ("day", "2026-13-01"),
                ("setting", "home"),
            ]),
        )
        .unwrap_err();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "workflow `w` has no input `nte`; did you mean `note`?",
                "input `age` should be a number, but `sixty` is not a number",
                "input `day` should be a date such as 2026-01-04 or 01/04/2026, but `2026-13-01` is not a date",
                "input `setting` should be one of \"inpatient\", \"outpatient\", but a text of 4 characters is not one of them",
                "input `note` is required (declared as `text`) but was not given",
            ]
        );
    }

    #[test]
    fn json_values_must_already_have_their_type() {
        let given = vec![
            ("note".to_string(), Given::Json(serde_json::json!(12))),
            ("age".to_string(), Given::Json(serde_json::json!(64))),
            (
                "day".to_string(),
                Given::Json(serde_json::json!("2026-01-04")),
            ),
            (
                "codes".to_string(),
                Given::Json(serde_json::json!(["a", 1])),
            ),
        ];
        let messages: Vec<String> = bind(&workflow(), given)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "input `note` should be text, but a JSON number was given",
                "input `codes` should be a JSON list of text (or null), but item 1: a JSON number was given",
            ]
        );
    }
}
