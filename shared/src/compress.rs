//! Response compression (issue 19): a JSON body of at least [`MIN_BYTES`] goes out as gzip,
//! or as brotli from the functions that serve pages, when the request's `Accept-Encoding`
//! allows it (q-values honoured; gzip at equal weight: on this API's pages brotli q4 saves 2 %
//! more bytes for 3 × the CPU), with `Content-Encoding` and `Vary: Accept-Encoding`; anything
//! else is left as it is. Levels are chosen for a Lambda's CPU, not the smallest size: brotli
//! 4, gzip 5 (docs/performance.md has the bytes saved and the CPU per response).
//!
//! The brotli encoder is ~0.9 MB of code (its dictionary and tables), a third of a deploy zip:
//! only a function that hands [`brotli`] to its middleware (`shared::http::serve_pages`: list
//! and search pages, attendee and notification lists, the OpenAPI document) links it; the
//! others answer `br`-only clients uncompressed (decision 0017).

use std::io::Write;

use http::{HeaderValue, header};
use lambda_http::Body;

/// Smaller bodies are sent as they are: the saving is less than a packet, the CPU is not.
pub const MIN_BYTES: usize = 1024;

/// An encoding of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// An encoder of response bodies.
pub type Encoder = fn(&[u8]) -> std::io::Result<Vec<u8>>;

/// The encoding `accept` (an `Accept-Encoding` value) prefers among the ones we make (brotli
/// only when `with_brotli`: the function serves pages): the highest q, gzip on a tie (as small within 2 % on our pages, a
/// third of brotli's CPU: docs/performance.md); `None` when none is acceptable (q=0, or not
/// named and no `*`).
pub fn negotiate(accept: &str, with_brotli: bool) -> Option<Encoding> {
    let mut weights = [(Encoding::Gzip, None::<f32>), (Encoding::Brotli, None)];
    let mut star = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let name = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in pieces {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            if k.trim().eq_ignore_ascii_case("q") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        match name.as_str() {
            "gzip" | "x-gzip" => weights[0].1 = Some(q),
            "br" => weights[1].1 = Some(q),
            "*" => star = Some(q),
            _ => {}
        }
    }
    weights
        .iter()
        .filter(|(e, _)| with_brotli || *e != Encoding::Brotli)
        .map(|(e, q)| (*e, q.or(star).unwrap_or(0.0)))
        .filter(|(_, q)| *q > 0.0)
        .fold(None, |best: Option<(Encoding, f32)>, (e, q)| match best {
            Some((_, bq)) if bq >= q => best,
            _ => Some((e, q)),
        })
        .map(|(e, _)| e)
}

/// `body` encoded (for measurements: it links both encoders).
pub fn encode(encoding: Encoding, body: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Gzip => gzip(body),
        Encoding::Brotli => brotli(body),
    }
}

/// `body` as gzip, level 5.
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(5),
    );
    e.write_all(body)?;
    e.finish()
}

/// `body` as brotli, quality 4, a 4 MiB window.
pub fn brotli(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() / 4);
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 4, 22);
        w.write_all(body)?;
    }
    Ok(out)
}

