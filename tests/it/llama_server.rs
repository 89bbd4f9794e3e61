//! wfc against a real llama.cpp `llama-server` (the tiny random model of
//! `shared/tools/real-llm-server`): the client, streaming, and `wfc run`
//! end to end, including the server's own error for a prompt longer than
//! its context.
//!
//! Set `WFC_LLAMA_SERVER_URL` to the server's base URL, e.g.
//! `http://127.0.0.1:18086/v1`, and `WFC_LLAMA_EMBEDDINGS_URL` to a second
//! one started with `--embedding`, for dense and hybrid retrieval (`.ci/run`
//! starts both and sets them). Without them every test says it was skipped
//! and passes.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use wfc::client::{ChatRequest, Client, Completion, Target};

use crate::support::{Ran, Wfc, server_url};

const URL_VARIABLE: &str = "WFC_LLAMA_SERVER_URL";
const EMBEDDINGS_VARIABLE: &str = "WFC_LLAMA_EMBEDDINGS_URL";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/llama/llama.wf");
/// The server's context per slot, in tokens; the tiny model's prompts take
/// about one token per character.
const CONTEXT_TOKENS: usize = 32_768;

/// The server's base URL, or `None` (after saying so) when the tests
/// should be skipped. Where `WFC_REQUIRE_SERVERS` is set (`.ci/run` sets
/// it), a missing server fails the test instead.
fn server(test: &str) -> Option<String> {
    server_url(URL_VARIABLE, test)
}

fn target(url: &str) -> Target {
    Target {
        base_url: url.to_string(),
        api_key: None,
        timeout: Duration::from_mins(1),
    }
}

/// A deterministic request (temperature 0), so the same request sent twice
/// gets the same answer.
fn request(prompt: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model: "tiny".into(),
        system: Some("You are terse.".into()),
        prompt: prompt.into(),
        max_tokens,
        temperature: Some(0.0),
        schema: None,
        follow_ups: Vec::new(),
    }
}

/// The same request as `request` sends, answered whole, without wfc's
/// client: the server's own view of the answer and its `usage`.
async fn raw_reply(url: &str, request: &ChatRequest) -> Value {
    let body = json!({
        "model": request.model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.prompt},
        ],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": false,
    });
    let response = reqwest::Client::new()
        .post(format!("{url}/chat/completions"))
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("the reply is JSON")
}

/// Checks what holds for every answer from the server to `request`.
fn assert_plausible(completion: &Completion, request: &ChatRequest) {
    assert!(
        !completion.text.trim().is_empty(),
        "empty answer: {completion:?}"
    );
    assert_eq!(completion.model, "tiny");
    assert!(completion.tokens >= 1 && completion.tokens <= request.max_tokens);
    match completion.finish_reason.as_deref() {
        Some("stop") => assert!(completion.tokens <= request.max_tokens),
        Some("length") => assert_eq!(completion.tokens, request.max_tokens),
        other => panic!("finish_reason {other:?} is neither stop nor length"),
    }
}

#[tokio::test]
async fn completes_whole_answers_with_the_servers_usage() {
    let Some(url) = server("completes_whole_answers_with_the_servers_usage") else {
        return;
    };
    let client = Client::default();
    let asked = request("Say hello to the ward nurse.", 300);
    let completion = client.complete(&target(&url), &asked).await.unwrap();
    assert_plausible(&completion, &asked);

    // The server, asked the same thing without wfc, says the same, and its
    // usage is what the completion counts.
    let raw = raw_reply(&url, &asked).await;
    assert_eq!(
        completion.text,
        raw["choices"][0]["message"]["content"].as_str().unwrap(),
        "the text is taken as sent, leading space included"
    );
    assert_eq!(
        Some(u64::from(completion.tokens)),
        raw["usage"]["completion_tokens"].as_u64()
    );
    assert_eq!(
        completion.prompt_tokens.map(u64::from),
        raw["usage"]["prompt_tokens"].as_u64()
    );
    assert_eq!(
        completion.finish_reason.as_deref(),
        raw["choices"][0]["finish_reason"].as_str()
    );

    // A small max_tokens cuts a long answer off.
    let short = request("Write a very long story about a hospital, in detail.", 5);
    let cut = client.complete(&target(&url), &short).await.unwrap();
    assert_eq!(cut.finish_reason.as_deref(), Some("length"), "{cut:?}");
    assert_eq!(cut.tokens, 5);
    assert!(!cut.text.trim().is_empty());
}

