//! Deployment: which servers answer for each agent. It lives in a router
//! file (`wfc.toml`), apart from the workflows, because the same workflow
//! runs against a laptop, a test rig and a hospital's GPU servers.

mod config;
mod pool;

pub use config::{ChromaCorpus, Embedder, FILE_NAME, RouterConfig, RouterError};
pub use pool::{Capacity, Claim, Endpoint, Lease, Pool, Router};