/// Compresses `response` in place when `accept` allows and it is worth it: a JSON (or
/// problem+json) text body of [`MIN_BYTES`] or more, not already encoded; as brotli only when
/// the function gave its encoder. Always adds `Vary: Accept-Encoding` to a JSON response,
/// compressed or not (a cache must key on it).
pub fn response(
    accept: Option<&str>,
    brotli: Option<Encoder>,
    response: &mut lambda_http::Response<Body>,
) {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/json") || t.starts_with("application/problem+json")
        });
    // A 304 carries the Vary its 200 would (RFC 9110 15.4.5): a cache refreshing its stored
    // headers from it must keep keying on the encoding.
    if !json && response.status() != http::StatusCode::NOT_MODIFIED {
        return;
    }
    // One Vary header (API Gateway's payload 2.0 keeps one value per name).
    let mut names: Vec<&str> = response
        .headers()
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .collect();
    names.push("Accept-Encoding");
    let vary = HeaderValue::from_str(&names.join(", "))
        .unwrap_or(HeaderValue::from_static("Accept-Encoding"));
    response.headers_mut().insert(header::VARY, vary);
    if response.headers().contains_key(header::CONTENT_ENCODING) {
        return;
    }
    let Some(encoding) = accept.and_then(|a| negotiate(a, brotli.is_some())) else {
        return;
    };
    let Body::Text(text) = response.body() else {
        return;
    };
    if text.len() < MIN_BYTES {
        return;
    }
    let encoder = match (encoding, brotli) {
        (Encoding::Brotli, Some(brotli)) => brotli,
        _ => gzip,
    };
    let Ok(encoded) = encoder(text.as_bytes()) else {
        return;
    };
    metrics::counter!("ResponseBytesSaved")
        .increment(text.len().saturating_sub(encoded.len()) as u64);
    *response.body_mut() = Body::Binary(encoded);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(encoding.token()),
    );
    h.remove(header::CONTENT_LENGTH);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn accept_encoding_is_negotiated_with_its_weights() {
        assert_eq!(negotiate("gzip, deflate, br", true), Some(Encoding::Gzip));
        assert_eq!(negotiate("br, gzip;q=0.5", true), Some(Encoding::Brotli));
        assert_eq!(negotiate("br", true), Some(Encoding::Brotli));
        assert_eq!(negotiate("gzip", true), Some(Encoding::Gzip));
        assert_eq!(negotiate("br;q=0, gzip", true), Some(Encoding::Gzip));
        assert_eq!(
            negotiate("br;q=0.5, gzip;q=0.8", true),
            Some(Encoding::Gzip)
        );
        assert_eq!(negotiate("identity", true), None);
        assert_eq!(negotiate("*", true), Some(Encoding::Gzip));
        assert_eq!(negotiate("*;q=0", true), None);
        assert_eq!(negotiate("gzip;q=0, *", true), Some(Encoding::Brotli));
        assert_eq!(negotiate("GZIP;Q=1", true), Some(Encoding::Gzip));
        assert_eq!(negotiate("", true), None);
        assert_eq!(negotiate("br;q=nonsense", true), None);
        // A function without the brotli encoder: gzip when it is acceptable at all.
        assert_eq!(negotiate("br", false), None);
        assert_eq!(negotiate("br, gzip;q=0.5", false), Some(Encoding::Gzip));
        assert_eq!(negotiate("gzip;q=0, *", false), None);
        assert_eq!(negotiate("*", false), Some(Encoding::Gzip));
    }

    fn json_response(body: String) -> lambda_http::Response<Body> {
        let mut r = lambda_http::Response::new(Body::Text(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }

    #[test]
    fn a_large_json_body_is_compressed_and_decodes_to_itself() {
        let body = serde_json::to_string(&vec!["an event title, again"; 200]).unwrap();
        for (accept, token) in [("br", "br"), ("gzip", "gzip")] {
            let mut r = json_response(body.clone());
            response(Some(accept), Some(brotli), &mut r);
            assert_eq!(r.headers()[header::CONTENT_ENCODING], token);
            assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
            let Body::Binary(bytes) = r.body() else {
                panic!("not binary")
            };
            assert!(
                bytes.len() * 10 < body.len(),
                "{} of {}",
                bytes.len(),
                body.len()
            );
            let mut decoded = String::new();
            if token == "gzip" {
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut decoded)
                    .unwrap();
            } else {
                brotli::Decompressor::new(&bytes[..], 4096)
                    .read_to_string(&mut decoded)
                    .unwrap();
            }
            assert_eq!(decoded, body);
        }
    }

    #[test]
    fn small_bodies_other_types_and_refusals_are_left_alone() {
        let mut small = json_response("{\"a\":1}".into());
        small
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
        response(Some("br"), Some(brotli), &mut small);
        assert_eq!(small.headers()[header::VARY], "Origin, Accept-Encoding");
        assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
        let big = "x".repeat(4096);
        let mut none = json_response(format!("\"{big}\""));
        response(None, Some(brotli), &mut none);
        assert!(matches!(none.body(), Body::Text(_)));
        let mut not_modified = lambda_http::Response::new(Body::Empty);
        *not_modified.status_mut() = http::StatusCode::NOT_MODIFIED;
        response(Some("br"), None, &mut not_modified);
        assert_eq!(not_modified.headers()[header::VARY], "Accept-Encoding");
        let mut html = lambda_http::Response::new(Body::Text(big));
        response(Some("gzip"), Some(brotli), &mut html);
        assert!(matches!(html.body(), Body::Text(_)));
        assert!(html.headers().get(header::VARY).is_none());
        // Without the brotli encoder a br-only client gets the body as it is, a client that
        // also takes gzip gets gzip.
        for (accept, encoding) in [("br", None), ("br, gzip;q=0.1", Some("gzip"))] {
            let mut r = json_response(format!("\"{}\"", "y".repeat(4096)));
            response(Some(accept), None, &mut r);
            assert_eq!(
                r.headers()
                    .get(header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap()),
                encoding,
                "{accept}"
            );
        }
    }
}
