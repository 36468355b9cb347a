//! Health gates against a real Prometheus: deterministic data backfilled with promtool and
//! queried at a fixed instant, plus one live-scrape smoke test.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::prometheus::{OpenMetrics, PrometheusServer, Series, free_port};
use jiff::Timestamp;
use meshplan::gates::{
    self, Evaluation, GateContext, GateError, Prometheus, Sample, Verdict, queries,
};
use meshplan::plan::{Gate, GateKind};

/// Seconds between backfilled samples.
const STEP: i64 = 15;
/// Samples per backfilled series: ten minutes.
const POINTS: i64 = 41;
/// The evaluation instant, five minutes into the data.
const AT_OFFSET: i64 = 300;

/// The start of the backfilled data: a whole minute about three hours ago.
fn start() -> i64 {
    let now = Timestamp::now().as_second();
    (now - 3 * 3600) / 60 * 60
}

/// A counter growing by `per_step` every `STEP` seconds from `t0`.
fn counter(t0: i64, per_step: f64) -> Vec<(i64, f64)> {
    (0..POINTS)
        .map(|i| (t0 + i * STEP, i as f64 * per_step))
        .collect()
}

fn istio_requests(ns: &str, code: &str, t0: i64, per_step: f64) -> (&'static str, Series) {
    (
        "istio_requests_total",
        Series::new(
            &[
                ("reporter", "destination"),
                ("destination_workload_namespace", ns),
                ("destination_service_name", "color"),
                ("destination_workload", "color"),
                ("response_code", code),
            ],
            counter(t0, per_step),
        ),
    )
}

fn envoy_requests(ns: &str, class: &str, t0: i64, per_step: f64) -> (&'static str, Series) {
    (
        "envoy_cluster_upstream_rq_xx",
        Series::new(
            &[
                ("kubernetes_namespace", ns),
                ("envoy_cluster_name", "cds_ingress_howto-k8s-http2_color"),
                ("envoy_response_code_class", class),
            ],
            counter(t0, per_step),
        ),
    )
}

/// The fixture data, starting at `t0`:
/// - `color-istio`/`color`: 199 × 200 and 1 × 503 per step (success rate 0.995); latencies
///   with the 99th percentile at 375 ms (98 of 100 requests within 250 ms, all within 500 ms);
/// - `bad-istio`/`color`: 80 × 200 and 20 × 500 per step (success rate 0.8);
/// - `idle-istio`/`color`: counters that never move (0/0: NaN);
/// - App Mesh `color`: 999 × 2xx and 1 × 5xx per step (success rate 0.999).
fn fixture(t0: i64) -> OpenMetrics {
    let buckets = [
        ("50", 50.0),
        ("100", 90.0),
        ("250", 98.0),
        ("500", 100.0),
        ("1000", 100.0),
        ("+Inf", 100.0),
    ];
    let histogram = buckets
        .iter()
        .map(|(le, per_step)| {
            (
                "istio_request_duration_milliseconds_bucket",
                Series::new(
                    &[
                        ("reporter", "destination"),
                        ("destination_workload_namespace", "color-istio"),
                        ("destination_service_name", "color"),
                        ("le", le),
                    ],
                    counter(t0, *per_step),
                ),
            )
        })
        .collect();
    let mut data = OpenMetrics::default();
    data.family(
        "istio_requests_total",
        "counter",
        vec![
            istio_requests("color-istio", "200", t0, 199.0),
            istio_requests("color-istio", "503", t0, 1.0),
            istio_requests("bad-istio", "200", t0, 80.0),
            istio_requests("bad-istio", "500", t0, 20.0),
            istio_requests("idle-istio", "200", t0, 0.0),
        ],
    )
    .family(
        "istio_request_duration_milliseconds",
        "histogram",
        histogram,
    )
    .family(
        "envoy_cluster_upstream_rq_xx",
        "counter",
        vec![
            envoy_requests("color", "2", t0, 999.0),
            envoy_requests("color", "5", t0, 1.0),
        ],
    );
    data
}

