//! Reading `key = value` properties: unknown and repeated keys, and values of
//! the wrong kind or out of range.

use std::time::Duration;

use super::problem::{Problem, did_you_mean};
use crate::ast::{Name, Property, Value, ValueKind};

/// The properties of one agent or task, after unknown and repeated keys
/// have been reported.
pub(super) struct Properties<'a> {
    /// The first property of each known key. An owner has a handful, so a
    /// scan costs less than hashing the key.
    kept: Vec<&'a Property>,
}

impl<'a> Properties<'a> {
    pub(super) fn read(
        owner: &'static str,
        known: &[&str],
        properties: &'a [Property],
        problems: &mut Vec<Problem>,
    ) -> Self {
        let mut kept: Vec<&Property> = Vec::with_capacity(properties.len());
        for property in properties {
            let key = property.key.text.as_str();
            if !known.contains(&key) {
                problems.push(Problem::UnknownProperty {
                    owner,
                    key: key.to_string(),
                    span: property.key.span,
                    help: did_you_mean(key, known.iter().copied())
                        .or_else(|| Some(format!("{owner}s have: {}", known.join(", ")))),
                });
            } else if let Some(earlier) = kept.iter().find(|kept| kept.key.text == key) {
                problems.push(Problem::Duplicate {
                    what: "property",
                    name: key.to_string(),
                    span: property.key.span,
                    first: Some(earlier.key.span),
                    help: Some("keep one of them".into()),
                });
            } else {
                kept.push(property);
            }
        }
        Properties { kept }
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.kept
            .iter()
            .find(|property| property.key.text == key)
            .map(|property| &property.value)
    }

    pub(super) fn text(
        &self,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<&'a crate::ast::Text> {
        let value = self.get(key)?;
        match &value.kind {
            ValueKind::Text(text) => Some(text),
            other => {
                problems.push(wrong_kind(key, "a string", other, value, None));
                None
            }
        }
    }

    pub(super) fn name(&self, key: &str, problems: &mut Vec<Problem>) -> Option<&'a Name> {
        let value = self.get(key)?;
        match &value.kind {
            ValueKind::Name(name) => Some(name),
            other => {
                let help = matches!(other, ValueKind::Text(_))
                    .then(|| "names are written without quotes".to_string());
                problems.push(wrong_kind(key, "a name", other, value, help));
                None
            }
        }
    }

    /// A list of names; `name?` marks one optional.
    pub(super) fn names(&self, key: &str, problems: &mut Vec<Problem>) -> Vec<(&'a Name, bool)> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let ValueKind::List(items) = &value.kind else {
            let help = matches!(value.kind, ValueKind::Name(_))
                .then(|| "write a list, even of one name: `[name]`".to_string());
            problems.push(wrong_kind(key, "a list of names", &value.kind, value, help));
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match &item.kind {
                ValueKind::Name(name) => Some((name, false)),
                ValueKind::OptionalName(name) => Some((name, true)),
                other => {
                    problems.push(wrong_kind(key, "a list of names", other, item, None));
                    None
                }
            })
            .collect()
    }

    pub(super) fn boolean(&self, key: &str, problems: &mut Vec<Problem>) -> Option<bool> {
        let value = self.get(key)?;
        match &value.kind {
            ValueKind::Bool(flag) => Some(*flag),
            other => {
                problems.push(wrong_kind(key, "true or false", other, value, None));
                None
            }
        }
    }

    /// A whole number within `range`.
    pub(super) fn integer(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u32>,
        problems: &mut Vec<Problem>,
    ) -> Option<u32> {
        let value = self.get(key)?;
        let number = Self::number_value(key, value, problems)?;
        if number.fract() != 0.0 {
            problems.push(wrong_kind(key, "a whole number", &value.kind, value, None));
            return None;
        }
        if number < f64::from(*range.start()) || number > f64::from(*range.end()) {
            problems.push(out_of_range(key, number, &range, value));
            return None;
        }
        Some(number as u32)
    }

    pub(super) fn number(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<f64>,
        problems: &mut Vec<Problem>,
    ) -> Option<f64> {
        let value = self.get(key)?;
        let number = Self::number_value(key, value, problems)?;
        if !range.contains(&number) {
            problems.push(out_of_range(key, number, &range, value));
            return None;
        }
        Some(number)
    }

    pub(super) fn duration(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<Duration>,
        problems: &mut Vec<Problem>,
    ) -> Option<Duration> {
        let value = self.get(key)?;
        match &value.kind {
            ValueKind::Duration(duration) if range.contains(duration) => Some(*duration),
            ValueKind::Duration(duration) => {
                problems.push(Problem::OutOfRange {
                    key: key.to_string(),
                    value: humanize(*duration),
                    span: value.span,
                    range: format!(
                        "from {} to {}",
                        humanize(*range.start()),
                        humanize(*range.end())
                    ),
                });
                None
            }
            other => {
                let help = matches!(other, ValueKind::Number(_))
                    .then(|| "give the unit: `30s`, `500ms`, `2m` or `1h`".to_string());
                problems.push(wrong_kind(key, "a duration", other, value, help));
                None
            }
        }
    }

    fn number_value(key: &str, value: &Value, problems: &mut Vec<Problem>) -> Option<f64> {
        match &value.kind {
            ValueKind::Number(number) => Some(*number),
            other => {
                problems.push(wrong_kind(key, "a number", other, value, None));
                None
            }
        }
    }
}

fn wrong_kind(
    key: &str,
    expected: &'static str,
    found: &ValueKind,
    value: &Value,
    help: Option<String>,
) -> Problem {
    Problem::InvalidValue {
        key: key.to_string(),
        expected: expected.to_string(),
        found: found.describe().to_string(),
        span: value.span,
        help,
    }
}

fn out_of_range<T: std::fmt::Display>(
    key: &str,
    number: f64,
    range: &std::ops::RangeInclusive<T>,
    value: &Value,
) -> Problem {
    Problem::OutOfRange {
        key: key.to_string(),
        value: number.to_string(),
        span: value.span,
        range: format!("from {} to {}", range.start(), range.end()),
    }
}

fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        m if m % 3_600_000 == 0 && m > 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 && m > 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}
