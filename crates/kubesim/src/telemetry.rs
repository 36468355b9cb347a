//! Simulated mesh telemetry: synthetic Istio and App Mesh Envoy metrics for the pods kubesim runs,
//! served at `GET /metrics` in the Prometheus text format 0.0.4, so that a real Prometheus can
//! scrape them and health gates can be evaluated without a real mesh.
//!
//! The series are computed at scrape time from the store. Every running pod (phase `Running`, not
//! terminating) with an `istio-proxy` sidecar serves, for each Service of its namespace whose
//! non-empty `spec.selector` matches it, Istio's destination-side metrics:
//! `istio_requests_total{reporter="destination", destination_workload, destination_workload_namespace,
//! destination_service_name, destination_service_namespace, destination_service, response_code}`
//! (`200` and `503`) and the histogram `istio_request_duration_milliseconds` (same labels without
//! `response_code`). Pods of one workload add up into the same series. Every running pod with an
//! App Mesh `envoy` sidecar serves `envoy_cluster_upstream_rq_xx{kubernetes_namespace,
//! kubernetes_pod_name, envoy_cluster_name="cds_ingress_<ns>_<workload>_http_<port>",
//! envoy_response_code_class}` (`2` and `5`) and the histogram `envoy_cluster_upstream_rq_time`.
//! The workload is the owning Deployment, or the pod itself.
//!
//! Each pod serves `rps` requests per second (default 10), a fraction `errorRate` of them failing
//! (default 0), every one observed at `latencyMs` (default 20), as set per namespace with
//! [`Traffic::set`] or `POST /kubesim/traffic` (`{"namespace": "shop", "rps": 10, "errorRate": 0.5,
//! "latencyMs": 20}`; absent fields keep their value); `GET /kubesim/traffic` lists the settings,
//! `DELETE /kubesim/traffic` restores the defaults.
//!
//! Counters integrate their rate piecewise: every scrape and every settings change first advances
//! each series under the pods and settings in force since the previous one, so a change of rate
//! never makes a counter go back. A pod is counted from the first scrape that sees it; the series
//! of pods that are gone keep their last value.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Response, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector, labels_of};
use crate::server::{error_response, json_response};
use crate::store::Store;

/// The content type of the Prometheus text exposition format served at `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The finite histogram bucket bounds (`le`, milliseconds); a `+Inf` bucket follows them.
pub const BUCKETS_MS: [f64; 10] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// The Istio sidecar's container name.
const ISTIO_PROXY: &str = "istio-proxy";
/// The App Mesh sidecar's container name.
const APPMESH_ENVOY: &str = "envoy";

/// The simulated traffic of a namespace's pods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSettings {
    /// Requests per second each pod serves (0 silences the namespace).
    pub rps: f64,
    /// The fraction of requests that fail (`503` / class `5`), 0 to 1.
    pub error_rate: f64,
    /// The latency every request is observed at, in milliseconds.
    pub latency_ms: f64,
}

impl Default for TrafficSettings {
    fn default() -> Self {
        Self {
            rps: 10.0,
            error_rate: 0.0,
            latency_ms: 20.0,
        }
    }
}

/// Traffic settings out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid traffic settings: {0}")]
pub struct InvalidTraffic(String);

impl TrafficSettings {
    /// Checks the ranges: `rps` and `latencyMs` finite and non-negative, `errorRate` within 0..=1.
    pub fn validate(&self) -> Result<(), InvalidTraffic> {
        let non_negative = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(InvalidTraffic(format!(
                    "{name} must be a non-negative number, not {v}"
                )))
            }
        };
        non_negative("rps", self.rps)?;
        non_negative("latencyMs", self.latency_ms)?;
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(InvalidTraffic(format!(
                "errorRate must be between 0 and 1, not {}",
                self.error_rate
            )));
        }
        Ok(())
    }
}

/// A change to one namespace's traffic, the body of `POST /kubesim/traffic`; absent fields keep
/// their current value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficUpdate {
    /// The namespace whose pods the settings apply to.
    pub namespace: String,
    /// New requests per second per pod.
    #[serde(default)]
    pub rps: Option<f64>,
    /// New failing fraction.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// New latency in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<f64>,
}

