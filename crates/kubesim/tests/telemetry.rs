//! Simulated mesh telemetry: `/metrics` over HTTP, `/kubesim/traffic`, and a real Prometheus
//! scraping kubesim.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::plain_request;
use common::prometheus::Prometheus;
use serde_json::{Value, json};

const SHOP: &str = "
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio-injection: enabled
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.27
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
# Without a selector a Service selects no pods.
apiVersion: v1
kind: Service
metadata:
  name: external
  namespace: shop
spec:
  ports:
  - port: 80
";

const COLORS: &str = "
apiVersion: v1
kind: Namespace
metadata:
  name: colors
  labels:
    mesh: colors
    appmesh.k8s.aws/sidecarInjectorWebhook: enabled
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: colors
spec:
  namespaceSelector:
    matchLabels:
      mesh: colors
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata:
  name: red
  namespace: colors
spec:
  podSelector:
    matchLabels:
      app: red
  listeners:
  - portMapping:
      port: 8080
      protocol: http
  serviceDiscovery:
    dns:
      hostname: red.colors.svc.cluster.local
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: red
  namespace: colors
spec:
  replicas: 2
  selector:
    matchLabels:
      app: red
  template:
    metadata:
      labels:
        app: red
    spec:
      containers:
      - name: app
        image: example.com/color:1
        ports:
        - containerPort: 8080
";

/// One sample line of an exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of a text exposition (format 0.0.4).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("}"))),
                None => (series, BTreeMap::new()),
            };
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
            }
        })
        .collect()
}

fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label=\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        out.insert(name.to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    out
}

/// The values of the samples named `name` that carry all of `labels`.
fn values(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect()
}

/// The value of the single sample named `name` with `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    match values(samples, name, labels).as_slice() {
        [v] => *v,
        other => panic!("expected one {name} {labels:?} sample, found {other:?}"),
    }
}

async fn scrape(server: &kubesim::RunningServer) -> Vec<Sample> {
    let r = plain_request("GET", &format!("{}/metrics", server.url()), "")
        .await
        .expect("GET /metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    parse(&r.body)
}

async fn post_traffic(server: &kubesim::RunningServer, body: Value) -> Value {
    let r = plain_request(
        "POST",
        &format!("{}/kubesim/traffic", server.url()),
        &body.to_string(),
    )
    .await
    .expect("POST /kubesim/traffic");
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).expect("JSON")
}

/// Waits (at most 10 s) until `count` pods of the namespace run with the sidecar `container`.
async fn wait_for_pods(server: &kubesim::RunningServer, ns: &str, container: &str, count: usize) {
    let pods = server
        .store()
        .registry()
        .find("", "v1", "pods")
        .expect("pods are built in")
        .clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (items, _) =
            server
                .store()
                .list(&pods, Some(ns), &Default::default(), &Default::default());
        let running = items
            .iter()
            .filter(|p| {
                p["status"]["phase"] == "Running"
                    && p["spec"]["containers"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|c| c["name"] == container))
            })
            .count();
        if running == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{running} of {count} pods of {ns} run with {container} after 10 s: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WEB: [(&str, &str); 6] = [
    ("reporter", "destination"),
    ("destination_workload", "web"),
    ("destination_workload_namespace", "shop"),
    ("destination_service_name", "web"),
    ("destination_service_namespace", "shop"),
    ("destination_service", "web.shop.svc.cluster.local"),
];

fn requests(samples: &[Sample], code: &str) -> f64 {
    let mut labels = WEB.to_vec();
    labels.push(("response_code", code));
    value(samples, "istio_requests_total", &labels)
}

