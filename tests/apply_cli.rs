//! `meshplan apply` as a user runs it, against kubesim over HTTP: killed at random points and
//! resumed, it ends exactly where an uninterrupted run ends; a second concurrent run is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::root;
use meshplan::cluster::Cluster;
use meshplan::diff::normalise;
use meshplan::object::ObjectRef;
use serde_json::Value;

async fn cluster(dir: &Path) -> (kubesim::RunningServer, PathBuf) {
    let server = common::color_cluster(Duration::from_millis(30)).await;
    std::fs::create_dir_all(dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    (server, kubeconfig)
}

fn apply(dir: &Path, kubeconfig: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshplan"));
    command
        .args([
            "apply",
            root().join("plans/color.toml").to_str().unwrap(),
            "--auto-approve",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// What the migration leaves behind, normalised (pod names and timestamps aside).
async fn outcome(kubeconfig: &Path) -> Vec<Value> {
    let client = meshplan::cluster::connect(Some(kubeconfig), None)
        .await
        .unwrap();
    let cluster = Cluster::new(client);
    let ns = Some("howto-k8s-http2");
    let mut out = Vec::new();
    for (api, kind, namespace, name) in [
        ("v1", "Namespace", None, "howto-k8s-http2"),
        ("v1", "Service", ns, "color"),
        ("networking.istio.io/v1", "VirtualService", ns, "color"),
        ("networking.istio.io/v1", "DestinationRule", ns, "color"),
        ("networking.istio.io/v1", "Sidecar", ns, "client"),
        ("security.istio.io/v1", "PeerAuthentication", ns, "default"),
        (
            "telemetry.istio.io/v1",
            "Telemetry",
            Some("istio-system"),
            "mesh-default",
        ),
        ("appmesh.k8s.aws/v1beta2", "VirtualRouter", ns, "color"),
        ("appmesh.k8s.aws/v1beta2", "VirtualNode", ns, "red"),
    ] {
        let object = cluster
            .get(&ObjectRef::new(api, kind, namespace, name))
            .await
            .unwrap();
        out.push(
            object
                .map(|o| {
                    let mut o = normalise(&o);
                    if let Some(meta) = o["metadata"].as_object_mut() {
                        meta.remove("annotations");
                    }
                    if let Some(spec) = o["spec"].as_object_mut() {
                        // Allocated by the server, different in every cluster.
                        spec.remove("clusterIP");
                        spec.remove("clusterIPs");
                    }
                    o
                })
                .unwrap_or(Value::Null),
        );
    }
    use kube::api::{Api, ListParams};
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(cluster.client.clone(), "howto-k8s-http2");
    let mut sidecars: Vec<Vec<String>> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            p.spec
                .unwrap()
                .containers
                .into_iter()
                .map(|c| c.name)
                .collect()
        })
        .collect();
    sidecars.sort();
    out.push(serde_json::to_value(sidecars).unwrap());
    out
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshplan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_to_the_uninterrupted_outcome() {
    let reference_dir = temp("kill-reference");
    let (reference, kubeconfig) = cluster(&reference_dir).await;
    let status = apply(&reference_dir, &kubeconfig).status().unwrap();
    assert!(status.success());
    let expected = outcome(&kubeconfig).await;
    reference.shutdown().await;

    // A fixed sequence of kill delays (a seeded xorshift), so every run is repeatable.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for seed in 0..20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(100 + state % 900);
        let dir = temp(&format!("kill-{seed}"));
        let (server, kubeconfig) = cluster(&dir).await;
        let mut child = apply(&dir, &kubeconfig).spawn().unwrap();
        tokio::time::sleep(delay).await;
        let _ = child.kill(); // SIGKILL: no chance to clean up.
        let _ = child.wait();
        let resumed = apply(&dir, &kubeconfig).output().unwrap();
        assert!(
            resumed.status.success(),
            "seed {seed} (killed after {delay:?}): {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert_eq!(
            outcome(&kubeconfig).await,
            expected,
            "seed {seed}, killed after {delay:?}"
        );
        assert!(
            !dir.join(".meshplan/color.lock").exists(),
            "seed {seed}: lock left behind"
        );
        server.shutdown().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::remove_dir_all(&reference_dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_apply_is_refused_naming_the_holder() {
    let dir = temp("concurrent");
    let (server, kubeconfig) = cluster(&dir).await;
    // This test process plays the first run.
    let guard = meshplan::state::acquire(
        &dir.join(".meshplan/color.lock"),
        meshplan::state::Holder::current(),
    )
    .unwrap();
    let second = apply(&dir, &kubeconfig).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&guard.holder().id), "{err}");
    assert!(err.contains("unlock"), "{err}");
    drop(guard);
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rehearse_runs_the_whole_migration_without_a_cluster() {
    let journal = root().join(".meshplan/color.state.json");
    let before = std::fs::read(&journal).ok();
    let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(["apply", "plans/color.toml", "--rehearse"])
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("Plan: 9 to create, 2 to change, 6 to delete, 4 restarts."),
        "{stdout}"
    );
    assert!(stderr.contains("✓ delete-appmesh"), "{stderr}");
    assert!(
        stdout.contains("namespace howto-k8s-http2: istio-injection=enabled"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches(": app, istio-proxy\n").count(),
        4,
        "{stdout}"
    );
    assert!(
        stdout.contains("App Mesh objects left in scope: 0"),
        "{stdout}"
    );
    // The rehearsal keeps its journal to itself: the working directory's is untouched.
    assert_eq!(std::fs::read(&journal).ok(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reads_the_live_cluster_and_preflight_names_what_is_missing() {
    let dir = temp("live-plan");
    let (server, kubeconfig) = cluster(&dir).await;
    let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args([
            "plan",
            "plans/color.toml",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("objects read from the cluster"), "{stdout}");
    assert!(
        stdout.contains("Plan: 9 to create, 2 to change, 6 to delete, 4 restarts."),
        "{stdout}"
    );
    server.shutdown().await;

    // A cluster without App Mesh: one clear error, nothing read further, nothing changed.
    let empty = kubesim::Server::builder().start().await.unwrap();
    std::fs::write(&kubeconfig, empty.kubeconfig_yaml()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args([
            "plan",
            "plans/color.toml",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("does not serve the App Mesh CRDs"), "{err}");
    let writes: u64 = empty
        .faults()
        .counters()
        .iter()
        .filter(|((verb, _), _)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(writes, 0);
    empty.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_applies_exactly_or_refuses_when_stale() {
    let dir = temp("saved");
    let (server, kubeconfig) = cluster(&dir).await;
    let saved = dir.join("color.plan.json");
    let plan = |out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_meshplan"))
            .args([
                "plan",
                root().join("plans/color.toml").to_str().unwrap(),
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .arg("--out")
            .arg(out)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let apply_saved = || {
        Command::new(env!("CARGO_BIN_EXE_meshplan"))
            .args([
                "apply",
                saved.to_str().unwrap(),
                "--auto-approve",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    assert!(plan(&saved).status.success());

    // Someone edits an object the plan was made from: the saved plan is refused, naming it.
    let client = meshplan::cluster::connect(Some(&kubeconfig), None)
        .await
        .unwrap();
    let cluster = Cluster::new(client);
    let service = ObjectRef::new("v1", "Service", Some("howto-k8s-http2"), "color");
    cluster
        .merge(
            &service,
            &serde_json::json!({"metadata": {"labels": {"team": "paint"}}}),
        )
        .await
        .unwrap();
    let refused = apply_saved();
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("saved plan is stale"), "{err}");
    assert!(err.contains("Service howto-k8s-http2/color"), "{err}");
    assert!(
        cluster
            .get(&ObjectRef::new(
                "networking.istio.io/v1",
                "VirtualService",
                Some("howto-k8s-http2"),
                "color"
            ))
            .await
            .unwrap()
            .is_none()
    );

    // Planned again, it applies exactly the saved steps.
    assert!(plan(&saved).status.success());
    let applied = apply_saved();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let err = String::from_utf8_lossy(&applied.stderr);
    assert!(err.contains("Applying the saved plan"), "{err}");
    assert!(
        cluster
            .get(&ObjectRef::new(
                "networking.istio.io/v1",
                "VirtualService",
                Some("howto-k8s-http2"),
                "color"
            ))
            .await
            .unwrap()
            .is_some()
    );
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
