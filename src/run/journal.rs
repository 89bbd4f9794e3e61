//! The run directory: what was asked (`run.json`), every finished task as
//! it finishes (`journal.jsonl`, flushed line by line so a crash or Ctrl-C
//! loses nothing already paid for), and the final report (`report.json`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::TaskRecord;
use super::events::{Event, Observer};

pub const RUN_FILE: &str = "run.json";
pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const REPORT_FILE: &str = "report.json";

/// What a run was asked to do, so `--resume` needs nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    pub file: PathBuf,
    pub workflow: String,
    pub inputs: serde_json::Map<String, serde_json::Value>,
}

impl RunRequest {
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_atomically(&dir.join(RUN_FILE), &serde_json::to_vec_pretty(self)?)
    }

    pub fn read(dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read(dir.join(RUN_FILE))?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}

/// Appends each finished task to `journal.jsonl`.
pub struct Journal {
    file: Mutex<File>,
    path: PathBuf,
}

impl Journal {
    /// Opens the run's journal for appending; earlier entries are kept.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Journal {
            file: Mutex::new(file),
            path,
        })
    }

    pub fn append(&self, record: &TaskRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut file = self.file.lock().expect("journal lock");
        file.write_all(&line)?;
        file.sync_data()
    }

    /// The entries of a journal, oldest first. A last line cut short by a
    /// crash is ignored; a damaged line elsewhere is an error.
    pub fn read(dir: &Path) -> std::io::Result<Vec<TaskRecord>> {
        let path = dir.join(JOURNAL_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>()?;
        let mut records = Vec::new();
        for (number, line) in lines.iter().enumerate() {
            match serde_json::from_str(line) {
                Ok(record) => records.push(record),
                Err(_) if number + 1 == lines.len() => break,
                Err(err) => {
                    return Err(std::io::Error::other(format!(
                        "{} line {}: {err}",
                        path.display(),
                        number + 1
                    )));
                }
            }
        }
        Ok(records)
    }
}

impl Observer for Journal {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Finished { record } = event
            && let Err(err) = self.append(record)
        {
            tracing::error!(journal = %self.path.display(), %err, "cannot write the journal");
        }
    }
}

/// Writes through a temporary file and a rename, so a reader never sees
/// half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Outcome;

    #[test]
    fn survives_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let mut record = TaskRecord::skipped("a", "A", "m", "r".into(), 0);
        record.outcome = Outcome::Ok {
            text: "answer".into(),
            finish_reason: None,
        };
        journal.append(&record).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap();
        file.write_all(b"{\"task\":\"b\",\"ag").unwrap();
        assert_eq!(Journal::read(dir.path()).unwrap(), vec![record]);
    }
}
