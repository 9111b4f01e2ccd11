//! The one retry layer between this tool and the API server: a tower retry policy inside the kube
//! client (whose own default retry is switched off, so retries never nest). It retries what a
//! later attempt can fix (429, 5xx, connection errors and timeouts), waits what the server's
//! `Retry-After` asks (kube-apiserver answers overload with `Retry-After: 1`) or else backs off
//! exponentially, and gives up when the call's time budget or its attempts are spent. What it
//! gave up after is kept for the error message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use tower::retry::Policy;
use tower::BoxError;

/// What one call's retries came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub attempts: u32,
    pub elapsed: Duration,
}

/// Retry policy; cloned by tower for each request, so its counters are per call.
#[derive(Clone)]
pub struct Retry {
    /// How long one call may keep retrying.
    budget: Duration,
    max_attempts: u32,
    first_backoff: Duration,
    started: Option<Instant>,
    attempt: u32,
    /// The last call that needed more than one attempt (shared by all clones).
    last: Arc<Mutex<Option<Attempts>>>,
}

impl Retry {
    pub fn new(budget: Duration) -> Retry {
        Retry {
            budget,
            max_attempts: 8,
            first_backoff: Duration::from_millis(200),
            started: None,
            attempt: 1,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// A handle on what the last retried call came to.
    pub fn last(&self) -> Arc<Mutex<Option<Attempts>>> {
        self.last.clone()
    }

    fn backoff(&self) -> Duration {
        (self.first_backoff * 2u32.saturating_pow(self.attempt - 1)).min(Duration::from_secs(5))
    }

    fn record(&self) {
        if let Some(started) = self.started {
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Attempts {
                attempts: self.attempt,
                elapsed: started.elapsed(),
            });
        }
    }

    /// The pause before the next attempt, or `None` to give up now.
    fn next(&mut self, delay: Duration) -> Option<tokio::time::Sleep> {
        let started = *self.started.get_or_insert_with(Instant::now);
        if self.attempt >= self.max_attempts || started.elapsed() + delay > self.budget {
            self.record();
            return None;
        }
        self.attempt += 1;
        self.record();
        tracing::warn!(
            attempt = self.attempt,
            "transient Kubernetes API answer; retrying in {delay:?}"
        );
        Some(tokio::time::sleep(delay))
    }
}

/// The Status reason kube-apiserver gives an HTTP status (for answers that are not a Status, such
/// as an overloaded server's plain-text 429).
pub fn reason(code: u16) -> String {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| r.replace(' ', ""))
        .unwrap_or_else(|| "Error".to_string())
}

/// Whether an answer with this status may be different next time.
pub fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds, as kube-apiserver sends it.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for Retry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        let delay = match result {
            Ok(response) if retryable(response.status()) => {
                retry_after(response).unwrap_or_else(|| self.backoff())
            }
            Ok(_) => {
                if self.attempt > 1 {
                    self.record();
                }
                return None;
            }
            // Connection refused or reset, timeouts: the transport's errors.
            Err(_) => self.backoff(),
        };
        self.next(delay)
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        let body = req.body().try_clone()?;
        let mut builder = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(req.headers().clone());
        }
        builder.body(body).ok().map(|mut new| {
            *new.extensions_mut() = req.extensions().clone();
            new
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Result<Response<()>, BoxError> {
        let mut r = Response::builder().status(status);
        if let Some(v) = retry_after {
            r = r.header("Retry-After", v);
        }
        Ok(r.body(()).unwrap())
    }

    fn req() -> Request<Body> {
        Request::new(Body::empty())
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_and_stops_at_the_attempt_cap() {
        let mut p = Retry::new(Duration::from_secs(600));
        let last = p.last();
        let mut waited = Duration::ZERO;
        let mut retries = 0;
        while let Some(sleep) = p.retry(&mut req(), &mut answer(429, Some("1"))) {
            let before = tokio::time::Instant::now();
            sleep.await;
            waited += before.elapsed();
            retries += 1;
        }
        assert_eq!(retries, 7, "8 attempts in all");
        assert_eq!(waited, Duration::from_secs(7), "one second each, as asked");
        assert_eq!(last.lock().unwrap().unwrap().attempts, 8);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_the_time_spent() {
        let mut p = Retry::new(Duration::from_secs(2));
        let mut retries = 0;
        while let Some(sleep) = p.retry(&mut req(), &mut answer(503, None)) {
            sleep.await;
            retries += 1;
        }
        // 0.2 + 0.4 + 0.8 = 1.4 s; the next pause (1.6 s) would end past the 2 s budget.
        assert_eq!(retries, 3);
    }

    #[test]
    fn permanent_answers_are_not_retried() {
        for status in [200, 400, 401, 403, 404, 409, 422] {
            let mut p = Retry::new(Duration::from_secs(60));
            assert!(
                p.retry(&mut req(), &mut answer(status, None)).is_none(),
                "{status}"
            );
        }
    }
}
