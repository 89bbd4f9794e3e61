//! The run directory: what was asked (`run.json`), every finished task as
//! it finishes (`journal.jsonl`, flushed line by line so a crash or Ctrl-C
//! loses nothing already paid for), and the final report (`report.json`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};

use serde::{Deserialize, Serialize};

use super::events::{Event, Observer};
use crate::record::TaskRecord;

pub const RUN_FILE: &str = "run.json";
pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const REPORT_FILE: &str = "report.json";

/// What a run was asked to do, so `--resume` needs nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    pub file: PathBuf,
    pub workflow: String,
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// Where its requests went; absent in run directories of older wfc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentUsed>,
}

/// Where a run's requests went, so that a resumed run goes to the same
/// servers (with PHI, another deployment may be outside the boundary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeploymentUsed {
    /// The built-in mock model server.
    Mock,
    /// A router file, with the SHA-256 of its content when the run started.
    RouterFile { path: PathBuf, sha256: String },
    /// No router file: the seed's local ports.
    Seed,
    /// The durable engine: run `run` on the Restate server at `restate`,
    /// whose workers' deployment decides where requests go.
    Restate { restate: String, run: String },
}

impl DeploymentUsed {
    /// The router file at `path` whose content is `text`.
    #[must_use]
    pub fn router_file(path: &Path, text: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(text.as_bytes());
        DeploymentUsed::RouterFile {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            sha256: digest.iter().map(|byte| format!("{byte:02x}")).collect(),
        }
    }
}

impl RunRequest {
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_json_atomically(&dir.join(RUN_FILE), self)
    }

    pub fn read(dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read(dir.join(RUN_FILE))?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}

/// Appends each finished task to `journal.jsonl`. A writer thread of its
/// own writes and syncs to disk, in batches when tasks finish together, so
/// the run never waits on the disk and many runs do not queue behind each
/// other's syncs.
pub struct Journal {
    path: PathBuf,
    sender: Option<Sender<Message>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

enum Message {
    Line(Vec<u8>),
    /// Answered once every line sent before it is on disk.
    Synced(Sender<()>),
}

impl Journal {
    /// Opens the run's journal for appending; earlier entries are kept. A
    /// last line cut short (a crash in the middle of a write) is cut off
    /// first, so that what is appended after it starts on a line of its own.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        repair_tail(&file)?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let shown = path.clone();
        let writer = std::thread::Builder::new()
            .name("wfc-journal".into())
            .spawn(move || write_batches(file, &receiver, &shown))?;
        Ok(Journal {
            path,
            sender: Some(sender),
            writer: Some(writer),
        })
    }

    pub fn append(&self, record: &TaskRecord) {
        let mut line = serde_json::to_vec(record).expect("records serialise");
        line.push(b'\n');
        self.send(Message::Line(line));
    }

    /// Waits until everything appended so far is on disk.
    pub fn sync(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        self.send(Message::Synced(done));
        let _ = wait.recv();
    }

    fn send(&self, message: Message) {
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|s| s.send(message).is_ok());
        if !sent {
            tracing::error!(journal = %self.path.display(), "the journal writer has stopped");
        }
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
        if let Event::Finished { record } = event {
            self.append(record);
        }
    }
}

/// Finishing the writes before the journal goes away: what was appended is
/// on disk when the run's caller moves on.
impl Drop for Journal {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_batches(mut file: File, receiver: &Receiver<Message>, path: &Path) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        let mut waiting = Vec::new();
        let mut written: std::io::Result<()> = Ok(());
        for message in batch {
            match message {
                Message::Line(line) => {
                    written = written.and_then(|()| file.write_all(&line));
                }
                Message::Synced(done) => waiting.push(done),
            }
        }
        if let Err(err) = written.and_then(|()| file.sync_data()) {
            tracing::error!(journal = %path.display(), %err, "cannot write the journal");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Cuts the file back to its last complete line.
fn repair_tail(file: &File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let length = file.metadata()?.len();
    let mut reader = file;
    let mut end = length;
    let mut chunk = vec![0; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let size = (end - start) as usize;
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(&mut chunk[..size])?;
        if let Some(newline) = chunk[..size].iter().rposition(|&byte| byte == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end < length {
        tracing::warn!(
            cut = length - end,
            "the journal's last line was cut short; dropping it"
        );
        file.set_len(end)?;
        file.sync_data()?;
    }
    Ok(())
}

/// Writes `value` as JSON to `path` (its folder made if missing), through
/// [`write_atomically`], off the async workers: the sync waits for the disk.
pub async fn keep_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        write_atomically(&path, |file| file.write_all(&bytes))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Writes `value` as pretty JSON through [`write_atomically`].
pub fn write_json_atomically(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    write_atomically(path, |file| {
        serde_json::to_writer_pretty(file, value).map_err(std::io::Error::from)
    })
}

/// Writes through a temporary file of its own, synced, and a rename, so a
/// reader never sees half a file and two writers never share a temporary.
/// `write` fills the file through a buffer, so a large document is never
/// held whole in memory.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = format!(
        "{}.{}-{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let temporary = path.with_file_name(unique);
    let written = File::create(&temporary).and_then(|file| {
        let mut buffered = BufWriter::new(file);
        write(&mut buffered)?;
        buffered
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?
            .sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temporary, path)) {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = std::fs::remove_file(&temporary);
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;

    #[test]
    fn survives_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let mut record = TaskRecord::skipped("a", "A", "m", "r".into(), 0);
        record.outcome = Outcome::Ok {
            text: "answer".into(),
            finish_reason: None,
        };
        journal.append(&record);
        journal.sync();
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap();
        file.write_all(b"{\"task\":\"b\",\"ag").unwrap();
        assert_eq!(Journal::read(dir.path()).unwrap(), vec![record]);
    }

    fn answered(task: &str) -> TaskRecord {
        let mut record = TaskRecord::skipped(task, "A", "m", "r".into(), 0);
        record.outcome = Outcome::Ok {
            text: "x".repeat(10_000),
            finish_reason: None,
        };
        record
    }

    fn tear(dir: &Path) {
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL_FILE))
            .unwrap();
        file.write_all(b"{\"task\":\"cut\",\"agent\":\"A\",\"text\":\"xxxx")
            .unwrap();
    }

    #[test]
    fn a_journal_torn_twice_resumes_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for task in ["first", "second", "third"] {
            let journal = Journal::open(dir.path()).unwrap();
            assert_eq!(Journal::read(dir.path()).unwrap(), expected);
            let record = answered(task);
            journal.append(&record);
            drop(journal);
            expected.push(record);
            tear(dir.path());
        }
        assert_eq!(Journal::read(dir.path()).unwrap(), expected);
        let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap();
        assert_eq!(
            text.matches("\"task\":\"cut\"").count(),
            1,
            "only the last tear is left"
        );
    }

    #[test]
    fn atomic_writes_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_atomically(&path, |file| file.write_all(b"one")).unwrap();
        write_atomically(&path, |file| file.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_write_that_fails_halfway_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_json_atomically(&path, &["kept"]).unwrap();
        let failed = write_atomically(&path, |file| {
            file.write_all(b"[\"half")?;
            Err(std::io::Error::other("the serialiser gave up"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "the serialiser gave up");
        let kept: Vec<String> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(kept, ["kept"]);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "the temporary is removed");
    }
}
