//! The integration tests: one binary, a module per part of wfc, and one
//! harness ([`support`]) for starting servers and running the CLI.

mod budget;
mod cassette;
mod check;
mod chroma;
mod cli;
mod durable;
mod format;
mod layers;
mod library;
mod llama_server;
mod lsp;
mod mock_server;
mod phi;
mod reference;
mod retrieval;
mod robustness;
mod run;
mod run_cases;
mod run_cli;
mod scheduler;
mod serve;
mod streaming;
mod support;
mod telemetry;
mod test_cli;
mod timeline;
