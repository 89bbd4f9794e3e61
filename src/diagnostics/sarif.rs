//! Diagnostics as one SARIF 2.1.0 log, as code scanning reads it (GitHub's
//! among others): every diagnostic code is a rule described by its `wfc
//! explain` text, and every diagnostic a result at its place in the file,
//! its secondary labels as related locations.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path};

use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, PropertyBag,
    Region, ReportingConfiguration, ReportingDescriptor, Result as Finding, ResultLevel, Run,
    Sarif, Tool, ToolComponent,
};
use sha2::{Digest, Sha256};

use super::{LabelRecord, Record};
use crate::explain::{self, Entry};
use crate::source::SourceFile;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// Where a reader learns about the rules: the project's home page, as the
/// package names it.
const INFORMATION_URI: Option<&str> = option_env!("CARGO_PKG_HOMEPAGE");
/// How code scanning ranks a result that lets PHI reach an agent outside
/// the boundary: high (7.0–8.9).
const PHI_SECURITY_SEVERITY: &str = "8.0";
const PHI_FLOW: &str = "wf::phi-flow";

/// The log of `files`' diagnostics; paths are written relative to `base`
/// (the repository's root, where the check runs).
#[must_use]
pub fn log(files: &[(&SourceFile, Vec<Record>)], base: &Path) -> Sarif {
    let mut findings = Vec::new();
    for (source, records) in files {
        let uri = artifact_uri(source.path(), base);
        // The same line hash twice in a file is told apart by its count.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for record in records {
            findings.push(finding(record, source, &uri, &mut seen));
        }
    }
    let mut driver = ToolComponent::builder()
        .name("wfc")
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(explain::CODES.iter().map(rule).collect::<Vec<_>>())
        .build();
    driver.information_uri = INFORMATION_URI
        .filter(|uri| !uri.is_empty())
        .map(str::to_string);
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(findings)
        // Columns count characters, as `wfc check` prints them.
        .column_kind(serde_json::json!("unicodeCodePoints"))
        .build();
    Sarif::builder()
        .schema(SCHEMA)
        .version(serde_json::json!("2.1.0"))
        .runs(vec![run])
        .build()
}

fn rule(entry: &Entry) -> ReportingDescriptor {
    let text = |text: &str| MultiformatMessageString::builder().text(text).build();
    let level = if explain::is_warning(entry.code) {
        "warning"
    } else {
        "error"
    };
    let mut rule = ReportingDescriptor::builder()
        .id(entry.code)
        .short_description(text(entry.summary()))
        .full_description(text(&first_paragraph(entry.text)))
        .help(
            MultiformatMessageString::builder()
                .text(entry.text)
                .markdown(entry.text)
                .build(),
        )
        .default_configuration(
            ReportingConfiguration::builder()
                .level(serde_json::json!(level))
                .build(),
        )
        .build();
    if entry.code == PHI_FLOW {
        rule.properties = Some(security_properties());
    }
    rule
}

/// What code scanning needs to show a result as a security alert.
fn security_properties() -> PropertyBag {
    PropertyBag::builder()
        .tags(vec!["security".to_string(), "phi".to_string()])
        .additional_properties(BTreeMap::from([(
            "security-severity".to_string(),
            serde_json::json!(PHI_SECURITY_SEVERITY),
        )]))
        .build()
}

/// The explanation's first paragraph after its heading.
fn first_paragraph(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .find(|paragraph| !paragraph.is_empty() && !paragraph.starts_with('#'))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn finding(
    record: &Record,
    source: &SourceFile,
    uri: &str,
    seen: &mut HashMap<String, usize>,
) -> Finding {
    let level = if record.severity == "warning" {
        ResultLevel::Warning
    } else {
        ResultLevel::Error
    };
    let mut message = record.message.clone();
    if let Some(help) = &record.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let primary = location(
        uri,
        record.line,
        record.column,
        record.end_line,
        record.end_column,
    );
    // A diagnostic with several labels (the edges of a cycle, the steps of
    // a PHI path) lists them all, the primary one included, each with its
    // words.
    let related: Vec<Location> = if record.labels.len() > 1 {
        record
            .labels
            .iter()
            .enumerate()
            .map(|(index, label)| related_location(uri, index, label))
            .collect()
    } else {
        Vec::new()
    };
    let hash = line_hash(&record.code, source, record.line);
    let count = seen.entry(hash.clone()).or_default();
    *count += 1;
    let mut finding = Finding::builder()
        .rule_id(record.code.clone())
        .level(level)
        .message(Message::builder().text(message).build())
        .locations(vec![primary])
        .partial_fingerprints(BTreeMap::from([(
            "primaryLocationLineHash".to_string(),
            format!("{hash}:{count}"),
        )]))
        .build();
    finding.rule_index = explain::CODES
        .iter()
        .position(|entry| entry.code == record.code)
        .and_then(|index| i64::try_from(index).ok());
    if !related.is_empty() {
        finding.related_locations = Some(related);
    }
    if record.code == PHI_FLOW {
        finding.properties = Some(security_properties());
    }
    finding
}

fn location(uri: &str, line: usize, column: usize, end_line: usize, end_column: usize) -> Location {
    let number = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let region = Region::builder()
        .start_line(number(line))
        .start_column(number(column))
        .end_line(number(end_line))
        .end_column(number(end_column.max(if end_line == line {
            column
        } else {
            1
        })))
        .build();
    Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(ArtifactLocation::builder().uri(uri).build())
                .region(region)
                .build(),
        )
        .build()
}

/// One label of a diagnostic, as a related location.
fn related_location(uri: &str, index: usize, label: &LabelRecord) -> Location {
    let mut related = location(
        uri,
        label.line,
        label.column,
        label.end_line,
        label.end_column,
    );
    related.id = i64::try_from(index).ok();
    related.message = label
        .message
        .as_ref()
        .map(|text| Message::builder().text(text.clone()).build());
    related
}

/// A hash of the rule and the text of the result's line (spaces trimmed),
/// so a result keeps its identity when lines above it move.
fn line_hash(code: &str, source: &SourceFile, line: usize) -> String {
    let text = source
        .text()
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("");
    let digest = Sha256::digest(format!("{code}\n{}", text.trim()).as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The file as a URI relative to `base`, with `/` between its parts and
/// everything but unreserved characters percent-encoded.
fn artifact_uri(path: &Path, base: &Path) -> String {
    let relative = path.strip_prefix(base).unwrap_or(path);
    relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .map(|part| {
            part.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}
