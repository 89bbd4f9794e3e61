//! Finding the `.wf` files that paths name: a file as given, every `*.wf`
//! under a folder.

use std::path::{Path, PathBuf};

/// Each file path as given, and every `*.wf` file under each folder, sorted.
/// With no paths, the current folder.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|err| format!("cannot read `{}`: {}", path.display(), reason(&err)))?;
        if metadata.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| format!("cannot read folder `{}`: {}", dir.display(), reason(&err)))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for path in paths {
        let hidden = path.file_name().is_some_and(|name| {
            name.to_string_lossy().starts_with('.') || name == "target" || name == "node_modules"
        });
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "wf") {
            files.push(path);
        }
    }
    Ok(())
}

pub fn reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => err.to_string(),
    }
}
