//! The color demo, end to end offline: translation, step graph, output and exit codes.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::root;
use meshplan::inventory::Inventory;
use meshplan::pipeline::{self, Planned};
use meshplan::plan::PlanFile;
use meshplan::report::{self, text::Palette};
use meshplan::steps::{Action, ChangeAction};
use meshplan::translate::{self, Options};
use serde_json::{Value, json};

fn color_plan(edit: impl FnOnce(String) -> String) -> Planned {
    // Relative, as a user types it: the path shows in the output (tests run in the package root).
    let path = std::path::Path::new("plans/color.toml");
    let text = edit(std::fs::read_to_string(path).unwrap());
    pipeline::plan_offline(PlanFile::parse(path, text).unwrap(), None).unwrap()
}

/// Weight per subset of the VirtualService's first route.
fn weights(virtual_service: &Value) -> BTreeMap<String, u64> {
    virtual_service["spec"]["http"][0]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["destination"]["subset"].as_str().unwrap().to_owned(),
                d["weight"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn created(planned: &Planned, kind: &str) -> Value {
    planned
        .graph
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .find(|c| c.action == ChangeAction::Create && c.object.kind == kind)
        .and_then(|c| c.after.clone())
        .unwrap_or_else(|| panic!("no {kind} created"))
}

#[test]
fn equal_router_weights_become_34_33_33() {
    let inventory = Inventory::from_paths(&[root().join("examples/howto-k8s-http2")]).unwrap();
    let translation = translate::translate(&inventory, &Options::default());
    let vs = translation
        .objects
        .iter()
        .find(|o| o["kind"] == "VirtualService")
        .unwrap();
    assert_eq!(
        weights(vs),
        BTreeMap::from([
            ("red".into(), 34),
            ("blue".into(), 33),
            ("green".into(), 33)
        ])
    );
    assert!(
        translation
            .findings
            .iter()
            .any(|f| f.code.as_str() == "MP203")
    );
}

#[test]
fn the_plan_override_wins() {
    let planned = color_plan(|t| t);
    let vs = created(&planned, "VirtualService");
    assert_eq!(
        weights(&vs),
        BTreeMap::from([
            ("green".into(), 50),
            ("blue".into(), 40),
            ("red".into(), 10)
        ])
    );
    assert_eq!(
        vs["spec"]["hosts"],
        json!(["color.howto-k8s-http2.svc.cluster.local"])
    );
    assert_eq!(vs["spec"]["http"][0]["timeout"], "15s");
    assert_eq!(
        vs["spec"]["http"][0]["match"],
        json!([{"uri": {"prefix": "/"}}])
    );
}

#[test]
fn subsets_are_the_virtual_nodes_keyed_by_version() {
    let planned = color_plan(|t| t);
    let dr = created(&planned, "DestinationRule");
    assert_eq!(
        dr["spec"]["host"],
        "color.howto-k8s-http2.svc.cluster.local"
    );
    assert_eq!(
        dr["spec"]["subsets"],
        json!([
            {"name": "blue", "labels": {"version": "blue"}},
            {"name": "green", "labels": {"version": "green"}},
            {"name": "red", "labels": {"version": "red"}}
        ])
    );
}

#[test]
fn the_selector_less_service_gets_the_shared_labels() {
    let planned = color_plan(|t| t);
    let step = planned
        .graph
        .steps
        .iter()
        .find(|s| s.id == "service-selectors")
        .unwrap();
    assert_eq!(step.changes.len(), 1);
    let change = &step.changes[0];
    assert_eq!(change.action, ChangeAction::Update);
    assert_eq!(change.object.name, "color");
    assert!(
        change.before.as_ref().unwrap()["spec"]
            .get("selector")
            .is_none()
    );
    assert_eq!(
        change.after.as_ref().unwrap()["spec"]["selector"],
        json!({"app": "color"})
    );
}

#[test]
fn the_namespace_switches_injection() {
    let planned = color_plan(|t| t);
    let step = planned
        .graph
        .steps
        .iter()
        .find(|s| s.id == "relabel-howto-k8s-http2")
        .unwrap();
    let after = step.changes[0].after.as_ref().unwrap();
    assert_eq!(
        after["metadata"]["labels"],
        json!({"istio-injection": "enabled"})
    );

    let planned = color_plan(|t| t.replace("[istio]\n", "[istio]\nrevision = \"1-27\"\n"));
    let step = planned
        .graph
        .steps
        .iter()
        .find(|s| s.id == "relabel-howto-k8s-http2")
        .unwrap();
    let Action::Relabel { remove, set, .. } = &step.action else {
        panic!("not a relabel")
    };
    assert_eq!(
        set,
        &BTreeMap::from([("istio.io/rev".to_owned(), "1-27".to_owned())])
    );
    assert_eq!(remove, &["appmesh.k8s.aws/sidecarInjectorWebhook", "mesh"]);
}

#[test]
fn steps_follow_the_manual_recipe() {
    let planned = color_plan(|t| t);
    let ids: Vec<&str> = planned.graph.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "preflight",
            "istio",
            "telemetry",
            "service-selectors",
            "routing",
            "peer-authentication",
            "relabel-howto-k8s-http2",
            "restart-howto-k8s-http2-client",
            "restart-howto-k8s-http2-red",
            "restart-howto-k8s-http2-blue",
            "restart-howto-k8s-http2-green",
            "verify-sidecars-howto-k8s-http2",
            "delete-appmesh",
        ]
    );
    // Every dependency names an earlier step: the order is a valid execution order.
    for (i, step) in planned.graph.steps.iter().enumerate() {
        for dep in &step.depends_on {
            assert!(
                ids[..i].contains(&dep.as_str()),
                "{} depends on later {dep}",
                step.id
            );
        }
    }
    let deleted: Vec<String> = planned
        .graph
        .steps
        .last()
        .unwrap()
        .changes
        .iter()
        .map(|c| format!("{} {}", c.object.kind, c.object.name))
        .collect();
    assert_eq!(
        deleted,
        [
            "VirtualService color",
            "VirtualRouter color",
            "VirtualNode blue",
            "VirtualNode client",
            "VirtualNode green",
            "VirtualNode red"
        ]
    );
    let summary = planned.graph.summary();
    assert_eq!(
        (
            summary.create,
            summary.update,
            summary.delete,
            summary.restart
        ),
        (9, 2, 6, 4)
    );
}

