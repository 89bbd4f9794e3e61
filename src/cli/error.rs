//! How a command ends when it does not succeed: one error type that knows
//! its exit code and is rendered once, by `main`.

use std::fmt;

/// The exit codes of `wfc`, as the README lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Code {
    /// The files have errors (or warnings, with `--deny-warnings`), would
    /// change under `wfc fmt --check`, or a test failed.
    Problems = 1,
    /// Bad arguments, or a file, folder, input, router file or run
    /// directory that cannot be used.
    Usage = 2,
    /// `wfc run` finished, but a task or the output failed.
    TasksFailed = 3,
    /// Ctrl-C stopped the run (128 + SIGINT, as shells report it).
    Interrupted = 130,
    /// SIGTERM stopped the run (128 + SIGTERM).
    Terminated = 143,
}

#[derive(Debug)]
pub(crate) enum Error {
    /// Something the command was given cannot be used; the message says
    /// what and why.
    Usage(String),
    /// Inputs that do not fit the workflow: every problem, then what the
    /// workflow takes.
    Inputs {
        errors: Vec<String>,
        workflow: String,
        /// One line per input: its name, type and whether it is required.
        takes: Vec<String>,
    },
    /// The files have problems; the message sums them up.
    Problems(String),
    /// The command has already shown why it did not succeed (diagnostics,
    /// a run's summary, each file that could not be read), so nothing is
    /// left to say but the exit code.
    Shown(Code),
}

impl Error {
    pub(crate) fn usage(message: impl fmt::Display) -> Self {
        Error::Usage(message.to_string())
    }

    pub(crate) fn code(&self) -> Code {
        match self {
            Error::Usage(_) | Error::Inputs { .. } => Code::Usage,
            Error::Problems(_) => Code::Problems,
            Error::Shown(code) => *code,
        }
    }

    /// Writes the error to stderr, as a command-line tool reports.
    pub(crate) fn render(&self) {
        match self {
            Error::Usage(message) | Error::Problems(message) => eprintln!("error: {message}"),
            Error::Inputs {
                errors,
                workflow,
                takes,
            } => {
                for error in errors {
                    eprintln!("error: {error}");
                }
                eprintln!("\nworkflow `{workflow}` takes:");
                for line in takes {
                    eprintln!("  {line}");
                }
            }
            Error::Shown(_) => {}
        }
    }
}

impl From<wfc::files::Unreadable> for Error {
    fn from(err: wfc::files::Unreadable) -> Self {
        Error::usage(err)
    }
}

/// The commands that go through many files and report each failure as they
/// meet it: the worst failure decides the exit code, once every file is done.
#[derive(Default)]
pub(crate) struct Worst(Option<Code>);

impl Worst {
    /// Shows `error` now and remembers its code.
    pub(crate) fn show(&mut self, error: &Error) {
        error.render();
        self.note(error.code());
    }

    /// Remembers a failure that has already been shown.
    pub(crate) fn note(&mut self, code: Code) {
        self.0 = self.0.max(Some(code));
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        self.0.map_or(Ok(()), |code| Err(Error::Shown(code)))
    }
}
