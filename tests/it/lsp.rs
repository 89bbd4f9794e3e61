//! `wfc lsp` driven as an editor drives it: a child process spoken to in
//! JSON-RPC with Content-Length framing over stdin and stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Wfc;

const AGENTS: &str = "agent Clinical {\n  model = \"BioMistral-7B\"\n}\n";

const MAIN: &str = r#"import "agents.wf"

agent Reviewer {
  model = "review-7B"
  max_concurrency = 2
}

/// Triage then answer.
workflow triage_flow {
  /// The patient's complaint.
  input complaint: text

  task triage -> Clinical {
    priority = 3
    prompt = """
      🚑 {{ complaint }}
      Triage this complaint.
    """
  }

  task answer -> Reviewer {
    prompt = """
      Given {{ triage }},
      answer {{ complaint }}.
    """
  }

  output = "{{ answer }}"

  test "brief" {
    input complaint = "cough"
    mock triage = "mild"
    mock answer = "rest"
    expect task triage ok
  }
}
"#;

/// A typed answer: inline fields, and a schema's.
const TYPED: &str = r#"import "agents.wf"

schema Finding {
  /// How sure the model is.
  certainty: number,
  note: text,
}

workflow typed {
  task assess -> Clinical {
    prompt = "Assess."
    output = json { urgency: one_of("low", "high"), finding: Finding }
  }
  output = "{% if assess.ok %}{{ assess.urgency }} {{ assess.finding.note }}{% endif %}"

  test "urgent" {
    mock assess = """{"urgency": "high", "finding": {"certainty": 0.9, "note": "soon"}}"""
    expect output contains "high"
  }
}
"#;

struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: Receiver<Value>,
    /// Notifications read while waiting for something else.
    pending: Vec<Value>,
    next_id: i64,
    _folder: tempfile::TempDir,
    main: PathBuf,
    uri: String,
}

impl Client {
    /// Starts the server in a folder holding `main.wf` and `agents.wf`, and
    /// initializes it.
    fn start() -> Client {
        let folder = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(folder.path().join("agents.wf"), AGENTS).expect("write agents.wf");
        let main = folder.path().join("main.wf");
        std::fs::write(&main, MAIN).expect("write main.wf");
        let main = main.canonicalize().expect("canonical");
        let uri = file_uri(&main);
        let mut child = Wfc::new().arg("lsp").spawn();
        let stdout = child.stdout.take().expect("stdout");
        let (sender, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
        let mut client = Client {
            stdin: child.stdin.take(),
            child,
            incoming,
            pending: Vec::new(),
            next_id: 0,
            _folder: folder,
            main,
            uri,
        };
        let result = client.request(
            "initialize",
            json!({ "processId": null, "rootUri": null, "capabilities": {} }),
        );
        let capabilities = &result["capabilities"];
        assert_eq!(capabilities["hoverProvider"], true);
        assert_eq!(capabilities["renameProvider"]["prepareProvider"], true);
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        let stdin = self.stdin.as_mut().expect("stdin open");
        write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        stdin.flush().expect("flush");
    }

    fn receive(&mut self) -> Value {
        self.incoming
            .recv_timeout(Duration::from_secs(20))
            .expect("the server answers in time")
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The full response (with `result` or `error`).
    fn respond(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self.receive();
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
            self.pending.push(message);
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.respond(method, params);
        assert!(response.get("error").is_none(), "{response}");
        response["result"].clone()
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics_for(&mut self, uri: &str) -> Vec<Value> {
        let is_ours = |message: &Value| {
            message["method"] == "textDocument/publishDiagnostics"
                && message["params"]["uri"] == uri
        };
        let message = match self.pending.iter().position(is_ours) {
            Some(index) => self.pending.remove(index),
            None => loop {
                let message = self.receive();
                if is_ours(&message) {
                    break message;
                }
                self.pending.push(message);
            },
        };
        message["params"]["diagnostics"]
            .as_array()
            .expect("a list")
            .clone()
    }

    fn diagnostics(&mut self) -> Vec<Value> {
        let uri = self.uri.clone();
        self.diagnostics_for(&uri)
    }

    fn open(&mut self, text: &str) -> Vec<Value> {
        let uri = self.uri.clone();
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "wf", "version": 1, "text": text } }),
        );
        self.diagnostics()
    }

    fn replace(&mut self, version: i32, text: &str) -> Vec<Value> {
        let uri = self.uri.clone();
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
        self.diagnostics()
    }

    /// The edits renaming what is at `position` in the main file.
    fn rename(&mut self, position: Value, new_name: &str) -> Value {
        let params = self.rename_params(position, new_name);
        self.request("textDocument/rename", params)
    }

    /// The whole answer to a rename, for one that is refused.
    fn respond_rename(&mut self, position: Value, new_name: &str) -> Value {
        let params = self.rename_params(position, new_name);
        self.respond("textDocument/rename", params)
    }

    fn rename_params(&self, position: Value, new_name: &str) -> Value {
        json!({ "textDocument": { "uri": self.uri }, "position": position, "newName": new_name })
    }

    fn at(&mut self, method: &str, position: Value) -> Value {
        let uri = self.uri.clone();
        self.request(
            method,
            json!({ "textDocument": { "uri": uri }, "position": position }),
        )
    }

    /// Shuts the server down; its exit code.
    fn stop(mut self) -> i32 {
        assert_eq!(self.request("shutdown", Value::Null), Value::Null);
        self.notify("exit", Value::Null);
        drop(self.stdin.take());
        self.child
            .wait()
            .expect("the server exits")
            .code()
            .expect("an exit code")
    }
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length: ") {
            length = value.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The LSP position (UTF-16 columns) of the `nth` (0-based) `needle` in