/// A Prometheus holding the fixture, a client for it, and the evaluation instant.
fn backfilled() -> (PrometheusServer, Prometheus, Timestamp) {
    let t0 = start();
    let server = PrometheusServer::backfilled(&fixture(t0));
    let prom = Prometheus::new(&server.url).unwrap();
    (
        server,
        prom,
        Timestamp::from_second(t0 + AT_OFFSET).unwrap(),
    )
}

fn ctx(namespace: &str, source_namespace: &str, at: Timestamp) -> GateContext {
    GateContext {
        namespace: namespace.to_owned(),
        source_namespace: source_namespace.to_owned(),
        service: "color".to_owned(),
        at: Some(at),
    }
}

/// A gate written as in a plan's `[[ramp.gates]]`.
fn gate(toml_text: &str) -> Gate {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"))
}

fn assert_close(value: Option<f64>, expected: f64) {
    let value = value.expect("a value");
    assert!((value - expected).abs() < 1e-9, "{value} is not {expected}");
}

#[tokio::test]
async fn healthy_istio_traffic_passes_the_success_rate_gate() {
    let (_server, prom, at) = backfilled();
    let gate = gate("name = 'errors'\nkind = 'success-rate'");
    let evaluation = gates::evaluate(&prom, &gate, &ctx("color-istio", "color", at))
        .await
        .unwrap();
    assert_eq!(
        evaluation,
        Evaluation {
            gate: "errors".into(),
            kind: GateKind::SuccessRate,
            query: r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="color-istio",destination_service_name="color",response_code!~"5.."}[1m])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="color-istio",destination_service_name="color"}[1m]))"#.into(),
            value: Some(0.995),
            baseline: None,
            min: Some(0.99),
            max: None,
            tolerance: None,
            verdict: Verdict::Pass,
            message: None,
            at: at.to_string(),
        }
    );
}

#[tokio::test]
async fn five_xx_heavy_traffic_fails_the_success_rate_gate() {
    let (_server, prom, at) = backfilled();
    let gate = gate("name = 'errors'\nkind = 'success-rate'\nmin = 0.95");
    let evaluation = gates::evaluate(&prom, &gate, &ctx("bad-istio", "color", at))
        .await
        .unwrap();
    assert_eq!(evaluation.verdict, Verdict::Fail);
    assert_close(evaluation.value, 0.8);
    assert_eq!(evaluation.min, Some(0.95));
    assert_eq!(
        evaluation.message.as_deref(),
        Some("0.8 is below the minimum 0.95")
    );
}

#[tokio::test]
async fn a_namespace_without_series_or_without_requests_has_no_data() {
    let (_server, prom, at) = backfilled();
    let gate = gate("name = 'errors'\nkind = 'success-rate'");
    let empty = gates::evaluate(&prom, &gate, &ctx("nobody-istio", "color", at))
        .await
        .unwrap();
    assert_eq!(empty.verdict, Verdict::NoData);
    assert_eq!(empty.value, None);
    assert_eq!(
        empty.message.as_deref(),
        Some("the query matched no series")
    );
    // Series that exist but do not move: 0/0.
    let idle = gates::evaluate(&prom, &gate, &ctx("idle-istio", "color", at))
        .await
        .unwrap();
    assert_eq!(idle.verdict, Verdict::NoData);
    assert_eq!(
        idle.message.as_deref(),
        Some("the value is NaN (no requests in the window?)")
    );
}

