//! `meshplan verify`: checks that live traffic splits as the plan says. It sends GET requests,
//! counts the answers per backend and compares the counts with the expected weights by a
//! chi-square goodness-of-fit test.
//!
//! The statistics and the report are pure; [`sample`] is the only part that does I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};

use crate::pipeline::Planned;
use crate::plan::PlanFile;

/// Requests in flight at once.
pub const CONCURRENCY: u32 = 8;

/// Share of requests that may fail before the check fails regardless of the split.
pub const MAX_ERROR_RATE: f64 = 0.05;

/// The largest body read when looking for the backend's name.
const MAX_BODY: usize = 1024 * 1024;

/// Why the split cannot be checked.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VerifyError {
    /// Nothing says which weights to expect.
    #[error(
        "no expected weights for service `{0}`: the plan has no `[routing.{0}]` weights and the translation no VirtualService `{0}` with weighted routes"
    )]
    #[diagnostic(help(
        "set `[verify] service` to a `[routing.<service>]` key or a translated VirtualService"
    ))]
    NoWeights(String),
    /// The plan does not say which service to check.
    #[error(
        "`[verify] service` is not set and the plan does not have exactly one `[routing]` entry"
    )]
    NoService,
    /// The plan has no `[verify]` section, or it misses what the command line did not give.
    #[error("{0}")]
    Settings(String),
    /// The URL cannot be used.
    #[error("cannot send requests to {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// How backends are told apart in answers.
#[derive(Debug, Clone)]
pub enum Identify {
    /// By the value of a response header.
    Header(String),
    /// By the first capture group of a pattern on the body.
    Body(regex::Regex),
}

/// What to send and how to read the answers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The URL of the GET requests.
    pub url: String,
    /// How many.
    pub requests: u32,
    /// Time limit of one request.
    pub timeout: Duration,
    /// How the answering backend is named.
    pub identify: Identify,
}

/// What the requests brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Answers per backend name.
    pub backends: BTreeMap<String, u64>,
    /// Answers with a status outside 2xx.
    pub bad_status: u64,
    /// Requests that took longer than the time limit.
    pub timeouts: u64,
    /// Requests that failed to connect or to read.
    pub failed: u64,
    /// 2xx answers that did not name a backend.
    pub unnamed: u64,
}

/// One backend's line of the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Backend name.
    pub backend: String,
    /// Its expected weight.
    pub weight: u32,
    /// Answers counted.
    pub observed: u64,
    /// Answers expected from the weight.
    pub expected: f64,
}

/// The outcome of the test.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Backends with a weight, sorted by name.
    pub rows: Vec<Row>,
    /// Answers from backends without a weight.
    pub unknown: BTreeMap<String, u64>,
    /// Requests sent.
    pub requests: u64,
    /// Failed requests, unknown backends included.
    pub errors: u64,
    /// The chi-square statistic.
    pub chi_square: f64,
    /// Degrees of freedom (weighted backends minus one).
    pub degrees_of_freedom: u32,
    /// Probability of a split at least this far off if the weights hold.
    pub p_value: f64,
    /// Why the check failed; empty when it passed.
    pub failures: Vec<String>,
}

