//! What the benchmarks share.

pub(crate) mod dag;