#[tokio::test]
async fn latency_p99_passes_below_max_and_fails_above() {
    let (_server, prom, at) = backfilled();
    let ctx = ctx("color-istio", "color", at);
    let pass = gates::evaluate(
        &prom,
        &gate("name = 'latency'\nkind = 'latency-p99'\nmax = 400"),
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(pass.verdict, Verdict::Pass, "{pass:?}");
    assert_close(pass.value, 375.0);
    assert!(
        pass.query.starts_with(
            "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{"
        ),
        "{}",
        pass.query
    );
    let fail = gates::evaluate(
        &prom,
        &gate("name = 'latency'\nkind = 'latency-p99'\nmax = 300"),
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(fail.verdict, Verdict::Fail);
    assert_eq!(fail.max, Some(300.0));
    assert_eq!(
        fail.message.as_deref(),
        Some("375 is above the maximum 300")
    );
}

#[tokio::test]
async fn custom_queries_use_the_template_variables() {
    let (_server, prom, at) = backfilled();
    let ctx = ctx("color-istio", "color", at);
    let rate = gate(
        r#"
name = "traffic"
kind = "query"
query = 'sum(rate(istio_requests_total{destination_workload_namespace="{{namespace}}",destination_service_name="{{ service }}"}[{{window}}]))'
min = 10
window = "2m"
"#,
    );
    let evaluation = gates::evaluate(&prom, &rate, &ctx).await.unwrap();
    assert_eq!(
        evaluation.query,
        r#"sum(rate(istio_requests_total{destination_workload_namespace="color-istio",destination_service_name="color"}[2m]))"#
    );
    // 200 requests every 15 s.
    assert_close(evaluation.value, 200.0 / 15.0);
    assert_eq!(evaluation.verdict, Verdict::Pass);

    let source = gate(
        r#"
name = "app-mesh-traffic"
kind = "query"
query = 'sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="{{source_namespace}}"}[{{window}}]))'
max = 10
"#,
    );
    let evaluation = gates::evaluate(&prom, &source, &ctx).await.unwrap();
    assert_close(evaluation.value, 1000.0 / 15.0);
    assert_eq!(evaluation.verdict, Verdict::Fail);
}

#[tokio::test]
async fn comparative_holds_istio_to_app_mesh_within_the_tolerance() {
    let (_server, prom, at) = backfilled();
    let ctx = ctx("color-istio", "color", at);
    let loose = gate("name = 'vs-app-mesh'\nkind = 'comparative'\ntolerance = 0.01");
    let evaluation = gates::evaluate(&prom, &loose, &ctx).await.unwrap();
    assert_eq!(evaluation.verdict, Verdict::Pass, "{evaluation:?}");
    assert_close(evaluation.value, 0.995);
    assert_close(evaluation.baseline, 0.999);
    assert_eq!(evaluation.tolerance, Some(0.01));
    let expected_query = format!(
        "{}\n{}",
        queries::render(queries::SUCCESS_RATE, &vars("1m")).unwrap(),
        queries::render(queries::APPMESH_SUCCESS_RATE, &vars("1m")).unwrap()
    );
    assert_eq!(evaluation.query, expected_query);

    let strict = gate("name = 'vs-app-mesh'\nkind = 'comparative'\ntolerance = 0.001");
    let evaluation = gates::evaluate(&prom, &strict, &ctx).await.unwrap();
    assert_eq!(evaluation.verdict, Verdict::Fail);
    assert!(
        evaluation
            .message
            .as_deref()
            .unwrap()
            .starts_with("the Istio success rate 0.995 is below the App Mesh success rate 0.999"),
        "{evaluation:?}"
    );
}

#[tokio::test]
async fn comparative_with_its_own_app_mesh_query_and_without_data() {
    let (_server, prom, at) = backfilled();
    let custom = gate(
        r#"
name = "vs-app-mesh"
kind = "comparative"
tolerance = 0.01
query = 'sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="{{source_namespace}}",envoy_cluster_name=~"cds_ingress_.*",envoy_response_code_class="2"}[{{window}}])) / sum(rate(envoy_cluster_upstream_rq_xx{kubernetes_namespace="{{source_namespace}}",envoy_cluster_name=~"cds_ingress_.*"}[{{window}}]))'
"#,
    );
    let evaluation = gates::evaluate(&prom, &custom, &ctx("color-istio", "color", at))
        .await
        .unwrap();
    assert_eq!(evaluation.verdict, Verdict::Pass);
    assert_close(evaluation.baseline, 0.999);
    assert!(
        evaluation.query.ends_with(
            r#"{kubernetes_namespace="color",envoy_cluster_name=~"cds_ingress_.*"}[1m]))"#
        ),
        "{}",
        evaluation.query
    );

    // No App Mesh data in the source namespace: no verdict, whatever Istio says.
    let plain = gate("name = 'vs-app-mesh'\nkind = 'comparative'\ntolerance = 0.01");
    let evaluation = gates::evaluate(&prom, &plain, &ctx("color-istio", "elsewhere", at))
        .await
        .unwrap();
    assert_eq!(evaluation.verdict, Verdict::NoData);
    assert_close(evaluation.value, 0.995);
    assert_eq!(evaluation.baseline, None);
    assert_eq!(
        evaluation.message.as_deref(),
        Some("App Mesh side: the query matched no series")
    );
}

#[tokio::test]
async fn evaluate_all_keeps_plan_order_and_one_instant() {
    let (_server, prom, at) = backfilled();
    let gates_in_plan = [
        gate("name = 'latency'\nkind = 'latency-p99'\nmax = 400"),
        gate("name = 'errors'\nkind = 'success-rate'"),
        gate("name = 'vs-app-mesh'\nkind = 'comparative'\ntolerance = 0.01"),
    ];
    let evaluations = gates::evaluate_all(&prom, &gates_in_plan, &ctx("color-istio", "color", at))
        .await
        .unwrap();
    let names: Vec<&str> = evaluations.iter().map(|e| e.gate.as_str()).collect();
    assert_eq!(names, ["latency", "errors", "vs-app-mesh"]);
    assert!(evaluations.iter().all(|e| e.verdict == Verdict::Pass));
    assert!(evaluations.iter().all(|e| e.at == at.to_string()));
}

#[tokio::test]
async fn a_query_prometheus_rejects_is_an_error_with_its_message() {
    let (_server, prom, at) = backfilled();
    let broken = gate(
        "name = 'broken'\nkind = 'query'\nmin = 1\nquery = 'sum(rate(istio_requests_total[{{window}}])'",
    );
    let err = gates::evaluate(&prom, &broken, &ctx("color-istio", "color", at))
        .await
        .unwrap_err();
    let GateError::Query { query, message } = &err else {
        panic!("not a query error: {err:?}");
    };
    assert_eq!(query, "sum(rate(istio_requests_total[1m])");
    assert!(message.contains("parse error"), "{message}");
    let text = err.to_string();
    assert!(
        text.contains("sum(rate(istio_requests_total[1m])") && text.contains(message.as_str()),
        "{text}"
    );
}

#[tokio::test]
async fn several_series_must_be_aggregated() {
    let (_server, prom, at) = backfilled();
    let raw = gate(
        "name = 'raw'\nkind = 'query'\nmin = 0\nquery = 'istio_requests_total{destination_workload_namespace=\"{{namespace}}\"}'",
    );
    let err = gates::evaluate(&prom, &raw, &ctx("color-istio", "color", at))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GateError::ManySeries { count: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("sum(...)"), "{err}");
}

#[tokio::test]
async fn unknown_template_variables_are_errors_before_any_query() {
    let (_server, prom, at) = backfilled();
    let typo = gate("name = 'typo'\nkind = 'query'\nmin = 0\nquery = 'up{ns=\"{{ns}}\"}'");
    let err = gates::evaluate(&prom, &typo, &ctx("color-istio", "color", at))
        .await
        .unwrap_err();
    assert!(matches!(err, GateError::Template { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("gate `typo`: unknown template variable `{{ns}}`"),
        "{err}"
    );
}

#[tokio::test]
async fn gates_missing_what_their_kind_needs_are_refused_before_any_query() {
    // Nothing listens there: a query would be `Unreachable`.
    let prom = Prometheus::new(&format!("http://127.0.0.1:{}", free_port())).unwrap();
    let ctx = ctx("color-istio", "color", Timestamp::now());
    for (toml_text, reason) in [
        ("kind = 'latency-p99'", "a `latency-p99` gate needs `max`"),
        ("kind = 'query'\nmin = 1", "a `query` gate needs `query`"),
        (
            "kind = 'query'\nquery = 'vector(1)'",
            "a `query` gate needs `min`, `max` or both",
        ),
        (
            "kind = 'comparative'",
            "a `comparative` gate needs `tolerance`",
        ),
    ] {
        let err = gates::evaluate(&prom, &gate(&format!("name = 'g'\n{toml_text}")), &ctx)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), format!("gate `g`: {reason}"), "{err:?}");
    }
}

fn vars(window: &str) -> queries::Vars<'_> {
    queries::Vars {
        namespace: "color-istio",
        source_namespace: "color",
        service: "color",
        window,
    }
}

#[tokio::test]
async fn every_built_in_query_is_valid_promql() {
    let (_server, prom, at) = backfilled();
    for window in ["1m", "1m30s", "500ms", "1h30m"] {
        for template in [
            queries::SUCCESS_RATE,
            queries::LATENCY_P99,
            queries::APPMESH_SUCCESS_RATE,
        ] {
            let query = queries::render(template, &vars(window)).unwrap();
            match prom.query(&query, Some(at)).await {
                Ok(Sample::Value(_) | Sample::NoData(_)) => {}
                Err(err) => panic!("{query}: {err}"),
            }
        }
    }
    // And through the gates, whose windows come from plan durations.
    for (kind, threshold) in [
        ("success-rate", ""),
        ("latency-p99", "max = 1000"),
        ("comparative", "tolerance = 0.1"),
    ] {
        let gate = gate(&format!(
            "name = 'g'\nkind = '{kind}'\nwindow = '90s'\n{threshold}"
        ));
        gates::evaluate(&prom, &gate, &ctx("color-istio", "color", at))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[tokio::test]
async fn an_unreachable_prometheus_is_named() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let prom = Prometheus::new(&url).unwrap();
    let gate = gate("name = 'errors'\nkind = 'success-rate'");
    let err = gates::evaluate(&prom, &gate, &ctx("color-istio", "color", Timestamp::now()))
        .await
        .unwrap_err();
    let GateError::Unreachable { url: named, .. } = &err else {
        panic!("not unreachable: {err:?}");
    };
    assert_eq!(named, &url);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach Prometheus at {url}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn a_prometheus_that_never_answers_times_out() {
    // Connections are accepted by the kernel into the backlog; nobody ever answers them.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let prom = Prometheus::new(&url)
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let err = prom.query("vector(1)", None).await.unwrap_err();
    assert!(matches!(err, GateError::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("Prometheus at {url} did not answer within 0.3s")
    );
}

/// An exporter on loopback whose `istio_requests_total` counters grow at every scrape:
/// 199 successes and one 503 each time.
struct Exporter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    fn start() -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = AtomicU64::new(0);
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
                let labels = r#"reporter="destination",destination_workload_namespace="live-istio",destination_service_name="color""#;
                let body = format!(
                    "# TYPE istio_requests_total counter\n\
                     istio_requests_total{{{labels},response_code=\"200\"}} {}\n\
                     istio_requests_total{{{labels},response_code=\"503\"}} {n}\n",
                    n * 199
                );
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Exporter {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn live_scraped_traffic_passes_once_prometheus_has_it() {
    let exporter = Exporter::start();
    let server = PrometheusServer::scraping(exporter.addr);
    let prom = Prometheus::new(&server.url).unwrap();
    let gate = gate("name = 'errors'\nkind = 'success-rate'\nwindow = '10s'");
    let ctx = GateContext {
        at: None,
        ..ctx("live-istio", "color", Timestamp::now())
    };
    // Prometheus picks targets up in batches of a few seconds; the first rate comes some
    // seconds later. Poll, bounded.
    let deadline = Instant::now() + Duration::from_secs(45);
    let evaluation = loop {
        let evaluation = gates::evaluate(&prom, &gate, &ctx).await.unwrap();
        if evaluation.verdict != Verdict::NoData {
            break evaluation;
        }
        assert!(
            Instant::now() < deadline,
            "no data after 45 s; last evaluation: {evaluation:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(evaluation.verdict, Verdict::Pass, "{evaluation:?}");
    assert_close(evaluation.value, 0.995);
}