impl Verdict {
    /// True when the split matches and errors stay under the limit.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The service `verify` checks: `[verify] service`, else the plan's only `[routing]` entry.
pub fn service(plan: &PlanFile) -> Result<String, VerifyError> {
    let routing = &plan.spec.routing;
    match plan.spec.verify.as_ref().and_then(|v| v.service.clone()) {
        Some(s) => Ok(s),
        None if routing.len() == 1 => Ok(routing.keys().next().cloned().unwrap_or_default()),
        None => Err(VerifyError::NoService),
    }
}

/// The plan's own `[routing.<service>]` weights, when it sets them: then no translation is needed.
pub fn plan_weights(plan: &PlanFile, service: &str) -> Option<BTreeMap<String, u32>> {
    let routing = plan.spec.routing.get(service)?;
    (!routing.weights.is_empty()).then(|| {
        routing
            .weights
            .iter()
            .map(|(k, w)| (k.clone(), w.get().into()))
            .collect()
    })
}

/// The weights the plan expects for a service, by backend name: the plan's `[routing]`
/// weights, else the route weights by subset of the translated VirtualService.
pub fn expected_weights(
    planned: &Planned,
    service: &str,
) -> Result<BTreeMap<String, u32>, VerifyError> {
    if let Some(weights) = plan_weights(&planned.plan, service) {
        return Ok(weights);
    }
    let name = service.rsplit('/').next().unwrap_or(service);
    let mut weights = BTreeMap::new();
    // The translated routes, which the plan's routing step creates.
    let planned_objects = planned
        .graph
        .steps
        .iter()
        .filter(|s| s.id == "routing")
        .flat_map(|s| &s.changes)
        .filter(|c| c.action == crate::steps::ChangeAction::Create)
        .filter_map(|c| c.after.as_ref());
    for object in planned_objects
        .filter(|o| o["kind"] == "VirtualService" && o["metadata"]["name"].as_str() == Some(name))
    {
        for destination in object["spec"]["http"][0]["route"]
            .as_array()
            .into_iter()
            .flatten()
        {
            // For the color app the subsets are the pods' version labels, the backend names.
            let backend = destination["destination"]["subset"]
                .as_str()
                .or_else(|| {
                    destination["destination"]["host"]
                        .as_str()
                        .and_then(|h| h.split('.').next())
                })
                .unwrap_or_default();
            let weight = destination["weight"].as_u64().unwrap_or(100);
            *weights.entry(backend.to_owned()).or_default() +=
                u32::try_from(weight).unwrap_or(u32::MAX);
        }
    }
    if weights.is_empty() {
        return Err(VerifyError::NoWeights(service.to_owned()));
    }
    Ok(weights)
}

/// Compares the tally with the weights.
pub fn evaluate(weights: &BTreeMap<String, u32>, tally: &Tally, significance: f64) -> Verdict {
    let unknown: BTreeMap<String, u64> = tally
        .backends
        .iter()
        .filter(|(name, _)| !weights.contains_key(*name))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let weighted: Vec<(&String, u32)> = weights
        .iter()
        .filter(|(_, w)| **w > 0)
        .map(|(k, w)| (k, *w))
        .collect();
    let total_weight: u64 = weighted.iter().map(|(_, w)| u64::from(*w)).sum();
    let counted: u64 = weighted
        .iter()
        .map(|(name, _)| tally.backends.get(*name).copied().unwrap_or(0))
        .sum();
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    let mut chi_square = 0.0;
    for (name, weight) in weights {
        let observed = tally.backends.get(name).copied().unwrap_or(0);
        let expected = if total_weight == 0 {
            0.0
        } else {
            counted as f64 * f64::from(*weight) / total_weight as f64
        };
        if *weight == 0 && observed > 0 {
            failures.push(format!(
                "backend `{name}` has weight 0 but answered {observed} request(s)"
            ));
        }
        if expected > 0.0 {
            chi_square += (observed as f64 - expected).powi(2) / expected;
        }
        rows.push(Row {
            backend: name.clone(),
            weight: *weight,
            observed,
            expected,
        });
    }
    let degrees_of_freedom = u32::try_from(weighted.len().saturating_sub(1)).unwrap_or(u32::MAX);
    let p_value = if degrees_of_freedom == 0 {
        1.0
    } else {
        gamma_q(f64::from(degrees_of_freedom) / 2.0, chi_square / 2.0)
    };
    let requests = tally.backends.values().sum::<u64>()
        + tally.bad_status
        + tally.timeouts
        + tally.failed
        + tally.unnamed;
    let errors = tally.bad_status
        + tally.timeouts
        + tally.failed
        + tally.unnamed
        + unknown.values().sum::<u64>();
    if counted == 0 {
        failures.push("no answer came from a backend with a weight".to_owned());
    } else if p_value < significance {
        failures.push(format!(
            "the split differs from the weights: p = {p_value:.3e} < {significance}"
        ));
    }
    if requests > 0 && errors as f64 > MAX_ERROR_RATE * requests as f64 {
        failures.push(format!(
            "{errors} of {requests} requests failed (more than {:.0} %)",
            MAX_ERROR_RATE * 100.0
        ));
    }
    Verdict {
        rows,
        unknown,
        requests,
        errors,
        chi_square,
        degrees_of_freedom,
        p_value,
        failures,
    }
}

/// The verdict as a table for people.
pub fn report(service: &str, tally: &Tally, verdict: &Verdict) -> String {
    let mut out = format!(
        "Verify {service}: {} requests\n\n  {:<16} {:>7} {:>9} {:>10} {:>7}\n",
        verdict.requests, "backend", "weight", "observed", "expected", "share"
    );
    for row in &verdict.rows {
        let share = if verdict.requests == 0 {
            0.0
        } else {
            100.0 * row.observed as f64 / verdict.requests as f64
        };
        let _ = writeln!(
            out,
            "  {:<16} {:>7} {:>9} {:>10.1} {:>6.1}%",
            row.backend, row.weight, row.observed, row.expected, share
        );
    }
    for (name, count) in &verdict.unknown {
        let _ = writeln!(out, "  {name:<16} {:>7} {count:>9}  (unknown backend)", "-");
    }
    let _ = writeln!(
        out,
        "\n  errors: {} ({} non-2xx, {} timeouts, {} failed, {} without a backend name, {} from unknown backends)",
        verdict.errors,
        tally.bad_status,
        tally.timeouts,
        tally.failed,
        tally.unnamed,
        verdict.unknown.values().sum::<u64>()
    );
    let _ = writeln!(
        out,
        "  chi-square = {:.3}, degrees of freedom = {}, p-value = {:.4e}",
        verdict.chi_square, verdict.degrees_of_freedom, verdict.p_value
    );
    if verdict.passed() {
        let _ = writeln!(out, "\nPASS: the split matches the weights.");
    } else {
        let _ = writeln!(out, "\nFAIL:");
        for failure in &verdict.failures {
            let _ = writeln!(out, "  - {failure}");
        }
    }
    out
}

/// ln Γ(x) for x > 0 (Lanczos approximation, as in Numerical Recipes' `gammln`).
fn ln_gamma(x: f64) -> f64 {
    const COF: [f64; 6] = [
        76.180_091_729_471_46,
        -86.505_320_329_416_77,
        24.014_098_240_830_91,
        -1.231_739_572_450_155,
        0.001_208_650_973_866_179,
        -0.000_005_395_239_384_953,
    ];
    let tmp = x + 5.5;
    let tmp = tmp - (x + 0.5) * tmp.ln();
    let mut ser = 1.000_000_000_190_015;
    let mut y = x;
    for c in COF {
        y += 1.0;
        ser += c / y;
    }
    -tmp + (2.506_628_274_631_000_5 * ser / x).ln()
}

const EPS: f64 = 1e-15;
const MAX_ITERATIONS: usize = 1000;

/// The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a): the series for
/// P when x < a + 1, the continued fraction (modified Lentz) otherwise, where each converges fast.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let prefix = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut ap, mut sum) = (a, 1.0 / a);
        let mut del = sum;
        for _ in 0..MAX_ITERATIONS {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * EPS {
                break;
            }
        }
        (1.0 - sum * prefix).clamp(0.0, 1.0)
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITERATIONS {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < EPS {
                break;
            }
        }
        (prefix * h).clamp(0.0, 1.0)
    }
}

