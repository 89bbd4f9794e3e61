//! Whether a value fits a declared type: an input as a caller gave it, a
//! model's typed answer, a test's mocked answer. What does not fit is told
//! by its place, kind and length, never its text.

use serde_json::{Map, Value};

use super::program::Type;

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
    #[must_use]
    pub fn shown(mut self, text: &str) -> Self {
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
    fn not_json(text: &str) -> Self {
        Mismatch::text(text, "JSON")
    }

    /// Whether the mismatch is in the value itself, not in a field or item.
    #[must_use]
    pub fn is_at_top(&self) -> bool {
        self.path.is_empty()
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
pub fn convert(ty: &Type, given: Given) -> Result<Value, Mismatch> {
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

/// A model's answer as the JSON object `shape` declares, or what is wrong
/// with it (told without the answer's text). Models sometimes wrap JSON in
/// a Markdown fence; that is forgiven.
pub fn typed(text: &str, shape: &Type) -> Result<String, Mismatch> {
    let bare = text.trim();
    let bare = bare
        .strip_prefix("```json")
        .or_else(|| bare.strip_prefix("```"))
        .and_then(|inner| inner.strip_suffix("```"))
        .unwrap_or(bare)
        .trim();
    let value: Value = serde_json::from_str(bare).map_err(|_| Mismatch::not_json(bare))?;
    conforms(shape, value).map(|json| json.to_string())
}
