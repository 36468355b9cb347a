//! In place: the manual recipe as steps. Istio config first, then relabel and restart, then cleanup.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{access_logging, create, injection_labels, istio_step, peer_authentication};
use crate::inventory::Inventory;
use crate::istio::ApiVersions;
use crate::object::{ObjectRef, Parts, parts};
use crate::plan::{PlanFile, StrategyKind};
use crate::steps::{Action, Change, ChangeAction, Step, StepGraph};
use crate::translate::{ObjectChange, Translation};

pub(super) fn build(
    plan: &PlanFile,
    inventory: &Inventory,
    translation: &mut Translation,
) -> StepGraph {
    let spec = &plan.spec;
    let api = ApiVersions::for_version(&spec.istio.version);
    let namespaces: Vec<String> = spec
        .source
        .namespaces
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut steps = Vec::new();
    let mut push = |id: String, description: String, depends_on: Vec<String>, action, changes| {
        steps.push(Step {
            id,
            description,
            depends_on,
            action,
            changes,
        });
    };

    push(
        "preflight".into(),
        "Check the App Mesh inventory, the namespaces in scope and access to the cluster".into(),
        vec![],
        Action::Preflight {
            namespaces: namespaces.clone(),
            mesh: spec.source.mesh.clone(),
        },
        vec![],
    );
    let (description, action, changes) = istio_step(spec);
    push(
        "istio".into(),
        description,
        vec!["preflight".into()],
        action,
        changes,
    );
    let mut config_done = vec!["istio".to_owned()];
    if spec.istio.access_logging {
        push(
            "telemetry".into(),
            "Turn on Envoy access logging mesh-wide".into(),
            vec!["istio".into()],
            Action::Apply,
            vec![create(access_logging(api))],
        );
        config_done = vec!["telemetry".to_owned()];
    }
    let mut routing_after = vec!["istio".to_owned()];
    if !translation.services.is_empty() {
        push(
            "service-selectors".into(),
            "Give selector-less App Mesh Services the labels of their pods, so Istio finds the endpoints".into(),
            vec!["istio".into()],
            Action::Apply,
            std::mem::take(&mut translation.services)
                .into_iter()
                .map(|s| update(s.before, s.after))
                .collect(),
        );
        routing_after = vec!["service-selectors".to_owned()];
    }
    let mut last = routing_after.clone();
    if !translation.objects.is_empty() {
        push(
            "routing".into(),
            "Apply the translated routing: DestinationRules (subsets) before VirtualServices"
                .into(),
            routing_after,
            Action::Apply,
            std::mem::take(&mut translation.objects)
                .into_iter()
                .map(create)
                .collect(),
        );
        last = vec!["routing".to_owned()];
    }
    push(
        "peer-authentication".into(),
        format!(
            "Set mutual TLS to {} in the migrated namespaces",
            serde_json::to_value(spec.istio.mtls)
                .expect("serialises")
                .as_str()
                .unwrap_or_default()
        ),
        last,
        Action::Apply,
        namespaces
            .iter()
            .map(|ns| create(peer_authentication(api, ns, spec.istio.mtls)))
            .collect(),
    );

    let (remove, set) = injection_labels(plan, translation);
    // Rewritten pod templates by Deployment, looked up once per restart.
    let mut workloads: HashMap<ObjectRef, ObjectChange> =
        std::mem::take(&mut translation.workloads)
            .into_iter()
            .map(|w| (ObjectRef::of(&w.before), w))
            .collect();
    // Deployments by namespace, in reading order: one pass, not one per namespace.
    let mut deployments_in: HashMap<&str, Vec<&str>> = HashMap::new();
    for deployment in &inventory.deployments {
        if !translation
            .gateway_deployments
            .contains(&deployment.object_ref())
        {
            deployments_in
                .entry(deployment.namespace())
                .or_default()
                .push(deployment.name());
        }
    }
    let mut restarts = Vec::new();
    for namespace in &inventory.namespaces {
        let ns = namespace.name().to_owned();
        if !namespaces.contains(&ns) {
            continue;
        }
        let relabel_id = format!("relabel-{ns}");
        let mut after = Value::clone(&namespace.raw);
        if let Some(labels) = after["metadata"]["labels"].as_object_mut() {
            labels.retain(|k, _| !remove.contains(k));
        }
        for (k, v) in &set {
            after["metadata"]["labels"][k] = Value::String(v.clone());
        }
        let mut deps = vec!["peer-authentication".to_owned()];
        deps.extend(config_done.iter().cloned());
        push(
            relabel_id.clone(),
            format!("Switch namespace {ns} from App Mesh injection to Istio injection"),
            deps,
            Action::Relabel {
                namespace: ns.clone(),
                remove: remove.clone(),
                set: set.clone(),
            },
            vec![update(Arc::clone(&namespace.raw), after)],
        );
        let deployments: Vec<String> = deployments_in
            .get(ns.as_str())
            .into_iter()
            .flatten()
            .map(|name| (*name).to_owned())
            .collect();
        let mut restart_ids = Vec::new();
        for deployment in &deployments {
            let id = format!("restart-{ns}-{deployment}");
            let object = ObjectRef::new("apps/v1", "Deployment", Some(&ns), deployment);
            // App Mesh pod-template settings are rewritten in the same rollout as the restart.
            let mut changes: Vec<Change> = workloads
                .remove(&object)
                .map(|w| update(w.before, w.after))
                .into_iter()
                .collect();
            changes.push(Change {
                action: ChangeAction::Restart,
                object,
                before: None,
                after: None,
            });
            push(
                id.clone(),
                format!(
                    "Restart Deployment {ns}/{deployment} so its pods get the Istio sidecar, and wait for the rollout"
                ),
                vec![relabel_id.clone()],
                Action::Restart {
                    namespace: ns.clone(),
                    deployment: deployment.clone(),
                },
                changes,
            );
            restart_ids.push(id);
        }
        let verify_id = format!("verify-sidecars-{ns}");
        push(
            verify_id.clone(),
            format!("Check every pod in {ns} runs istio-proxy and no App Mesh envoy"),
            if restart_ids.is_empty() {
                vec![relabel_id]
            } else {
                restart_ids
            },
            Action::VerifySidecars {
                namespace: ns.clone(),
                deployments,
            },
            vec![],
        );
        restarts.push(verify_id);
    }

    if spec.cleanup.delete_appmesh {
        let read: HashMap<Parts<'_>, &Arc<Value>> = inventory
            .appmesh_raw()
            .map(|raw| (parts(raw), raw))
            .collect();
        let mut deletions: Vec<Change> = translation
            .appmesh
            .iter()
            .filter_map(|r| Some(delete(r.clone(), Arc::clone(read.get(&r.parts())?))))
            .collect();
        if spec.cleanup.delete_mesh
            && let Some(mesh) = inventory
                .meshes
                .iter()
                .find(|m| m.name() == spec.source.mesh)
        {
            deletions.push(delete(mesh.object_ref(), Arc::clone(&mesh.raw)));
        }
        if !deletions.is_empty() {
            push(
                "delete-appmesh".into(),
                "Delete the App Mesh objects now that Istio carries the traffic".into(),
                restarts,
                Action::Delete,
                deletions,
            );
        }
    }

    StepGraph {
        plan: plan.name.clone(),
        strategy: StrategyKind::InPlace,
        steps,
        entry: None,
    }
}

fn update(before: Arc<Value>, after: Value) -> Change {
    Change {
        action: ChangeAction::Update,
        object: ObjectRef::of(&after),
        before: Some(before),
        after: Some(after),
    }
}

fn delete(object: ObjectRef, before: Arc<Value>) -> Change {
    Change {
        action: ChangeAction::Delete,
        object,
        before: Some(before),
        after: None,
    }
}