#[tokio::test]
async fn a_repeated_prompt_prefix_is_served_from_the_servers_cache() {
    let Some(url) = server("a_repeated_prompt_prefix_is_served_from_the_servers_cache") else {
        return;
    };
    let client = Client::default();
    let record = "Patient record: 71-year-old admitted with community-acquired pneumonia, \
                  treated with amoxicillin and oxygen, discharged on day four. "
        .repeat(4);
    let first = request(&format!("{record}Summarise the stay."), 4);
    let second = request(&format!("{record}List the medications."), 4);
    let asked = client.complete(&target(&url), &first).await.unwrap();
    let again = client.complete(&target(&url), &second).await.unwrap();
    let (Some(prompt), Some(cached)) = (again.prompt_tokens, again.cached_tokens) else {
        panic!("the server reports prompt and cached tokens: {again:?}");
    };
    // The shared beginning (system prompt and record) is most of the prompt.
    assert!(
        cached > prompt / 2 && cached < prompt,
        "{cached} of {prompt} prompt tokens cached (first request: {asked:?})"
    );
    // The same through the stream's usage chunk.
    let mut ignore = |_: &str| {};
    let streamed = client
        .stream(&target(&url), &first, &mut ignore)
        .await
        .unwrap();
    assert!(
        streamed.cached_tokens.is_some_and(|c| c > prompt / 2),
        "{streamed:?}"
    );
}

#[tokio::test]
async fn streamed_pieces_make_up_the_answer() {
    let Some(url) = server("streamed_pieces_make_up_the_answer") else {
        return;
    };
    let client = Client::default();
    for max_tokens in [300, 7] {
        let asked = request("Describe the discharge plan in many words.", max_tokens);
        let mut pieces = Vec::new();
        let mut on_text = |text: &str| pieces.push(text.to_string());
        let streamed = client
            .stream(&target(&url), &asked, &mut on_text)
            .await
            .unwrap();
        assert_plausible(&streamed, &asked);
        assert_eq!(pieces.concat(), streamed.text);
        // About one chunk per token; never more chunks than tokens.
        assert!(
            !pieces.is_empty() && pieces.len() as u32 <= streamed.tokens,
            "{} pieces for {} tokens",
            pieces.len(),
            streamed.tokens
        );
        assert!(streamed.prompt_tokens.is_some(), "the usage chunk is read");

        // The same answer, taken whole, is the same text and token count.
        let whole = client.complete(&target(&url), &asked).await.unwrap();
        assert_eq!(streamed.text, whole.text);
        assert_eq!(streamed.tokens, whole.tokens);
        assert_eq!(streamed.prompt_tokens, whole.prompt_tokens);
        assert_eq!(streamed.finish_reason, whole.finish_reason);
        if max_tokens == 7 {
            assert_eq!(streamed.finish_reason.as_deref(), Some("length"));
            assert_eq!(streamed.tokens, 7);
        }
    }
}

/// A router file sending both of the fixture's agents to the server.
fn write_router(dir: &Path, url: &str) -> std::path::PathBuf {
    let mut text = String::from("[defaults]\ntimeout = \"60s\"\n");
    for agent in ["Clinical", "Billing"] {
        text.push_str(&format!(
            "\n[[agents.{agent}.endpoints]]\nurl = \"{url}\"\nmodel = \"tiny\"\n"
        ));
    }
    let path = dir.join("router.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `wfc run FIXTURE --workflow WORKFLOW --json -q` with the router file
/// and the run directory in `dir`.
fn wfc_run(dir: &Path, url: &str, workflow: &str, extra: &[&str]) -> (Ran, Value) {
    let router = write_router(dir, url);
    let output = Wfc::new()
        .args(["run", FIXTURE, "--workflow", workflow, "--json", "-q"])
        .arg("--router")
        .arg(&router)
        .arg("--run-dir")
        .arg(dir.join("run"))
        .args(extra)
        .env_remove("WFC_ROUTE_CLINICAL")
        .env_remove("WFC_ROUTE_BILLING")
        .run();
    let report = output.json();
    (output, report)
}

fn journal(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("run").join("journal.jsonl"))
        .expect("the run directory has a journal")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each journal line is JSON"))
        .collect()
}

fn result<'a>(report: &'a Value, task: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["task_id"] == task)
        .unwrap_or_else(|| panic!("no result for `{task}` in {report:#}"))
}

