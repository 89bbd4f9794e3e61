//! A real Chroma server (installed with pip, `chroma run`) on a free port, with its
//! data in a temporary folder; stopped when dropped. `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::restate::{free_port, wait_for};

const BINARY_VARIABLE: &str = "WFC_CHROMA";
const DATABASE: &str = "api/v2/tenants/default_tenant/databases/default_database";

fn installed() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = Path::new(&home).join(".cache/wfc-ci/chroma/venv/bin/chroma");
    path.is_file().then_some(path)
}

pub(crate) struct Chroma {
    child: Child,
    dir: tempfile::TempDir,
    pub url: String,
}

impl Chroma {
    /// A running server, or `None` (after saying so) when there is none to
    /// run; where `WFC_REQUIRE_SERVERS` is set, a missing one fails the test.
    pub(crate) async fn start(test: &str) -> Option<Chroma> {
        let binary = match std::env::var_os(BINARY_VARIABLE) {
            Some(path) => PathBuf::from(path),
            None => match installed() {
                Some(path) => path,
                None if std::env::var_os("WFC_REQUIRE_SERVERS").is_some() => panic!(
                    "{test}: {BINARY_VARIABLE} is not set, and WFC_REQUIRE_SERVERS says every real server must be there"
                ),
                None => {
                    eprintln!(
                        "SKIPPED {test}: {BINARY_VARIABLE} is not set (no Chroma server; .ci/run installs one from PyPI)"
                    );
                    return None;
                }
            },
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(binary)
            .args([
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--path",
            ])
            .arg(dir.path().join("data"))
            .env("ANONYMIZED_TELEMETRY", "False")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("chroma starts");
        let chroma = Chroma {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        let heartbeat = format!("{}/api/v2/heartbeat", chroma.url);
        wait_for(&heartbeat, Duration::from_mins(1), || chroma.log()).await;
        Some(chroma)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Creates the cosine collection `name` holding `records` (ids,
    /// documents, metadatas and embeddings, as Chroma's `add` takes them).
    pub(crate) async fn collection(&self, name: &str, records: Value) {
        let client = reqwest::Client::new();
        let created: Value = client
            .post(format!("{}/{DATABASE}/collections", self.url))
            .json(&json!({ "name": name, "configuration": { "hnsw": { "space": "cosine" } } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().expect("a collection id");
        let added = client
            .post(format!("{}/{DATABASE}/collections/{id}/add", self.url))
            .json(&records)
            .send()
            .await
            .unwrap();
        assert!(
            added.status().is_success(),
            "{}",
            added.text().await.unwrap()
        );
    }
}

impl Drop for Chroma {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
