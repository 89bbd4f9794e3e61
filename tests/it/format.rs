//! `wfc fmt` over every `.wf` file in the repository: formatting keeps the
//! syntax tree and every comment, and formatting twice changes nothing.

use std::path::{Path, PathBuf};

use wfc::source::SourceFile;

fn wf_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            wf_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "wf") {
            found.push(path);
        }
    }
}

/// The syntax tree's debug form without byte positions, which formatting
/// is allowed to move.
fn shape(source: &SourceFile) -> String {
    let module = wfc::parse::parse(source).expect("parses");
    let text = format!("{:?}", module.items);
    let positions = regex::Regex::new(r"\d+\.\.\d+").unwrap();
    positions.replace_all(&text, "_").into_owned()
}

#[test]
fn formatting_is_idempotent_and_keeps_the_tree_and_comments() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    wf_files(&root.join("workflows"), &mut files);
    wf_files(&root.join("tests"), &mut files);
    let mut formatted_count = 0;
    for path in files {
        let source = SourceFile::new(&path, std::fs::read_to_string(&path).unwrap_or_default());
        let Ok(module) = wfc::parse::parse(&source) else {
            continue;
        };
        let once = wfc::format::format(&source, &module);
        let reparsed = SourceFile::new(&path, once.clone());
        assert_eq!(
            shape(&source),
            shape(&reparsed),
            "{} changes meaning",
            path.display()
        );
        let comments_before: Vec<&str> = module.comments.iter().map(|c| c.text.as_str()).collect();
        let module_after = wfc::parse::parse(&reparsed).unwrap();
        let comments_after: Vec<&str> = module_after
            .comments
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        assert_eq!(
            comments_before,
            comments_after,
            "{} loses comments",
            path.display()
        );
        let twice = wfc::format::format(&reparsed, &module_after);
        assert_eq!(once, twice, "{} is not stable under fmt", path.display());
        formatted_count += 1;
    }
    assert!(
        formatted_count >= 10,
        "only {formatted_count} files were formatted"
    );
}

#[test]
fn comments_stay_where_they_were() {
    let text =
        "// roster\n\nagent A { // the only one\n  // its model\n  model = \"m\" // pinned\n}\n";
    let source = SourceFile::new("a.wf", text);
    let module = wfc::parse::parse(&source).unwrap();
    assert_eq!(
        wfc::format::format(&source, &module),
        "// roster\n\nagent A {  // the only one\n  // its model\n  model = \"m\"  // pinned\n}\n"
    );
}

/// Every file under `tests/cases/fmt/` is a case: its canonical layout is
/// snapshotted with the file as written beside it, and formatting that
/// layout again changes nothing.
#[test]
fn fmt_cases() {
    insta::glob!("../cases/fmt", "*.wf", |path| {
        let source = SourceFile::new(path, std::fs::read_to_string(path).unwrap());
        let module = wfc::parse::parse(&source).expect("a fmt case parses");
        let formatted = wfc::format::format(&source, &module);
        let again = SourceFile::new(path, formatted.clone());
        let reparsed = wfc::parse::parse(&again).expect("the formatted case parses");
        assert_eq!(wfc::format::format(&again, &reparsed), formatted);
        insta::with_settings!({
            description => source.text(),
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(formatted);
        });
    });
}
