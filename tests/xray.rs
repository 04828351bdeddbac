//! Reading traces back from the local stack's X-Ray (moto's X-Ray API, fed by the stack's
//! daemon stand-in) with the real SDK, as an operator's `aws xray batch-get-traces` would.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{PATIENCE, Stack};

/// One segment or subsegment of a trace, nested ones flattened (their parent is the document
/// that holds them).
#[derive(Debug, Clone)]
pub struct Piece {
    pub id: String,
    pub parent: Option<String>,
    pub name: String,
    /// A segment (a service's node), not a subsegment.
    pub segment: bool,
    pub start: f64,
    pub end: f64,
    /// The document itself, without its nested subsegments.
    pub doc: Value,
}

impl Piece {
    pub fn operation(&self) -> &str {
        self.doc["aws"]["operation"].as_str().unwrap_or("")
    }
    pub fn is_fault(&self) -> bool {
        self.doc["fault"] == true
    }
}

/// Every document X-Ray holds for one trace id.
#[derive(Debug, Default)]
pub struct Trace {
    pub id: String,
    pub pieces: Vec<Piece>,
}

impl Trace {
    /// The pieces whose parent is not in the trace: X-Ray shows them detached.
    pub fn orphans(&self) -> Vec<&Piece> {
        self.pieces
            .iter()
            .filter(|p| {
                p.parent
                    .as_ref()
                    .is_some_and(|parent| !self.pieces.iter().any(|q| &q.id == parent))
            })
            .collect()
    }

    /// Something arrived, and every piece's parent with it.
    pub fn is_whole(&self) -> bool {
        !self.pieces.is_empty() && self.orphans().is_empty()
    }

    pub fn find(&self, pred: impl Fn(&Piece) -> bool) -> Option<&Piece> {
        self.pieces.iter().find(|p| pred(p))
    }

    pub fn children_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Piece> + 'a {
        self.pieces
            .iter()
            .filter(move |p| p.parent.as_deref() == Some(id))
    }

    /// Whether `ancestor` is `piece` or above it.
    pub fn is_under(&self, piece: &Piece, ancestor: &str) -> bool {
        let mut at = Some(piece);
        for _ in 0..64 {
            match at {
                Some(p) if p.id == ancestor => return true,
                Some(p) => {
                    at = p
                        .parent
                        .as_deref()
                        .and_then(|id| self.pieces.iter().find(|q| q.id == id))
                }
                None => return false,
            }
        }
        false
    }

    /// The trace as the waterfall `make trace` prints (for assertion messages).
    pub fn waterfall(&self) -> String {
        let t0 = self
            .pieces
            .iter()
            .map(|p| p.start)
            .fold(f64::INFINITY, f64::min);
        let mut out = String::new();
        let mut sorted: Vec<&Piece> = self.pieces.iter().collect();
        sorted.sort_by(|a, b| a.start.total_cmp(&b.start));
        for p in sorted {
            out.push_str(&format!(
                "{:>9.1} ms {:>8.1} ms  {}{} {} {}{}\n",
                (p.start - t0) * 1e3,
                (p.end - p.start) * 1e3,
                if p.segment { "SEGMENT " } else { "  " },
                p.name,
                p.operation(),
                p.id,
                p.parent
                    .as_deref()
                    .map(|x| format!(" <- {x}"))
                    .unwrap_or_default()
            ));
        }
        out
    }
}

fn flatten(doc: &Value, parent: Option<&str>, segment: bool, out: &mut Vec<Piece>) {
    let id = doc["id"].as_str().unwrap_or_default().to_owned();
    let mut own = doc.clone();
    if let Some(o) = own.as_object_mut() {
        o.remove("subsegments");
    }
    let declared = doc["parent_id"].as_str().map(str::to_owned);
    out.push(Piece {
        id: id.clone(),
        parent: declared.or(parent.map(str::to_owned)),
        name: doc["name"].as_str().unwrap_or_default().to_owned(),
        segment,
        start: doc["start_time"].as_f64().unwrap_or_default(),
        end: doc["end_time"].as_f64().unwrap_or_default(),
        doc: own,
    });
    for sub in doc["subsegments"].as_array().into_iter().flatten() {
        flatten(sub, Some(&id), false, out);
    }
}

impl Stack {
    /// An X-Ray client of the stack's moto server (the real SDK).
    pub async fn xray(&self) -> aws_sdk_xray::Client {
        aws_sdk_xray::Client::new(&self.sdk().await)
    }

    /// What X-Ray holds for `trace_id` now (BatchGetTraces).
    pub async fn trace(&self, trace_id: &str) -> Trace {
        let out = self
            .xray()
            .await
            .batch_get_traces()
            .trace_ids(trace_id)
            .send()
            .await
            .expect("BatchGetTraces");
        let mut trace = Trace {
            id: trace_id.to_owned(),
            pieces: Vec::new(),
        };
        for t in out.traces() {
            for seg in t.segments() {
                let doc: Value =
                    serde_json::from_str(seg.document().unwrap_or("{}")).unwrap_or_default();
                let is_segment = doc["type"] != "subsegment";
                flatten(&doc, None, is_segment, &mut trace.pieces);
            }
        }
        trace
    }

    /// Waits (at most [`PATIENCE`]) until the trace satisfies `done` and is whole; returns it as
    /// it is then. Whole, because X-Ray's documents arrive in any order: each function sends
    /// its own when its invocation ends and the daemon forwards them in batches, so a consumer
    /// that ran while the request was still waiting (a hot join polls for its outcome) can be
    /// stored before the request's own segment and handler.
    pub async fn trace_until(&self, trace_id: &str, done: impl Fn(&Trace) -> bool) -> Trace {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let trace = self.trace(trace_id).await;
            if (done(&trace) && trace.is_whole()) || Instant::now() > deadline {
                return trace;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A new X-Ray trace id (`1-<epoch hex>-<24 hex>`), as a client or a load balancer makes one.
pub fn new_trace_id() -> String {
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "1-{epoch:08x}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    )
}
