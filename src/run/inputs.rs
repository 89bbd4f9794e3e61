//! Binding the values a caller supplies to a workflow's declared inputs:
//! every unknown, missing or ill-typed input is reported at once, before
//! anything is sent to a server.

use serde_json::{Map, Value};

use crate::check::{InputDef, Type, WorkflowDef};

/// A value as the caller gave it.
#[derive(Debug, Clone)]
pub enum Given {
    /// From the command line (`--input name=value` or `name=@file`):
    /// always text, converted to the declared type.
    Text(String),
    /// From JSON (`--inputs file.json`, an HTTP request): must already
    /// have the declared type.
    Json(Value),
}

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
                    Some(text) if found.path.is_empty() => found.shown(text),
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

/// Where a value differs from its declared type and what it is instead,
/// told by its kind and length, never its text: inputs may be patient data
/// and answers may repeat it, and these messages reach logs, reports and
/// progress lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The fields and items on the way to the value, outermost first.
    path: Vec<Step>,
    found: Found,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Item(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    /// A text of this many characters that is not what it should be; the
    /// text itself (shortened) only where it may be shown.
    Text {
        characters: u64,
        shown: Option<String>,
        is_not: &'static str,
    },
    /// A JSON value of another kind.
    Kind(&'static str),
    /// An object with this many fields that are not declared.
    Undeclared(usize),
}

impl Mismatch {
    fn text(text: &str, is_not: &'static str) -> Self {
        Mismatch {
            path: Vec::new(),
            found: Found::Text {
                characters: crate::tokens::characters(text),
                shown: None,
                is_not,
            },
        }
    }

    /// The same, quoting the text (shortened) where it may be shown: a
    /// value given for an input that is not `@phi`.
    fn shown(mut self, text: &str) -> Self {
        const LIMIT: usize = 40;
        if let Found::Text { shown, .. } = &mut self.found {
            *shown = Some(match text.char_indices().nth(LIMIT) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text.to_string(),
            });
        }
        self
    }

    /// An answer that should have been a JSON object.
    pub(crate) fn not_json(text: &str) -> Self {
        Mismatch::text(text, "JSON")
    }

    fn within(mut self, step: Step) -> Self {
        self.path.insert(0, step);
        self
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for step in &self.path {
            match step {
                Step::Field(name) => write!(f, "field `{name}`: ")?,
                Step::Item(index) => write!(f, "item {index}: ")?,
            }
        }
        match &self.found {
            Found::Text {
                shown: Some(text),
                is_not,
                ..
            } => write!(f, "`{text}` is not {is_not}"),
            Found::Text {
                characters, is_not, ..
            } => {
                let plural = if *characters == 1 { "" } else { "s" };
                write!(
                    f,
                    "a text of {characters} character{plural} is not {is_not}"
                )
            }
            Found::Kind(kind) => write!(f, "a JSON {kind} was given"),
            Found::Undeclared(1) => write!(f, "it has a field that is not declared"),
            Found::Undeclared(count) => write!(f, "it has {count} fields that are not declared"),
        }
    }
}

/// Whether `value` has type `ty`; the error says where it does not, e.g.
/// "field `icd10`: item 1: a JSON number was given".
pub fn conforms(ty: &Type, value: Value) -> Result<Value, Mismatch> {
    convert(ty, Given::Json(value))
}

/// Converts `given` to `ty`; the error describes what was found instead.
fn convert(ty: &Type, given: Given) -> Result<Value, Mismatch> {
    match (ty, given) {
        (Type::Optional(_), Given::Json(Value::Null)) => Ok(Value::Null),
        (Type::Optional(inner), given) => convert(inner, given),
        (Type::List(_) | Type::Object(_), Given::Text(text)) => {
            let value: Value =
                serde_json::from_str(&text).map_err(|_| Mismatch::text(&text, "JSON"))?;
            convert(ty, Given::Json(value))
        }
        (Type::Object(fields), Given::Json(Value::Object(mut object))) => {
            let mut checked = Map::new();
            for field in fields {
                let value = object.remove(&field.name).unwrap_or(Value::Null);
                let value = convert(&field.ty, Given::Json(value))
                    .map_err(|found| found.within(Step::Field(field.name.clone())))?;
                checked.insert(field.name.clone(), value);
            }
            if object.is_empty() {
                Ok(Value::Object(checked))
            } else {
                Err(Mismatch {
                    path: Vec::new(),
                    found: Found::Undeclared(object.len()),
                })
            }
        }
        (Type::List(item), Given::Json(Value::Array(items))) => items
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                convert(item, Given::Json(value)).map_err(|found| found.within(Step::Item(index)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (Type::Number, Given::Text(text)) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::from)
            .ok_or_else(|| Mismatch::text(&text, "a number")),
        (Type::Bool, Given::Text(text)) => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            other => Err(Mismatch::text(other, "true or false")),
        },
        // Only a file with errors names an unknown type, and it never runs.
        (Type::Unknown, Given::Json(value))
        | (Type::Number, Given::Json(value @ Value::Number(_)))
        | (Type::Bool, Given::Json(value @ Value::Bool(_))) => Ok(value),
        (Type::Text | Type::Date | Type::OneOf(_) | Type::Unknown, Given::Text(text)) => {
            convert(ty, Given::Json(Value::String(text)))
        }
        (Type::Text, Given::Json(Value::String(text))) => Ok(Value::String(text)),
        (Type::Date, Given::Json(Value::String(text))) => {
            if is_date(text.trim()) {
                Ok(Value::String(text))
            } else {
                Err(Mismatch::text(&text, "a date"))
            }
        }
        (Type::OneOf(choices), Given::Json(Value::String(text))) => {
            if choices.contains(&text) {
                Ok(Value::String(text))
            } else {
                Err(Mismatch::text(&text, "one of them"))
            }
        }
        (_, Given::Json(value)) => Err(Mismatch {
            path: Vec::new(),
            found: Found::Kind(json_kind(&value)),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// `2026-01-04`, or `01/04/2026` with the month and day in either order
/// (both orders are in clinical use).
fn is_date(text: &str) -> bool {
    static FORMS: std::sync::LazyLock<[regex::Regex; 2]> = std::sync::LazyLock::new(|| {
        [
            regex::Regex::new(r"^\d{4}-(?<a>\d{2})-(?<b>\d{2})$").expect("valid pattern"),
            regex::Regex::new(r"^(?<a>\d{1,2})/(?<b>\d{1,2})/\d{4}$").expect("valid pattern"),
        ]
    });
    FORMS.iter().any(|form| {
        form.captures(text).is_some_and(|parts| {
            let (a, b) = (
                parts["a"].parse().unwrap_or(0),
                parts["b"].parse().unwrap_or(0),
            );
            let valid = |month: u32, day: u32| (1..=12).contains(&month) && (1..=31).contains(&day);
            valid(a, b) || (form.as_str().contains('/') && valid(b, a))
        })
    })
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
