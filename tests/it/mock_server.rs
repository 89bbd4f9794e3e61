//! The mock model server over real HTTP, as the workflow runtime's client sees it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wfc::mock::{Fault, FaultKind, MockConfig, MockServer, reply_text};

async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("mock server starts")
}

fn fault(kind: FaultKind) -> Fault {
    Fault {
        model: None,
        prompt_contains: None,
        times: None,
        kind,
    }
}

fn with_faults(faults: Vec<Fault>) -> MockConfig {
    MockConfig {
        faults,
        ..MockConfig::default()
    }
}

fn request(model: &str, prompt: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": prompt},
        ],
    })
}

async fn post(server: &MockServer, body: &Value) -> reqwest::Response {
    try_post(server, body)
        .await
        .expect("request reaches the mock")
}

async fn try_post(server: &MockServer, body: &Value) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(body)
        .send()
        .await
}

/// The `data:` payloads of an SSE body, in order.
fn events(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .collect()
}

/// The concatenated `delta.content` of a stream's chunks.
fn streamed_text(events: &[&str]) -> String {
    events
        .iter()
        .filter(|data| **data != "[DONE]")
        .map(|data| serde_json::from_str::<Value>(data).expect("chunk is JSON"))
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn plain_prompt_gets_a_hashed_one_line_reply() {
    let server = start(MockConfig::default()).await;
    let prompt = "Write a haiku about rust";
    let body: Value = post(&server, &request("small", prompt))
        .await
        .json()
        .await
        .unwrap();

    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let expected = reply_text("small", prompt, None);
    assert_eq!(content, expected.text);
    assert!(content.starts_with("Mock small response "), "{content}");
    assert!(content.ends_with(" to a prompt of 5 words."), "{content}");
    let hash = content.split(' ').nth(3).unwrap();
    assert!(
        hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{hash}"
    );

    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "small");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // "You are terse." is 3 words, the prompt 5; the reply is 10.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 8, "completion_tokens": 10, "total_tokens": 18,
               "prompt_tokens_details": {"cached_tokens": 0}})
    );
    assert_eq!(expected.completion_tokens, 10);
}

#[tokio::test]
async fn a_prompt_that_begins_like_a_recent_one_is_partly_cached() {
    let server = start(MockConfig::default()).await;
    let cached = |body: Value| body["usage"]["prompt_tokens_details"]["cached_tokens"].clone();
    let ask = |model: &'static str, prompt: &'static str| {
        let server = &server;
        async move {
            let body: Value = post(server, &request(model, prompt))
                .await
                .json()
                .await
                .unwrap();
            body
        }
    };
    assert_eq!(
        cached(ask("small", "Record: chest pain at rest. Summarise.").await),
        0
    );
    // "You are terse." and "Record: chest pain at rest." are 8 words.
    assert_eq!(
        cached(ask("small", "Record: chest pain at rest. List drugs.").await),
        8
    );
    assert_eq!(
        cached(ask("small", "Record: chest painful").await),
        5,
        "whole words only"
    );
    assert_eq!(
        cached(ask("other", "Record: chest pain at rest. Summarise.").await),
        0,
        "another model's cache"
    );
    // The same prompt again: all but its last word, as llama.cpp does.
    assert_eq!(
        cached(ask("small", "Record: chest pain at rest. Summarise.").await),
        8
    );
}

#[tokio::test]
async fn different_prompts_get_different_replies() {
    let a = reply_text("m", "one prompt", None).text;
    let b = reply_text("m", "another prompt", None).text;
    assert_ne!(a, b);
    assert_eq!(a, reply_text("m", "one prompt", None).text);
}

#[tokio::test]
async fn headings_are_answered_section_by_section() {
    let server = start(MockConfig::default()).await;
    let prompt = "Write the report.\n## Summary\nsome notes\n## Risks and mitigations  \n";
    let body: Value = post(&server, &request("big", prompt))
        .await
        .json()
        .await
        .unwrap();

    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        content,
        "## Summary\nMock big text for Summary.\n\n\
         ## Risks and mitigations\nMock big text for Risks and mitigations."
    );
    assert_eq!(content, reply_text("big", prompt, None).text);
    assert_eq!(body["usage"]["completion_tokens"], 18);
}

#[tokio::test]
async fn max_tokens_cuts_the_reply_with_finish_reason_length() {
    let server = start(MockConfig::default()).await;
    let mut body = request("m", "## One\n## Two");
    body["max_tokens"] = json!(6);
    let body: Value = post(&server, &body).await.json().await.unwrap();

    assert_eq!(
        body["choices"][0]["message"]["content"],
        "## One\nMock m text for"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 6);
    let reply = reply_text("m", "## One\n## Two", Some(6));
    assert_eq!(reply.text, "## One\nMock m text for");
    assert_eq!(reply.finish_reason, "length");

    let roomy = reply_text("m", "## One\n## Two", Some(1000));
    assert_eq!(roomy.finish_reason, "stop");
    assert_eq!(roomy, reply_text("m", "## One\n## Two", None));
}

