//! Finding the `.wf` files that paths name: a file as given, every `*.wf`
//! under a folder.

use std::path::{Path, PathBuf};

/// A file or folder that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what}`{}`: {}", path.display(), reason(source))]
pub struct Unreadable {
    /// `"folder "` for a folder, empty for a path of either kind.
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

impl Unreadable {
    #[must_use]
    pub fn new(path: &Path, source: std::io::Error) -> Self {
        Unreadable {
            what: "",
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Each file path as given, and every `*.wf` file under each folder, sorted.
/// With no paths, the current folder.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Unreadable> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|err| Unreadable::new(path, err))?;
        if metadata.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Unreadable> {
    let entries = std::fs::read_dir(dir).map_err(|err| Unreadable {
        what: "folder ",
        ..Unreadable::new(dir, err)
    })?;
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

/// Why `err` happened, in words for the command line.
#[must_use]
pub fn reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => err.to_string(),
    }
}

/// The folder a file is in: `.` for a bare file name.
#[must_use]
pub fn folder_of(file: &Path) -> PathBuf {
    file.parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
