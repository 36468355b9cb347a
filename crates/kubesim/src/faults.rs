//! Fault injection (status codes, latency, dropped connections) and request counters, usable from
//! Rust and through the admin endpoint `/kubesim/faults` and `/kubesim/counters`.
//!
//! A rule as JSON (all match fields optional):
//! `{"verb": "patch", "resource": "deployments", "namespace": "shop", "name": "web", "nth": 2,
//! "times": 1, "probability": 0.5, "seed": 7, "action": {"type": "status", "code": 503,
//! "retryAfter": 1}}`; other actions: `{"type": "throttle", "retryAfter": 1}` (plain-text 429),
//! `{"type": "latency", "millis": 200}`, `{"type": "drop"}`, `{"type": "dropAfter"}` (served, then
//! the response is lost). Counters count resource requests by
//! Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
//! `deletecollection`) and resource plural.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;
use crate::server::{App, error_response, json_response};

/// What a matching fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    /// Answer a JSON `Status` with this code (reason derived from the code).
    Status {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` seconds.
        #[serde(default, rename = "retryAfter")]
        retry_after: Option<u64>,
    },
    /// Answer 429 the way priority-and-fairness does: plain text with `Retry-After`.
    Throttle {
        /// `Retry-After` seconds.
        #[serde(rename = "retryAfter")]
        retry_after: u64,
    },
    /// Delay the request, then serve it normally.
    Latency {
        /// Milliseconds to wait.
        millis: u64,
    },
    /// Start a response and abort it, as a dropped connection.
    Drop,
    /// Serve the request, then abort the response: the server acted, but the client never hears
    /// of it (a connection lost mid-response; a retried create then meets AlreadyExists).
    DropAfter,
}

/// A fault rule; empty match fields match anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`).
    #[serde(default)]
    pub verb: Option<String>,
    /// Resource plural.
    #[serde(default)]
    pub resource: Option<String>,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default)]
    pub name: Option<String>,
    /// Fire only on the nth matching request (1-based).
    #[serde(default)]
    pub nth: Option<u64>,
    /// Fire at most this many times.
    #[serde(default)]
    pub times: Option<u64>,
    /// Fire with this probability (0..=1), drawn from a generator seeded with `seed`.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Seed for `probability`.
    #[serde(default)]
    pub seed: Option<u64>,
    /// What to do.
    pub action: Option<Action>,
}

#[derive(Debug, Default)]
struct Armed {
    rule: Rule,
    seen: u64,
    fired: u64,
    rng: u64,
}

/// Fault rules and counters.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Armed>>,
    counters: Mutex<BTreeMap<(String, String), u64>>,
    /// The part of `counters` sent with `dryRun=All`, which stores nothing.
    dry_runs: Mutex<BTreeMap<(String, String), u64>>,
}

