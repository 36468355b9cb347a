//! The parallel-namespace migration of the color app: the plan (clones, relocated routing, an
//! entry at 0 %), the CronJob that ramps it, and the whole migration on kubesim with a real
//! Prometheus scraping kubesim's simulated mesh telemetry.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{CrdSchemas, crds_dir, root};
use meshplan::cluster::Cluster;
use meshplan::object::ObjectRef;
use meshplan::pipeline;
use meshplan::plan::PlanFile;
use meshplan::steps::ChangeAction;
use serde_json::Value;

const SOURCE: &str = "howto-k8s-http2";
const TARGET: &str = "howto-k8s-http2-istio";

fn planned() -> pipeline::Planned {
    let plan = PlanFile::load(&root().join("plans/color-parallel.toml")).unwrap();
    pipeline::plan_offline(plan, None).unwrap()
}

fn created(planned: &pipeline::Planned) -> Vec<Value> {
    planned
        .graph
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .filter(|c| c.action == ChangeAction::Create)
        .filter_map(|c| c.after.clone())
        .collect()
}

#[test]
fn the_plan_clones_without_app_mesh_routes_in_the_new_namespace_and_enters_at_zero() {
    let planned = planned();
    let ids: Vec<&str> = planned.graph.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "preflight",
            "istio",
            "telemetry",
            "target-namespace",
            "clone-workloads",
            "routing",
            "peer-authentication",
            "rollout",
            "verify-sidecars",
            "entry"
        ]
    );
    let objects = created(&planned);
    let istio = CrdSchemas::load(&crds_dir().join("istio"));
    for object in &objects {
        let api = object["apiVersion"].as_str().unwrap();
        if api.contains("istio.io") {
            istio
                .validate(object)
                .unwrap_or_else(|e| panic!("{}: {e:?}", ObjectRef::of(object)));
        }
        if object["kind"] != "Telemetry" && object["kind"] != "Namespace" {
            assert_eq!(object["metadata"]["namespace"], TARGET, "{object}");
        }
        let text = object.to_string();
        assert!(!text.contains("appmesh.k8s.aws"), "App Mesh left in {text}");
        assert!(
            !text.contains(&format!(".{SOURCE}.svc")) || object["kind"] == "VirtualService",
            "old host in {text}"
        );
    }
    let deployments: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .collect();
    assert_eq!(deployments.len(), 4);
    for deployment in deployments {
        let containers = deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert!(containers.iter().all(|c| c["name"] != "envoy"));
    }
    let entry = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "color-entry")
        .unwrap();
    let route = entry["spec"]["http"][0]["route"].as_array().unwrap();
    let split: Vec<(&str, u64)> = route
        .iter()
        .map(|r| {
            (
                r["destination"]["host"].as_str().unwrap(),
                r["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        split,
        [
            ("color.howto-k8s-http2.svc.cluster.local", 100),
            ("color.howto-k8s-http2-istio.svc.cluster.local", 0)
        ]
    );
    // Nothing of the old side is changed or deleted by `apply`: the ramp finalizes.
    let summary = planned.graph.summary();
    assert_eq!((summary.update, summary.delete, summary.restart), (0, 0, 0));
    // Where the manifests were read from depends on the checkout; the rest is pinned.
    let mut planned = planned;
    planned.source = "examples/howto-k8s-http2".to_owned();
    insta::assert_snapshot!(meshplan::report::text::plan(
        &planned,
        meshplan::report::text::Palette::new(false)
    ));
}

#[test]
fn an_entry_naming_no_virtual_service_is_an_error_at_its_line() {
    let path = root().join("plans/color-parallel.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("service = \"color\"", "service = \"colour\"");
    let plan = PlanFile::parse(&path, text).unwrap();
    let error = pipeline::plan_offline(plan, None).unwrap_err();
    let shown = meshplan::report::diagnostic(&error, false);
    assert!(
        shown.contains("no App Mesh VirtualService `colour` in namespace `howto-k8s-http2`"),
        "{shown}"
    );
    assert!(shown.contains("color-parallel.toml:20"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cronjob_and_its_rbac_are_accepted_by_kubesim() {
    let plan = PlanFile::load(&root().join("plans/color-parallel.toml")).unwrap();
    let objects = meshplan::cronjob::objects(
        &plan,
        "registry.example.com/meshplan:0.1.0",
        "*/5 * * * *",
        None,
    )
    .unwrap();
    let server = common::color_cluster(Duration::from_millis(20)).await;
    server
        .load_yaml(
            "target",
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {TARGET}\n"),
        )
        .unwrap();
    let client = meshplan::cluster::connect_yaml(&server.kubeconfig_yaml())
        .await
        .unwrap();
    let cluster = Cluster::new(client);
    for object in &objects {
        cluster
            .apply(object)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", ObjectRef::of(object)));
    }
    let cronjob = cluster
        .get(&ObjectRef::new(
            "batch/v1",
            "CronJob",
            Some("default"),
            "meshplan-color-parallel-ramp",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let container = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!(["ramp", "/etc/meshplan/color-parallel.toml", "--in-cluster"])
    );
    // The plan in the ConfigMap is the plan, byte for byte: its fingerprint matches the journal's.
    let config = cluster
        .get(&ObjectRef::new(
            "v1",
            "ConfigMap",
            Some("default"),
            "meshplan-color-parallel-ramp-plan",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config["data"]["color-parallel.toml"], plan.text());
    insta::assert_snapshot!(
        meshplan::cronjob::manifests(
            &plan,
            "registry.example.com/meshplan:0.1.0",
            "*/5 * * * *",
            None
        )
        .unwrap()
    );
    // An in-place plan has no ramp to schedule.
    let in_place = PlanFile::load(&root().join("plans/color.toml")).unwrap();
    let refused = meshplan::cronjob::objects(&in_place, "i", "*/5 * * * *", None).unwrap_err();
    assert!(
        refused.to_string().contains("migrates in place"),
        "{refused}"
    );
    server.shutdown().await;
}

#[test]
fn a_gateway_api_entry_is_rehearsed_end_to_end() {
    let dir = std::env::temp_dir().join(format!("meshplan-gateway-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("color-parallel.toml");
    let text = std::fs::read_to_string(root().join("plans/color-parallel.toml"))
        .unwrap()
        .replace(
            "\"../examples/howto-k8s-http2\"",
            &format!("{:?}", root().join("examples/howto-k8s-http2")),
        )
        .replace("kind = \"istio-gateway\"", "kind = \"gateway-api\"")
        .replace("istio-system/ingressgateway", "gateways/public");
    std::fs::write(&plan, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(["apply", "--rehearse"])
        .arg(&plan)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{out}{err}");
    assert!(
        out.contains("+ HTTPRoute howto-k8s-http2-istio/color-entry"),
        "{out}"
    );
    assert!(
        out.contains("+ ReferenceGrant howto-k8s-http2/color-entry-from-howto-k8s-http2-istio"),
        "{out}"
    );
    assert!(err.contains("✓ entry"), "{err}");
    assert!(out.contains("namespace howto-k8s-http2-istio: "), "{out}");
    assert!(out.contains("istio-proxy"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `meshplan ARGS PLAN --kubeconfig K` in `dir`.
fn meshplan(dir: &Path, kubeconfig: &Path, args: &[&str], plan: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(args)
        .arg(plan)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs a ramp command and checks its exit code; returns what it printed.
fn ramp(dir: &Path, kubeconfig: &Path, plan: &Path, flag: Option<&str>, code: i32) -> String {
    let mut args = vec!["ramp"];
    args.extend(flag);
    let output = meshplan(dir, kubeconfig, &args, plan);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "ramp {flag:?}: {out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Waits, bounded, until Prometheus's success rate of the new side satisfies `ok`.
async fn success_rate_becomes(url: &str, ok: impl Fn(f64) -> bool) {
    use meshplan::gates::queries::{SUCCESS_RATE, Vars, render};
    use meshplan::gates::{Prometheus, Sample};
    let query = render(
        SUCCESS_RATE,
        &Vars {
            namespace: TARGET,
            source_namespace: SOURCE,
            service: "color",
            window: "10s",
        },
    )
    .unwrap();
    let prometheus = Prometheus::new(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let sample = prometheus.query(&query, None).await.unwrap();
        if let Sample::Value(v) = sample
            && ok(v)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the success rate stayed {sample:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn entry_weights(cluster: &Cluster) -> Vec<u64> {
    let entry = cluster
        .get(&ObjectRef::new(
            "networking.istio.io/v1",
            "VirtualService",
            Some(TARGET),
            "color-entry",
        ))
        .await
        .unwrap()
        .unwrap();
    entry["spec"]["http"][0]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["weight"].as_u64().unwrap())
        .collect()
}

/// Longer than the test plan's bake interval.
const BAKE: Duration = Duration::from_millis(1100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_color_app_migrates_in_parallel_and_ramps_on_real_gate_data() {
    use kubesim::TrafficSettings;
    let server = common::color_cluster(Duration::from_millis(20)).await;
    // Nothing reaches the new side at first: its gates have no data.
    let quiet = TrafficSettings {
        rps: 0.0,
        ..TrafficSettings::default()
    };
    server.traffic().set(TARGET, quiet).unwrap();
    let prometheus = common::prometheus::PrometheusServer::scraping(server.addr());
    let dir: PathBuf =
        std::env::temp_dir().join(format!("meshplan-parallel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    let plan = dir.join("color-parallel.toml");
    let text = std::fs::read_to_string(root().join("plans/color-parallel.toml"))
        .unwrap()
        .replace(
            "\"../examples/howto-k8s-http2\"",
            &format!("{:?}", root().join("examples/howto-k8s-http2")),
        )
        .replace("http://127.0.0.1:9090", &prometheus.url)
        .replace("interval = \"30s\"", "interval = \"1s\"")
        .replace("window = \"1m\"", "window = \"10s\"");
    std::fs::write(&plan, text).unwrap();
    let client = meshplan::cluster::connect(Some(&kubeconfig), None)
        .await
        .unwrap();
    let cluster = Cluster::new(client);

    let applied = meshplan(&dir, &kubeconfig, &["apply", "--auto-approve"], &plan);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(entry_weights(&cluster).await, [100, 0]);

    // 0 → 10 % needs no gate; then no data pauses the ramp.
    let out = ramp(&dir, &kubeconfig, &plan, None, 0);
    assert!(out.contains("0 % → 10 % new (advanced"), "{out}");
    tokio::time::sleep(BAKE).await;
    let out = ramp(&dir, &kubeconfig, &plan, None, 4);
    assert!(
        out.contains("no data for gate(s): success-rate, latency"),
        "{out}"
    );
    ramp(&dir, &kubeconfig, &plan, None, 4);

    // Half the new side's requests fail: one failed check holds, the second rolls back.
    let failing = TrafficSettings {
        rps: 20.0,
        error_rate: 0.5,
        ..TrafficSettings::default()
    };
    server.traffic().set(TARGET, failing).unwrap();
    success_rate_becomes(&prometheus.url, |v| v < 0.9).await;
    ramp(&dir, &kubeconfig, &plan, Some("--resume"), 0);
    tokio::time::sleep(BAKE).await;
    let out = ramp(&dir, &kubeconfig, &plan, None, 4);
    assert!(out.contains("gate(s) failed: success-rate"), "{out}");
    assert!(out.contains("✗ success-rate"), "{out}");
    let out = ramp(&dir, &kubeconfig, &plan, None, 3);
    assert!(out.contains("10 % → 0 % new (rolled-back"), "{out}");
    assert_eq!(entry_weights(&cluster).await, [100, 0]);
    ramp(&dir, &kubeconfig, &plan, None, 3);

    // Healthy again: resumed from 0 %, the ramp walks the steps and finalizes.
    let healthy = TrafficSettings {
        rps: 20.0,
        ..TrafficSettings::default()
    };
    server.traffic().set(TARGET, healthy).unwrap();
    success_rate_becomes(&prometheus.url, |v| v >= 0.999).await;
    ramp(&dir, &kubeconfig, &plan, Some("--resume"), 0);
    let out = ramp(&dir, &kubeconfig, &plan, None, 0);
    assert!(out.contains("0 % → 10 % new"), "{out}");
    for next in ["10 % → 50 % new", "50 % → 100 % new"] {
        tokio::time::sleep(BAKE).await;
        let out = ramp(&dir, &kubeconfig, &plan, None, 0);
        assert!(out.contains(next), "{out}");
        assert!(
            out.contains("✓ success-rate") && out.contains("✓ latency"),
            "{out}"
        );
    }
    assert_eq!(entry_weights(&cluster).await, [0, 100]);
    tokio::time::sleep(BAKE).await;
    let out = ramp(&dir, &kubeconfig, &plan, None, 0);
    assert!(out.contains("(completed; phase complete)"), "{out}");
    assert!(
        out.contains("deleted 6 App Mesh object(s) of the old side"),
        "{out}"
    );
    let router = cluster
        .get(&ObjectRef::new(
            "appmesh.k8s.aws/v1beta2",
            "VirtualRouter",
            Some(SOURCE),
            "color",
        ))
        .await
        .unwrap();
    assert!(router.is_none(), "the old side's App Mesh objects are gone");

    // Every evaluation is in the status, with its query, value and threshold.
    let status = meshplan(&dir, &kubeconfig, &["status"], &plan);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("Ramp: 100 % new, complete"), "{shown}");
    assert!(
        shown.contains("query: sum(rate(istio_requests_total"),
        "{shown}"
    );
    assert!(shown.contains("rolled-back"), "{shown}");
    drop(prometheus);
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
