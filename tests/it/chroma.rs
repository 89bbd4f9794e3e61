//! A corpus held by a real Chroma server: wfc embeds the query with a real
//! embeddings endpoint (llama-server `--embedding`, `WFC_LLAMA_EMBEDDINGS_URL`)
//! and asks Chroma for the nearest passages, filtered by metadata; the
//! router file's word decides whether PHI may go there, and none reaches
//! Chroma's log or wfc's. `.ci/run` installs Chroma and starts the
//! embeddings server; elsewhere these tests say they are skipped.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use wfc::client::{Client, Target};

use crate::support::chroma::Chroma;
use crate::support::{Wfc, server_url};

const EMBEDDINGS_VARIABLE: &str = "WFC_LLAMA_EMBEDDINGS_URL";
const MARKER: &str = "PHI-MARKER-c7a21e";

const DOCUMENTS: [(&str, &str, &str); 3] = [
    (
        "acme-mri",
        "Acme",
        "Acme covers lumbar MRI after six weeks of therapy.",
    ),
    (
        "acme-knee",
        "Acme",
        "Acme covers knee arthroscopy for locking only.",
    ),
    (
        "zen-mri",
        "Zenith",
        "Zenith covers lumbar MRI with a neurological deficit.",
    ),
];

/// Chroma with the collection `policies` of [`DOCUMENTS`], embedded by the
/// embeddings server at `url`.
async fn policies(chroma: &Chroma, url: &str) {
    let target = Target {
        base_url: url.to_string(),
        api_key: None,
        timeout: Duration::from_mins(1),
    };
    let texts: Vec<&str> = DOCUMENTS.iter().map(|(_, _, text)| *text).collect();
    let embeddings = Client::default()
        .embed(&target, "tiny", &texts)
        .await
        .unwrap();
    let records = json!({
        "ids": DOCUMENTS.iter().map(|(id, _, _)| id).collect::<Vec<_>>(),
        "documents": texts,
        "metadatas": DOCUMENTS.iter().map(|(id, payer, _)| json!({
            "payer": payer, "title": format!("Policy {id}"), "source": "policies.pdf"
        })).collect::<Vec<_>>(),
        "embeddings": embeddings,
    });
    chroma.collection("policies", records).await;
}

/// A workflow searching corpus `Policies` with `mode`, filtered to `payer`
/// when it is given, its query an input (`@phi` when `phi`).
fn workflow(dir: &Path, mode: &str, phi: bool) -> std::path::PathBuf {
    let path = dir.join(format!("{mode}.wf"));
    // The declaration says what `wfc run` holds to; the router file, what
    // `wfc check --router` does.
    let (phi, allowed) = if phi {
        (" @phi", " phi_allowed = true")
    } else {
        ("", "")
    };
    std::fs::write(
        &path,
        format!(
            r#"
corpus Policies {{ metadata = [payer]{allowed} }}
workflow search {{
  input query: text{phi}
  input payer: text?
  retrieve found from Policies {{
    query = "{{{{ query }}}}"
    top_k = 2
    mode = {mode}
    when = "payer is none"
  }}
  retrieve filtered from Policies {{
    query = "{{{{ query }}}}"
    top_k = 2
    mode = {mode}
    filter = {{ payer = "{{{{ payer }}}}" }}
    when = "payer is not none"
  }}
  output = "{{% for p in found %}}{{{{ p.id }}}} {{% endfor %}}{{% for p in filtered %}}{{{{ p.id }}}} {{% endfor %}}"
}}
"#
        ),
    )
    .unwrap();
    path
}

fn router(dir: &Path, embeddings: &str, chroma: &str, phi_allowed: bool) {
    std::fs::write(
        dir.join("wfc.toml"),
        format!(
            "[embeddings]\nurl = \"{embeddings}\"\nmodel = \"tiny\"\n\n[corpora.Policies]\nchroma = \"{chroma}\"\nphi_allowed = {phi_allowed}\n"
        ),
    )
    .unwrap();
}