/// `text`, `shift` bytes into it.
fn position(text: &str, needle: &str, nth: usize, shift: usize) -> Value {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` #{nth} in the text"))
        .0
        + shift;
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    json!({
        "line": text[..offset].matches('\n').count(),
        "character": text[line_start..offset].encode_utf16().count(),
    })
}

fn range(text: &str, needle: &str, nth: usize) -> Value {
    json!({
        "start": position(text, needle, nth, 0),
        "end": position(text, needle, nth, needle.len()),
    })
}

fn codes(diagnostics: &[Value]) -> Vec<&str> {
    diagnostics
        .iter()
        .map(|d| d["code"].as_str().expect("a code"))
        .collect()
}

#[test]
fn diagnostics_follow_the_edits_and_broken_text_does_not_crash() {
    let mut client = Client::start();
    let typo = MAIN.replace("{{ triage }}", "{{ triag }}");
    let diagnostics = client.open(&typo);
    assert_eq!(codes(&diagnostics), ["wf::unused-task", "wf::unknown-name"]);
    let unknown = &diagnostics[1];
    assert_eq!(
        unknown["range"],
        json!({
            "start": position(&typo, "{{ triag", 0, 3),
            "end": position(&typo, "{{ triag", 0, 8),
        })
    );
    assert_eq!(unknown["severity"], 1);
    assert_eq!(unknown["source"], "wfc");
    assert!(
        unknown["message"]
            .as_str()
            .expect("a message")
            .contains("did you mean `triage`?"),
        "{unknown}"
    );
    assert_eq!(diagnostics[0]["severity"], 2);

    // A duplicate: the first declaration is related information.
    let twice = MAIN.replace(
        "  input complaint: text\n",
        "  input complaint: text\n  input complaint: text\n",
    );
    let diagnostics = client.replace(2, &twice);
    assert_eq!(codes(&diagnostics), ["wf::duplicate-name"]);
    assert_eq!(diagnostics[0]["range"], range(&twice, "complaint", 2));
    let related = &diagnostics[0]["relatedInformation"][0];
    assert_eq!(related["location"]["uri"], client.uri.as_str());
    assert_eq!(related["location"]["range"], range(&twice, "complaint", 1));
    assert_eq!(related["message"], "first declared here");

    // An incremental edit that opens a string it never closes.
    let uri = client.uri.clone();
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": uri, "version": 3 },
            "contentChanges": [
                { "range": range(&twice, "  input complaint: text\n", 1), "text": "" },
                { "range": range(MAIN, "\"{{ answer }}\"", 0), "text": "\"{{ answer " },
            ],
        }),
    );
    let diagnostics = client.diagnostics();
    assert_eq!(codes(&diagnostics), ["wf::syntax"]);
    assert_eq!(
        diagnostics[0]["range"]["start"],
        position(MAIN, "\"{{ answer }}\"", 0, 0)
    );
    // Requests about a file that does not parse answer empty.
    assert_eq!(
        client.at("textDocument/hover", position(MAIN, "triage ->", 0, 1)),
        Value::Null
    );
    assert_eq!(
        client.at("textDocument/definition", position(MAIN, "{{ triage", 0, 4)),
        Value::Null
    );
    let uri = client.uri.clone();
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uri } }),
    );
    assert_eq!(symbols, json!([]));
    let formatting = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(formatting, json!([]));
    // Completion still offers the names of the text that last parsed.
    let broken = MAIN.replace("\"{{ answer }}\"", "\"{{ answer ");
    let items = client.at(
        "textDocument/completion",
        position(&broken, "{{ answer", 0, 3),
    );
    assert_eq!(labels(&items), ["complaint", "triage", "answer"]);

    // The fix clears every diagnostic.
    assert_eq!(client.replace(4, MAIN), Vec::<Value>::new());
    assert_eq!(client.stop(), 0);
}

#[test]
fn hover_definition_references_and_rename() {
    let mut client = Client::start();
    assert_eq!(client.open(MAIN), Vec::<Value>::new());
    let uri = client.uri.clone();

    let hover = client.at("textDocument/hover", position(MAIN, "{{ triage", 0, 5));
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("task triage -> Clinical"), "{text}");
    assert!(text.contains("priority: 3"), "{text}");
    assert!(text.contains("depends on: none"), "{text}");
    assert_eq!(hover["range"], range(MAIN, "triage", 2));

    let hover = client.at("textDocument/hover", position(MAIN, "answer ->", 0, 0));
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("agent: `Reviewer`"), "{text}");
    assert!(text.contains("depends on: `triage`"), "{text}");

    let hover = client.at("textDocument/hover", position(MAIN, "-> Clinical", 0, 4));
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("model: `BioMistral-7B`"), "{text}");
    assert!(text.contains("declared in `agents.wf`"), "{text}");

    let hover = client.at("textDocument/hover", position(MAIN, "Reviewer {", 0, 2));
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("model: `review-7B`"), "{text}");
    assert!(text.contains("max_concurrency: 2"), "{text}");

    let hover = client.at("textDocument/hover", position(MAIN, "{{ complaint", 0, 3));
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("type: `text`"), "{text}");
    assert!(text.contains("The patient's complaint."), "{text}");

    // Definition from a template use, of a local agent, of an imported one.
    let definition = client.at("textDocument/definition", position(MAIN, "{{ triage", 0, 4));
    assert_eq!(
        definition,
        json!({ "uri": uri, "range": range(MAIN, "triage", 1) })
    );
    let definition = client.at(
        "textDocument/definition",
        position(MAIN, "-> Reviewer", 0, 5),
    );
    assert_eq!(
        definition,
        json!({ "uri": uri, "range": range(MAIN, "Reviewer", 0) })
    );
    let definition = client.at(
        "textDocument/definition",
        position(MAIN, "-> Clinical", 0, 3),
    );
    let agents = client.main.with_file_name("agents.wf");
    assert_eq!(
        definition,
        json!({ "uri": file_uri(&agents), "range": range(AGENTS, "Clinical", 0) })
    );
    let definition = client.at("textDocument/definition", position(MAIN, "agents.wf", 0, 2));
    assert_eq!(definition["uri"], file_uri(&agents));

    // References: the declaration and both template uses; the one after the
    // ambulance counts it as two UTF-16 units.
    let references = client.request(
        "textDocument/references",
        json!({
            "textDocument": { "uri": uri },
            "position": position(MAIN, "complaint: text", 0, 0),
            "context": { "includeDeclaration": true },
        }),
    );
    let expected: Vec<Value> = [1, 2, 4, 5]
        .into_iter()
        .map(|nth| json!({ "uri": uri, "range": range(MAIN, "complaint", nth) }))
        .collect();
    assert_eq!(references, Value::Array(expected));
    let references = client.request(
        "textDocument/references",
        json!({
            "textDocument": { "uri": uri },
            "position": position(MAIN, "triage ->", 0, 0),
            "context": { "includeDeclaration": false },
        }),
    );
    let expected: Vec<Value> = (2..5)
        .map(|nth| json!({ "uri": uri, "range": range(MAIN, "triage", nth) }))
        .collect();
    assert_eq!(references, Value::Array(expected));

    // Rename a task: its declaration and its template use.
    let prepared = client.at(
        "textDocument/prepareRename",
        position(MAIN, "{{ triage", 0, 6),
    );
    assert_eq!(prepared, range(MAIN, "triage", 2));
    let edit = client.rename(position(MAIN, "{{ triage", 0, 6), "assess");
    assert_eq!(
        edit,
        json!({ "changes": { uri.clone(): edits(MAIN, "triage", 1..=4, "assess") } })
    );
    // An agent is renamed where it is declared (another file) and in every
    // file that sees it.
    assert_eq!(
        client.at(
            "textDocument/prepareRename",
            position(MAIN, "-> Clinical", 0, 4)
        ),
        range(MAIN, "Clinical", 0)
    );
    let edit = client.rename(position(MAIN, "-> Clinical", 0, 4), "Clinician");
    let agents_uri = file_uri(&client.main.with_file_name("agents.wf"));
    assert_eq!(
        edit,
        json!({ "changes": {
            uri.clone(): [{ "range": range(MAIN, "Clinical", 0), "newText": "Clinician" }],
            agents_uri: [{ "range": range(AGENTS, "Clinical", 0), "newText": "Clinician" }],
        } })
    );
    let taken = client.respond_rename(position(MAIN, "-> Clinical", 0, 4), "Reviewer");
    assert!(
        taken["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already sees an agent `Reviewer`")),
        "{taken}"
    );
    // Bad names are refused.
    let refused = client.respond_rename(position(MAIN, "{{ triage", 0, 6), "answer");
    assert!(refused["error"]["message"].as_str().is_some(), "{refused}");
    assert_eq!(client.stop(), 0);
}

/// The edits that give the `nths` occurrences of `needle` in `text` the
/// name `new`.
fn edits(text: &str, needle: &str, nths: std::ops::RangeInclusive<usize>, new: &str) -> Value {
    nths.map(|nth| json!({ "range": range(text, needle, nth), "newText": new }))
        .collect()
}

fn labels(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .expect("a list of items")
        .iter()
        .map(|item| item["label"].as_str().expect("a label"))
        .collect()
}

#[test]
fn completion_outline_and_formatting() {
    let mut client = Client::start();
    assert_eq!(client.open(MAIN), Vec::<Value>::new());
    let uri = client.uri.clone();

    // Inside `{{ }}` of a task: the inputs and the other tasks.
    let items = client.at("textDocument/completion", position(MAIN, "{{ triage", 0, 3));
    assert_eq!(labels(&items), ["complaint", "triage"]);
    assert_eq!(items[1]["detail"], "task -> Clinical");
    // In triage's own prompt: not `answer`, which reads triage (a cycle).
    let items = client.at(
        "textDocument/completion",
        position(MAIN, "{{ complaint }}\n      Triage", 0, 3),
    );
    assert_eq!(labels(&items), ["complaint"]);
    // Half-typed, in the output.
    let typing = MAIN.replace("\"{{ answer }}\"", "\"{{ ans }}\"");
    client.replace(2, &typing);
    let items = client.at("textDocument/completion", position(&typing, "{{ ans", 0, 6));
    assert_eq!(labels(&items), ["complaint", "triage", "answer"]);
    // After `->`: this file's agents and the imported ones.
    let items = client.at(
        "textDocument/completion",
        position(MAIN, "-> Reviewer", 0, 3),
    );
    assert_eq!(labels(&items), ["Clinical", "Reviewer"]);
    assert_eq!(items[0]["detail"], "agent (BioMistral-7B)");
    // At the start of a line: the keywords that fit there.
    let items = client.at("textDocument/completion", position(MAIN, "  output", 0, 2));
    assert_eq!(
        labels(&items),
        ["input", "task", "retrieve", "output", "test"]
    );
    let items = client.at(
        "textDocument/completion",
        position(MAIN, "    priority", 0, 4),
    );
    assert!(labels(&items).contains(&"max_tokens"), "{items}");
    let items = client.at(
        "textDocument/completion",
        position(MAIN, "\n\n/// Triage", 0, 1),
    );
    assert_eq!(
        labels(&items),
        ["agent", "corpus", "schema", "workflow", "import"]
    );
    client.replace(3, MAIN);

    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uri } }),
    );
    let outline: Vec<(String, i64, Vec<String>)> = symbols
        .as_array()
        .expect("symbols")
        .iter()
        .map(|symbol| {
            let children = symbol["children"]
                .as_array()
                .map(|children| {
                    children
                        .iter()
                        .map(|child| {
                            format!("{} {}", child["kind"], child["name"].as_str().unwrap_or(""))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                symbol["name"].as_str().expect("a name").to_string(),
                symbol["kind"].as_i64().expect("a kind"),
                children,
            )
        })
        .collect();
    assert_eq!(
        outline,
        [
            ("Reviewer".to_string(), 5, vec![]),
            (
                "triage_flow".to_string(),
                2,
                vec![
                    "13 complaint".to_string(),
                    "12 triage".to_string(),
                    "12 answer".to_string(),
                    "7 output".to_string(),
                    "6 brief".to_string(),
                ]
            ),
        ]
    );
    assert_eq!(symbols[1]["selectionRange"], range(MAIN, "triage_flow", 0));
    assert_eq!(symbols[1]["children"][0]["detail"], "text");

    // Formatting: nothing to do on a formatted file, one whole-file edit on
    // a messy one.
    let options = json!({ "tabSize": 2, "insertSpaces": true });
    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri }, "options": options }),
    );
    assert_eq!(edits, json!([]));
    let messy = MAIN
        .replace("agent Reviewer {\n  model", "agent   Reviewer {\nmodel")
        .replace("\n\n  task answer", "\n      task answer");
    client.replace(4, &messy);
    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri }, "options": options }),
    );
    let lines = messy.matches('\n').count();
    assert_eq!(
        edits,
        json!([{
            "range": { "start": { "line": 0, "character": 0 }, "end": { "line": lines, "character": 0 } },
            "newText": MAIN,
        }])
    );
    assert_eq!(client.stop(), 0);
}

#[test]
fn an_unknown_request_is_an_error_and_the_server_goes_on() {
    let mut client = Client::start();
    let response = client.respond("workspace/unheardOf", json!({}));
    assert_eq!(response["error"]["code"], -32601);
    assert_eq!(client.open(MAIN), Vec::<Value>::new());
    assert_eq!(client.stop(), 0);
}

#[test]
fn an_unsaved_imported_file_counts_over_the_disk() {
    let mut client = Client::start();
    assert_eq!(client.open(MAIN), Vec::<Value>::new());
    let agents_uri = file_uri(&client.main.with_file_name("agents.wf"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": {
            "uri": agents_uri, "languageId": "wf", "version": 1,
            "text": AGENTS.replace("Clinical", "Clinician"),
        } }),
    );
    assert_eq!(client.diagnostics_for(&agents_uri), Vec::<Value>::new());
    let diagnostics = client.diagnostics();
    assert_eq!(codes(&diagnostics), ["wf::unknown-agent"]);
    assert_eq!(diagnostics[0]["range"], range(MAIN, "Clinical", 0));
    let items = client.at(
        "textDocument/completion",
        position(MAIN, "-> Reviewer", 0, 3),
    );
    assert_eq!(labels(&items), ["Clinician", "Reviewer"]);

    // Closed, the file on disk counts again.
    client.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": agents_uri } }),
    );
    assert_eq!(client.diagnostics_for(&agents_uri), Vec::<Value>::new());
    assert_eq!(client.diagnostics(), Vec::<Value>::new());
    assert_eq!(client.stop(), 0);
}

/// Every prefix of the file, as if typed from the top: each gets its
/// diagnostics, and every request is answered (empty when there is nothing
/// to say) without the server going down.
#[test]
fn half_typed_text_never_brings_the_server_down() {
    let mut client = Client::start();
    client.open("");
    let uri = client.uri.clone();
    let cuts: Vec<usize> = (0..=MAIN.len())
        .filter(|&cut| MAIN.is_char_boundary(cut))
        .step_by(7)
        .collect();
    for (version, cut) in cuts.into_iter().enumerate() {
        let text = &MAIN[..cut];
        let diagnostics = client.replace(version as i32 + 2, text);
        assert!(
            diagnostics.iter().all(|d| d["code"].is_string()),
            "{diagnostics:?}"
        );
        let end = position(text, "", 0, text.len());
        let half = (0..=text.len() / 2)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let middle = position(text, "", 0, half);
        for at in [end, middle] {
            for method in [
                "textDocument/hover",
                "textDocument/definition",
                "textDocument/completion",
                "textDocument/prepareRename",
            ] {
                let response = client.respond(
                    method,
                    json!({ "textDocument": { "uri": uri }, "position": at }),
                );
                assert!(
                    response.get("error").is_none(),
                    "{method} at {cut}: {response}"
                );
            }
            let response = client.respond(
                "textDocument/references",
                json!({ "textDocument": { "uri": uri }, "position": at, "context": { "includeDeclaration": true } }),
            );
            assert!(response.get("error").is_none(), "{response}");
        }
        for method in ["textDocument/documentSymbol", "textDocument/formatting"] {
            let response = client.respond(
                method,
                json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 2, "insertSpaces": true } }),
            );
            assert!(
                response.get("error").is_none(),
                "{method} at {cut}: {response}"
            );
        }
    }
    assert_eq!(client.stop(), 0);
}

#[test]
fn completion_after_a_dot_offers_attributes_and_declared_fields() {
    let mut client = Client::start();
    assert_eq!(client.open(TYPED), Vec::<Value>::new());
    let items = client.at(
        "textDocument/completion",
        position(TYPED, "{{ assess.urgency", 0, 10),
    );
    let offered = labels(&items);
    assert!(
        offered.contains(&"ok") && offered.contains(&"error"),
        "{items}"
    );
    assert!(offered.ends_with(&["urgency", "finding"]), "{items}");
    assert_eq!(
        items[offered.len() - 2]["detail"],
        "one_of(\"low\", \"high\")"
    );
    let items = client.at(
        "textDocument/completion",
        position(TYPED, "{{ assess.finding.note", 0, 18),
    );
    assert_eq!(labels(&items), ["certainty", "note"]);
    assert_eq!(items[0]["documentation"], "How sure the model is.");

    // Hover on a typed task shows its answer's shape.
    let hover = client.at("textDocument/hover", position(TYPED, "assess ->", 0, 1));
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        text.contains("answers: `json { urgency: one_of(\"low\", \"high\"), finding:"),
        "{hover}"
    );
}