#[test]
fn runs_a_workflow_end_to_end() {
    let Some(url) = server("runs_a_workflow_end_to_end") else {
        return;
    };
    for extra in [&[][..], &["--no-stream"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let (output, report) = wfc_run(dir.path(), &url, "chain", extra);
        let context = format!("wfc run {extra:?}: {report:#}\nstderr:\n{}", output.stderr);
        assert_eq!(output.code, Some(0), "{context}");
        assert_eq!(report["success"], true, "{context}");
        assert_eq!(report["metadata"]["num_tasks"], 3, "{context}");
        assert_eq!(report["metadata"]["errors"], json!({}), "{context}");
        for task in ["note", "codes", "advice"] {
            let r = result(&report, task);
            assert_eq!(r["success"], true, "{task}: {context}");
            assert_eq!(r["status"], "ok", "{task}: {context}");
            assert_eq!(r["model"], "tiny", "{task}: {context}");
            assert_eq!(r["attempts"], 1, "{task}: {context}");
            let tokens = r["tokens"].as_u64().unwrap();
            assert!(tokens > 0 && tokens <= 24, "{task}: {context}");
        }
        // `codes` reads `note`, so it starts only once `note` has finished.
        let (note, codes) = (result(&report, "note"), result(&report, "codes"));
        assert!(
            codes["started_ms"].as_u64() >= note["finished_ms"].as_u64(),
            "{context}"
        );

        // One journal line per task, holding the answers the output shows.
        let lines = journal(dir.path());
        assert_eq!(lines.len(), 3, "{lines:#?}");
        let content = report["aggregated_content"].as_str().unwrap();
        for line in &lines {
            let task = line["task"].as_str().unwrap();
            assert_eq!(line["status"], "ok", "{line}");
            let r = result(&report, task);
            assert_eq!(line["tokens"], r["tokens"], "{line}");
            let cut_off = line["finish_reason"] == "length";
            assert_eq!(r["truncated"], cut_off, "{line}");
            if cut_off {
                assert_eq!(r["tokens"], 24, "{line}");
            }
            let text = line["text"].as_str().unwrap().trim();
            assert!(!text.is_empty(), "{line}");
            assert!(
                content.contains(text),
                "the output lacks `{task}`'s answer {text:?}: {content}"
            );
        }
        for heading in ["=== NOTE ===", "=== CODES ===", "=== ADVICE ==="] {
            assert!(content.contains(heading), "{content}");
        }
        // The report on disk is the one printed.
        let stored: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("run").join("report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(stored, report);
    }
}

#[test]
fn a_prompt_longer_than_the_context_fails_once_with_the_servers_reason() {
    let Some(url) = server("a_prompt_longer_than_the_context_fails_once_with_the_servers_reason")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Well past the context at about one token per character.
    let words = [
        "patient", "admitted", "with", "chest", "pain", "and", "fever",
    ];
    let mut record = String::new();
    for word in words.iter().cycle() {
        if record.len() > CONTEXT_TOKENS + 20_000 {
            break;
        }
        record.push_str(word);
        record.push(' ');
    }
    let record_file = dir.path().join("record.txt");
    std::fs::write(&record_file, &record).unwrap();
    let input = format!("record=@{}", record_file.display());

    let (output, report) = wfc_run(dir.path(), &url, "long_record", &["--input", &input]);
    let context = format!("{report:#}\nstderr:\n{}", output.stderr);
    assert_eq!(output.code, Some(3), "a task failed: {context}");
    assert_eq!(report["success"], false, "{context}");
    let summary = result(&report, "summary");
    assert_eq!(summary["success"], false, "{context}");
    assert_eq!(summary["status"], "failed", "{context}");
    assert_eq!(summary["tokens"], 0, "{context}");
    // A 400 cannot pass by asking again, although the task allows retries.
    assert_eq!(summary["attempts"], 1, "{context}");
    let error = summary["error"].as_str().unwrap();
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(
        error.contains("exceeds the available context size"),
        "the server's own message: {error}"
    );
    assert!(error.contains(&url), "names the endpoint: {error}");
    assert_eq!(report["metadata"]["errors"]["summary"], error, "{context}");

    let lines = journal(dir.path());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["status"], "failed");
    assert_eq!(lines[0]["error"], error);
}

#[test]
fn a_typed_answer_comes_back_in_the_declared_shape() {
    let Some(url) = server("a_typed_answer_comes_back_in_the_declared_shape") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = wfc_run(dir.path(), &url, "typed", &[]);
    let context = format!("{report:#}\nstderr:\n{}", output.stderr);
    assert_eq!(output.code, Some(0), "{context}");
    let lines = journal(dir.path());
    let decision = lines.iter().find(|l| l["task"] == "decision").unwrap();
    let answer: Value = serde_json::from_str(decision["text"].as_str().unwrap()).unwrap();
    assert!(answer["admit"].is_boolean(), "{answer}");
    assert!(
        ["ward", "icu"].contains(&answer["level"].as_str().unwrap()),
        "{answer}"
    );
    assert!(
        ["inpatient", "outpatient"].contains(&answer["setting"].as_str().unwrap()),
        "{answer}"
    );
    let note = result(&report, "note");
    assert_eq!(note["success"], true, "{context}");
}

#[tokio::test]
async fn embeddings_come_back_one_per_text_and_the_same_for_the_same_text() {
    let Some(url) = server_url(
        EMBEDDINGS_VARIABLE,
        "embeddings_come_back_one_per_text_and_the_same_for_the_same_text",
    ) else {
        return;
    };
    let client = Client::default();
    let texts = ["lumbar spine MRI", "knee arthroscopy", "lumbar spine MRI"];
    let vectors = client.embed(&target(&url), "tiny", &texts).await.unwrap();
    assert_eq!(vectors.len(), 3);
    assert!(!vectors[0].is_empty());
    assert!(vectors.iter().all(|v| v.len() == vectors[0].len()));
    // The same text, the same vector (to the last bits, which a batch's
    // arithmetic may change).
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    assert!(cosine(&vectors[0], &vectors[2]) > 0.999_99, "{vectors:?}");
    assert!(cosine(&vectors[0], &vectors[1]) < 0.999, "{vectors:?}");
}

/// A corpus whose passages the tiny model embeds, and a workflow that
/// searches it by `mode`, its query the embedded text of one passage.
fn dense_workspace(dir: &Path, url: &str) {
    let corpus = dir.join("corpora/policies");
    std::fs::create_dir_all(&corpus).unwrap();
    for (name, title, text) in [
        (
            "mri",
            "Lumbar MRI",
            "Covered after six weeks of failed physical therapy.",
        ),
        (
            "knee",
            "Knee arthroscopy",
            "Covered for mechanical symptoms only.",
        ),
        (
            "sleep",
            "Sleep study",
            "A home sleep test comes before a laboratory study.",
        ),
    ] {
        std::fs::write(
            corpus.join(format!("{name}.md")),
            format!("# {title}\n\n{text}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("wfc.toml"),
        format!("[embeddings]\nurl = \"{url}\"\nmodel = \"tiny\"\n"),
    )
    .unwrap();
    for mode in ["dense", "hybrid"] {
        std::fs::write(
            dir.join(format!("{mode}.wf")),
            format!(
                r#"
corpus Policies {{ }}
workflow search {{
  input query: text
  retrieve found from Policies {{
    query = "{{{{ query }}}}"
    top_k = 2
    mode = {mode}
  }}
  output = "{{% for p in found %}}{{{{ p.id }}}} {{% endfor %}}"
}}
"#
            ),
        )
        .unwrap();
    }
}

#[test]
fn dense_and_hybrid_search_rank_passages_by_a_real_embeddings_endpoint() {
    let Some(url) = server_url(
        EMBEDDINGS_VARIABLE,
        "dense_and_hybrid_search_rank_passages_by_a_real_embeddings_endpoint",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    dense_workspace(dir.path(), &url);
    let index = || {
        Wfc::new()
            .current_dir(dir.path())
            .args(["index", "-w", "dense.wf"])
            .run()
    };

    let built = index();
    assert_eq!(built.code, Some(0), "{built}");
    assert!(
        built
            .stdout
            .contains("Policies: embedded 3 passages with tiny"),
        "{built}"
    );
    let again = index();
    assert!(
        again
            .stdout
            .contains("Policies: embeddings (tiny) up to date"),
        "{again}"
    );
    std::fs::write(
        dir.path().join("corpora/policies/knee.md"),
        "# Knee arthroscopy\n\nCovered for locking or catching only.\n",
    )
    .unwrap();
    let changed = index();
    assert!(
        changed
            .stdout
            .contains("Policies: embedded 1 passages with tiny"),
        "{changed}"
    );

    // The query is the embedded text of the sleep study's passage: the same
    // vector, so it is nearest whatever the tiny model's weights.
    let query = "Sleep study\nA home sleep test comes before a laboratory study.";
    for mode in ["dense", "hybrid"] {
        let ran = Wfc::new()
            .current_dir(dir.path())
            .args(["run", &format!("{mode}.wf"), "--json", "-q", "-i"])
            .arg(format!("query={query}"))
            .run();
        assert_eq!(ran.code, Some(0), "{mode}: {ran}");
        let report = ran.json();
        let found = &report["results"][0];
        assert_eq!(found["model"], format!("{mode} (tiny)"), "{mode}: {report}");
        let passages = found["passages"].as_array().unwrap();
        assert_eq!(passages.len(), 2, "{mode}: top_k: {report}");
        assert_eq!(passages[0], "sleep#1", "{mode}: {report}");
    }
}
