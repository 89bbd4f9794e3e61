//! Input types, and whether a literal value fits one.

use super::problem::{Problem, did_you_mean};
use super::program::Type;
use crate::ast::{TypeExpr, TypeKind, Value, ValueKind};

const NAMED: &[(&str, Type)] = &[
    ("text", Type::Text),
    ("number", Type::Number),
    ("bool", Type::Bool),
    ("date", Type::Date),
];

/// The named answer shapes (`schema Name { ... }`) a file can use.
pub(super) type Schemas = rustc_hash::FxHashMap<String, Type>;

/// The type `ty` names; an unknown name is reported and resolves to
/// [`Type::Unknown`], so what reads it is not reported again.
pub(super) fn resolve(ty: &TypeExpr, schemas: &Schemas, problems: &mut Vec<Problem>) -> Type {
    let base = match &ty.kind {
        TypeKind::Named(name) => match NAMED.iter().find(|(known, _)| *known == name.text) {
            Some((_, ty)) => ty.clone(),
            None => {
                if let Some(schema) = schemas.get(&name.text) {
                    schema.clone()
                } else {
                    let known = NAMED
                        .iter()
                        .map(|(known, _)| *known)
                        .chain(schemas.keys().map(String::as_str));
                    problems.push(Problem::UnknownType {
                    name: name.text.clone(),
                    span: name.span,
                    help: did_you_mean(&name.text, known).or_else(|| {
                        Some("the types are text, number, bool, date, list<T>, one_of(\"a\", \"b\"), T? for optional, and the names of declared schemas".into())
                    }),
                });
                    Type::Unknown
                }
            }
        },
        TypeKind::List(item) => Type::List(Box::new(resolve(item, schemas, problems))),
        TypeKind::OneOf(choices) => Type::OneOf(choices.iter().map(|c| c.value.clone()).collect()),
    };
    if ty.optional {
        Type::Optional(Box::new(base))
    } else {
        base
    }
}

/// The type of a `json { ... }` schema; a field named twice is an error.
pub(super) fn schema(
    fields: &[crate::ast::Field],
    schemas: &Schemas,
    problems: &mut Vec<Problem>,
) -> Type {
    let mut defs: Vec<super::program::FieldDef> = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        if let Some(first) = fields[..index]
            .iter()
            .find(|f| f.name.text == field.name.text)
        {
            problems.push(Problem::Duplicate {
                what: "field",
                name: field.name.text.clone(),
                span: field.name.span,
                first: Some(first.name.span),
                help: Some("keep one of them".into()),
            });
            continue;
        }
        defs.push(super::program::FieldDef {
            name: field.name.text.clone(),
            doc: field.docs.text(),
            ty: resolve(&field.ty, schemas, problems),
        });
    }
    Type::Object(defs)
}

/// The JSON form of a literal `value` for an input of type `ty`, or a
/// problem naming the input when the value does not fit.
pub(super) fn literal(name: &str, ty: &Type, value: &Value) -> Result<serde_json::Value, Problem> {
    fit(ty, value).ok_or_else(|| Problem::InvalidValue {
        key: name.to_string(),
        expected: format!("a value of type {ty}"),
        found: value.kind.describe().to_string(),
        span: value.span,
        help: match ty {
            Type::OneOf(choices) => Some(format!("the choices are {}", quote_all(choices))),
            _ => None,
        },
    })
}

fn fit(ty: &Type, value: &Value) -> Option<serde_json::Value> {
    use serde_json::Value as Json;
    match (ty, &value.kind) {
        (Type::Optional(inner), _) => fit(inner, value),
        (Type::Text | Type::Date, ValueKind::Text(text)) => Some(Json::String(text.value.clone())),
        (Type::OneOf(choices), ValueKind::Text(text)) if choices.contains(&text.value) => {
            Some(Json::String(text.value.clone()))
        }
        (Type::Number, ValueKind::Number(number)) => {
            serde_json::Number::from_f64(*number).map(Json::Number)
        }
        (Type::Bool, ValueKind::Bool(flag)) => Some(Json::Bool(*flag)),
        (Type::List(item), ValueKind::List(values)) => values
            .iter()
            .map(|v| fit(item, v))
            .collect::<Option<Vec<_>>>()
            .map(Json::Array),
        _ => None,
    }
}

fn quote_all(choices: &[String]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
    quoted.join(", ")
}
