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
