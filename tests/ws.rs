//! A client of the realtime WebSocket API (docs/realtime.md), as an app uses it: the access
//! token in `Sec-WebSocket-Protocol`, frames as JSON, pushed notifications kept aside while it
//! waits for the answer to its own frame.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use crate::{PATIENCE, Stack};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const PROTOCOL: &str = "city-events.v1";

pub struct Conn {
    socket: Socket,
    /// Notification frames received so far, in order.
    pub pushed: Vec<Value>,
}

/// A refused handshake: its status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

/// Opens a connection with `token` (none: no subprotocol offered at all).
pub async fn connect(stack: &Stack, token: Option<&str>) -> Result<Conn, Refused> {
    let url = stack
        .realtime_url
        .clone()
        .expect("the local stack serves the WebSocket API (realtime_url)");
    let mut req = url.as_str().into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            format!("{PROTOCOL}, {t}").parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, response)) => {
            assert_eq!(
                response
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok()),
                token.map(|_| PROTOCOL),
                "the server answers with the protocol (never echoing the token)"
            );
            Ok(Conn {
                socket,
                pushed: Vec::new(),
            })
        }
        Err(tungstenite::Error::Http(response)) => Err(Refused {
            status: response.status().as_u16(),
            body: response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        }),
        Err(e) => panic!("connecting to {url}: {e}"),
    }
}

impl Conn {
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.socket
            .send(Message::Text(text.into().into()))
            .await
            .expect("the connection takes the frame");
    }

    /// The next frame, if one comes within `wait`; panics when the server closed.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let message = match tokio::time::timeout(wait, self.socket.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("the server closed the connection"),
                Ok(Some(m)) => m.expect("a frame"),
            };
            match message {
                Message::Text(t) => {
                    return Some(serde_json::from_str(t.as_str()).expect("JSON frame"));
                }
                Message::Close(c) => panic!("the server closed the connection: {c:?}"),
                _ => continue,
            }
        }
    }

    /// Sends `frame` and returns the server's answer to it; notifications arriving meanwhile
    /// go to [`Conn::pushed`].
    pub async fn request(&mut self, frame: &str) -> Value {
        self.send_text(frame).await;
        loop {
            let f = self
                .next_frame(PATIENCE)
                .await
                .expect("an answer to the frame");
            if f["type"] == "notification" {
                self.pushed.push(f);
            } else {
                return f;
            }
        }
    }

    /// Waits (at most [`PATIENCE`]) for a pushed notification matching `pred`.
    pub async fn pushed_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(f) = self.pushed.iter().find(|f| pred(&f["notification"])) {
            return f.clone();
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self
                .next_frame(left)
                .await
                .expect("the notification was pushed");
            if f["type"] == "notification" {
                self.pushed.push(f.clone());
                if pred(&f["notification"]) {
                    return f;
                }
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Read to the server's close (its $disconnect runs after).
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(5), self.socket.next()).await
        {}
    }
}

/// What the management API posted so far (the local stack's record): connection id, status,
/// body.
pub async fn posts(stack: &Stack) -> Vec<Value> {
    let base = stack
        .realtime_management_url
        .clone()
        .expect("the management API");
    let root = base.rsplit_once('/').map(|(r, _)| r).unwrap_or(&base);
    let out: Value = reqwest::get(format!("{root}/_local/posts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    out.as_array().cloned().unwrap_or_default()
}
