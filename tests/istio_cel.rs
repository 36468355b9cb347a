//! Every Istio object of every golden case is accepted by an API server that enforces the Istio
//! CRDs' schemas *and* their CEL rules (kubesim with kube-cel), by server-side dry run.

mod common;

use common::{crds_dir, root, yaml_documents};
use meshplan::cluster::{self, Cluster};
use meshplan::object::ObjectRef;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_outputs_pass_the_istio_cel_rules() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let crds = crds_dir().join("istio/customresourcedefinitions.gen.yaml");
    server
        .load_yaml("istio CRDs", &std::fs::read_to_string(&crds).unwrap())
        .unwrap();
    let cluster = Cluster::new(
        cluster::connect_yaml(&server.kubeconfig_yaml())
            .await
            .unwrap(),
    );
    let mut cases: Vec<_> = std::fs::read_dir(root().join("tests/fixtures/translate"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("output.yaml").exists())
        .collect();
    cases.sort();
    let mut checked = 0;
    let mut problems = Vec::new();
    for case in &cases {
        for object in yaml_documents(&case.join("output.yaml")) {
            let reference = ObjectRef::of(&object);
            if !reference.api_version.contains("istio.io") {
                continue;
            }
            if let Some(ns) = &reference.namespace {
                let namespace =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                cluster.apply(&namespace).await.unwrap();
            }
            match cluster.dry_run_apply(&object).await {
                Ok(_) => checked += 1,
                Err(e) => problems.push(format!("{}: {reference}: {e}", case.display())),
            }
        }
    }
    // The check can fail: Istio's CEL rule rejects a zero route timeout.
    let zero = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "zero", "namespace": "default"},
        "spec": {"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a"}}], "timeout": "0s"}]}
    });
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
    cluster.apply(&namespace).await.unwrap();
    assert!(
        cluster.dry_run_apply(&zero).await.is_err(),
        "a 0s timeout was accepted"
    );
    server.shutdown().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 100, "only {checked} objects checked");
}