/// What one request brought back.
enum Answer {
    Backend(String),
    BadStatus,
    Timeout,
    Failed,
    Unnamed,
}

/// Sends the requests, [`CONCURRENCY`] at a time, and counts the answers. Each request is bounded
/// by the time limit, so the whole run takes at most `ceil(requests / CONCURRENCY)` limits.
pub async fn sample(settings: &Settings) -> Result<Tally, VerifyError> {
    let invalid = |reason: String| VerifyError::Url {
        url: settings.url.clone(),
        reason,
    };
    let uri: Uri = settings.url.parse().map_err(|e| invalid(format!("{e}")))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(invalid(
                "the URL must start with http:// or https://".into(),
            ));
        }
    };
    let client = crate::http::client(https).map_err(invalid)?;
    let next = Arc::new(AtomicU32::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY.min(settings.requests) {
        let (client, uri, next) = (client.clone(), uri.clone(), next.clone());
        let settings = settings.clone();
        workers.spawn(async move {
            let mut answers = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < settings.requests {
                answers.push(one(&client, &uri, &settings).await);
            }
            answers
        });
    }
    let mut tally = Tally::default();
    while let Some(answers) = workers.join_next().await {
        for answer in answers.unwrap_or_default() {
            match answer {
                Answer::Backend(name) => *tally.backends.entry(name).or_default() += 1,
                Answer::BadStatus => tally.bad_status += 1,
                Answer::Timeout => tally.timeouts += 1,
                Answer::Failed => tally.failed += 1,
                Answer::Unnamed => tally.unnamed += 1,
            }
        }
    }
    Ok(tally)
}