#[tokio::test(flavor = "multi_thread")]
async fn istio_series_grow_and_follow_the_error_rate() {
    // A token on the API: Prometheus scrapes /metrics without one.
    let server = kubesim::Server::builder()
        .rollout_delay(Duration::from_millis(10))
        .token("secret")
        .start()
        .await
        .unwrap();
    server.load_yaml("shop.yaml", SHOP).unwrap();
    wait_for_pods(&server, "shop", "istio-proxy", 2).await;

    let first = scrape(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = scrape(&server).await;
    assert!(requests(&second, "200") > requests(&first, "200"));
    assert_eq!(requests(&first, "503"), 0.0);
    assert_eq!(requests(&second, "503"), 0.0);
    // A Service without a selector has no series.
    assert!(
        values(
            &second,
            "istio_requests_total",
            &[("destination_service_name", "external")]
        )
        .is_empty()
    );
    // Every request is observed at the default 20 ms.
    let duration = |le: &str| {
        let mut labels = WEB.to_vec();
        labels.push(("le", le));
        value(
            &second,
            "istio_request_duration_milliseconds_bucket",
            &labels,
        )
    };
    let count = value(&second, "istio_request_duration_milliseconds_count", &WEB);
    assert!(count > 0.0);
    assert_eq!(duration("10"), 0.0);
    assert_eq!(duration("25"), count);
    assert_eq!(duration("+Inf"), count);
    let sum = value(&second, "istio_request_duration_milliseconds_sum", &WEB);
    assert!((sum - 20.0 * count).abs() < 1e-6 * sum, "{sum} {count}");

    let set = post_traffic(&server, json!({"namespace": "shop", "errorRate": 0.5})).await;
    assert_eq!(
        set,
        json!({"namespace": "shop", "rps": 10.0, "errorRate": 0.5, "latencyMs": 20.0})
    );
    let third = scrape(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fourth = scrape(&server).await;
    let ok = requests(&fourth, "200") - requests(&third, "200");
    let failed = requests(&fourth, "503") - requests(&third, "503");
    assert!(failed > 0.0);
    assert!(
        (failed - ok).abs() <= 0.01 * (ok + failed),
        "half the requests fail: {ok} ok, {failed} failed"
    );
    assert!(requests(&third, "200") >= requests(&second, "200"));

    let listed = plain_request("GET", &format!("{}/kubesim/traffic", server.url()), "")
        .await
        .unwrap();
    let listed: Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(listed["namespaces"], json!([set]));
    assert_eq!(listed["defaults"]["rps"], 10.0);

    // Silenced: the series stay, and stop growing.
    post_traffic(&server, json!({"namespace": "shop", "rps": 0})).await;
    let silent = scrape(&server).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let still = scrape(&server).await;
    assert_eq!(requests(&still, "200"), requests(&silent, "200"));
    assert_eq!(requests(&still, "503"), requests(&silent, "503"));

    // Out of range values are refused with a Status; DELETE restores the defaults.
    let bad = plain_request(
        "POST",
        &format!("{}/kubesim/traffic", server.url()),
        r#"{"namespace": "shop", "errorRate": 2}"#,
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    let deleted = plain_request("DELETE", &format!("{}/kubesim/traffic", server.url()), "")
        .await
        .unwrap();
    assert_eq!(deleted.status, 200);
    assert!(server.traffic().settings().is_empty());
    // The API itself still wants the token.
    let api = plain_request("GET", &format!("{}/api/v1/namespaces", server.url()), "")
        .await
        .unwrap();
    assert_eq!(api.status, 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn appmesh_pods_serve_envoy_series() {
    let server = common::server_with_crds().await;
    server.load_yaml("colors.yaml", COLORS).unwrap();
    wait_for_pods(&server, "colors", "envoy", 2).await;
    server
        .traffic()
        .set(
            "colors",
            kubesim::TrafficSettings {
                error_rate: 0.25,
                latency_ms: 120.0,
                ..Default::default()
            },
        )
        .unwrap();
    let first = scrape(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = scrape(&server).await;
    let cluster = [
        ("kubernetes_namespace", "colors"),
        ("envoy_cluster_name", "cds_ingress_colors_red_http_8080"),
    ];
    let class = |samples: &[Sample], c: &str| {
        let mut labels = cluster.to_vec();
        labels.push(("envoy_response_code_class", c));
        values(samples, "envoy_cluster_upstream_rq_xx", &labels)
    };
    // One series per pod.
    let (ok1, ok2) = (class(&first, "2"), class(&second, "2"));
    let (failed1, failed2) = (class(&first, "5"), class(&second, "5"));
    assert_eq!((ok2.len(), failed2.len()), (2, 2), "{second:#?}");
    for pod in 0..2 {
        let ok = ok2[pod] - ok1[pod];
        let failed = failed2[pod] - failed1[pod];
        assert!(ok > 0.0);
        assert!(
            (failed * 3.0 - ok).abs() <= 0.01 * ok,
            "{ok} ok, {failed} failed"
        );
    }
    let time = |le: &str| {
        let mut labels = cluster.to_vec();
        labels.push(("le", le));
        values(&second, "envoy_cluster_upstream_rq_time_bucket", &labels)
    };
    let counts = values(&second, "envoy_cluster_upstream_rq_time_count", &cluster);
    assert_eq!(time("100"), [0.0, 0.0]);
    assert_eq!(time("250"), counts);
    assert!(
        values(
            &second,
            "istio_requests_total",
            &[("destination_workload_namespace", "colors")]
        )
        .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_the_istio_series() {
    let server = kubesim::Server::builder()
        .rollout_delay(Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    server.load_yaml("shop.yaml", SHOP).unwrap();
    wait_for_pods(&server, "shop", "istio-proxy", 2).await;
    let prometheus = Prometheus::start(&[server.addr()], "/metrics").await;
    let query = r#"sum(rate(istio_requests_total{destination_workload_namespace="shop",response_code!~"5.."}[10s]))"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = prometheus.query(query).await;
        let rate = answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        if rate.is_some_and(|r| r > 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no request rate from Prometheus after 60 s.\nlast answer: {answer}\ntargets: {}\nlog: {}",
            prometheus.targets().await,
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(prometheus);
    server.shutdown().await;
}
