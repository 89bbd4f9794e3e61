//! A real Restate server for the durable engine's tests, and `wfc worker`
//! processes registered with it. The server is the binary of the npm
//! package `@restatedev/restate-server` (`.ci/run` installs it and sets
//! `WFC_RESTATE_SERVER`); without it each test says it was skipped, and
//! fails where `WFC_REQUIRE_SERVERS` is set.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Wfc;

const SERVER_VARIABLE: &str = "WFC_RESTATE_SERVER";

/// Where `.ci/run` installs the server, for a developer's machine.
fn installed() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = Path::new(&home)
        .join(".cache/wfc-ci/restate/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server");
    path.is_file().then_some(path)
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

pub(crate) struct Restate {
    binary: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
    ports: [u16; 3],
    pub ingress: String,
    pub admin: String,
}

impl Restate {
    /// Starts a server with its own ports and data; `None` (after saying
    /// so) when there is no server binary and the test is to be skipped.
    pub(crate) async fn start(test: &str) -> Option<Restate> {
        let binary = match std::env::var_os(SERVER_VARIABLE) {
            Some(path) => PathBuf::from(path),
            None => match installed() {
                Some(path) => path,
                None if std::env::var_os("WFC_REQUIRE_SERVERS").is_some() => panic!(
                    "{test}: {SERVER_VARIABLE} is not set, and WFC_REQUIRE_SERVERS says every real server must be there"
                ),
                None => {
                    eprintln!(
                        "SKIPPED {test}: {SERVER_VARIABLE} is not set (no restate-server; .ci/run installs one from npm)"
                    );
                    return None;
                }
            },
        };
        let ports = [free_port(), free_port(), free_port()];
        let mut restate = Restate {
            binary,
            child: None,
            dir: tempfile::tempdir().unwrap(),
            ports,
            ingress: format!("http://127.0.0.1:{}", ports[0]),
            admin: format!("http://127.0.0.1:{}", ports[1]),
        };
        restate.launch().await;
        Some(restate)
    }

    async fn launch(&mut self) {
        let [ingress, admin, fabric] = self.ports;
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = Command::new(&self.binary)
            .args([
                "--no-logo",
                "--bind-ip",
                "127.0.0.1",
                "--log-filter",
                "info",
            ])
            .arg("--bind-port")
            .arg(fabric.to_string())
            .arg("--base-dir")
            .arg(self.dir.path().join("data"))
            .env("RESTATE_DISABLE_TELEMETRY", "true")
            .env(
                "RESTATE_INGRESS__BIND_ADDRESS",
                format!("127.0.0.1:{ingress}"),
            )
            .env("RESTATE_ADMIN__BIND_ADDRESS", format!("127.0.0.1:{admin}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("restate-server starts");
        self.child = Some(child);
        let health = [
            format!("{}/health", self.admin),
            format!("{}/restate/health", self.ingress),
        ];
        for url in health {
            wait_for(&url, Duration::from_mins(1), || self.log()).await;
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same ports
    /// and data.
    pub(crate) async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The rows of an SQL query over the server's own tables (its
    /// invocations, journals, state and promises), through the admin API.
    pub(crate) async fn query(&self, sql: &str) -> String {
        reqwest::Client::new()
            .post(format!("{}/query", self.admin))
            .header("accept", "application/json")
            .json(&serde_json::json!({ "query": sql }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The server's log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Starts a `wfc worker` for `paths` with the router file `router`,
    /// serving on `port`, and waits until it says it serves and is
    /// registered. Its log is read all along, so it never blocks on a
    /// full pipe.
    pub(crate) async fn worker(&self, paths: &[&Path], router: &Path, port: u16) -> Worker {
        self.worker_with(paths, router, port, &[("WFC_LOG", "info,wfc=debug")])
            .await
    }

    /// A worker as [`Restate::worker`] starts it, with `env` (`WFC_LOG`,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` ...) in its environment.
    pub(crate) async fn worker_with(
        &self,
        paths: &[&Path],
        router: &Path,
        port: u16,
        env: &[(&str, &str)],
    ) -> Worker {
        start_worker(&self.admin, paths, router, port, env).await
    }

    /// Kills the server (SIGKILL), to start it again with
    /// [`Restate::start_again`] on the same ports and data.
    pub(crate) fn stop(&mut self) {
        self.kill();
    }

    pub(crate) async fn start_again(&mut self) {
        self.launch().await;
    }
}

/// Starts a `wfc worker` as [`Restate::worker_with`] does, registering with
/// the admin API at `admin` (port 0: one the system picks).
pub(crate) async fn start_worker(
    admin: &str,
    paths: &[&Path],
    router: &Path,
    port: u16,
    env: &[(&str, &str)],
) -> Worker {
    let mut command = Wfc::new();
    for (key, value) in env {
        command = command.env(key, value);
    }
    let mut child = command
        .arg("worker")
        .args(paths)
        .arg("--router")
        .arg(router)
        .args(["--restate-admin", admin])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .spawn();
    let stderr = child.stderr.take().expect("the worker's stderr is piped");
    let (ready, serving) = tokio::sync::oneshot::channel();
    let log = Arc::new(Mutex::new(String::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = kept.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
            if line.starts_with("worker serving")
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(Ok(()));
            }
        }
        if let Some(ready) = ready {
            let _ = ready.send(Err(kept.lock().unwrap().clone()));
        }
    });
    match tokio::time::timeout(Duration::from_mins(1), serving).await {
        Ok(Ok(Ok(()))) => Worker { child, log },
        Ok(Ok(Err(log))) => panic!("wfc worker exited before serving:\n{log}"),
        Ok(Err(_)) | Err(_) => panic!("wfc worker did not say it serves within a minute"),
    }
}

impl Drop for Restate {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `wfc worker` process; killed (SIGKILL) when dropped.
pub(crate) struct Worker {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Worker {
    /// Everything the worker has written to stderr (its logs, at debug
    /// level for wfc's own).
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no goodbye to Restate, connections cut mid-request.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `url` answers 200, failing with `log()` after `limit`.
pub(crate) async fn wait_for(url: &str, limit: Duration, log: impl Fn() -> String) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer within {limit:?}; the server's log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
