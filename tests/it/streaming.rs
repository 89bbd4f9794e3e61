//! Streamed answers framed as other OpenAI-compatible servers and proxies
//! frame them, not as the mock does: CRLF line ends, comments, an event
//! split across packets (even between CR and LF), a `data` field over two
//! lines. The client reads them over a real socket from a server that
//! writes each piece on its own.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wfc::client::{ChatRequest, Client, Target};

/// The base URL of a server that answers one request with `pieces` as an
/// event stream, a pause after each, then closes the connection.
async fn serve_once(pieces: &'static [&'static str]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !is_complete(&request) {
            let read = socket.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the client closed before its request was whole");
            request.extend_from_slice(&buffer[..read]);
        }
        socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        for piece in pieces {
            socket.write_all(piece.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    url
}

/// Whether `request` holds its head and the whole body its head announces.
fn is_complete(request: &[u8]) -> bool {
    let Some(head_end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    request.len() >= head_end + 4 + length
}

const FRAMED_ELSEWHERE: &[&str] = &[
    ": keep-alive\r\n\r\n",
    "data: {\"model\":\"proxy-model\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\"Stable \"}}]}\r\n\r\ndata: {\"choi",
    "ces\":[{\"delta\":{\"content\":\"overnight.\"}}]}\r",
    "\n\r\n",
    "event: message\r\ndata: {\"choices\":[{\"delta\":{},\r\ndata: \"finish_reason\":\"stop\"}]}\r\n\r\n",
    "data: {\"choices\":[],\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":5}}\r\n\r\n",
    "data: [DONE]\r\n\r\n",
];

#[tokio::test]
async fn events_framed_as_other_servers_frame_them_make_up_the_answer() {
    let url = serve_once(FRAMED_ELSEWHERE).await;
    let target = Target {
        base_url: url,
        api_key: None,
        timeout: Duration::from_secs(10),
    };
    let request = ChatRequest {
        model: "proxy-model".into(),
        system: None,
        prompt: "How was the night?".into(),
        max_tokens: 16,
        temperature: None,
        schema: None,
        follow_ups: Vec::new(),
    };
    let mut pieces = Vec::new();
    let mut on_text = |text: &str| pieces.push(text.to_string());
    let answer = Client::default()
        .stream(&target, &request, &mut on_text)
        .await
        .expect("the stream is read");
    assert_eq!(pieces, ["Stable ", "overnight."]);
    assert_eq!(answer.text, "Stable overnight.");
    assert_eq!(answer.model, "proxy-model");
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert_eq!(answer.tokens, 2);
    assert_eq!(answer.prompt_tokens, Some(5));
}