/// A metric family kubesim serves; the order is the families' name order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    EnvoyRq,
    EnvoyRqTime,
    IstioDuration,
    IstioRequests,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::EnvoyRq => "envoy_cluster_upstream_rq_xx",
            Family::EnvoyRqTime => "envoy_cluster_upstream_rq_time",
            Family::IstioDuration => "istio_request_duration_milliseconds",
            Family::IstioRequests => "istio_requests_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Family::EnvoyRq => {
                "Total upstream requests by response code class (simulated by kubesim)."
            }
            Family::EnvoyRqTime => "Upstream request time in milliseconds (simulated by kubesim).",
            Family::IstioDuration => "Request duration in milliseconds (simulated by kubesim).",
            Family::IstioRequests => "Total requests by response code (simulated by kubesim).",
        }
    }

    fn histogram(self) -> bool {
        matches!(self, Family::EnvoyRqTime | Family::IstioDuration)
    }

    /// The label that tells successes from failures, and its two values.
    fn code_label(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Family::IstioRequests => ("response_code", "200", "503"),
            _ => ("envoy_response_code_class", "2", "5"),
        }
    }
}

/// One sample of a family: a counter's success or failure series, or a histogram part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sample {
    Success,
    Failure,
    /// The bucket `BUCKETS_MS[i]`, or `+Inf` when `i` is past the end.
    Bucket(usize),
    Sum,
    Count,
}

impl Sample {
    /// How much one request adds to this sample.
    fn per_request(self, s: &TrafficSettings) -> f64 {
        match self {
            Sample::Success => 1.0 - s.error_rate,
            Sample::Failure => s.error_rate,
            Sample::Bucket(i) => match BUCKETS_MS.get(i) {
                Some(le) if *le < s.latency_ms => 0.0,
                _ => 1.0,
            },
            Sample::Sum => s.latency_ms,
            Sample::Count => 1.0,
        }
    }

    const COUNTER: [Sample; 2] = [Sample::Success, Sample::Failure];

    fn histogram() -> impl Iterator<Item = Sample> {
        (0..=BUCKETS_MS.len())
            .map(Sample::Bucket)
            .chain([Sample::Sum, Sample::Count])
    }
}

/// Identifies a series; the derived order is the output order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    family: Family,
    /// The namespace whose settings drive the series.
    namespace: String,
    /// The labels besides the sample's own (`response_code`, `le`), in output order.
    labels: Vec<(&'static str, String)>,
    sample: Sample,
}

#[derive(Debug, Clone, Default)]
struct Series {
    value: f64,
    /// Running pods feeding the series since the last advance.
    pods: u32,
}

/// The meters behind the lock.
#[derive(Debug)]
struct Meters {
    settings: BTreeMap<String, TrafficSettings>,
    series: BTreeMap<SeriesKey, Series>,
    /// When the series were last advanced.
    last: Instant,
}

impl Meters {
    fn new(now: Instant) -> Self {
        Self {
            settings: BTreeMap::new(),
            series: BTreeMap::new(),
            last: now,
        }
    }

    fn settings_of(&self, namespace: &str) -> TrafficSettings {
        self.settings.get(namespace).copied().unwrap_or_default()
    }

    /// Adds what every series served between the last advance and `now`, under the pods and
    /// settings of that interval.
    fn advance(&mut self, now: Instant) {
        let seconds = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        for (key, series) in &mut self.series {
            let s = self
                .settings
                .get(&key.namespace)
                .copied()
                .unwrap_or_default();
            series.value += f64::from(series.pods) * s.rps * key.sample.per_request(&s) * seconds;
        }
    }

    fn set(&mut self, namespace: &str, settings: TrafficSettings, now: Instant) {
        self.advance(now);
        self.settings.insert(namespace.to_string(), settings);
    }

    fn reset(&mut self, now: Instant) {
        self.advance(now);
        self.settings.clear();
    }

    /// Advances, then records which series the running pods feed from now on: each key once per pod.
    fn observe(&mut self, now: Instant, fed: impl IntoIterator<Item = SeriesKey>) {
        self.advance(now);
        for series in self.series.values_mut() {
            series.pods = 0;
        }
        for key in fed {
            self.series.entry(key).or_default().pods += 1;
        }
    }

