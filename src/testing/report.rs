//! The results of `wfc test` for machines: JSON, and `JUnit` XML as CI
//! dashboards read it (GitLab, Jenkins, GitHub test reporters): a suite per
//! file, a case per test, the failures with what the test checked, and the
//! output of each run.

use std::path::PathBuf;
use std::time::Duration;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde::Serialize;

/// One test, run.
#[derive(Debug, Serialize)]
pub struct CaseResult {
    pub file: PathBuf,
    pub workflow: String,
    pub test: String,
    #[serde(rename = "duration_ms", serialize_with = "milliseconds")]
    pub duration: Duration,
    /// Each way the test failed, in words; empty when it passed.
    pub failures: Vec<String>,
    /// The rendered document the test checked, when the run got that far.
    pub output: Option<String>,
}

impl CaseResult {
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn milliseconds<S: serde::Serializer>(duration: &Duration, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_f64(duration.as_secs_f64() * 1e3)
}

/// `{"passed", "failed", "tests": [...]}`.
#[must_use]
pub fn json(cases: &[CaseResult]) -> serde_json::Value {
    let passed = cases.iter().filter(|case| case.passed()).count();
    serde_json::json!({
        "passed": passed,
        "failed": cases.len() - passed,
        "tests": cases,
    })
}

/// A `JUnit` XML report: `<testsuites>`, a `<testsuite>` per file, a
/// `<testcase>` per test (class name: the workflow) with its `<failure>`
/// and the run's output as `<system-out>`.
#[must_use]
pub fn junit(cases: &[CaseResult]) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_junit(&mut writer, cases).expect("writing to memory cannot fail");
    String::from_utf8(writer.into_inner()).expect("the report is UTF-8")
}

fn write_junit(writer: &mut Writer<Vec<u8>>, cases: &[CaseResult]) -> std::io::Result<()> {
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut files: Vec<&PathBuf> = cases.iter().map(|case| &case.file).collect();
    files.dedup();
    let counts = |cases: &[&CaseResult]| {
        let failures = cases.iter().filter(|case| !case.passed()).count();
        let time: f64 = cases.iter().map(|case| case.duration.as_secs_f64()).sum();
        (
            cases.len().to_string(),
            failures.to_string(),
            format!("{time:.3}"),
        )
    };
    let all: Vec<&CaseResult> = cases.iter().collect();
    let (tests, failures, time) = counts(&all);
    writer
        .create_element("testsuites")
        .with_attributes([
            ("name", "wfc test"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("time", time.as_str()),
        ])
        .write_inner_content(|writer| {
            for file in files {
                let suite: Vec<&CaseResult> =
                    cases.iter().filter(|case| &case.file == file).collect();
                write_suite(writer, &file.display().to_string(), &suite, counts(&suite))?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_suite(
    writer: &mut Writer<Vec<u8>>,
    name: &str,
    cases: &[&CaseResult],
    (tests, failures, time): (String, String, String),
) -> std::io::Result<()> {
    writer
        .create_element("testsuite")
        .with_attributes([
            ("name", name),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("skipped", "0"),
            ("time", time.as_str()),
        ])
        .write_inner_content(|writer| {
            for case in cases {
                write_case(writer, name, case)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_case(writer: &mut Writer<Vec<u8>>, file: &str, case: &CaseResult) -> std::io::Result<()> {
    let time = format!("{:.3}", case.duration.as_secs_f64());
    let element = writer.create_element("testcase").with_attributes([
        ("classname", case.workflow.as_str()),
        ("name", case.test.as_str()),
        ("file", file),
        ("time", time.as_str()),
    ]);
    if case.passed() && case.output.is_none() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|writer| {
        if let Some(first) = case.failures.first() {
            let summary = first.lines().next().unwrap_or_default();
            writer
                .create_element("failure")
                .with_attributes([("message", summary), ("type", "expectation")])
                .write_text_content(BytesText::new(&case.failures.join("\n\n")))?;
        }
        if let Some(output) = &case.output {
            writer
                .create_element("system-out")
                .write_text_content(BytesText::new(output))?;
        }
        Ok(())
    })?;
    Ok(())
}
