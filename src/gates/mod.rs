//! Health gates: PromQL checks against Prometheus's HTTP API that decide whether a canary ramp
//! may advance.
//!
//! A gate renders its query for a [`GateContext`], runs it as an instant query and compares the one
//! number it returns with its thresholds: it passes iff (`min` is unset or value ≥ `min`) and
//! (`max` is unset or value ≤ `max`). A query that matches nothing, or returns NaN or ±Inf, gives
//! [`Verdict::NoData`]; a query Prometheus rejects is an error ([`GateError::Query`]), not a
//! failed check, so that a typo never counts against the new side.
//!
//! # Built-in gates
//!
//! Templates use `{{namespace}}` (the new, Istio side), `{{source_namespace}}` (the old, App Mesh
//! side), `{{service}}` (the Kubernetes Service name) and `{{window}}` (the gate's `window` as a
//! Prometheus duration, e.g. `1m`, `1m30s`).
//!
//! `success-rate`: the share of non-5xx responses the service received on the Istio side, from
//! the server-side (`reporter="destination"`) Istio standard metrics; `min = 0.99` unless `min` or
//! `max` is given.
//! ```promql
//! sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{namespace}}",destination_service_name="{{service}}",response_code!~"5.."}[{{window}}])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{namespace}}",destination_service_name="{{service}}"}[{{window}}]))
//! ```
//!
//! `latency-p99`: the 99th percentile request duration in milliseconds on the Istio side; needs
//! `max`.
//! ```promql
//! histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="{{namespace}}",destination_service_name="{{service}}"}[{{window}}])))
//! ```
//!
//! `query`: the plan's own PromQL with the same template variables; needs `min`, `max` or both.
//! It must return one number: a scalar or a one-series vector (aggregate with `sum(...)`).
//!
//! `comparative`: the Istio side's success rate (the `success-rate` query) against the App Mesh
//! side's, measured from the App Mesh Envoys' own statistics; passes iff
//! `istio ≥ appmesh − tolerance`. Either side without data gives no data. The App Mesh query
//! assumes the pods' metrics carry a `kubernetes_namespace` label, which the common Prometheus pod
//! scrape configuration (`kubernetes_sd_configs` role `pod` with the namespace relabelled) adds;
//! it counts every Envoy cluster in the namespace. When the gate sets `query`, that query (same
//! templates) replaces this one, e.g. to select one `envoy_cluster_name` or another label.
//! ```promql
//! sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="{{source_namespace}}",envoy_response_code_class!="5"}[{{window}}])) / sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="{{source_namespace}}"}[{{window}}]))
//! ```

mod prometheus;
pub mod queries;

pub use prometheus::{Absence, DEFAULT_TIMEOUT, Prometheus, Sample};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::{Gate, GateKind};
use queries::{TemplateError, Vars};

/// The `min` of a `success-rate` gate that sets neither `min` nor `max`.
pub const DEFAULT_SUCCESS_RATE_MIN: f64 = 0.99;

/// What can stop a gate from being evaluated (as opposed to failing).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Prometheus refused the query, e.g. a PromQL syntax error.
    #[error("Prometheus rejected the query `{query}`: {message}")]
    Query {
        /// The exact PromQL sent.
        query: String,
        /// Prometheus's own error message.
        message: String,
    },
    /// The query returned several series where a gate needs one number.
    #[error(
        "the query `{query}` returned {count} series, but a gate needs one number: aggregate them, e.g. with sum(...)"
    )]
    ManySeries {
        /// The exact PromQL sent.
        query: String,
        /// How many series came back.
        count: usize,
    },
    /// No connection to Prometheus could be made or kept.
    #[error("cannot reach Prometheus at {url}: {reason}")]
    Unreachable {
        /// The Prometheus URL.
        url: String,
        /// The transport error and its causes.
        reason: String,
    },
    /// Prometheus did not answer in time.
    #[error("Prometheus at {url} did not answer within {}s", timeout.as_secs_f64())]
    Timeout {
        /// The Prometheus URL.
        url: String,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// The answer is not what Prometheus's API documents.
    #[error("unexpected answer from Prometheus at {url} to `{query}`: {reason}")]
    Response {
        /// The Prometheus URL.
        url: String,
        /// The exact PromQL sent.
        query: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Prometheus URL cannot be used.
    #[error("invalid Prometheus URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A gate's query template cannot be rendered.
    #[error("gate `{gate}`: {source}")]
    Template {
        /// The gate's name.
        gate: String,
        /// What is wrong with the template.
        source: TemplateError,
    },
    /// A gate lacks a setting its kind needs (plan validation reports these first).
    #[error("gate `{gate}`: {reason}")]
    Incomplete {
        /// The gate's name.
        gate: String,
        /// The missing setting.
        reason: String,
    },
}

/// The outcome of one gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The value is within the thresholds.
    Pass,
    /// The value is outside the thresholds.
    Fail,
    /// There was nothing to compare.
    NoData,
}

