//! `wfc index`: builds or updates the search indexes of the corpora the
//! workflows declare, ahead of the first run that searches them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::error::{Error, Worst};
use wfc::check;
use wfc::client::Client;
use wfc::files::folder_of;
use wfc::loader::Loader;
use wfc::retrieve::{Chunking, Location, Refresh};
use wfc::router::RouterConfig;
use wfc::run::embed_corpus;

#[derive(clap::Args)]
pub(super) struct Args {
    /// The corpora to index (default: every corpus the workflows declare)
    corpora: Vec<String>,
    /// Files, or folders to search for `*.wf` files (default: the current folder)
    #[arg(long = "workflows", short = 'w', value_name = "PATH")]
    workflows: Vec<PathBuf>,
    /// The router file that says where corpora are (default: `wfc.toml`
    /// beside each workflow)
    #[arg(long, value_name = "FILE")]
    router: Option<PathBuf>,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let paths = super::discover(&args.workflows)?;
    let mut loader = Loader::default();
    let mut worst = Worst::default();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    // A corpus several workflows search is indexed once.
    let mut done: BTreeSet<(String, PathBuf)> = BTreeSet::new();
    // Started for the first corpus to embed, and kept for the rest.
    let mut runtime: Option<tokio::runtime::Runtime> = None;
    let client = Client::default();
    for path in &paths {
        let report = match check::check_file(&mut loader, path) {
            Ok(report) => report,
            Err(err) => {
                worst.show(&super::unreadable(path, err));
                continue;
            }
        };
        let Some(program) = report.program.as_ref().filter(|_| !report.has_errors()) else {
            worst.show(&Error::Problems(format!(
                "`{}` has errors (run `wfc check {}`); its corpora are not indexed",
                path.display(),
                path.display()
            )));
            continue;
        };
        let router = RouterConfig::read_or_seed(
            RouterConfig::locate(args.router.as_deref(), path).as_deref(),
        )
        .map_err(Error::usage)?;
        let embedder = router
            .embedder(|name| std::env::var(name).ok())
            .map_err(Error::usage)?;
        let corpora = Arc::new(router.corpora(&folder_of(path)));
        let external = router
            .chroma_corpora(|name| std::env::var(name).ok())
            .map_err(Error::usage)?;
        for corpus in &program.corpora {
            declared.insert(corpus.name.clone());
            let wanted = args.corpora.is_empty() || args.corpora.contains(&corpus.name);
            let location = corpora.location(&corpus.name);
            if !wanted || !done.insert((corpus.name.clone(), location.index.clone())) {
                continue;
            }
            if let Some(chroma) = external.get(&corpus.name) {
                outln!(
                    "{}: held by Chroma at {} (collection `{}`); nothing to index here",
                    corpus.name,
                    chroma.server.base_url,
                    chroma.collection
                );
                continue;
            }
            let chunking = Chunking {
                max_chars: corpus.max_passage_len as usize,
            };
            match corpora.refresh(&corpus.name, &chunking) {
                Ok(refresh) => outln!("{}", summary(&corpus.name, &location, &refresh)),
                Err(err) => {
                    worst.show(&Error::Problems(err.to_string()));
                    continue;
                }
            }
            if let Some(embedder) = &embedder {
                if runtime.is_none() {
                    runtime = Some(super::runtime()?);
                }
                let runtime = runtime.as_ref().expect("just started");
                let embedded = runtime.block_on(embed_corpus(
                    &client,
                    &corpora,
                    &corpus.name,
                    &chunking,
                    embedder,
                ));
                match embedded {
                    Ok(0) => outln!(
                        "{}: embeddings ({}) up to date",
                        corpus.name,
                        embedder.model
                    ),
                    Ok(count) => outln!(
                        "{}: embedded {count} passages with {}",
                        corpus.name,
                        embedder.model
                    ),
                    Err(failure) => worst.show(&Error::Problems(format!(
                        "cannot embed corpus `{}`: {}",
                        corpus.name, failure.error
                    ))),
                }
            }
        }
    }
    for name in &args.corpora {
        if !declared.contains(name) {
            let known: Vec<&str> = declared.iter().map(String::as_str).collect();
            worst.show(&Error::usage(format!(
                "no workflow here declares corpus `{name}`; {}",
                if known.is_empty() {
                    "none declares any (point --workflows at the .wf files)".to_string()
                } else {
                    format!("the corpora declared are {}", known.join(", "))
                }
            )));
        }
    }
    worst.finish()
}

/// `PayerPolicies: 4 documents, 18 passages; built in 0.21 s (...)`.
fn summary(name: &str, location: &Location, refresh: &Refresh) -> String {
    let what = if refresh.full_build {
        "built".to_string()
    } else if refresh.added + refresh.changed + refresh.removed == 0 {
        "up to date".to_string()
    } else {
        format!(
            "updated ({} added, {} changed, {} removed, {} unchanged)",
            refresh.added, refresh.changed, refresh.removed, refresh.unchanged
        )
    };
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{name}: {}, {}; {what} in {:.2} s ({} → {})",
        count(refresh.files, "document", "documents"),
        count(refresh.passages, "passage", "passages"),
        refresh.elapsed.as_secs_f64(),
        location.folder.display(),
        location.index.display()
    )
}