/// The embeddings server's URL and a Chroma server holding the policies,
/// or `None` (after saying so) when either is missing.
async fn servers(test: &str) -> Option<(String, Chroma)> {
    let embeddings = server_url(EMBEDDINGS_VARIABLE, test)?;
    let chroma = Chroma::start(test).await?;
    policies(&chroma, &embeddings).await;
    Some((embeddings, chroma))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_held_by_chroma_answers_the_nearest_passages_with_filters() {
    let test = "a_corpus_held_by_chroma_answers_the_nearest_passages_with_filters";
    let Some((embeddings, chroma)) = servers(test).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    router(dir.path(), &embeddings, &chroma.url, false);
    let dense = workflow(dir.path(), "dense", false);
    let run = |path: &Path, args: &[&str]| {
        Wfc::new()
            .current_dir(dir.path())
            .arg("run")
            .arg(path)
            .args(["--json", "-q"])
            .args(args)
            .run()
    };

    // The query is one document's own text: the same embedding, nearest.
    let query = format!("query={}", DOCUMENTS[1].2);
    let ran = run(&dense, &["-i", &query]);
    assert_eq!(ran.code, Some(0), "{ran}");
    let report = ran.json();
    let found = &report["results"][0];
    assert_eq!(found["agent_type"], "Policies");
    assert_eq!(found["model"], "dense (tiny)");
    assert_eq!(found["passages"][0], "acme-knee", "{report}");
    assert_eq!(found["passages"].as_array().unwrap().len(), 2);

    // Only Zenith's policies pass the filter, however near Acme's are.
    let ran = run(&dense, &["-i", &query, "-i", "payer=Zenith"]);
    assert_eq!(ran.code, Some(0), "{ran}");
    let report = ran.json();
    assert_eq!(
        report["results"][1]["passages"],
        json!(["zen-mri"]),
        "{report}"
    );
    assert_eq!(report["aggregated_content"], "zen-mri");

    // Chroma ranks by embeddings only.
    let bm25 = workflow(dir.path(), "bm25", false);
    let ran = run(&bm25, &["-i", &query]);
    assert_eq!(ran.code, Some(3), "{ran}");
    let error = ran.json()["results"][0]["error"].to_string();
    assert!(
        error.contains("corpus `Policies` is held by Chroma, which ranks by embeddings only"),
        "{error}"
    );

    // `wfc index` has nothing to build for it.
    let index = Wfc::new()
        .current_dir(dir.path())
        .args(["index", "-w", "dense.wf"])
        .run();
    assert!(
        index
            .stdout
            .contains("Policies: held by Chroma at http://127.0.0.1:"),
        "{index}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phi_goes_to_chroma_only_where_the_router_file_allows_and_never_into_its_log() {
    let test = "phi_goes_to_chroma_only_where_the_router_file_allows_and_never_into_its_log";
    let Some((embeddings, chroma)) = servers(test).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let phi = workflow(dir.path(), "dense", true);
    let check = || {
        Wfc::new()
            .current_dir(dir.path())
            .arg("check")
            .arg(&phi)
            .args(["--router", "wfc.toml"])
            .run()
    };

    // An external engine is outside the boundary unless the file says so.
    router(dir.path(), &embeddings, &chroma.url, false);
    let outside = check();
    assert_eq!(outside.code, Some(1), "{outside}");
    assert!(
        outside
            .stdout
            .contains("protected health information from `query` reaches corpus `Policies`"),
        "{outside}"
    );

    router(dir.path(), &embeddings, &chroma.url, true);
    assert_eq!(check().code, Some(0));
    let ran = Wfc::new()
        .current_dir(dir.path())
        .env("WFC_LOG", "debug")
        .arg("run")
        .arg(&phi)
        .args(["--json", "-i"])
        .arg(format!("query=lumbar MRI for {MARKER}"))
        .run();
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.stderr.contains("DEBUG"), "debug logs are on: {ran}");
    assert!(
        !ran.stderr.contains(MARKER),
        "PHI in wfc's log:\n{}",
        ran.stderr
    );
    let log = chroma.log();
    assert!(
        log.contains("query"),
        "Chroma logged the query request: {log}"
    );
    assert!(!log.contains(MARKER), "PHI in Chroma's log:\n{log}");
}
