//! Plans of generated meshes (`benches/support/mesh.rs`, what the benchmarks measure): the plan
//! of a mesh with gateways is one that can be applied.

#[path = "../benches/support/mesh.rs"]
mod mesh;

use std::path::Path;

use meshplan::inventory::Inventory;
use meshplan::object::ObjectRef;
use meshplan::pipeline;
use meshplan::plan::PlanFile;
use meshplan::steps::Action;

#[test]
fn app_mesh_gateway_deployments_are_replaced_not_restarted() {
    let mesh = mesh::generate(&mesh::Size {
        services: 4,
        versions: 2,
        routes: 2,
        per_namespace: 50,
    });
    assert_eq!(mesh.namespaces, 1);
    let mut inventory = Inventory::default();
    inventory
        .add_yaml(Path::new("mesh.yaml"), &mesh.yaml)
        .unwrap();
    assert_eq!(inventory.len(), mesh.objects);
    let plan = PlanFile::parse(
        Path::new("plan.toml"),
        "[source]\nmesh = \"bench\"\nnamespaces = [\"team-000\"]\n\n\
         [istio]\ninstall = \"existing\"\nversion = \"1.27\"\n"
            .to_owned(),
    )
    .unwrap();
    let planned = pipeline::plan_with(plan, inventory, "generated".to_owned(), None).unwrap();

    // The gateway's envoy is the gateway itself: a restart would only add a sidecar to it, and
    // the sidecar check after it could never pass.
    let gateway = ObjectRef::new("apps/v1", "Deployment", Some("team-000"), "ingress");
    assert!(
        planned.translation.gateway_deployments.contains(&gateway),
        "{:?}",
        planned.translation.gateway_deployments
    );
    let mut restarted = Vec::new();
    for step in &planned.graph.steps {
        match &step.action {
            Action::Restart { deployment, .. } => restarted.push(deployment.clone()),
            Action::VerifySidecars { deployments, .. } => {
                assert!(
                    !deployments.contains(&"ingress".to_owned()),
                    "{deployments:?}"
                );
                assert!(!deployments.is_empty());
            }
            _ => {}
        }
    }
    assert!(!restarted.contains(&"ingress".to_owned()), "{restarted:?}");
    assert!(!restarted.is_empty());
    // The user is told to replace it.
    assert!(
        planned
            .translation
            .findings
            .iter()
            .any(|f| f.code.as_str() == "MP401"),
        "no MP401 finding"
    );
}

/// A generated mesh applied against kubesim over HTTP: each step reads what it touches with one
/// LIST per kind and namespace (a GET only where it touches one object of a kind), a restart
/// waits on one watch of its Deployment instead of polling, and the journal is written whole
/// once, then each step's progress appended to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reads_per_kind_and_namespace_and_watches_rollouts() {
    use meshplan::engine::{self, Options};
    use meshplan::state::{Journal, Store};
    use std::time::Duration;

    let mesh = mesh::generate(&mesh::Size {
        services: 6,
        versions: 2,
        routes: 2,
        per_namespace: 50,
    });
    let dir = std::env::temp_dir().join(format!("meshplan-generated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mesh.yaml"), &mesh.yaml).unwrap();
    std::fs::write(
        dir.join("plan.toml"),
        "[source]\nmanifests = [\"mesh.yaml\"]\nmesh = \"bench\"\nnamespaces = [\"team-000\"]\n\n\
         [istio]\ninstall = \"existing\"\nversion = \"1.27\"\n",
    )
    .unwrap();
    let plan = PlanFile::load(&dir.join("plan.toml")).unwrap();
    let (server, cluster) = meshplan::rehearse::start_with(&plan, Duration::ZERO)
        .await
        .unwrap();
    let options = Options {
        concurrency: 4,
        rollout_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(500),
        store: Store::files(dir.join("state.json"), dir.join("lock")),
        stop: Default::default(),
        include_addon: false,
        scope: meshplan::scope::Scope::of(&plan.spec),
    };
    let planned = pipeline::plan_offline(plan, None).unwrap();
    let graph = &planned.graph;
    let before = server.faults().counters();
    engine::apply(&cluster, graph, "generated", &options, &|_| {})
        .await
        .unwrap();
    let since =
        |before: &std::collections::BTreeMap<(String, String), u64>, verb: &str, resource: &str| {
            let key = (verb.to_owned(), resource.to_owned());
            server.faults().counters().get(&key).copied().unwrap_or(0)
                - before.get(&key).copied().unwrap_or(0)
        };
    let count = |verb: &str, resource: &str| since(&before, verb, resource);
    let restarts = graph
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Restart { .. }))
        .count() as u64;
    assert!(restarts >= 10, "{restarts} restarts");
    // One watch per rollout, no polling: the one GET of a Deployment is istiod's.
    assert_eq!(count("watch", "deployments"), restarts);
    assert_eq!(count("get", "deployments"), 1);
    // Sidecars, DestinationRules and App Mesh objects come many to a step: listed once per step
    // that touches them (VirtualServices: the routing step and the App Mesh deletion), never got.
    for (resource, steps) in [
        ("sidecars", 1),
        ("destinationrules", 1),
        ("virtualnodes", 1),
        ("virtualservices", 2),
    ] {
        assert_eq!(count("get", resource), 0, "GET {resource}");
        assert_eq!(count("list", resource), steps, "LIST {resource}");
    }
    // The whole journal, then a line per step started and per step finished.
    let text = std::fs::read_to_string(dir.join("state.json")).unwrap();
    assert_eq!(text.lines().count(), 1 + 2 * graph.steps.len());
    let whole: Journal = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(&whole.graph, graph);
    assert!(Journal::parse(&text).unwrap().complete());

    // Rolling back reads each step's objects the same way before restoring them.
    let before = server.faults().counters();
    engine::rollback(&cluster, "generated", None, &options, &|_| {})
        .await
        .unwrap();
    for resource in ["sidecars", "destinationrules", "virtualnodes"] {
        assert_eq!(since(&before, "get", resource), 0, "GET {resource}");
        assert_eq!(since(&before, "list", resource), 1, "LIST {resource}");
    }
    assert_eq!(since(&before, "create", "virtualnodes"), 12);
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