#[test]
fn text_output_is_pinned() {
    let planned = color_plan(|t| t);
    insta::assert_snapshot!(report::text::plan(&planned, Palette::new(false)));
}

#[test]
fn markdown_output_is_pinned() {
    let planned = color_plan(|t| t);
    let markdown = report::markdown::plan(&planned);
    assert!(!markdown.contains('\u{1b}'), "no ANSI codes");
    assert_eq!(markdown.matches("<details><summary>Step ").count(), 13);
    assert_eq!(markdown, report::markdown::plan(&color_plan(|t| t)));
    insta::assert_snapshot!(markdown);
}

#[test]
fn json_output_is_pinned() {
    let planned = color_plan(|t| t);
    let json = report::json::plan(&planned);
    let value: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["summary"],
        json!({"create": 9, "update": 2, "delete": 6, "restart": 4})
    );
    insta::assert_snapshot!(json);
}

fn meshplan(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn cli_exit_codes_follow_the_contract() {
    let (code, out, _) = meshplan(&["plan", "plans/color.toml"]);
    assert_eq!(code, 0);
    assert!(out.ends_with("Plan: 9 to create, 2 to change, 6 to delete, 4 restarts.\n"));
    assert!(!out.contains('\x1b'), "colour on a pipe");
    assert_eq!(
        meshplan(&["plan", "plans/color.toml", "--detailed-exitcode"]).0,
        2
    );
    assert_eq!(meshplan(&["validate", "plans/color.toml"]).0, 0);

    let (code, _, err) = meshplan(&[
        "validate",
        "tests/fixtures/plans/invalid/weights-sum-90.toml",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("weights-sum-90.toml:7:11"), "{err}");
    assert!(err.contains("sum to 90"), "{err}");

    let (code, _, err) = meshplan(&["plan", "tests/fixtures/plans/invalid/misspelt-key.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("misspelt-key.toml:7:1"), "{err}");
}

#[test]
fn translate_prints_istio_yaml_and_fails_on_request() {
    let (code, out, err) = meshplan(&["translate", "-f", "examples/howto-k8s-http2"]);
    assert_eq!(code, 0, "{err}");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&out).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceEntry",
            "DestinationRule",
            "VirtualService",
            "Sidecar",
            "Sidecar",
            "Sidecar",
            "Sidecar",
            "Service"
        ]
    );
    assert!(err.contains("MP202"), "findings go to stderr: {err}");
    assert!(!out.contains("MP202"));

    assert_eq!(
        meshplan(&[
            "translate",
            "-f",
            "examples/howto-k8s-http2",
            "--fail-on",
            "warning"
        ])
        .0,
        3
    );

    let (code, out, _) = meshplan(&["translate", "-f", "examples/howto-k8s-http2", "-o", "json"]);
    assert_eq!(code, 0);
    let value: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["objects"].as_array().unwrap().len(), 8);
    assert!(
        value["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["code"].as_str().unwrap().starts_with("MP"))
    );

    // Deterministic: the same input gives byte-identical output.
    let again = meshplan(&["translate", "-f", "examples/howto-k8s-http2", "-o", "json"]).2;
    assert_eq!(
        meshplan(&["translate", "-f", "examples/howto-k8s-http2", "-o", "json"]).2,
        again
    );
    assert_eq!(
        meshplan(&["translate", "-f", "examples/howto-k8s-http2", "-o", "json"]).1,
        out
    );
}

#[test]
fn translate_names_the_file_and_line_of_bad_yaml() {
    let dir = std::env::temp_dir().join(format!("meshplan-bad-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n",
    )
    .unwrap();
    let (code, _, err) = meshplan(&["translate", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml:5"), "{err}");
    assert!(err.to_lowercase().contains("duplicate"), "{err}");

    std::fs::write(&file, "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata:\n  name: a\n  namespace: n\nspec:\n  listeners:\n    - portMapping: {port: eighty, protocol: http}\n").unwrap();
    // A wrong type is an error finding about that object (exit 3), not a crash of the run.
    let (code, _, err) = meshplan(&["translate", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("MP008"), "{err}");
    assert!(err.contains("bad.yaml:1"), "{err}");
    assert!(err.contains("spec.listeners[0].portMapping.port"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