    /// The series in the text exposition format.
    fn render(&self) -> String {
        let mut out = String::new();
        let mut family = None;
        for (key, series) in &self.series {
            let f = key.family;
            if family != Some(f) {
                family = Some(f);
                let kind = if f.histogram() {
                    "histogram"
                } else {
                    "counter"
                };
                let _ = writeln!(out, "# HELP {} {}", f.name(), f.help());
                let _ = writeln!(out, "# TYPE {} {kind}", f.name());
            }
            let (code, ok, failed) = f.code_label();
            let (suffix, own) = match key.sample {
                Sample::Success => ("", Some((code, ok.to_string()))),
                Sample::Failure => ("", Some((code, failed.to_string()))),
                Sample::Bucket(i) => (
                    "_bucket",
                    Some((
                        "le",
                        BUCKETS_MS
                            .get(i)
                            .map_or_else(|| "+Inf".to_string(), f64::to_string),
                    )),
                ),
                Sample::Sum => ("_sum", None),
                Sample::Count => ("_count", None),
            };
            let labels: Vec<String> = key
                .labels
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain(own.as_ref().map(|(k, v)| (*k, v.as_str())))
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(
                out,
                "{}{suffix}{{{}}} {}",
                f.name(),
                labels.join(","),
                series.value
            );
        }
        out
    }
}

/// Escapes a label value for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The simulated traffic of a server: per-namespace settings and the counters they drive.
#[derive(Debug)]
pub struct Traffic {
    meters: Mutex<Meters>,
}

impl Default for Traffic {
    fn default() -> Self {
        Self::new()
    }
}

impl Traffic {
    /// No series yet, every namespace at the defaults.
    pub fn new() -> Self {
        Self {
            meters: Mutex::new(Meters::new(Instant::now())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Meters> {
        // Every update leaves the meters consistent, so a poisoned lock is still usable.
        self.meters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces a namespace's settings from now on.
    pub fn set(&self, namespace: &str, settings: TrafficSettings) -> Result<(), InvalidTraffic> {
        settings.validate()?;
        self.lock().set(namespace, settings, Instant::now());
        Ok(())
    }

    /// Applies the fields an update has and returns the namespace's new settings.
    pub fn update(&self, update: &TrafficUpdate) -> Result<TrafficSettings, InvalidTraffic> {
        if update.namespace.is_empty() {
            return Err(InvalidTraffic("namespace is required".into()));
        }
        let mut meters = self.lock();
        let mut s = meters.settings_of(&update.namespace);
        s.rps = update.rps.unwrap_or(s.rps);
        s.error_rate = update.error_rate.unwrap_or(s.error_rate);
        s.latency_ms = update.latency_ms.unwrap_or(s.latency_ms);
        s.validate()?;
        meters.set(&update.namespace, s, Instant::now());
        Ok(s)
    }

    /// The settings in force for a namespace.
    pub fn get(&self, namespace: &str) -> TrafficSettings {
        self.lock().settings_of(namespace)
    }

    /// The namespaces with settings of their own (the others have the defaults).
    pub fn settings(&self) -> BTreeMap<String, TrafficSettings> {
        self.lock().settings.clone()
    }

    /// Puts every namespace back to the defaults; counters keep their values.
    pub fn reset(&self) {
        self.lock().reset(Instant::now());
    }

    /// Advances the counters, takes in the store's running pods, and renders every series in the
    /// text exposition format.
    pub fn scrape(&self, store: &Store) -> String {
        let fed = fed_series(store);
        let mut meters = self.lock();
        meters.observe(Instant::now(), fed);
        meters.render()
    }
}

/// Lists every object of a built-in resource.
fn list_all(store: &Store, group: &str, plural: &str) -> Vec<std::sync::Arc<Value>> {
    let Some(res) = store.registry().find(group, "v1", plural).cloned() else {
        return vec![];
    };
    store
        .list(
            &res,
            None,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .0
}

/// The name of the object's controller of this kind.
fn controller<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["controller"] == true)?["name"]
        .as_str()
}

fn has_container(pod: &Value, name: &str) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == name))
}

/// The first port the application (not a sidecar) declares, 0 without one.
fn app_port(pod: &Value) -> u64 {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] != ISTIO_PROXY && c["name"] != APPMESH_ENVOY)
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find_map(|p| p["containerPort"].as_u64())
        .unwrap_or(0)
}