/// What the server should do with a request.
pub enum Outcome {
    /// Serve normally.
    Pass,
    /// Wait, then serve normally.
    Delay(Duration),
    /// Answer this instead.
    Respond(Response<Body>),
    /// Wait, then answer this.
    DelayThenRespond(Duration, Response<Body>),
    /// Serve normally, then answer [`dropped`] instead.
    ServeThenDrop,
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

/// xorshift64*, enough for reproducible fault probabilities.
fn next_random(state: &mut u64) -> f64 {
    let mut x = if *state == 0 {
        0x9E37_79B9_7F4A_7C15
    } else {
        *state
    };
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, rule: Rule) {
        let rng = rule.seed.unwrap_or(1);
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Armed {
                rule,
                seen: 0,
                fired: 0,
                rng,
            });
    }

    /// Removes all rules.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Requests served so far, by (verb, resource).
    pub fn counters(&self) -> BTreeMap<(String, String), u64> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests sent with `dryRun=All` (also in [`Faults::counters`]), by verb and resource.
    pub fn dry_run_counters(&self) -> BTreeMap<(String, String), u64> {
        self.dry_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a `dryRun=All` request, besides [`Faults::check`] counting it as a request.
    pub fn count_dry_run(&self, verb: &str, resource: &str) {
        if !resource.is_empty() {
            *self
                .dry_runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((verb.to_string(), resource.to_string()))
                .or_default() += 1;
        }
    }

    /// Requests counted for a verb and resource.
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.counters()
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Counts the request (resource requests only; discovery and OpenAPI requests have an empty
    /// resource and are not counted) and decides what to do with it.
    pub fn check(&self, verb: &str, resource: &str, ns: &str, name: &str) -> Outcome {
        if !resource.is_empty() {
            *self
                .counters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((verb.to_string(), resource.to_string()))
                .or_default() += 1;
        }
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut delay = Duration::ZERO;
        for armed in rules.iter_mut() {
            let r = &armed.rule;
            let matches = r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource.as_deref().is_none_or(|v| v == resource)
                && r.namespace.as_deref().is_none_or(|v| v == ns)
                && r.name.as_deref().is_none_or(|v| v == name);
            if !matches {
                continue;
            }
            armed.seen += 1;
            if r.nth.is_some_and(|n| n != armed.seen) || r.times.is_some_and(|t| armed.fired >= t) {
                continue;
            }
            if let Some(p) = r.probability
                && next_random(&mut armed.rng) >= p
            {
                continue;
            }
            armed.fired += 1;
            match r.action.clone() {
                None => {}
                Some(Action::Latency { millis }) => delay += Duration::from_millis(millis),
                Some(Action::DropAfter) => return Outcome::ServeThenDrop,
                Some(action) => {
                    let resp = respond(action);
                    return if delay.is_zero() {
                        Outcome::Respond(resp)
                    } else {
                        Outcome::DelayThenRespond(delay, resp)
                    };
                }
            }
        }
        if delay.is_zero() {
            Outcome::Pass
        } else {
            Outcome::Delay(delay)
        }
    }
}

fn respond(action: Action) -> Response<Body> {
    match action {
        Action::Status { code, retry_after } => {
            let message = match code {
                429 => "Too many requests, please try again later.".to_string(),
                503 => "the server is currently unable to handle the request".to_string(),
                _ => format!("injected fault {code}"),
            };
            let mut e = ApiError::new(code, reason_for(code), message);
            e.retry_after = retry_after;
            if let Some(s) = retry_after {
                e.details = Some(Box::new(json!({"retryAfterSeconds": s})));
            }
            error_response(&e)
        }
        Action::Throttle { retry_after } => {
            let mut r = Response::new(Body::from("Too many requests, please try again later.\n"));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
            r
        }
        Action::Drop | Action::DropAfter | Action::Latency { .. } => dropped(),
    }
}

/// A response that starts and is aborted, as a dropped connection.
pub fn dropped() -> Response<Body> {
    let stream = tokio_stream::iter(vec![Err::<Bytes, std::io::Error>(std::io::Error::other(
        "injected dropped connection",
    ))]);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves the admin endpoints: `POST /kubesim/faults` (a Rule), `DELETE /kubesim/faults`,
/// `GET /kubesim/counters`, `POST /kubesim/compact` (forget watch history).
pub fn admin(app: &App, method: &Method, path: &str, body: &[u8]) -> Option<Response<Body>> {
    let rest = path.strip_prefix("/kubesim/")?;
    Some(match (method.clone(), rest) {
        (Method::POST, "faults") => add_from_json(app, body),
        (Method::GET, "counters") => {
            let dry_runs = app.faults.dry_run_counters();
            let list: Vec<_> = app
                .faults
                .counters()
                .into_iter()
                .map(|(key, count)| {
                    let dry_run = dry_runs.get(&key).copied().unwrap_or(0);
                    let (verb, resource) = key;
                    json!({"verb": verb, "resource": resource, "count": count, "dry_run": dry_run})
                })
                .collect();
            json_response(200, &json!({"counters": list}))
        }
        (Method::DELETE, "faults") => {
            app.faults.clear();
            json_response(200, &json!({}))
        }
        (Method::POST, "compact") => {
            app.store.compact();
            json_response(200, &json!({}))
        }
        _ => error_response(&ApiError::unknown_path()),
    })
}

/// Adds a fault rule from a JSON body (the admin endpoint's POST).
fn add_from_json(app: &App, body: &[u8]) -> Response<Body> {
    match serde_json::from_slice::<Rule>(body) {
        Ok(rule) => {
            app.faults.add(rule);
            json_response(201, &json!({}))
        }
        Err(e) => error_response(&ApiError::bad_request(format!("invalid fault rule: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_and_times_limit_firing() {
        let f = Faults::default();
        f.add(Rule {
            verb: Some("get".into()),
            nth: Some(2),
            action: Some(Action::Status {
                code: 503,
                retry_after: None,
            }),
            ..Default::default()
        });
        f.add(Rule {
            resource: Some("pods".into()),
            times: Some(1),
            action: Some(Action::Status {
                code: 500,
                retry_after: None,
            }),
            ..Default::default()
        });
        assert!(matches!(
            f.check("get", "deployments", "default", "a"),
            Outcome::Pass
        ));
        assert!(
            matches!(f.check("get", "deployments", "default", "a"), Outcome::Respond(r) if r.status() == 503)
        );
        assert!(matches!(
            f.check("get", "deployments", "default", "a"),
            Outcome::Pass
        ));
        assert!(
            matches!(f.check("list", "pods", "", ""), Outcome::Respond(r) if r.status() == 500)
        );
        assert!(matches!(f.check("list", "pods", "", ""), Outcome::Pass));
        assert_eq!(f.count("get", "deployments"), 3);
    }

    #[test]
    fn seeded_probability_is_reproducible() {
        let fire = |seed| {
            let f = Faults::default();
            f.add(Rule {
                probability: Some(0.5),
                seed: Some(seed),
                action: Some(Action::Status {
                    code: 500,
                    retry_after: None,
                }),
                ..Default::default()
            });
            (0..32)
                .map(|_| matches!(f.check("get", "pods", "", ""), Outcome::Respond(_)))
                .collect::<Vec<_>>()
        };
        assert_eq!(fire(7), fire(7));
        let hits = fire(7).into_iter().filter(|h| *h).count();
        assert!(hits > 4 && hits < 28, "{hits}");
    }
}