/// One evaluation of one gate, as stored in the ramp state and shown by `meshplan status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The gate's name.
    pub gate: String,
    /// The gate's kind.
    pub kind: GateKind,
    /// The exact PromQL sent; for `comparative` the Istio query, a newline, the App Mesh query.
    pub query: String,
    /// The measured value (for `comparative`, the Istio side's success rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The App Mesh side's success rate (`comparative` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The lowest passing value in force (including the `success-rate` default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The highest passing value in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// How far below the App Mesh side the Istio side may be (`comparative` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Pass, fail or no data.
    pub verdict: Verdict,
    /// Why the gate failed or had no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the queries were evaluated, RFC 3339.
    pub at: String,
}

impl Evaluation {
    /// The measured value as shown to people (`no data` when there is none).
    pub fn shown_value(&self) -> String {
        self.value
            .map_or_else(|| "no data".to_owned(), |v| format!("{v:.6}"))
    }

    /// The thresholds in force, as shown to people (`min 0.99`, `max 250`, the App Mesh side).
    pub fn limits(&self) -> Vec<String> {
        let mut limits = Vec::new();
        if let Some(min) = self.min {
            limits.push(format!("min {min}"));
        }
        if let Some(max) = self.max {
            limits.push(format!("max {max}"));
        }
        if let (Some(baseline), Some(tolerance)) = (self.baseline, self.tolerance) {
            limits.push(format!(
                "App Mesh side {baseline:.6}, tolerance {tolerance}"
            ));
        }
        limits
    }
}

/// What a gate is evaluated for: the two sides of the migration and the instant.
#[derive(Debug, Clone)]
pub struct GateContext {
    /// The namespace of the new (Istio) side.
    pub namespace: String,
    /// The namespace of the old (App Mesh) side.
    pub source_namespace: String,
    /// The Kubernetes Service name of the workload whose traffic moves.
    pub service: String,
    /// The evaluation instant; now when `None`.
    pub at: Option<jiff::Timestamp>,
}

/// Evaluates one gate. Fail and no data are verdicts; an `Err` means the gate could not be
/// evaluated at all (bad query, Prometheus unreachable), and the ramp must not advance.
pub async fn evaluate(
    prom: &Prometheus,
    gate: &Gate,
    ctx: &GateContext,
) -> Result<Evaluation, GateError> {
    let at = ctx.at.unwrap_or_else(jiff::Timestamp::now);
    let window = gate.window.to_string();
    let vars = Vars {
        namespace: &ctx.namespace,
        source_namespace: &ctx.source_namespace,
        service: &ctx.service,
        window: &window,
    };
    let render = |template: &str| {
        queries::render(template, &vars).map_err(|source| GateError::Template {
            gate: gate.name.clone(),
            source,
        })
    };
    let incomplete = |reason: &str| GateError::Incomplete {
        gate: gate.name.clone(),
        reason: reason.to_owned(),
    };
    let mut evaluation = Evaluation {
        gate: gate.name.clone(),
        kind: gate.kind,
        query: String::new(),
        value: None,
        baseline: None,
        min: gate.min,
        max: gate.max,
        tolerance: None,
        verdict: Verdict::NoData,
        message: None,
        at: at.to_string(),
    };
    let template = match gate.kind {
        GateKind::SuccessRate => {
            if gate.min.is_none() && gate.max.is_none() {
                evaluation.min = Some(DEFAULT_SUCCESS_RATE_MIN);
            }
            queries::SUCCESS_RATE
        }
        GateKind::LatencyP99 => {
            if gate.max.is_none() {
                return Err(incomplete("a `latency-p99` gate needs `max`"));
            }
            queries::LATENCY_P99
        }
        GateKind::Query => {
            if gate.min.is_none() && gate.max.is_none() {
                return Err(incomplete("a `query` gate needs `min`, `max` or both"));
            }
            gate.query
                .as_deref()
                .ok_or_else(|| incomplete("a `query` gate needs `query`"))?
        }
        GateKind::Comparative => {
            let tolerance = gate
                .tolerance
                .ok_or_else(|| incomplete("a `comparative` gate needs `tolerance`"))?;
            let istio = render(queries::SUCCESS_RATE)?;
            let appmesh = render(
                gate.query
                    .as_deref()
                    .unwrap_or(queries::APPMESH_SUCCESS_RATE),
            )?;
            let istio_sample = prom.query(&istio, Some(at)).await?;
            let appmesh_sample = prom.query(&appmesh, Some(at)).await?;
            evaluation.query = format!("{istio}\n{appmesh}");
            evaluation.min = None;
            evaluation.max = None;
            evaluation.tolerance = Some(tolerance);
            evaluation.value = value(istio_sample);
            evaluation.baseline = value(appmesh_sample);
            (evaluation.verdict, evaluation.message) =
                comparative_verdict(istio_sample, appmesh_sample, tolerance);
            return Ok(evaluation);
        }
    };
    evaluation.query = render(template)?;
    let sample = prom.query(&evaluation.query, Some(at)).await?;
    evaluation.value = value(sample);
    (evaluation.verdict, evaluation.message) = match sample {
        Sample::Value(v) => threshold_verdict(v, evaluation.min, evaluation.max),
        Sample::NoData(absence) => (Verdict::NoData, Some(absence.to_string())),
    };
    Ok(evaluation)
}

