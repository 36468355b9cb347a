//! The manifests that run `meshplan ramp` in the cluster on a schedule: a ServiceAccount, Roles and
//! RoleBindings with exactly the verbs a tick uses, a ConfigMap holding the plan, and a CronJob
//! that never runs two ticks at once (`concurrencyPolicy: Forbid`; the Lease guards the rest).

use serde_json::{Value, json};

use crate::appmesh;
use crate::entry::GATEWAY_API;
use crate::plan::{EntryKind, PlanFile, StateBackend, StrategyKind};
use crate::state::object_name;
use crate::translate::MANAGED_BY;

/// Where the plan is mounted in the CronJob's pods.
pub const PLAN_DIR: &str = "/etc/meshplan";

fn labels() -> Value {
    json!({ (MANAGED_BY.0): MANAGED_BY.1, "app.kubernetes.io/name": "meshplan-ramp" })
}

/// A Role in `namespace` and its binding to the ServiceAccount `name` in `account_namespace`.
fn role(name: &str, namespace: &str, account_namespace: &str, rules: Value) -> [Value; 2] {
    [
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace, "labels": labels()},
            "rules": rules,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": account_namespace}],
        }),
    ]
}

/// The objects, in apply order.
pub fn objects(
    plan: &PlanFile,
    image: &str,
    schedule: &str,
    namespace: Option<&str>,
) -> Result<Vec<Value>, crate::Error> {
    let spec = &plan.spec;
    if spec.strategy.kind != StrategyKind::ParallelNamespace {
        return Err(crate::Error::Unsupported(
            "the CronJob runs `meshplan ramp`, which moves traffic of a parallel-namespace \
             migration; this plan migrates in place"
                .to_owned(),
        ));
    }
    if spec.state.backend != StateBackend::Configmap {
        return Err(crate::Error::Unsupported(format!(
            "{}: the CronJob's runs share the journal and lock through the cluster; set \
             `[state] backend = \"configmap\"` (and `namespace`) in the plan",
            plan.path.display()
        )));
    }
    let source = plan.namespaces().into_iter().next().unwrap_or_default();
    let state_namespace = spec
        .state_namespace()
        .map_or_else(|| source.clone(), |n| n.to_string());
    let namespace = namespace.map_or(state_namespace.clone(), str::to_owned);
    let target = spec
        .strategy
        .target_namespace
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let name = format!("{}-ramp", object_name(&plan.name));
    let file = plan
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}.toml", plan.name));

    let mut out = vec![json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": labels()},
    })];
    // The journal and ramp state (ConfigMap) and the lock (Lease).
    out.extend(role(
        &name,
        &state_namespace,
        &namespace,
        json!([
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
        ]),
    ));
    // The entry's weights: read back, then patched.
    let (group, resource) = match spec.strategy.entry.as_ref().map(|e| e.kind) {
        Some(EntryKind::GatewayApi) => (
            GATEWAY_API.split('/').next().unwrap_or_default(),
            "httproutes",
        ),
        _ => ("networking.istio.io", "virtualservices"),
    };
    out.extend(role(
        &name,
        &target,
        &namespace,
        json!([{"apiGroups": [group], "resources": [resource], "verbs": ["get", "patch"]}]),
    ));
    // Finalizing removes the old side's App Mesh objects.
    if spec.cleanup.delete_appmesh {
        let plurals: Vec<&str> = appmesh::NAMESPACED_KINDS.iter().map(|(_, p)| *p).collect();
        out.extend(role(
            &name,
            &source,
            &namespace,
            json!([{"apiGroups": [appmesh::GROUP], "resources": plurals, "verbs": ["list", "delete"]}]),
        ));
    }
    if spec.cleanup.delete_mesh {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": format!("{name}-{namespace}"), "labels": labels()},
            "rules": [{"apiGroups": [appmesh::GROUP], "resources": ["meshes"], "verbs": ["list", "delete"]}],
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{name}-{namespace}"), "labels": labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{name}-{namespace}")},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }));
    }
    // Role names are per namespace; when two sides share one, merge their rules into one Role.
    let mut out = merge_roles(out);
    out.push(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("{name}-plan"), "namespace": namespace, "labels": labels()},
        "data": { file.clone(): plan.text() },
    }));
    out.push(json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels()},
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": labels()},
                    "spec": {
                        "serviceAccountName": name,
                        "restartPolicy": "Never",
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532},
                        "containers": [{
                            "name": "ramp",
                            "image": image,
                            "args": ["ramp", format!("{PLAN_DIR}/{file}"), "--in-cluster"],
                            "volumeMounts": [{"name": "plan", "mountPath": PLAN_DIR, "readOnly": true}],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true},
                        }],
                        "volumes": [{"name": "plan", "configMap": {"name": format!("{name}-plan")}}],
                    },
                },
            }},
        },
    }));
    Ok(out)
}

/// One Role (and RoleBinding) per namespace: rules of Roles that share a namespace are merged.
fn merge_roles(objects: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for object in objects {
        let same = out.iter_mut().find(|o| {
            o["kind"] == object["kind"]
                && o["metadata"]["name"] == object["metadata"]["name"]
                && o["metadata"]["namespace"] == object["metadata"]["namespace"]
        });
        match (same, object["kind"].as_str()) {
            (Some(existing), Some("Role")) => {
                if let (Some(rules), Some(more)) =
                    (existing["rules"].as_array_mut(), object["rules"].as_array())
                {
                    rules.extend(more.iter().cloned());
                }
            }
            (Some(_), _) => {}
            (None, _) => out.push(object),
        }
    }
    out
}

/// The objects as one multi-document YAML stream.
pub fn manifests(
    plan: &PlanFile,
    image: &str,
    schedule: &str,
    namespace: Option<&str>,
) -> Result<String, crate::Error> {
    let docs: Vec<String> = objects(plan, image, schedule, namespace)?
        .iter()
        .map(crate::diff::to_yaml)
        .collect();
    Ok(format!(
        "# meshplan ramp as a CronJob for plan {}\n---\n{}",
        plan.name,
        docs.join("---\n")
    ))
}
