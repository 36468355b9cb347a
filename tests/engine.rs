//! The in-place migration of the color app, executed against kubesim over HTTP: apply, apply
//! again (nothing to do), roll back (the cluster is as before).

mod common;

use std::time::Duration;

use common::root;
use meshplan::cluster::Cluster;
use meshplan::engine::{self, Event, Options};
use meshplan::object::ObjectRef;
use meshplan::pipeline;
use meshplan::plan::PlanFile;
use meshplan::state::Store;
use serde_json::Value;

async fn cluster() -> kubesim::RunningServer {
    common::color_cluster(Duration::from_millis(20)).await
}

/// `plans/color.toml`, planned offline.
fn color_planned() -> pipeline::Planned {
    let plan = PlanFile::load(&root().join("plans/color.toml")).unwrap();
    pipeline::plan_offline(plan, None).unwrap()
}

/// The step graph of `plans/color.toml`, planned offline.
fn color_graph() -> meshplan::steps::StepGraph {
    color_planned().graph
}

/// Engine options with the journal and lock in a fresh temporary folder.
fn options(name: &str) -> (std::path::PathBuf, Options) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = Options {
        concurrency: 4,
        rollout_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(20),
        store: Store::files(dir.join("color.state.json"), dir.join("color.lock")),
        stop: Default::default(),
        include_addon: false,
        scope: meshplan::scope::Scope::of(
            &PlanFile::load(&root().join("plans/color.toml"))
                .unwrap()
                .spec,
        ),
    };
    (dir, options)
}

/// A client of the simulated cluster.
async fn connected(server: &kubesim::RunningServer) -> Cluster {
    let client = meshplan::cluster::connect_yaml(&server.kubeconfig_yaml())
        .await
        .unwrap();
    Cluster::new(client)
}

/// The color app's App Mesh VirtualRouter in `ns`, if it is there.
async fn color_router(cluster: &Cluster, ns: Option<&str>) -> Option<Value> {
    get(
        cluster,
        "appmesh.k8s.aws/v1beta2",
        "VirtualRouter",
        ns,
        "color",
    )
    .await
}

/// Every pod of the color app runs the `with` proxy and not the `without` one.
async fn assert_sidecars(cluster: &Cluster, with: &str, without: &str) {
    for c in common::containers(cluster).await {
        let has = |name: &str| c.iter().any(|n| n == name);
        assert!(has(with) && !has(without), "{c:?}");
    }
}