/// Evaluates every gate at one instant (now, unless the context fixes one), in plan order; stops
/// at the first gate that cannot be evaluated.
pub async fn evaluate_all(
    prom: &Prometheus,
    gates: &[Gate],
    ctx: &GateContext,
) -> Result<Vec<Evaluation>, GateError> {
    let ctx = GateContext {
        at: Some(ctx.at.unwrap_or_else(jiff::Timestamp::now)),
        ..ctx.clone()
    };
    let mut evaluations = Vec::with_capacity(gates.len());
    for gate in gates {
        tracing::debug!(gate = %gate.name, "querying Prometheus for a gate");
        evaluations.push(evaluate(prom, gate, &ctx).await?);
    }
    Ok(evaluations)
}

fn value(sample: Sample) -> Option<f64> {
    match sample {
        Sample::Value(v) => Some(v),
        Sample::NoData(_) => None,
    }
}

/// Pass iff (`min` is unset or `value ≥ min`) and (`max` is unset or `value ≤ max`).
pub fn threshold_verdict(
    value: f64,
    min: Option<f64>,
    max: Option<f64>,
) -> (Verdict, Option<String>) {
    // A NaN bound passes nothing, as the comparison it stands for would.
    if let Some(min) = min
        && (value < min || min.is_nan())
    {
        return (
            Verdict::Fail,
            Some(format!(
                "{} is below the minimum {}",
                show(value),
                show(min)
            )),
        );
    }
    if let Some(max) = max
        && (value > max || max.is_nan())
    {
        return (
            Verdict::Fail,
            Some(format!(
                "{} is above the maximum {}",
                show(value),
                show(max)
            )),
        );
    }
    (Verdict::Pass, None)
}

/// Pass iff the Istio side's value is at least the App Mesh side's minus `tolerance`; no data
/// when either side has none.
pub fn comparative_verdict(
    istio: Sample,
    appmesh: Sample,
    tolerance: f64,
) -> (Verdict, Option<String>) {
    match (istio, appmesh) {
        (Sample::Value(istio), Sample::Value(appmesh)) => {
            if istio >= appmesh - tolerance {
                (Verdict::Pass, None)
            } else {
                (
                    Verdict::Fail,
                    Some(format!(
                        "the Istio success rate {} is below the App Mesh success rate {} minus \
                         the tolerance {}",
                        show(istio),
                        show(appmesh),
                        show(tolerance)
                    )),
                )
            }
        }
        (istio, appmesh) => {
            let mut reasons = Vec::new();
            if let Sample::NoData(absence) = istio {
                reasons.push(format!("Istio side: {absence}"));
            }
            if let Sample::NoData(absence) = appmesh {
                reasons.push(format!("App Mesh side: {absence}"));
            }
            (Verdict::NoData, Some(reasons.join("; ")))
        }
    }
}

