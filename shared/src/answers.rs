//! The OpenAPI error answers, derived from the problem catalogue ([`crate::problem::problems`]):
//! an operation declares the problem types it answers with ([`crate::error_answers!`]), the
//! document builder adds those its shape implies (`ops::openapi::complete_errors`), and both go
//! through [`add`], so every error response is built one way: one response per status, its
//! description naming each problem type and what it means there, the list of types in
//! `x-problem-types` for clients, `Retry-After` where the answer carries it.

use std::collections::BTreeMap;

use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, schema::Type};

use crate::problem::{PROBLEM_JSON, ProblemType, problems};

/// The extension of an error response that lists its problem types (their URIs).
pub const PROBLEM_TYPES: &str = "x-problem-types";

/// An operation's responses, keyed by status.
pub type Responses = BTreeMap<String, RefOr<Response>>;

/// Whether an answer of `problem` carries `Retry-After`.
fn retries_after(problem: &ProblemType) -> bool {
    matches!(problem.status.as_u16(), 429 | 503)
        || problem.uri == problems::IDEMPOTENCY_IN_FLIGHT.uri
}

fn line(problem: &ProblemType, note: Option<&str>) -> String {
    format!("`{}`: {}", problem.uri, note.unwrap_or(problem.description))
}

fn retry_after() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(
            "Seconds to wait before sending the same request again",
        ))
        .build()
}

/// Adds `problem` to the answer of its status in `responses` (made if there is none), with
/// `note` saying what it means for this operation (else the catalogue's description). A type
/// the answer already names is left as it is, and so is an answer an operation wrote by hand
/// (one without [`PROBLEM_TYPES`]): its words stand.
pub fn add(responses: &mut Responses, problem: ProblemType, note: Option<&str>) {
    let status = problem.status.as_u16().to_string();
    let RefOr::T(r) = responses.entry(status).or_insert_with(|| {
        ResponseBuilder::new()
            .description("")
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .extensions(Some(
                ExtensionsBuilder::new()
                    .add(PROBLEM_TYPES, serde_json::json!([]))
                    .build(),
            ))
            .build()
            .into()
    }) else {
        return;
    };
    if retries_after(&problem) {
        r.headers
            .entry("Retry-After".to_owned())
            .or_insert_with(retry_after);
    }
    let Some(types) = r
        .extensions
        .as_mut()
        .and_then(|e| e.get_mut(PROBLEM_TYPES))
        .and_then(|t| t.as_array_mut())
    else {
        return;
    };
    if types.iter().any(|t| t == problem.uri) {
        return;
    }
    types.push(problem.uri.into());
    if !r.description.is_empty() {
        r.description.push(' ');
    }
    r.description.push_str(&line(&problem, note));
}

/// What a 401 of an operation that changes something means: it checks the caller's session
/// (in its transaction, [`crate::session::guard`], or with one consistent read), so a revoked
/// one is refused at once.
pub const SESSION_GUARDED: &str = "Missing or invalid token, or its session was revoked (logout, refresh reuse, a role or MFA change): a change checks the session at once";

/// What a 400 of a listing means: its cursor.
pub const BAD_CURSOR: &str = "A tampered, foreign or expired cursor";

/// The responses of `answers`: each problem type with what it means for the operation.
pub fn responses(answers: &[(ProblemType, Option<&str>)]) -> Responses {
    let mut out = Responses::new();
    for (problem, note) in answers {
        add(&mut out, *problem, *note);
    }
    out
}

/// Declares the error answers of an operation beyond those its shape implies: a type to name
/// in its `#[utoipa::path(responses(...))]`, listing catalogue entries
/// ([`crate::problem::problems`]), each with what it means for this operation when the
/// catalogue's words do not say enough:
///
/// ```ignore
/// shared::error_answers!(JoinErrors: ALREADY_JOINED, EVENT_NOT_JOINABLE => "Cancelled or started");
/// ```
#[macro_export]
macro_rules! error_answers {
    ($(#[$meta:meta])* $name:ident: $($problem:ident $(=> $note:expr)?),+ $(,)?) => {
        $(#[$meta])*
        pub struct $name;

        impl ::utoipa::IntoResponses for $name {
            fn responses() -> $crate::answers::Responses {
                $crate::answers::responses(&[
                    $(($crate::problem::problems::$problem, $crate::error_answers!(@note $($note)?))),+
                ])
            }
        }
    };
    (@note) => { None };
    (@note $note:expr) => { Some($note) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(r: &Responses, status: &str) -> String {
        match &r[status] {
            RefOr::T(r) => r.description.clone(),
            RefOr::Ref(_) => panic!("a reference"),
        }
    }

    #[test]
    fn one_answer_per_status_names_each_type_once_with_its_note() {
        let mut r = responses(&[
            (problems::ALREADY_JOINED, Some("already in")),
            (problems::EVENT_NOT_JOINABLE, None),
            (problems::NOT_FOUND, None),
        ]);
        add(&mut r, problems::ALREADY_JOINED, None);
        add(&mut r, problems::IDEMPOTENCY_IN_FLIGHT, None);
        assert_eq!(r.len(), 2);
        let conflict = description(&r, "409");
        assert!(
            conflict.starts_with(
                "`/problems/already-joined`: already in `/problems/event-not-joinable`: "
            ),
            "{conflict}"
        );
        assert_eq!(conflict.matches("already-joined").count(), 1);
        let RefOr::T(c) = &r["409"] else { panic!() };
        assert!(
            c.headers.contains_key("Retry-After"),
            "in flight says when to retry"
        );
        assert_eq!(
            c.extensions.as_ref().unwrap()[PROBLEM_TYPES]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let RefOr::T(n) = &r["404"] else { panic!() };
        assert!(!n.headers.contains_key("Retry-After"));
    }

    #[test]
    fn a_hand_written_answer_keeps_its_words() {
        let mut r = Responses::new();
        r.insert(
            "503".into(),
            ResponseBuilder::new()
                .description("A dependency failed")
                .build()
                .into(),
        );
        add(&mut r, problems::SERVICE_UNAVAILABLE, None);
        assert_eq!(description(&r, "503"), "A dependency failed");
    }
}
