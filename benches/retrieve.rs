//! Evidence retrieval at size: 10,000 passages of generated clinical-style
//! text (1,000 Markdown guidelines of 10 sections each). Reports the index's
//! full build, an update after one file changed, an open of an up-to-date
//! index, its size on disk, and query latency p50/p99 for BM25; with an
//! embeddings endpoint (`WFC_LLAMA_EMBEDDINGS_URL`, as `.ci/run` starts one),
//! the time to embed every passage and query latency for dense and hybrid
//! search, the query's embedding included. Run with `cargo bench --bench
//! retrieve`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wfc::client::{Client, Target};
use wfc::retrieve::{Chunking, Corpora, Dense, Query, Ranking};
use wfc::router::Embedder;

const FILES: usize = 1_000;
const SECTIONS: usize = 10;
const QUERIES: usize = 200;
const CORPUS: &str = "Guidelines";

const CONDITIONS: [&str; 12] = [
    "community-acquired pneumonia",
    "heart failure with reduced ejection fraction",
    "type 2 diabetes",
    "atrial fibrillation",
    "chronic kidney disease",
    "asthma",
    "sepsis",
    "deep vein thrombosis",
    "lumbar radiculopathy",
    "migraine",
    "hypertension",
    "urinary tract infection",
];
const TOPICS: [&str; 10] = [
    "Diagnosis",
    "Initial assessment",
    "First-line treatment",
    "Dosing in renal impairment",
    "Monitoring",
    "Escalation of care",
    "Discharge criteria",
    "Follow-up",
    "Documentation requirements",
    "Coding and billing",
];
const DRUGS: [&str; 8] = [
    "amoxicillin",
    "apixaban",
    "metformin",
    "furosemide",
    "enoxaparin",
    "ceftriaxone",
    "sumatriptan",
    "lisinopril",
];

/// A deterministic word picker, so every run indexes the same text.
fn pick<'a>(items: &[&'a str], seed: usize) -> &'a str {
    items[(seed.wrapping_mul(2_654_435_761) >> 7) % items.len()]
}

fn corpus(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in 0..FILES {
        let condition = CONDITIONS[file % CONDITIONS.len()];
        let mut text = format!("# Guideline {file}: {condition}\n\n");
        for (section, topic) in TOPICS.iter().enumerate().take(SECTIONS) {
            let seed = file * SECTIONS + section;
            let drug = pick(&DRUGS, seed);
            let other = pick(&CONDITIONS, seed + 3);
            text.push_str(&format!(
                "## {topic}\n\nFor adults with {condition}, assess vital signs, oxygen saturation and \
                 renal function (creatinine, eGFR) at presentation. Consider {drug} when there is no \
                 contraindication, adjusting the dose to creatinine clearance, and review after 48 to 72 \
                 hours. Patients with {other} need closer monitoring of fluid balance, electrolytes and \
                 mental status. Document the indication, the dose, the route and the planned duration; \
                 record allergies and the reason for any deviation from this guideline (item {seed}).\n\n"
            ));
        }
        std::fs::write(dir.join(format!("guideline_{file:04}.md")), text).unwrap();
    }
}

fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                size_of(&path)
            } else {
                entry.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

fn queries() -> Vec<String> {
    (0..QUERIES)
        .map(|i| {
            format!(
                "{} {} dosing in renal impairment {}",
                pick(&CONDITIONS, i),
                pick(&DRUGS, i + 1),
                pick(&TOPICS, i + 2).to_lowercase()
            )
        })
        .collect()
}

fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("corpora/guidelines");
    corpus(&folder);
    let chunking = Chunking::default();
    let corpora = Arc::new(Corpora::new(dir.path(), BTreeMap::new()));

    let built = corpora.refresh(CORPUS, &chunking).unwrap();
    println!(
        "build: {} documents, {} passages in {:.2} s",
        built.files,
        built.passages,
        built.elapsed.as_secs_f64()
    );
    let index_dir = dir.path().join(".wfc/index").join(CORPUS);
    println!(
        "index on disk: {:.1} MiB",
        size_of(&index_dir) as f64 / 1_048_576.0
    );
    let fresh = Corpora::new(dir.path(), BTreeMap::new());
    let reopened = fresh.refresh(CORPUS, &chunking).unwrap();
    println!(
        "open, up to date (every file hashed): {:.1} ms",
        reopened.elapsed.as_secs_f64() * 1000.0
    );
    let changed = folder.join("guideline_0007.md");
    let mut text = std::fs::read_to_string(&changed).unwrap();
    text.push_str("## Addendum\n\nReassess after any change of dose.\n");
    std::fs::write(&changed, text).unwrap();
    let updated = corpora.refresh(CORPUS, &chunking).unwrap();
    println!(
        "update after one file changed: {:.1} ms ({} changed, full build: {})",
        updated.elapsed.as_secs_f64() * 1000.0,
        updated.changed,
        updated.full_build
    );

    let queries = queries();
    let search = |text: &str, ranking: Ranking<'_>| {
        let query = Query {
            text,
            top_k: 5,
            filters: &[],
        };
        let started = Instant::now();
        let found = corpora.search(CORPUS, &chunking, &query, ranking).unwrap();
        assert_eq!(found.len(), 5);
        started.elapsed()
    };
    // Warm the page cache and the searcher once.
    search(&queries[0], Ranking::Words);
    let times: Vec<Duration> = queries.iter().map(|q| search(q, Ranking::Words)).collect();
    let (p50, p99) = percentiles(times);
    println!("BM25 query (top 5): p50 {p50:.2} ms, p99 {p99:.2} ms ({QUERIES} queries)");

    let Ok(url) = std::env::var("WFC_LLAMA_EMBEDDINGS_URL") else {
        println!(
            "dense and hybrid: skipped (WFC_LLAMA_EMBEDDINGS_URL is not set; .ci/run starts llama-server --embedding)"
        );
        return;
    };
    let embedder = Embedder {
        target: Target {
            base_url: url.trim_end_matches('/').to_string(),
            api_key: None,
            timeout: Duration::from_mins(5),
        },
        model: "tiny".into(),
    };
    let client = Client::default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    let embedded = runtime
        .block_on(wfc::run::embed_corpus(
            &client, &corpora, CORPUS, &chunking, &embedder,
        ))
        .unwrap();
    println!(
        "embedding every passage: {embedded} in {:.1} s (llama-server, the tiny random model)",
        started.elapsed().as_secs_f64()
    );
    for (name, both) in [("dense", false), ("hybrid", true)] {
        let times: Vec<Duration> = queries
            .iter()
            .map(|text| {
                let started = Instant::now();
                let vector = runtime
                    .block_on(client.embed(&embedder.target, &embedder.model, &[text.as_str()]))
                    .unwrap()
                    .remove(0);
                let dense = Dense {
                    model: &embedder.model,
                    query: &vector,
                };
                let ranking = if both {
                    Ranking::Both(dense)
                } else {
                    Ranking::Meaning(dense)
                };
                search(text, ranking);
                started.elapsed()
            })
            .collect();
        let (p50, p99) = percentiles(times);
        println!(
            "{name} query (top 5, the query's embedding included): p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
    }
}
