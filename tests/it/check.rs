//! Every file under `tests/cases/check/` is a case: the diagnostics `wfc
//! check` gives for it, rendered without colour, are snapshotted with the
//! source beside them. `ok_*` cases must have no problems, `warn_*` only
//! warnings, `err_*` at least one error. Files starting with `_` are imported
//! by cases and are not cases themselves.

use std::path::Path;

use miette::Diagnostic;
use wfc::check::check_file;
use wfc::loader::Loader;

fn relative(path: &Path) -> &Path {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
}

#[test]
fn check_cases() {
    insta::glob!("../cases/check", "[!_]*.wf", |path| {
        let path = relative(path);
        let report = check_file(&mut Loader::default(), path).expect("case file is readable");
        let name = path.file_name().unwrap().to_string_lossy();
        let errors = report.problems.iter().filter(|p| p.is_error()).count();
        let warnings = report.problems.len() - errors;
        match &name[..name.find('_').unwrap_or(0)] {
            "ok" => assert_eq!(report.problems.len(), 0, "{name} should be clean"),
            "warn" => assert!(
                errors == 0 && warnings > 0,
                "{name} should have only warnings"
            ),
            "err" => assert!(errors > 0, "{name} should have errors"),
            other => panic!("case {name} must start with ok_, warn_ or err_, not {other}"),
        }
        let rendered = wfc::diagnostics::human(
            &report.source,
            report.problems.iter().map(|p| p as &dyn Diagnostic),
            false,
        );
        insta::with_settings!({
            description => report.source.text(),
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(rendered);
        });
    });
}
