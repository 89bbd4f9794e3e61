//! wfc compiles `.wf` multi-agent LLM workflows.
//!
//! The pipeline, one module a phase:
//! [`source`] (files, spans) → [`parse`] (pest) → [`ast`] (the syntax tree) →
//! [`check`] (names, values, templates, into a validated [`check::Program`]) →
//! [`plan`] (the task DAG, its critical path and waves).

pub mod ast;
pub mod catalog;
pub mod check;
pub mod client;
pub mod diagnostics;
pub mod durable;
pub mod explain;
pub mod files;
pub mod format;
pub mod loader;
pub mod lsp;
pub mod mock;
pub mod overlap;
pub mod parse;
pub mod plan;
pub mod policy;
pub mod record;
pub mod render;
pub mod retrieve;
pub mod router;
pub mod run;
pub mod serve;
pub mod source;
pub mod template;
pub mod testing;
pub mod timeline;
pub mod tokens;
pub mod trace_context;