/// A number for a message: six significant digits, so that 375.00000000000085 reads 375 (the
/// evaluation keeps the exact value).
fn show(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return value.to_string();
    }
    let decimals = (5 - value.abs().log10().floor() as i32).clamp(0, 17) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_inclusive_and_optional() {
        assert_eq!(threshold_verdict(0.99, Some(0.99), None).0, Verdict::Pass);
        assert_eq!(threshold_verdict(250.0, None, Some(250.0)).0, Verdict::Pass);
        assert_eq!(
            threshold_verdict(5.0, Some(1.0), Some(10.0)).0,
            Verdict::Pass
        );
        assert_eq!(threshold_verdict(5.0, None, None).0, Verdict::Pass);
        assert_eq!(
            threshold_verdict(0.98, Some(0.99), None),
            (
                Verdict::Fail,
                Some("0.98 is below the minimum 0.99".to_owned())
            )
        );
        assert_eq!(
            threshold_verdict(300.5, Some(0.0), Some(250.0)),
            (
                Verdict::Fail,
                Some("300.5 is above the maximum 250".to_owned())
            )
        );
    }

    #[test]
    fn messages_show_six_significant_digits() {
        for (value, text) in [
            (375.00000000000085, "375"),
            (0.995, "0.995"),
            (0.99499999999, "0.995"),
            (200.0 / 15.0, "13.3333"),
            (1234567.0, "1234567"),
            (0.000123456789, "0.000123457"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(show(value), text, "{value}");
        }
    }

    #[test]
    fn comparative_allows_the_tolerance_below_the_baseline() {
        let v = Sample::Value;
        assert_eq!(
            comparative_verdict(v(0.99), v(0.995), 0.01).0,
            Verdict::Pass
        );
        assert_eq!(comparative_verdict(v(1.0), v(0.5), 0.0).0, Verdict::Pass);
        let (verdict, message) = comparative_verdict(v(0.9), v(0.995), 0.01);
        assert_eq!(verdict, Verdict::Fail);
        assert_eq!(
            message.unwrap(),
            "the Istio success rate 0.9 is below the App Mesh success rate 0.995 minus the tolerance 0.01"
        );
    }

    #[test]
    fn comparative_without_data_on_either_side_is_no_data() {
        let none = Sample::NoData(Absence::NoSeries);
        let nan = Sample::NoData(Absence::NotANumber);
        assert_eq!(
            comparative_verdict(none, Sample::Value(1.0), 0.1),
            (
                Verdict::NoData,
                Some("Istio side: the query matched no series".to_owned())
            )
        );
        assert_eq!(
            comparative_verdict(Sample::Value(1.0), nan, 0.1).1.unwrap(),
            "App Mesh side: the value is NaN (no requests in the window?)"
        );
        assert_eq!(comparative_verdict(none, nan, 0.1).0, Verdict::NoData);
    }

    #[test]
    fn evaluations_serialise_for_the_ramp_state() {
        let evaluation = Evaluation {
            gate: "errors".into(),
            kind: GateKind::SuccessRate,
            query: "q".into(),
            value: Some(0.995),
            baseline: None,
            min: Some(0.99),
            max: None,
            tolerance: None,
            verdict: Verdict::NoData,
            message: None,
            at: "2026-01-01T00:00:00Z".into(),
        };
        let json = serde_json::to_value(&evaluation).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "gate": "errors", "kind": "success-rate", "query": "q", "value": 0.995,
                "min": 0.99, "verdict": "no-data", "at": "2026-01-01T00:00:00Z"
            })
        );
        let back: Evaluation = serde_json::from_value(json).unwrap();
        assert_eq!(back, evaluation);
    }

    #[test]
    fn the_docs_show_every_built_in_query() {
        let docs = [
            ("src/gates/mod.rs", include_str!("mod.rs")),
            ("README.md", include_str!("../../README.md")),
        ];
        for (file, text) in docs {
            for template in [
                queries::SUCCESS_RATE,
                queries::LATENCY_P99,
                queries::APPMESH_SUCCESS_RATE,
            ] {
                assert!(text.contains(template), "{file} does not show {template}");
            }
        }
    }
}
