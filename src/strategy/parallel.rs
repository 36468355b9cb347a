//! Parallel namespace: clone the workloads into an Istio-injected namespace beside the App Mesh
//! one, route there with the translated Istio config, and put an entry in front that splits
//! traffic between the two sides, starting with everything on the old side. `meshplan ramp`
//! then moves the weights; the old side is untouched until the ramp finalizes.

use std::collections::HashMap;

use serde_json::Value;

use super::{access_logging, create, injection_labels, istio_step, peer_authentication};
use crate::entry::Entry;
use crate::inventory::{Inventory, Item};
use crate::istio::ApiVersions;
use crate::object::ObjectRef;
use crate::plan::{PlanFile, StrategyKind};
use crate::steps::{Action, Change, Step, StepGraph};
use crate::translate::{MANAGED_BY, ObjectChange, Translation};

/// Annotation and label prefix of App Mesh.
const APPMESH_PREFIX: &str = "appmesh.k8s.aws/";
/// Containers and init containers the App Mesh injector adds.
const APPMESH_CONTAINERS: &[&str] = &["envoy", "xray-daemon", "proxyinit"];
/// Objects every namespace gets by itself.
const BUILT_IN: &[(&str, &str)] = &[
    ("ConfigMap", "kube-root-ca.crt"),
    ("ServiceAccount", "default"),
];

