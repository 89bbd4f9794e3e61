//! The one way tests run the `wfc` binary: a builder in the manner of
//! `Command`, run from the repository's root with colour and logs off unless
//! a test says otherwise, and an outcome with the exit code and both
//! streams as text, normalised for snapshots.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub(crate) struct Wfc {
    command: Command,
}

/// What a finished `wfc` left behind.
#[derive(Debug)]
pub(crate) struct Ran {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Wfc {
    pub(crate) fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wfc"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env_remove("WFC_LOG");
        Wfc { command }
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub(crate) fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.command.args(args);
        self
    }

    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub(crate) fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub(crate) fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Runs to the end.
    pub(crate) fn run(self) -> Ran {
        Ran::from(self.start(false).wait_with_output().expect("wfc runs"))
    }

    /// Runs to the end on a blocking thread, for async tests whose own
    /// servers must keep answering meanwhile.
    pub(crate) async fn run_in_background(self) -> Ran {
        tokio::task::spawn_blocking(move || self.run())
            .await
            .expect("wfc ran")
    }

    /// Starts it with every stream piped, for tests that talk to it (the
    /// language server) or signal it (Ctrl-C).
    pub(crate) fn spawn(self) -> Child {
        self.start(true)
    }

    fn start(mut self, pipe_stdin: bool) -> Child {
        self.command
            .stdin(if pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.command.spawn().expect("wfc starts")
    }
}

impl Wfc {
    /// `wfc ARGS...`, the usual way.
    pub(crate) fn with(args: &[&str]) -> Ran {
        Wfc::new().args(args).run()
    }
}

impl From<std::process::Output> for Ran {
    fn from(output: std::process::Output) -> Self {
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Ran {
    /// The report `--json` printed.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{self}"))
    }

    /// Exit code and both streams as one text for a snapshot, with each of
    /// `paths` written as its label (temporary folders differ every run).
    pub(crate) fn normalised(&self, paths: &[(&Path, &str)]) -> String {
        let mut text = self.to_string();
        for (path, label) in paths {
            text = text.replace(&path.display().to_string(), label);
        }
        text
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self
            .code
            .map_or_else(|| "a signal".to_string(), |code| code.to_string());
        write!(
            f,
            "exit: {code}\n--- stdout\n{}--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}