/// The series each running pod with a sidecar feeds, once per pod.
fn fed_series(store: &Store) -> Vec<SeriesKey> {
    let str_of = |o: &Value, f: &str| o["metadata"][f].as_str().unwrap_or_default().to_string();
    // ReplicaSet → owning Deployment, to name the pods' workload.
    let deployments: HashMap<(String, String), String> = list_all(store, "apps", "replicasets")
        .iter()
        .filter_map(|rs| {
            let d = controller(rs, "Deployment")?;
            Some(((str_of(rs, "namespace"), str_of(rs, "name")), d.to_string()))
        })
        .collect();
    let mut services: HashMap<String, Vec<(String, LabelSelector)>> = HashMap::new();
    for svc in list_all(store, "", "services") {
        let Some(selector) = svc["spec"]["selector"]
            .as_object()
            .filter(|m| !m.is_empty())
        else {
            continue;
        };
        // A selector the API accepted parses; one that does not selects nothing.
        let Ok(selector) = LabelSelector::from_json(&json!({"matchLabels": selector})) else {
            continue;
        };
        services
            .entry(str_of(&svc, "namespace"))
            .or_default()
            .push((str_of(&svc, "name"), selector));
    }
    let mut fed = Vec::new();
    for pod in list_all(store, "", "pods") {
        if pod["status"]["phase"] != "Running" || !pod["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let (ns, name) = (str_of(&pod, "namespace"), str_of(&pod, "name"));
        let workload = controller(&pod, "ReplicaSet")
            .and_then(|rs| deployments.get(&(ns.clone(), rs.to_string())))
            .cloned()
            .unwrap_or_else(|| name.clone());
        if has_container(&pod, ISTIO_PROXY) {
            let labels = labels_of(&pod);
            for (svc, selector) in services.get(&ns).into_iter().flatten() {
                if !selector.matches(&labels) {
                    continue;
                }
                let labels = vec![
                    ("reporter", "destination".to_string()),
                    ("destination_workload", workload.clone()),
                    ("destination_workload_namespace", ns.clone()),
                    ("destination_service_name", svc.clone()),
                    ("destination_service_namespace", ns.clone()),
                    (
                        "destination_service",
                        format!("{svc}.{ns}.svc.cluster.local"),
                    ),
                ];
                push_family(&mut fed, Family::IstioRequests, &ns, &labels);
                push_family(&mut fed, Family::IstioDuration, &ns, &labels);
            }
        }
        if has_container(&pod, APPMESH_ENVOY) {
            let labels = vec![
                ("kubernetes_namespace", ns.clone()),
                ("kubernetes_pod_name", name.clone()),
                (
                    "envoy_cluster_name",
                    format!("cds_ingress_{ns}_{workload}_http_{}", app_port(&pod)),
                ),
            ];
            push_family(&mut fed, Family::EnvoyRq, &ns, &labels);
            push_family(&mut fed, Family::EnvoyRqTime, &ns, &labels);
        }
    }
    fed
}

/// Pushes every sample of a family with these labels.
fn push_family(
    fed: &mut Vec<SeriesKey>,
    family: Family,
    namespace: &str,
    labels: &[(&'static str, String)],
) {
    let samples: Vec<Sample> = if family.histogram() {
        Sample::histogram().collect()
    } else {
        Sample::COUNTER.to_vec()
    };
    fed.extend(samples.into_iter().map(|sample| SeriesKey {
        family,
        namespace: namespace.to_string(),
        labels: labels.to_vec(),
        sample,
    }));
}

/// Serves `GET /metrics`.
pub fn metrics(traffic: &Traffic, store: &Store) -> Response<Body> {
    let mut r = Response::new(Body::from(traffic.scrape(store)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

fn settings_json(namespace: &str, s: &TrafficSettings) -> Value {
    json!({"namespace": namespace, "rps": s.rps, "errorRate": s.error_rate, "latencyMs": s.latency_ms})
}

/// Serves `/kubesim/traffic`: `GET` lists the settings (`{"defaults": {...}, "namespaces":
/// [{"namespace", "rps", "errorRate", "latencyMs"}]}`), `POST` applies a [`TrafficUpdate`] and
/// answers the namespace's new settings, `DELETE` restores the defaults everywhere.
pub fn admin(traffic: &Traffic, method: &Method, body: &[u8]) -> Response<Body> {
    match *method {
        Method::GET => {
            let namespaces: Vec<Value> = traffic
                .settings()
                .iter()
                .map(|(ns, s)| settings_json(ns, s))
                .collect();
            let d = TrafficSettings::default();
            json_response(
                200,
                &json!({"defaults": {"rps": d.rps, "errorRate": d.error_rate, "latencyMs": d.latency_ms},
                    "namespaces": namespaces}),
            )
        }
        Method::POST => match serde_json::from_slice::<TrafficUpdate>(body) {
            Ok(update) => match traffic.update(&update) {
                Ok(s) => json_response(200, &settings_json(&update.namespace, &s)),
                Err(e) => error_response(&ApiError::bad_request(e.to_string())),
            },
            Err(e) => error_response(&ApiError::bad_request(format!(
                "invalid traffic settings: {e}"
            ))),
        },
        Method::DELETE => {
            traffic.reset();
            json_response(200, &json!({}))
        }
        _ => error_response(&ApiError::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(family: Family, namespace: &str, sample: Sample) -> SeriesKey {
        SeriesKey {
            family,
            namespace: namespace.to_string(),
            labels: vec![("destination_workload", "web".to_string())],
            sample,
        }
    }

    fn value(m: &Meters, k: &SeriesKey) -> f64 {
        m.series[k].value
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Two pods of `ns` feed every sample of both Istio families.
    fn two_pods(ns: &str) -> Vec<SeriesKey> {
        let mut fed = Vec::new();
        for _ in 0..2 {
            for family in [Family::IstioRequests, Family::IstioDuration] {
                let labels = vec![("destination_workload", "web".to_string())];
                push_family(&mut fed, family, ns, &labels);
            }
        }
        fed
    }

    #[test]
    fn rate_changes_integrate_piecewise_and_never_decrease_counters() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut m = Meters::new(t0);
        let ok = key(Family::IstioRequests, "shop", Sample::Success);
        m.observe(t0, two_pods("shop"));
        assert_eq!(value(&m, &ok), 0.0);
        m.observe(at(10), two_pods("shop"));
        // 2 pods × 10 rps × 10 s.
        assert!(close(value(&m, &ok), 200.0));
        let mut last = value(&m, &ok);
        m.set(
            "shop",
            TrafficSettings {
                rps: 1.0,
                ..Default::default()
            },
            at(15),
        );
        assert!(
            close(value(&m, &ok), 300.0),
            "the old rate counts until the change"
        );
        for (t, rps) in [(20, 0.0), (30, 100.0), (31, 0.5)] {
            m.set(
                "shop",
                TrafficSettings {
                    rps,
                    ..Default::default()
                },
                at(t),
            );
            m.observe(at(t), two_pods("shop"));
            assert!(value(&m, &ok) >= last);
            last = value(&m, &ok);
        }
        // 300 + 2×1×5 (15–20 s) + 0 (20–30 s) + 2×100×1 (30–31 s).
        assert!(close(last, 510.0), "{last}");
        m.observe(at(35), []);
        m.observe(at(45), two_pods("shop"));
        assert!(
            close(value(&m, &ok), last + 2.0 * 4.0 * 0.5),
            "without pods the series stays"
        );
        m.reset(at(47));
        m.observe(at(48), two_pods("shop"));
        assert!(close(value(&m, &ok), 514.0 + 2.0 * 2.0 * 0.5 + 2.0 * 10.0));
        // Another namespace's settings leave this one alone.
        m.set(
            "other",
            TrafficSettings {
                rps: 1000.0,
                ..Default::default()
            },
            at(48),
        );
        m.observe(at(49), two_pods("shop"));
        assert!(close(value(&m, &ok), 536.0 + 20.0));
    }

    #[test]
    fn the_error_fraction_is_exact_after_a_change() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut m = Meters::new(t0);
        let ok = key(Family::IstioRequests, "shop", Sample::Success);
        let failed = key(Family::IstioRequests, "shop", Sample::Failure);
        m.observe(t0, two_pods("shop"));
        m.observe(at(5), two_pods("shop"));
        assert_eq!(value(&m, &failed), 0.0);
        let before = (value(&m, &ok), value(&m, &failed));
        m.set(
            "shop",
            TrafficSettings {
                error_rate: 0.25,
                ..Default::default()
            },
            at(5),
        );
        m.observe(at(9), two_pods("shop"));
        let ok_inc = value(&m, &ok) - before.0;
        let failed_inc = value(&m, &failed) - before.1;
        assert!(close(failed_inc / (ok_inc + failed_inc), 0.25));
        assert!(close(ok_inc + failed_inc, 2.0 * 10.0 * 4.0));
    }

    #[test]
    fn every_request_lands_in_the_buckets_at_or_above_its_latency() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut m = Meters::new(t0);
        let bucket = |le: f64| {
            let i = BUCKETS_MS
                .iter()
                .position(|b| *b == le)
                .unwrap_or(BUCKETS_MS.len());
            key(Family::IstioDuration, "shop", Sample::Bucket(i))
        };
        let sum = key(Family::IstioDuration, "shop", Sample::Sum);
        let count = key(Family::IstioDuration, "shop", Sample::Count);
        m.observe(t0, two_pods("shop"));
        m.observe(at(1), two_pods("shop"));
        // 20 requests at the default 20 ms.
        assert_eq!(value(&m, &bucket(10.0)), 0.0);
        assert!(close(value(&m, &bucket(25.0)), 20.0));
        assert!(close(value(&m, &bucket(f64::INFINITY)), 20.0));
        assert!(close(value(&m, &sum), 400.0));
        assert!(close(value(&m, &count), 20.0));
        // Exactly at a bound counts in that bucket (`le` is inclusive).
        m.set(
            "shop",
            TrafficSettings {
                latency_ms: 10.0,
                ..Default::default()
            },
            at(1),
        );
        m.observe(at(2), two_pods("shop"));
        assert!(close(value(&m, &bucket(5.0)), 0.0));
        assert!(close(value(&m, &bucket(10.0)), 20.0));
        assert!(close(value(&m, &bucket(25.0)), 40.0));
        assert!(close(value(&m, &sum), 600.0));
        assert!(close(value(&m, &count), 40.0));
        let text = m.render();
        assert!(
            text.contains(
                "istio_request_duration_milliseconds_bucket{destination_workload=\"web\",le=\"+Inf\"} 40\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn output_groups_families_and_orders_series() {
        let t0 = Instant::now();
        let mut m = Meters::new(t0);
        let mut fed = two_pods("b");
        fed.extend(two_pods("a"));
        push_family(
            &mut fed,
            Family::EnvoyRq,
            "a",
            &[("kubernetes_pod_name", "p\"1".to_string())],
        );
        m.observe(t0, fed);
        let text = m.render();
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(
            types,
            [
                "# TYPE envoy_cluster_upstream_rq_xx counter",
                "# TYPE istio_request_duration_milliseconds histogram",
                "# TYPE istio_requests_total counter",
            ]
        );
        assert!(text.contains(
            "envoy_cluster_upstream_rq_xx{kubernetes_pod_name=\"p\\\"1\",envoy_response_code_class=\"2\"} 0\n\
             envoy_cluster_upstream_rq_xx{kubernetes_pod_name=\"p\\\"1\",envoy_response_code_class=\"5\"} 0\n"
        ));
        let les: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("istio_request_duration_milliseconds_bucket"))
            .take(BUCKETS_MS.len() + 1)
            .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        assert_eq!(
            les,
            [
                "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "+Inf"
            ]
        );
    }

    #[test]
    fn updates_keep_absent_fields_and_refuse_out_of_range_values() {
        let traffic = Traffic::new();
        let update =
            |json: Value| traffic.update(&serde_json::from_value::<TrafficUpdate>(json).unwrap());
        let s = update(json!({"namespace": "shop", "errorRate": 0.5})).unwrap();
        assert_eq!(
            s,
            TrafficSettings {
                error_rate: 0.5,
                ..Default::default()
            }
        );
        let s = update(json!({"namespace": "shop", "rps": 0})).unwrap();
        assert_eq!((s.rps, s.error_rate, s.latency_ms), (0.0, 0.5, 20.0));
        assert!(update(json!({"namespace": "shop", "errorRate": 50})).is_err());
        assert!(update(json!({"namespace": "shop", "rps": -1})).is_err());
        assert!(update(json!({"namespace": ""})).is_err());
        assert!(serde_json::from_value::<TrafficUpdate>(json!({"rps": 1})).is_err());
        assert!(
            serde_json::from_value::<TrafficUpdate>(json!({"namespace": "a", "error": 1})).is_err()
        );
        assert_eq!(traffic.get("shop").error_rate, 0.5);
        assert_eq!(traffic.get("elsewhere"), TrafficSettings::default());
        traffic.reset();
        assert!(traffic.settings().is_empty());
    }
}