pub(super) fn build(
    plan: &PlanFile,
    inventory: &Inventory,
    translation: &mut Translation,
) -> Result<StepGraph, crate::Error> {
    let spec = &plan.spec;
    let entry = Entry::resolve(plan, inventory)?;
    let (source, target) = (entry.source.clone(), entry.target.clone());
    let api = ApiVersions::for_version(&spec.istio.version);
    let mut steps = Vec::new();
    let mut push = |id: &str, description: String, depends_on: &[&str], action, changes| {
        steps.push(Step {
            id: id.to_owned(),
            description,
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            action,
            changes,
        });
    };

    push(
        "preflight",
        "Check the App Mesh inventory, the source namespace and access to the cluster".into(),
        &[],
        Action::Preflight {
            namespaces: vec![source.clone()],
            mesh: spec.source.mesh.clone(),
        },
        vec![],
    );
    let (description, action, changes) = istio_step(spec);
    push("istio", description, &["preflight"], action, changes);
    let mut config = vec!["istio"];
    if spec.istio.access_logging {
        push(
            "telemetry",
            "Turn on Envoy access logging mesh-wide".into(),
            &["istio"],
            Action::Apply,
            vec![create(access_logging(api))],
        );
        config = vec!["telemetry"];
    }

    let (_, labels) = injection_labels(plan, translation);
    let mut namespace = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": target, "labels": {(MANAGED_BY.0): MANAGED_BY.1}},
    });
    for (key, value) in &labels {
        namespace["metadata"]["labels"][key] = Value::String(value.clone());
    }
    push(
        "target-namespace",
        format!("Create namespace {target} with Istio injection"),
        &["istio"],
        Action::Apply,
        vec![create(namespace)],
    );

    // Configuration first, so the cloned pods start with everything they mount.
    let in_source = |item: &&Item<()>| {
        item.namespace() == source
            && !BUILT_IN
                .iter()
                .any(|(kind, name)| item.raw["kind"] == *kind && item.name() == *name)
    };
    let mut config_objects: Vec<Change> = inventory
        .config_maps
        .iter()
        .chain(&inventory.service_accounts)
        .filter(in_source)
        .map(|item| create(clone_object(&item.raw, &source, &target)))
        .collect();
    let mut clone_deps = vec!["target-namespace"];
    if !config_objects.is_empty() {
        config_objects.sort_by(|a, b| a.object.cmp(&b.object));
        push(
            "clone-config",
            format!("Clone the ConfigMaps and ServiceAccounts of {source} into {target}"),
            &["target-namespace"],
            Action::Apply,
            config_objects,
        );
        clone_deps.push("clone-config");
    }
    let secrets: Vec<Change> = inventory
        .secrets
        .iter()
        .filter(in_source)
        // Service-account tokens are minted per namespace by the cluster itself.
        .filter(|s| {
            s.raw["type"] != "kubernetes.io/service-account-token"
                && s.raw["metadata"]["annotations"]["kubernetes.io/service-account.name"].is_null()
        })
        .map(|s| {
            create(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": s.name(), "namespace": target},
            }))
        })
        .collect();
    if plan.clones_secrets(StrategyKind::ParallelNamespace) && !secrets.is_empty() {
        push(
            "clone-secrets",
            format!(
                "Copy the Secrets of {source} into {target} when the step runs (their data is never shown or saved)"
            ),
            &["target-namespace"],
            Action::CloneSecrets {
                from: source.clone(),
                to: target.clone(),
            },
            secrets,
        );
        clone_deps.push("clone-secrets");
    }

    // Services with the selectors Istio needs, then the Deployments with App Mesh removed.
    let by_object = |changes: Vec<ObjectChange>| -> HashMap<ObjectRef, ObjectChange> {
        changes
            .into_iter()
            .map(|c| (ObjectRef::of(&c.before), c))
            .collect()
    };
    let fixed = by_object(std::mem::take(&mut translation.services));
    let rewritten = by_object(std::mem::take(&mut translation.workloads));
    let services: Vec<Change> = inventory
        .services
        .iter()
        .filter(|s| s.namespace() == source)
        .map(|s| {
            let service = fixed.get(&s.object_ref()).map_or(&*s.raw, |c| &c.after);
            create(clone_service(service, &source, &target))
        })
        .collect();
    let deployments: Vec<&Item<_>> = inventory
        .deployments
        .iter()
        .filter(|d| {
            d.namespace() == source && !translation.gateway_deployments.contains(&d.object_ref())
        })
        .collect();
    let mut workloads = services;
    workloads.extend(deployments.iter().map(|d| {
        let rewritten = rewritten.get(&d.object_ref()).map_or(&*d.raw, |w| &w.after);
        create(clone_deployment(rewritten, &source, &target))
    }));
    push(
        "clone-workloads",
        format!("Clone the Services and Deployments of {source} into {target}, without App Mesh"),
        &clone_deps,
        Action::Apply,
        workloads,
    );

    let mut routing_deps = config.clone();
    routing_deps.push("target-namespace");
    let mut last = vec!["clone-workloads"];
    if !translation.objects.is_empty() {
        push(
            "routing",
            format!(
                "Apply the translated routing in {target}: DestinationRules before VirtualServices"
            ),
            &routing_deps,
            Action::Apply,
            std::mem::take(&mut translation.objects)
                .iter()
                .map(|o| create(relocate(o, &source, &target)))
                .collect(),
        );
        last.push("routing");
    }
    push(
        "peer-authentication",
        format!(
            "Set mutual TLS to {} in {target}",
            serde_json::to_value(spec.istio.mtls)
                .expect("serialises")
                .as_str()
                .unwrap_or_default()
        ),
        &["target-namespace"],
        Action::Apply,
        vec![create(peer_authentication(api, &target, spec.istio.mtls))],
    );
    let names: Vec<String> = deployments.iter().map(|d| d.name().to_owned()).collect();
    push(
        "rollout",
        format!("Wait for the cloned Deployments in {target} to roll out"),
        &["clone-workloads"],
        Action::WaitRollout {
            namespace: target.clone(),
            deployments: names.clone(),
        },
        vec![],
    );
    push(
        "verify-sidecars",
        format!("Check every pod in {target} runs istio-proxy and no App Mesh envoy"),
        &["rollout"],
        Action::VerifySidecars {
            namespace: target.clone(),
            deployments: names,
        },
        vec![],
    );
    last.extend(["verify-sidecars", "peer-authentication"]);
    push(
        "entry",
        format!(
            "Put the traffic entry {} in front of both sides, with 100 % on the old side; `meshplan ramp` moves it",
            entry.object_ref()
        ),
        &last,
        Action::Apply,
        entry.objects(0).into_iter().map(create).collect(),
    );
    Ok(StepGraph {
        plan: plan.name.clone(),
        strategy: StrategyKind::ParallelNamespace,
        steps,
        entry: Some(entry),
    })
}

