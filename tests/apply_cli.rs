//! `meshplan apply` as a user runs it, against kubesim over HTTP: killed at random points and
//! resumed, it ends exactly where an uninterrupted run ends; a second concurrent run is refused.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{cluster, outcome, root, temp};
use meshplan::cluster::Cluster;
use meshplan::object::ObjectRef;
use serde_json::Value;

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
    let store = meshplan::state::Store::files(
        dir.join(".meshplan/color.state.json"),
        dir.join(".meshplan/color.lock"),
    );
    let guard = store
        .lock(meshplan::state::Holder::current())
        .await
        .unwrap();
    let second = apply(&dir, &kubeconfig).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&guard.holder().id), "{err}");
    assert!(err.contains("unlock"), "{err}");
    guard.release().await.unwrap();
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

/// Requests that change something, by verb and resource.
fn writes(server: &kubesim::RunningServer) -> u64 {
    server
        .faults()
        .counters()
        .iter()
        .filter(|((verb, _), _)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_are_all_named_before_anything_changes() {
    use kubesim::authz::Deny;
    let dir = temp("forbidden");
    let (server, kubeconfig) = cluster(&dir).await;
    let deny = |verb: &str, group: &str, resource: &str| Deny {
        verb: Some(verb.into()),
        group: Some(group.into()),
        resource: Some(resource.into()),
        namespace: Some("howto-k8s-http2".into()),
    };
    // Reading: the inventory's LISTs are checked before the first one is made.
    server
        .authz()
        .deny(deny("list", "appmesh.k8s.aws", "virtualnodes"));
    let read = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(["plan", "plans/color.toml", "--kubeconfig"])
        .arg(&kubeconfig)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(read.status.code(), Some(1));
    let err = String::from_utf8_lossy(&read.stderr);
    assert!(
        err.contains("  - list virtualnodes.appmesh.k8s.aws in namespace howto-k8s-http2"),
        "{err}"
    );
    assert_eq!(
        server.faults().count("list", "virtualnodes"),
        0,
        "not even tried"
    );

    // Writing: everything the run and its rollback need, every gap named in one error.
    server.authz().clear();
    server
        .authz()
        .deny(deny("create", "networking.istio.io", "destinationrules"));
    server
        .authz()
        .deny(deny("delete", "appmesh.k8s.aws", "virtualrouters"));
    let applied = apply(&dir, &kubeconfig).output().unwrap();
    assert_eq!(applied.status.code(), Some(1));
    let err = String::from_utf8_lossy(&applied.stderr);
    for missing in [
        "  - create destinationrules.networking.istio.io in namespace howto-k8s-http2",
        "  - delete virtualrouters.appmesh.k8s.aws in namespace howto-k8s-http2",
        "nothing was changed",
    ] {
        assert!(err.contains(missing), "{missing}: {err}");
    }
    assert_eq!(writes(&server), 0, "nothing was written");
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_backend_keeps_journal_and_lease_in_the_cluster() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let dir = temp("configmap");
    let (server, kubeconfig) = cluster(&dir).await;
    // The color plan with its state in the cluster.
    let text = std::fs::read_to_string(root().join("plans/color.toml"))
        .unwrap()
        .replace(
            "\"../examples/howto-k8s-http2\"",
            &format!("{:?}", root().join("examples/howto-k8s-http2")),
        );
    let plan = dir.join("color.toml");
    std::fs::write(&plan, format!("{text}\n[state]\nbackend = \"configmap\"\n")).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meshplan"))
            .args(args)
            .arg(&plan)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // Killed mid-run, then resumed: the dead run's lease on this host is reclaimed at once.
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .arg("apply")
        .arg(&plan)
        .args(["--auto-approve", "--kubeconfig"])
        .arg(&kubeconfig)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = child.kill();
    let _ = child.wait();
    let applied = run(&["apply", "--auto-approve"]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(!dir.join(".meshplan").exists(), "no local state");
    let client = meshplan::cluster::connect(Some(&kubeconfig), None)
        .await
        .unwrap();
    let maps: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "howto-k8s-http2");
    let state = maps.get("meshplan-color").await.unwrap();
    let journal: Value = serde_json::from_str(&state.data.unwrap()["journal.json"]).unwrap();
    assert!(
        journal["steps"]
            .as_object()
            .unwrap()
            .values()
            .all(|s| s["state"] == "done"),
        "{journal}"
    );
    let status = run(&["status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("journal ConfigMap howto-k8s-http2/meshplan-color (key journal.json)"),
        "{shown}"
    );
    assert!(
        shown.contains("Lock (Lease howto-k8s-http2/meshplan-color): free"),
        "{shown}"
    );

    // Another operator holds the lease: refused, named; `unlock --force ID` clears it.
    let store = meshplan::state::Store::cluster(client.clone(), "howto-k8s-http2", "color");
    let other = meshplan::state::Holder {
        id: "0badc0de".to_owned(),
        host: "laptop-of-someone-else".to_owned(),
        pid: 4242,
        since: "2026-11-29T10:00:00Z".to_owned(),
    };
    let held = store.lock(other).await.unwrap();
    let refused = run(&["apply", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("locked by run 0badc0de (pid 4242 on laptop-of-someone-else"),
        "{err}"
    );
    let status = run(&["status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("held by run 0badc0de"));
    drop(held);
    let unlocked = run(&["unlock", "--force", "0badc0de"]);
    assert!(unlocked.status.success());
    let again = run(&["apply", "--auto-approve"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already done"));

    // Rollback reads the journal from the cluster too.
    let rolled = run(&["rollback", "--auto-approve"]);
    assert!(
        rolled.status.success(),
        "{}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    let router = Cluster::new(client)
        .get(&ObjectRef::new(
            "appmesh.k8s.aws/v1beta2",
            "VirtualRouter",
            Some("howto-k8s-http2"),
            "color",
        ))
        .await
        .unwrap();
    assert!(router.is_some(), "App Mesh is back");
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