#[test]
fn fields_of_typed_answers_have_definitions_hovers_and_renames() {
    // A rename reaches the keys of the mocked answers too, so the tests
    // still hold the declared shape after it.
    let mut client = Client::start();
    assert_eq!(client.open(TYPED), Vec::<Value>::new());
    let uri = client.uri.clone();
    // An inline field, and a schema's field read through another.
    let definition = client.at(
        "textDocument/definition",
        position(TYPED, "{{ assess.urgency", 0, 12),
    );
    assert_eq!(
        definition,
        json!({ "uri": uri, "range": range(TYPED, "urgency", 0) })
    );
    let definition = client.at(
        "textDocument/definition",
        position(TYPED, "{{ assess.finding.note", 0, 19),
    );
    assert_eq!(
        definition,
        json!({ "uri": uri, "range": range(TYPED, "note", 0) })
    );
    let hover = client.at(
        "textDocument/hover",
        position(TYPED, "{{ assess.finding.note", 0, 19),
    );
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(text.contains("note: text"), "{hover}");
    assert!(text.contains("a field of schema `Finding`"), "{hover}");

    let edit = client.rename(position(TYPED, "{{ assess.urgency", 0, 12), "severity");
    assert_eq!(
        edit,
        json!({ "changes": { uri.clone(): edits(TYPED, "urgency", 0..=2, "severity") } })
    );
    let edit = client.rename(position(TYPED, "note: text", 0, 1), "remark");
    assert_eq!(
        edit,
        json!({ "changes": { uri.clone(): edits(TYPED, "note", 0..=2, "remark") } })
    );
    let taken = client.respond_rename(position(TYPED, "note: text", 0, 1), "certainty");
    assert!(taken["error"]["message"].as_str().is_some(), "{taken}");
    assert_eq!(client.stop(), 0);
}

