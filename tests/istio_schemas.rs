//! Every Istio object meshplan emits validates against the Istio CRD schemas.

mod common;

use common::{CrdSchemas, crds_dir, root};
use meshplan::inventory::Inventory;
use meshplan::pipeline;
use meshplan::plan::PlanFile;
use meshplan::steps::ChangeAction;
use serde_json::json;

fn istio() -> CrdSchemas {
    CrdSchemas::load(&crds_dir().join("istio"))
}

#[test]
fn every_object_of_the_color_plan_is_valid_istio() {
    let schemas = istio();
    let plan = PlanFile::load(&root().join("plans/color.toml")).unwrap();
    let planned = pipeline::plan_offline(plan, None).unwrap();
    let mut checked = 0;
    for change in planned.graph.steps.iter().flat_map(|s| &s.changes) {
        let Some(after) = &change.after else { continue };
        if change.object.api_version.contains("istio.io") {
            assert_eq!(change.action, ChangeAction::Create);
            if let Err(errors) = schemas.validate(after) {
                panic!("{} is invalid:\n{}", change.object, errors.join("\n"));
            }
            checked += 1;
        }
    }
    // Telemetry, ServiceEntry, DestinationRule, VirtualService, 4 Sidecars, PeerAuthentication.
    assert_eq!(checked, 9);
}

#[test]
fn old_istio_versions_get_old_api_versions_that_are_served_too() {
    let schemas = istio();
    let text = std::fs::read_to_string(root().join("plans/color.toml"))
        .unwrap()
        .replace("version = \"1.27\"", "version = \"1.21\"");
    let plan = PlanFile::parse(&root().join("plans/color.toml"), text).unwrap();
    let planned = pipeline::plan_offline(plan, None).unwrap();
    let versions: Vec<String> = planned
        .graph
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .filter_map(|c| c.after.as_ref())
        .filter(|o| o["apiVersion"].as_str().unwrap().contains("istio.io"))
        .map(|o| {
            schemas.validate(o).unwrap();
            o["apiVersion"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(versions.contains(&"networking.istio.io/v1beta1".to_owned()));
    assert!(versions.contains(&"security.istio.io/v1beta1".to_owned()));
    assert!(versions.contains(&"telemetry.istio.io/v1alpha1".to_owned()));
}

#[test]
fn the_schema_check_rejects_wrong_types_unknown_and_missing_fields() {
    let schemas = istio();
    let good = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "color", "namespace": "demo"},
        "spec": {"hosts": ["color"], "http": [{"route": [{"destination": {"host": "color"}, "weight": 100}]}]}
    });
    schemas.validate(&good).unwrap();

    let mut wrong_type = good.clone();
    wrong_type["spec"]["http"][0]["route"][0]["weight"] = json!("100");
    assert!(schemas.validate(&wrong_type).is_err());

    let mut unknown = good.clone();
    unknown["spec"]["http"][0]["retrys"] = json!({"attempts": 2});
    let errors = schemas.validate(&unknown).unwrap_err();
    assert!(errors.iter().any(|e| e.contains("retrys")), "{errors:?}");

    let mut missing = good.clone();
    missing["spec"]["http"][0]["route"][0]["destination"]
        .as_object_mut()
        .unwrap()
        .remove("host");
    assert!(schemas.validate(&missing).is_err());
}

#[test]
fn translate_output_of_the_example_is_valid_istio() {
    let schemas = istio();
    let inventory = Inventory::from_paths(&[root().join("examples/howto-k8s-http2")]).unwrap();
    let translation = meshplan::translate::translate(&inventory, &Default::default());
    assert_eq!(translation.objects.len(), 7);
    for object in &translation.objects {
        schemas.validate(object).unwrap();
    }
}