async fn one(client: &crate::http::HttpClient, uri: &Uri, settings: &Settings) -> Answer {
    let request = Request::builder()
        .method(Method::GET)
        .uri(uri.clone())
        .header(
            header::USER_AGENT,
            concat!("meshplan/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::new()))
        .expect("a request from a parsed URI and static headers is valid");
    let exchange = async {
        let response = client.request(request).await.map_err(|_| Answer::Failed)?;
        if !response.status().is_success() {
            return Err(Answer::BadStatus);
        }
        match &settings.identify {
            Identify::Header(name) => response
                .headers()
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| Answer::Backend(v.trim().to_owned()))
                .ok_or(Answer::Unnamed),
            Identify::Body(pattern) => {
                let body = Limited::new(response.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .map_err(|_| Answer::Failed)?
                    .to_bytes();
                let text = String::from_utf8_lossy(&body);
                pattern
                    .captures(&text)
                    .and_then(|c| c.get(1))
                    .map(|m| Answer::Backend(m.as_str().to_owned()))
                    .ok_or(Answer::Unnamed)
            }
        }
    };
    match tokio::time::timeout(settings.timeout, exchange).await {
        Ok(Ok(answer) | Err(answer)) => answer,
        Err(_) => Answer::Timeout,
    }
}

/// The verify settings a plan's `[verify]` section gives, with the command line's overrides.
pub fn settings(
    verify: Option<&crate::plan::Verify>,
    url: Option<String>,
    requests: Option<u32>,
    timeout: Option<Duration>,
) -> Result<Settings, VerifyError> {
    let section = verify.ok_or_else(|| {
        VerifyError::Settings(
            "the plan has no `[verify]` section saying how to tell backends apart \
             (`backend_header` or `backend_regex`)"
                .to_owned(),
        )
    })?;
    let url = url.or_else(|| section.url.clone()).ok_or_else(|| {
        VerifyError::Settings("no URL: pass --url or set `[verify] url`".to_owned())
    })?;
    let identify = match (&section.backend_header, &section.backend_regex) {
        (Some(header), _) => Identify::Header(header.to_lowercase()),
        (None, Some(pattern)) => Identify::Body(
            // Validation already compiled it.
            regex::Regex::new(pattern).map_err(|e| VerifyError::Settings(e.to_string()))?,
        ),
        (None, None) => {
            return Err(VerifyError::Settings(
                "`[verify]` needs `backend_header` or `backend_regex`".to_owned(),
            ));
        }
    };
    Ok(Settings {
        url,
        requests: requests.unwrap_or(section.requests),
        timeout: timeout.unwrap_or(section.timeout.0),
        identify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
    }

    #[test]
    fn upper_incomplete_gamma_matches_known_values() {
        // Q(1, x) = e^-x exactly.
        for x in [0.1, 1.0, 5.0, 30.0] {
            assert!(close(gamma_q(1.0, x), (-x).exp()), "Q(1,{x})");
        }
        // Chi-square survival functions (scipy.stats.chi2.sf): sf(x, k) = Q(k/2, x/2).
        let cases = [
            (3.841_458_820_694_124, 1.0, 0.05),
            (5.991_464_547_107_979, 2.0, 0.05),
            (9.210_340_371_976_182, 2.0, 0.01),
            (11.344_866_730_144_37, 3.0, 0.01),
            (1.0, 2.0, 0.606_530_659_712_633_4),
        ];
        for (x, k, p) in cases {
            let q = gamma_q(k / 2.0, x / 2.0);
            assert!((q - p).abs() < 1e-9, "sf({x}, {k}) = {q}, want {p}");
        }
        // Q(0.5, x) = erfc(sqrt(x)); erfc(2) = 0.004677734981047266.
        assert!((gamma_q(0.5, 4.0) - 0.004_677_734_981_047_266).abs() < 1e-12);
        assert_eq!(gamma_q(2.0, 0.0), 1.0);
    }

    fn tally(counts: &[(&str, u64)]) -> Tally {
        Tally {
            backends: counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Tally::default()
        }
    }

    fn weights(w: &[(&str, u32)]) -> BTreeMap<String, u32> {
        w.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn a_matching_split_passes_and_a_wrong_one_fails() {
        let w = weights(&[("red", 10), ("green", 40), ("blue", 50)]);
        let good = evaluate(
            &w,
            &tally(&[("red", 21), ("green", 79), ("blue", 100)]),
            0.01,
        );
        assert!(good.passed(), "{:?}", good.failures);
        assert_eq!(good.degrees_of_freedom, 2);
        let bad = evaluate(
            &w,
            &tally(&[("red", 68), ("green", 66), ("blue", 66)]),
            0.01,
        );
        assert!(!bad.passed());
        assert!(bad.p_value < 1e-10);
    }

    #[test]
    fn zero_weights_that_answer_and_too_many_errors_fail() {
        let w = weights(&[("red", 0), ("green", 100)]);
        let verdict = evaluate(&w, &tally(&[("red", 1), ("green", 99)]), 0.01);
        assert!(
            verdict.failures[0].contains("weight 0"),
            "{:?}",
            verdict.failures
        );
        let mut t = tally(&[("green", 90)]);
        t.bad_status = 10;
        let verdict = evaluate(&w, &t, 0.01);
        assert_eq!(verdict.errors, 10);
        assert!(!verdict.passed());
    }
}
