//! A circuit breaker per dependency (DynamoDB, SQS, Secrets Manager) and per process, as an
//! interceptor on that dependency's SDK client (issue 12).
//!
//! Closed, it counts operations that failed for the dependency's sake after the SDK's own
//! retries — no answer (connection refused, timeout), a 5xx — and opens after
//! [`FAILURES_TO_OPEN`] of them within [`WINDOW`] when they are at least half of the operations
//! in that window (a busy instance with a few slow calls among many good ones stays closed). Open, every operation on that client fails at
//! once with [`CircuitOpen`] (a 503 with Retry-After to the client, `ApiError::internal`) instead
//! of each request waiting out the SDK's timeouts; requests that do not use the dependency are
//! unaffected. After [`OPEN_FOR`] one probe goes through (half-open): its success closes the
//! breaker, its failure opens it again. Each transition is logged and counted
//! (`CircuitTransitions`); `/readyz` reports every breaker's state.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

/// Failed operations within [`WINDOW`] that open the breaker.
pub const FAILURES_TO_OPEN: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(10);
/// How long the breaker stays open before a probe.
pub const OPEN_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe is in flight since `since`.
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Outcomes in the window: (when, failed).
    outcomes: VecDeque<(Instant, bool)>,
}

/// The refusal of an open breaker, in the SDK error's chain.
#[derive(Debug, thiserror::Error)]
#[error("circuit open: {0} kept failing; not calling it for now")]
pub struct CircuitOpen(pub &'static str);

/// One dependency's breaker; clones share the state.
#[derive(Debug, Clone)]
pub struct Breaker {
    name: &'static str,
    state: Arc<Mutex<State>>,
}

impl Breaker {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            state: Arc::new(Mutex::new(State {
                phase: Phase::Closed,
                outcomes: VecDeque::new(),
            })),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `closed`, `open` or `half-open`.
    pub fn state(&self) -> &'static str {
        match self.state.lock().expect("breaker lock").phase {
            Phase::Closed => "closed",
            Phase::Open { .. } => "open",
            Phase::HalfOpen { .. } => "half-open",
        }
    }

    fn transition(&self, to: &'static str) {
        metrics::counter!("CircuitTransitions", "dependency" => self.name, "to" => to).increment(1);
        tracing::warn!(dependency = self.name, to, "circuit breaker");
    }

    /// Whether an operation may go out now, at `now`.
    pub fn admit(&self, now: Instant) -> bool {
        let mut s = self.state.lock().expect("breaker lock");
        match s.phase {
            Phase::Closed => true,
            Phase::Open { until } if now < until => false,
            Phase::Open { .. } => {
                s.phase = Phase::HalfOpen { since: now };
                drop(s);
                self.transition("half-open");
                true
            }
            // A probe that never reported (its future was dropped) does not hold it forever.
            Phase::HalfOpen { since } if now.duration_since(since) > OPEN_FOR * 2 => {
                s.phase = Phase::HalfOpen { since: now };
                true
            }
            Phase::HalfOpen { .. } => false,
        }
    }

    /// The outcome of an admitted operation.
    pub fn record(&self, ok: bool, now: Instant) {
        let mut s = self.state.lock().expect("breaker lock");
        match (s.phase, ok) {
            (Phase::HalfOpen { .. }, true) => {
                s.phase = Phase::Closed;
                s.outcomes.clear();
                drop(s);
                self.transition("closed");
            }
            (Phase::HalfOpen { .. }, false) => {
                s.phase = Phase::Open {
                    until: now + OPEN_FOR,
                };
                drop(s);
                self.transition("open");
            }
            (Phase::Closed, ok) => {
                s.outcomes.push_back((now, !ok));
                while s
                    .outcomes
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
                {
                    s.outcomes.pop_front();
                }
                let failures = s.outcomes.iter().filter(|(_, failed)| *failed).count();
                if !ok && failures >= FAILURES_TO_OPEN && failures * 2 >= s.outcomes.len() {
                    s.phase = Phase::Open {
                        until: now + OPEN_FOR,
                    };
                    s.outcomes.clear();
                    drop(s);
                    self.transition("open");
                }
            }
            _ => {}
        }
    }
}

impl Intercept for Breaker {
    fn name(&self) -> &'static str {
        "CircuitBreaker"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if self.admit(Instant::now()) {
            Ok(())
        } else {
            metrics::counter!("CircuitRejected", "dependency" => self.name).increment(1);
            Err(Box::new(CircuitOpen(self.name)))
        }
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let failed = match context.output_or_error() {
            Some(Ok(_)) => false,
            // Refused here (open breaker, or another interceptor): not the dependency's doing.
            Some(Err(e)) if e.is_interceptor_error() => return Ok(()),
            Some(Err(e)) => {
                e.is_timeout_error()
                    || e.is_connector_error()
                    || e.is_response_error()
                    || context
                        .response()
                        .is_some_and(|r| r.status().as_u16() >= 500)
            }
            None => return Ok(()),
        };
        self.record(!failed, Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_open_it_a_probe_after_the_pause_closes_or_reopens_it() {
        let b = Breaker::new("dynamodb");
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(b.admit(t0));
            b.record(false, t0 + Duration::from_millis(i));
        }
        assert_eq!(b.state(), "closed", "four failures are not enough");
        b.record(false, t0 + Duration::from_millis(5));
        assert_eq!(b.state(), "open");
        assert!(
            !b.admit(t0 + Duration::from_secs(1)),
            "fails fast while open"
        );
        let later = t0 + OPEN_FOR + Duration::from_millis(10);
        assert!(b.admit(later), "one probe after the pause");
        assert_eq!(b.state(), "half-open");
        assert!(!b.admit(later), "only one probe at a time");
        b.record(false, later);
        assert_eq!(b.state(), "open", "a failed probe opens it again");
        let again = later + OPEN_FOR + Duration::from_millis(10);
        assert!(b.admit(again));
        b.record(true, again);
        assert_eq!(b.state(), "closed", "a good probe closes it");
        assert!(b.admit(again));
    }

    #[test]
    fn a_few_failures_among_many_successes_do_not_open_it() {
        let b = Breaker::new("dynamodb");
        let t0 = Instant::now();
        for i in 0..40u32 {
            b.record(i % 5 != 0, t0 + Duration::from_millis(i.into()));
        }
        assert_eq!(b.state(), "closed", "8 failures in 40 calls");
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_open_it() {
        let b = Breaker::new("sqs");
        let t0 = Instant::now();
        for i in 0..10u64 {
            b.record(false, t0 + WINDOW / 3 * i as u32);
        }
        assert_eq!(b.state(), "closed");
    }
}