#[test]
fn hover_on_an_input_shows_its_attributes() {
    const PHI: &str = r#"import "agents.wf"

workflow notes {
  input record: text @max_len(4000) @phi
  task summary -> Clinical { prompt = "Summarise {{ record | redact }}" }
}
"#;
    let mut client = Client::start();
    assert_eq!(client.open(PHI), Vec::<Value>::new());
    let hover = client.at("textDocument/hover", position(PHI, "record:", 0, 1));
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        text.contains("input record: text @max_len(4000) @phi"),
        "{hover}"
    );
    assert!(text.contains("protected health information"), "{hover}");
}

const RETRIEVAL: &str = r#"import "agents.wf"

/// Payers' coverage criteria.
corpus PayerPolicies {
  metadata = [payer]
}

workflow coverage {
  input service: text
  retrieve policy from PayerPolicies {
    query = "{{ service }}"
    top_k = 3
  }
  task claim -> Clinical {
    expect cites policy
    prompt = "{% for passage in policy %}[{{ passage.id }}] {{ passage.text }}{% endfor %}"
  }
  output = "{{ claim }}"
}
"#;

#[test]
fn retrievals_complete_navigate_and_hover() {
    let mut client = Client::start();
    assert_eq!(client.open(RETRIEVAL), Vec::<Value>::new());
    // After `from`: the corpora, with their descriptions.
    let items = client.at(
        "textDocument/completion",
        position(RETRIEVAL, "from PayerPolicies", 0, 5),
    );
    assert_eq!(labels(&items), ["PayerPolicies"]);
    assert_eq!(items[0]["documentation"], "Payers' coverage criteria.");
    // In a retrieval: its own properties, not a chat task's.
    let items = client.at(
        "textDocument/completion",
        position(RETRIEVAL, "    top_k", 0, 4),
    );
    let offered = labels(&items);
    assert!(
        offered.contains(&"query") && offered.contains(&"filter"),
        "{items}"
    );
    assert!(!offered.contains(&"max_tokens"), "{items}");
    // In a corpus: the corpus's properties.
    let items = client.at(
        "textDocument/completion",
        position(RETRIEVAL, "  metadata", 0, 2),
    );
    assert!(labels(&items).contains(&"max_passage_len"), "{items}");
    // The corpus a retrieval names is declared above.
    let definition = client.at(
        "textDocument/definition",
        position(RETRIEVAL, "from PayerPolicies", 0, 6),
    );
    let declared = position(RETRIEVAL, "PayerPolicies {", 0, 0);
    assert_eq!(definition["range"]["start"], declared);
    // Hover on the retrieval and on the corpus.
    let hover = client.at(
        "textDocument/hover",
        position(RETRIEVAL, "policy from", 0, 1),
    );
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        text.contains("retrieve policy from PayerPolicies"),
        "{hover}"
    );
    assert!(text.contains("top 3 passages by bm25"), "{hover}");
    let hover = client.at(
        "textDocument/hover",
        position(RETRIEVAL, "from PayerPolicies", 0, 6),
    );
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(text.contains("corpus PayerPolicies"), "{hover}");
    assert!(text.contains("metadata: payer"), "{hover}");
}

const CORPORA: &str = "/// The formulary.\ncorpus Formulary {\n  metadata = [tier]\n}\n";

#[test]
fn a_corpus_declared_in_an_imported_file_is_found_and_described() {
    let mut client = Client::start();
    let corpora = client.main.with_file_name("corpora.wf");
    std::fs::write(&corpora, CORPORA).unwrap();
    let text = "import \"corpora.wf\"\n\nworkflow drugs {\n  input names: text\n  retrieve entries from Formulary { query = \"{{ names }}\" }\n  output = \"{{ entries }}\"\n}\n";
    assert_eq!(client.open(text), Vec::<Value>::new());
    let definition = client.at(
        "textDocument/definition",
        position(text, "from Formulary", 0, 6),
    );
    assert_eq!(
        definition,
        json!({ "uri": file_uri(&corpora), "range": range(CORPORA, "Formulary", 0) })
    );
    let hover = client.at("textDocument/hover", position(text, "from Formulary", 0, 6));
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(shown.contains("The formulary."), "{hover}");
    assert!(shown.contains("declared in `corpora.wf`"), "{hover}");
    let items = client.at(
        "textDocument/completion",
        position(text, "from Formulary", 0, 5),
    );
    assert_eq!(labels(&items), ["Formulary"]);
}