#[tokio::test]
async fn stream_reassembles_to_the_same_reply_and_ends_with_done() {
    let server = start(MockConfig::default()).await;
    let prompt = "## Intro\n## Outlook";
    let mut body = request("m", prompt);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = post(&server, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = response.text().await.unwrap();
    let events = events(&text);

    let expected = reply_text("m", prompt, None);
    assert_eq!(streamed_text(&events), expected.text);
    // Role chunk, one per word, finish, usage, [DONE].
    let words = expected.completion_tokens as usize;
    assert_eq!(events.len(), words + 4);

    let first: Value = serde_json::from_str(events[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": null})
    );
    let second: Value = serde_json::from_str(events[1]).unwrap();
    assert_eq!(second["choices"][0]["delta"]["content"], "##");
    let third: Value = serde_json::from_str(events[2]).unwrap();
    assert_eq!(third["choices"][0]["delta"]["content"], " Intro");

    let finish: Value = serde_json::from_str(events[words + 1]).unwrap();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage: Value = serde_json::from_str(events[words + 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], words);
    assert_eq!(usage["usage"]["prompt_tokens"], 3 + 4);
    assert_eq!(events.last(), Some(&"[DONE]"));
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let server = start(MockConfig::default()).await;
    let mut body = request("m", "hello there");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(2);
    let text = post(&server, &body).await.text().await.unwrap();
    let events = events(&text);

    assert_eq!(streamed_text(&events), "Mock m");
    assert_eq!(events.len(), 1 + 2 + 1 + 1);
    let finish: Value = serde_json::from_str(events[3]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert!(!text.contains("\"usage\""));
    assert_eq!(events[4], "[DONE]");
}

#[tokio::test]
async fn latency_is_per_model() {
    let server = start(MockConfig {
        latency: HashMap::from([("slow".to_owned(), Duration::from_millis(200))]),
        ..MockConfig::default()
    })
    .await;

    let started = Instant::now();
    let body: Value = post(&server, &request("slow", "hi"))
        .await
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(body["model"], "slow");

    let mut streamed = request("slow", "one two three four");
    streamed["stream"] = json!(true);
    let started = Instant::now();
    let text = post(&server, &streamed).await.text().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(text.ends_with("data: [DONE]\n\n"));

    let recorded = server.requests();
    let took = recorded[1].finished.unwrap() - recorded[1].received;
    assert!(took >= Duration::from_millis(200), "{took:?}");
}

#[tokio::test]
async fn default_latency_applies_to_unlisted_models() {
    let server = start(MockConfig {
        latency: HashMap::from([("fast".to_owned(), Duration::ZERO)]),
        default_latency: Duration::from_millis(150),
        ..MockConfig::default()
    })
    .await;
    let started = Instant::now();
    post(&server, &request("other", "hi")).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn concurrent_requests_overlap() {
    let server = start(MockConfig {
        default_latency: Duration::from_millis(20),
        ..MockConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", server.base_url());
    let started = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let request = client.post(&url).json(&request("m", &format!("task {i}")));
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    // One after another would take 4 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 200);
}

#[tokio::test]
async fn status_fault_answers_with_an_openai_error() {
    let server = start(with_faults(vec![fault(FaultKind::Status(503))])).await;
    let response = post(&server, &request("m", "hi")).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("503"));
    let recorded = &server.requests()[0];
    assert_eq!(recorded.fault.as_deref(), Some("Status(503)"));
    assert_eq!(recorded.finished, None);
}

#[tokio::test]
async fn rate_limit_rounds_retry_after_up_to_whole_seconds() {
    let server = start(with_faults(vec![fault(FaultKind::RateLimited {
        retry_after: Duration::from_millis(1500),
    })]))
    .await;
    let response = post(&server, &request("m", "hi")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn malformed_json_is_a_200_that_does_not_parse() {
    let server = start(with_faults(vec![fault(FaultKind::MalformedJson)])).await;
    let response = post(&server, &request("m", "hi")).await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.is_err());

    let mut streamed = request("m", "hi");
    streamed["stream"] = json!(true);
    let text = post(&server, &streamed).await.text().await.unwrap();
    let first = events(&text)[0];
    assert!(serde_json::from_str::<Value>(first).is_err(), "{first}");
}

#[tokio::test]
async fn truncated_stream_ends_without_finish_or_done() {
    let server = start(with_faults(vec![fault(FaultKind::TruncatedStream)])).await;
    let prompt = "please write something long enough";
    let mut body = request("m", prompt);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = post(&server, &body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let events = events(&text);

    assert!(!events.contains(&"[DONE]"));
    assert!(!text.contains("\"finish_reason\":\"stop\""), "{text}");
    let partial = streamed_text(&events);
    let full = reply_text("m", prompt, None).text;
    assert!(!partial.is_empty() && partial.len() < full.len());
    assert!(full.starts_with(&partial));
    assert_eq!(server.requests()[0].finished, None);

    let cut = post(&server, &request("m", prompt)).await;
    assert_eq!(cut.status(), 200);
    let cut = cut.text().await.unwrap();
    assert!(cut.starts_with('{'));
    assert!(serde_json::from_str::<Value>(&cut).is_err(), "{cut}");
}

#[tokio::test]
async fn close_connection_gives_an_error_without_status() {
    let server = start(with_faults(vec![Fault {
        prompt_contains: Some("drop me".to_owned()),
        ..fault(FaultKind::CloseConnection)
    }]))
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", server.base_url());
    // A first, normal request leaves a pooled keep-alive connection behind, as in
    // a real run; the drop must surface on it rather than be retried away.
    let ok = client
        .post(&url)
        .json(&request("m", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    ok.text().await.unwrap();

    let err = client
        .post(&url)
        .json(&request("m", "please drop me"))
        .send()
        .await
        .expect_err("the connection is dropped");
    assert_eq!(err.status(), None, "{err:?}");
    assert!(!err.is_timeout(), "{err:?}");

    let recorded = server.requests();
    assert_eq!(recorded.len(), 2, "the client must not retry");
    assert_eq!(recorded[1].fault.as_deref(), Some("CloseConnection"));
    assert_eq!(recorded[1].finished, None);

    let after = client.post(&url).json(&request("m", "hi")).send().await;
    assert_eq!(after.unwrap().status(), 200);
}

#[tokio::test]
async fn delay_slows_the_answer_enough_to_time_out_a_client() {
    let server = start(with_faults(vec![Fault {
        times: Some(1),
        ..fault(FaultKind::Delay(Duration::from_millis(300)))
    }]))
    .await;
    let err = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .timeout(Duration::from_millis(100))
        .json(&request("m", "hi"))
        .send()
        .await
        .expect_err("the client gives up first");
    assert!(err.is_timeout(), "{err:?}");

    let server = start(with_faults(vec![fault(FaultKind::Delay(
        Duration::from_millis(300),
    ))]))
    .await;
    let started = Instant::now();
    let body: Value = post(&server, &request("m", "hi"))
        .await
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        body["choices"][0]["message"]["content"],
        reply_text("m", "hi", None).text
    );
    let recorded = &server.requests()[0];
    assert_eq!(recorded.fault.as_deref(), Some("Delay(300ms)"));
    assert!(recorded.finished.is_some());
}

#[tokio::test]
async fn context_exceeded_looks_like_llama_server() {
    let server = start(with_faults(vec![fault(FaultKind::ContextExceeded)])).await;
    let response = post(&server, &request("m", "hi")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "exceed_context_size_error");
    assert_eq!(body["error"]["code"], 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the request exceeds the available context size")
    );
}

#[tokio::test]
async fn faults_run_out_after_times_and_match_model_and_prompt() {
    let server = start(with_faults(vec![
        Fault {
            model: Some("flaky".to_owned()),
            prompt_contains: Some("retry me".to_owned()),
            times: Some(2),
            kind: FaultKind::Status(500),
        },
        Fault {
            model: Some("flaky".to_owned()),
            times: Some(1),
            ..fault(FaultKind::Status(502))
        },
    ]))
    .await;
    let statuses =
        async |model: &str, prompt: &str| post(&server, &request(model, prompt)).await.status();

    assert_eq!(statuses("steady", "please retry me").await, 200);
    assert_eq!(statuses("flaky", "please retry me").await, 500);
    assert_eq!(statuses("flaky", "please retry me").await, 500);
    // The first rule is spent, so the second applies once, then nothing does.
    assert_eq!(statuses("flaky", "please retry me").await, 502);
    assert_eq!(statuses("flaky", "please retry me").await, 200);
    assert_eq!(statuses("flaky", "other").await, 200);
}

#[tokio::test]
async fn api_key_is_required_and_never_recorded() {
    let key = "sk-mock-secret-123";
    let server = start(MockConfig {
        api_key: Some(key.to_owned()),
        ..MockConfig::default()
    })
    .await;
    let url = format!("{}/chat/completions", server.base_url());
    let client = reqwest::Client::new();

    let missing = client
        .post(&url)
        .json(&request("m", "a"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let wrong = client
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&request("m", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let right = client
        .post(&url)
        .bearer_auth(key)
        .json(&request("m", "c"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);

    let recorded = server.requests();
    let present: Vec<bool> = recorded.iter().map(|r| r.authorization_present).collect();
    assert_eq!(present, [false, true, true]);
    assert!(!format!("{recorded:?}").contains("sk-"));
}

#[tokio::test]
async fn stats_say_what_the_server_saw_until_told_to_forget() {
    let server = start(MockConfig {
        default_latency: std::time::Duration::from_millis(50),
        ..MockConfig::default()
    })
    .await;
    let stats_url = format!("http://{}/mock/stats", server.addr());
    let client = reqwest::Client::new();
    let stats = || async {
        let body: Value = client
            .get(&stats_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body
    };
    let body = request("slow", "hello");
    tokio::join!(
        post(&server, &body),
        post(&server, &body),
        post(&server, &body)
    );
    let seen = stats().await;
    assert_eq!(seen["requests"], 3);
    assert_eq!(seen["peak_in_flight"], 3, "{seen}");
    assert!(seen["first_answer_ms"].as_f64().unwrap() >= 50.0, "{seen}");
    assert!(seen["arrivals_ms"].as_f64().unwrap() < 50.0, "{seen}");

    let forgot = client.delete(&stats_url).send().await.unwrap();
    assert_eq!(forgot.status(), 204);
    assert_eq!(stats().await["requests"], 0);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn requests_are_recorded_in_order() {
    let server = start(with_faults(vec![Fault {
        prompt_contains: Some("fail".to_owned()),
        ..fault(FaultKind::Status(500))
    }]))
    .await;
    let mut first = json!({
        "model": "writer",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "earlier question"},
            {"role": "assistant", "content": "earlier answer"},
            {"role": "user", "content": "the real prompt"},
        ],
        "max_tokens": 64,
        "temperature": 0.25,
        "stream": true,
    });
    post(&server, &first).await.text().await.unwrap();
    first["messages"] = json!([{"role": "user", "content": "please fail"}]);
    first["stream"] = json!(false);
    post(&server, &first).await;

    let recorded = server.requests();
    assert_eq!(recorded.len(), 2);
    let ok = &recorded[0];
    assert_eq!(ok.model, "writer");
    assert_eq!(ok.system.as_deref(), Some("Be brief."));
    assert_eq!(ok.prompt, "the real prompt");
    assert_eq!(ok.max_tokens, Some(64));
    assert_eq!(ok.temperature, Some(0.25));
    assert!(ok.stream);
    assert!(!ok.authorization_present);
    assert_eq!(ok.fault, None);
    assert!(ok.finished.is_some_and(|done| done >= ok.received));

    let failed = &recorded[1];
    assert_eq!(failed.prompt, "please fail");
    assert_eq!(failed.system, None);
    assert!(!failed.stream);
    assert_eq!(failed.fault.as_deref(), Some("Status(500)"));
    assert_eq!(failed.finished, None);
    assert!(failed.received >= ok.received);
}

#[tokio::test]
async fn bad_requests_get_a_400_with_an_openai_error() {
    let server = start(MockConfig::default()).await;
    let url = format!(
        "{}/v1/chat/completions",
        server.base_url().trim_end_matches("/v1")
    );
    let client = reqwest::Client::new();

    let not_json = client.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].is_string());

    let no_messages = client
        .post(&url)
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_messages.status(), 400);
    let body: Value = no_messages.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages")
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn health_and_models() {
    let server = start(MockConfig {
        latency: HashMap::from([
            ("b-model".to_owned(), Duration::ZERO),
            ("a-model".to_owned(), Duration::ZERO),
        ]),
        ..MockConfig::default()
    })
    .await;
    let root = format!("http://{}", server.addr());
    let health: Value = reqwest::get(format!("{root}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));

    let models: Value = reqwest::get(format!("{}/models", server.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a-model", "b-model"]);
    assert_eq!(models["data"][0]["object"], "model");

    let default = start(MockConfig::default()).await;
    let models: Value = reqwest::get(format!("{}/models", default.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "mock");
}

#[tokio::test]
async fn shutdown_stops_listening_and_cuts_slow_replies() {
    let server = start(MockConfig {
        default_latency: Duration::from_secs(30),
        ..MockConfig::default()
    })
    .await;
    let addr = server.addr();
    let url = format!("{}/chat/completions", server.base_url());
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&request("m", "hi"))
            .send()
            .await
    });
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));

    let cut = pending.await.unwrap();
    assert!(cut.is_err_and(|err| err.status().is_none()));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