/// Moves an object to `to`: its namespace, and service host names of the old namespace
/// (`svc.from.svc...`) in any string, so clients of the new side call the new side.
fn relocate_value(value: &mut Value, from: &str, to: &str, names: bool) {
    let old_host = format!(".{from}.svc");
    let new_host = format!(".{to}.svc");
    match value {
        Value::String(s) => {
            if s.contains(&old_host) {
                *s = s.replace(&old_host, &new_host);
            }
            // Istio references namespaces by name (`exportTo`, Sidecar hosts `ns/*`).
            if names {
                if s == from {
                    *s = to.to_owned();
                } else if let Some(rest) = s.strip_prefix(&format!("{from}/")) {
                    *s = format!("{to}/{rest}");
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| relocate_value(v, from, to, names)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| relocate_value(v, from, to, names)),
        _ => {}
    }
}

/// A translated Istio object for the new namespace.
fn relocate(object: &Value, from: &str, to: &str) -> Value {
    let mut copy = object.clone();
    if let Some(spec) = copy.get_mut("spec") {
        relocate_value(spec, from, to, true);
    }
    if copy["metadata"]["namespace"] == from {
        copy["metadata"]["namespace"] = Value::String(to.to_owned());
    }
    copy
}

/// An object as it is created again in `to`: no server fields, no owner, no App Mesh metadata,
/// the old namespace's service host names pointing at the new one.
fn clone_object(object: &Value, from: &str, to: &str) -> Value {
    let mut copy = crate::diff::strip_server_fields(object);
    if let Some(spec) = copy.get_mut("spec") {
        relocate_value(spec, from, to, false);
    }
    if let Some(meta) = copy["metadata"].as_object_mut() {
        meta.insert("namespace".to_owned(), Value::String(to.to_owned()));
        meta.remove("ownerReferences");
    }
    strip_appmesh_metadata(&mut copy["metadata"]);
    if copy["kind"] == "ServiceAccount" {
        // Token references are minted per namespace.
        if let Some(map) = copy.as_object_mut() {
            map.remove("secrets");
        }
    }
    copy
}

fn strip_appmesh_metadata(meta: &mut Value) {
    for field in ["annotations", "labels"] {
        if let Some(map) = meta.get_mut(field).and_then(Value::as_object_mut) {
            map.retain(|k, _| {
                !k.starts_with(APPMESH_PREFIX)
                    && k != "kubectl.kubernetes.io/last-applied-configuration"
                    && k != "deployment.kubernetes.io/revision"
            });
            if map.is_empty() {
                meta.as_object_mut().map(|m| m.remove(field));
            }
        }
    }
}

/// A Service for the new side: addresses and node ports are the cluster's to allocate.
fn clone_service(service: &Value, from: &str, to: &str) -> Value {
    let mut copy = clone_object(service, from, to);
    if let Some(spec) = copy["spec"].as_object_mut() {
        for field in [
            "clusterIP",
            "clusterIPs",
            "healthCheckNodePort",
            "loadBalancerIP",
        ] {
            spec.remove(field);
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports {
                port.as_object_mut().map(|p| p.remove("nodePort"));
            }
        }
    }
    copy
}

/// A Deployment for the new side: without App Mesh's containers and pod-template settings.
fn clone_deployment(deployment: &Value, from: &str, to: &str) -> Value {
    let mut copy = clone_object(deployment, from, to);
    if let Some(meta) = copy.pointer_mut("/spec/template/metadata") {
        strip_appmesh_metadata(meta);
    }
    for field in ["containers", "initContainers"] {
        let pointer = format!("/spec/template/spec/{field}");
        if let Some(containers) = copy.pointer_mut(&pointer).and_then(Value::as_array_mut) {
            containers
                .retain(|c| !APPMESH_CONTAINERS.contains(&c["name"].as_str().unwrap_or_default()));
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clones_lose_app_mesh_and_server_fields_and_call_the_new_side() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "client", "namespace": "shop", "uid": "u", "resourceVersion": "9",
                "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"template": {
                "metadata": {"annotations": {"appmesh.k8s.aws/sidecarInjectorWebhook": "enabled", "keep": "me"}},
                "spec": {"containers": [
                    {"name": "app", "env": [{"name": "COLOR", "value": "color.shop.svc.cluster.local:8080"}]},
                    {"name": "envoy"}
                ], "initContainers": [{"name": "proxyinit"}]}
            }},
            "status": {"replicas": 1}
        });
        let copy = clone_deployment(&deployment, "shop", "shop-istio");
        assert_eq!(
            copy,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "client", "namespace": "shop-istio"},
                "spec": {"template": {
                    "metadata": {"annotations": {"keep": "me"}},
                    "spec": {"containers": [
                        {"name": "app", "env": [{"name": "COLOR", "value": "color.shop-istio.svc.cluster.local:8080"}]}
                    ], "initContainers": []}
                }}
            })
        );
        let service = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "color", "namespace": "shop"},
            "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80, "nodePort": 30001}]}});
        assert_eq!(
            clone_service(&service, "shop", "shop-istio")["spec"],
            json!({"ports": [{"port": 80}]})
        );
    }

    #[test]
    fn istio_objects_move_with_their_namespace_references() {
        let sidecar = json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "client", "namespace": "shop"},
            "spec": {"egress": [{"hosts": ["shop/*", "istio-system/*", "./color.shop.svc.cluster.local"]}],
                     "exportTo": ["shop"]}});
        let moved = relocate(&sidecar, "shop", "shop-istio");
        assert_eq!(moved["metadata"]["namespace"], "shop-istio");
        assert_eq!(
            moved["spec"],
            json!({"egress": [{"hosts": ["shop-istio/*", "istio-system/*", "./color.shop-istio.svc.cluster.local"]}],
                   "exportTo": ["shop-istio"]})
        );
    }
}
