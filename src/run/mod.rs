//! Running a checked workflow: bind the inputs, drive the task DAG over the
//! agents' servers, render the output, and report.
//!
//! [`Session`] wires a run; [`dag::DagState`] is its pure bookkeeping; the
//! local engine drives that state on tokio; executors carry out each
//! task's [`Job`]: over HTTP, with retries, from the journal or cache, or
//! from a test's script.

pub mod cassette;
pub mod conduct;
pub mod dag;
pub mod events;
pub mod execute;
pub mod inputs;
pub mod job;
pub mod journal;
mod local;
pub mod quality;
pub mod report;
mod retrying;
mod scripted;
mod search;
mod session;
pub mod stored;

pub use events::{Event, Observer, Recorder, RunEvent};
pub use execute::{Executor, HttpExecutor};
pub use job::{Answer, Failure, Job, PromptUsage, Request};
pub use local::Finished;
pub use report::Report;
pub use retrying::{Attempts, Retrying, retried};
pub use scripted::Scripted;
pub use search::embed_corpus;
pub use session::{Deployment, Session, agents_used};