async fn get(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> Option<Value> {
    cluster
        .get(&ObjectRef::new(api_version, kind, ns, name))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn color_app_migrates_in_place_and_rolls_back() {
    let server = cluster().await;
    let cluster = connected(&server).await;
    let (dir, options) = options("meshplan-engine");
    let graph = &color_graph();
    let events = std::sync::Mutex::new(Vec::new());
    let report = |e: Event| events.lock().unwrap().push(e);

    // Before: App Mesh sidecars.
    assert!(
        common::containers(&cluster)
            .await
            .iter()
            .all(|c| c.contains(&"envoy".to_owned()))
    );
    let service_before = get(&cluster, "v1", "Service", Some("howto-k8s-http2"), "color")
        .await
        .unwrap();

    let journal = engine::apply(&cluster, graph, "fp", &options, &report)
        .await
        .unwrap();
    assert!(journal.complete(), "{journal:?}");
    let vs = get(
        &cluster,
        "networking.istio.io/v1",
        "VirtualService",
        Some("howto-k8s-http2"),
        "color",
    )
    .await
    .unwrap();
    let weights: Vec<u64> = vs["spec"]["http"][0]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, [10, 40, 50]);
    assert!(
        get(
            &cluster,
            "networking.istio.io/v1",
            "DestinationRule",
            Some("howto-k8s-http2"),
            "color"
        )
        .await
        .is_some()
    );
    let service = get(&cluster, "v1", "Service", Some("howto-k8s-http2"), "color")
        .await
        .unwrap();
    assert_eq!(service["spec"]["selector"]["app"], "color");
    let namespace = get(&cluster, "v1", "Namespace", None, "howto-k8s-http2")
        .await
        .unwrap();
    assert_eq!(
        namespace["metadata"]["labels"]["istio-injection"],
        "enabled"
    );
    assert!(namespace["metadata"]["labels"].get("mesh").is_none());
    assert_sidecars(&cluster, "istio-proxy", "envoy").await;
    assert!(
        color_router(&cluster, Some("howto-k8s-http2"))
            .await
            .is_none()
    );
    assert!(!dir.join("color.lock").exists(), "the lock is released");
    // Rollout waits report replica counts as they go.
    assert!(
        events.lock().unwrap().iter().any(|e| matches!(
            e,
            Event::Progress(id, message) if id.starts_with("restart-") && message.contains("updated")
        )),
        "{:?}",
        events.lock().unwrap()
    );

    // Again: every step is already done.
    events.lock().unwrap().clear();
    engine::apply(&cluster, graph, "fp", &options, &report)
        .await
        .unwrap();
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .all(|e| matches!(e, Event::Skipped(_)))
    );

    // Rollback: App Mesh back, Istio objects gone, labels and selector as before, envoy back.
    engine::rollback(&cluster, "fp", None, &options, &report)
        .await
        .unwrap();
    assert!(
        color_router(&cluster, Some("howto-k8s-http2"))
            .await
            .is_some()
    );
    assert!(
        get(
            &cluster,
            "appmesh.k8s.aws/v1beta2",
            "VirtualNode",
            Some("howto-k8s-http2"),
            "red"
        )
        .await
        .is_some()
    );
    assert!(
        get(
            &cluster,
            "networking.istio.io/v1",
            "VirtualService",
            Some("howto-k8s-http2"),
            "color"
        )
        .await
        .is_none()
    );
    let namespace = get(&cluster, "v1", "Namespace", None, "howto-k8s-http2")
        .await
        .unwrap();
    assert_eq!(namespace["metadata"]["labels"]["mesh"], "howto-k8s-http2");
    assert!(
        namespace["metadata"]["labels"]
            .get("istio-injection")
            .is_none()
    );
    let service = get(&cluster, "v1", "Service", Some("howto-k8s-http2"), "color")
        .await
        .unwrap();
    assert_eq!(
        service["spec"].get("selector"),
        service_before["spec"].get("selector")
    );
    assert_sidecars(&cluster, "envoy", "istio-proxy").await;
    std::fs::remove_dir_all(&dir).unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_at_every_step_are_survived() {
    let server = cluster().await;
    let faults = [
        kubesim::Action::Status {
            code: 500,
            retry_after: None,
        },
        kubesim::Action::Status {
            code: 503,
            retry_after: Some(0),
        },
        kubesim::Action::Throttle { retry_after: 0 },
        kubesim::Action::Status {
            code: 409,
            retry_after: None,
        },
        kubesim::Action::Latency { millis: 20 },
        kubesim::Action::Drop,
    ];
    for (i, action) in faults.into_iter().enumerate() {
        server.faults().add(kubesim::Rule {
            probability: Some(0.08),
            seed: Some(7 + i as u64),
            action: Some(action),
            ..Default::default()
        });
    }
    let cluster = connected(&server).await;
    let (dir, options) = options("meshplan-faults");
    let journal = engine::apply(&cluster, &color_graph(), "fp", &options, &|_| {})
        .await
        .unwrap();
    assert!(journal.complete());
    server.faults().clear();
    let vs = get(
        &cluster,
        "networking.istio.io/v1",
        "VirtualService",
        Some("howto-k8s-http2"),
        "color",
    )
    .await;
    assert!(vs.is_some());
    assert_sidecars(&cluster, "istio-proxy", "envoy").await;
    std::fs::remove_dir_all(&dir).unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_a_step_keeps_it_and_what_came_before() {
    let server = cluster().await;
    let cluster = connected(&server).await;
    let (dir, options) = options("meshplan-rollback-to");
    engine::apply(&cluster, &color_graph(), "fp", &options, &|_| {})
        .await
        .unwrap();

    let unknown = engine::rollback(&cluster, "fp", Some("nope"), &options, &|_| {}).await;
    assert!(
        matches!(unknown, Err(engine::EngineError::UnknownStep { .. })),
        "{unknown:?}"
    );

    engine::rollback(&cluster, "fp", Some("routing"), &options, &|_| {})
        .await
        .unwrap();
    let ns = Some("howto-k8s-http2");
    // Kept: the routing step and those before it.
    assert!(
        get(
            &cluster,
            "networking.istio.io/v1",
            "VirtualService",
            ns,
            "color"
        )
        .await
        .is_some()
    );
    assert!(
        get(&cluster, "v1", "Service", ns, "color").await.unwrap()["spec"]["selector"]["app"]
            == "color"
    );
    // Undone: cleanup, restarts, relabel, peer authentication.
    assert!(color_router(&cluster, ns).await.is_some());
    assert!(
        get(
            &cluster,
            "security.istio.io/v1",
            "PeerAuthentication",
            ns,
            "default"
        )
        .await
        .is_none()
    );
    let namespace = get(&cluster, "v1", "Namespace", None, "howto-k8s-http2")
        .await
        .unwrap();
    assert_eq!(namespace["metadata"]["labels"]["mesh"], "howto-k8s-http2");
    assert_sidecars(&cluster, "envoy", "istio-proxy").await;
    std::fs::remove_dir_all(&dir).unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_without_the_istio_sidecar_fails_the_check_that_names_it() {
    let server = cluster().await;
    let cluster = connected(&server).await;
    // The red Deployment opts out of Istio's injection: once restarted, it runs no sidecar.
    let red = ObjectRef::new("apps/v1", "Deployment", Some("howto-k8s-http2"), "red");
    cluster
        .merge(
            &red,
            &serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
                "sidecar.istio.io/inject": "false"}}}}}),
        )
        .await
        .unwrap();
    let (dir, options) = options("meshplan-engine-no-sidecar");
    let err = engine::apply(&cluster, &color_graph(), "fp", &options, &|_| {})
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message
            .starts_with("step `verify-sidecars-howto-k8s-http2` failed: pod howto-k8s-http2/red-"),
        "{message}"
    );
    assert!(
        message.ends_with(
            " of Deployment red runs [\"app\"]: expected istio-proxy and no App Mesh envoy"
        ),
        "{message}"
    );
    // Nothing after the check ran: App Mesh is still there.
    assert!(
        color_router(&cluster, Some("howto-k8s-http2"))
            .await
            .is_some()
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The preview renders, while it waits on the server, the diff of every object it dry-runs and
/// of every deleted object, as the plan's text would; the text takes them as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_renders_the_diffs_of_what_it_dry_runs_and_deletes() {
    use meshplan::diff::unified;
    use meshplan::report::text::{self, Palette};
    use meshplan::steps::ChangeAction;

    let server = cluster().await;
    let cluster = connected(&server).await;
    let mut planned = color_planned();
    let rendered = engine::preview(&cluster, &mut planned.graph, 4)
        .await
        .unwrap();
    let changes: Vec<_> = planned
        .graph
        .steps
        .iter()
        .flat_map(|step| &step.changes)
        .collect();
    assert_eq!(rendered.len(), changes.len());
    let (mut dry_runs, mut deletions) = (0, 0);
    for (change, diff) in changes.iter().zip(&rendered) {
        let Some(diff) = diff else {
            assert_eq!(change.action, ChangeAction::Restart, "{}", change.object);
            continue;
        };
        // The dry run's answer is the object's `after` now.
        assert_eq!(
            diff,
            &unified(change.before.as_deref(), change.after.as_ref()),
            "{}",
            change.object
        );
        match change.action {
            ChangeAction::Delete => deletions += 1,
            _ => dry_runs += 1,
        }
    }
    assert!(dry_runs > 0 && deletions > 0, "{dry_runs} {deletions}");

    let palette = Palette::new(false);
    let plain = text::plan(&planned, palette);
    assert_eq!(text::plan_with(&planned, palette, &rendered), plain);
    let mut marked = rendered.clone();
    marked[0] = Some("+rendered ahead\n".to_owned());
    let with_marker = text::plan_with(&planned, palette, &marked);
    assert!(
        with_marker.contains("\n      +rendered ahead\n"),
        "{with_marker}"
    );
    assert_ne!(with_marker, plain);
}
