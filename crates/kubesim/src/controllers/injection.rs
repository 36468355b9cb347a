//! Sidecar injection at pod creation, as the Istio and App Mesh mutating webhooks do it.

use serde_json::{Value, json};

use crate::selector::{LabelSelector, labels_of};

/// The Istio sidecar image kubesim injects.
pub const ISTIO_PROXY_IMAGE: &str = "docker.io/istio/proxyv2:1.24.0";
/// The App Mesh Envoy image kubesim injects.
pub const APPMESH_ENVOY_IMAGE: &str =
    "840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-envoy:v1.29.12.1-prod";

/// Whether the namespace asks Istio to inject (`istio-injection=enabled` or an `istio.io/rev` label).
fn istio_namespace(ns: &Value) -> bool {
    let labels = labels_of(ns);
    match labels.get("istio-injection").map(String::as_str) {
        Some("enabled") => true,
        Some(_) => false,
        None => labels.contains_key("istio.io/rev"),
    }
}

/// Whether the pod opts out of Istio injection (label or annotation `sidecar.istio.io/inject: "false"`).
fn istio_opt_out(pod: &Value) -> bool {
    let m = &pod["metadata"];
    m["labels"]["sidecar.istio.io/inject"] == "false"
        || m["annotations"]["sidecar.istio.io/inject"] == "false"
}

fn has_container(pod: &Value, name: &str) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == name))
}

fn push_container(pod: &mut Value, container: Value) {
    if let Some(cs) = pod["spec"]["containers"].as_array_mut() {
        cs.push(container);
    }
}

/// Injects sidecars into a pod being created in namespace `ns`, given the App Mesh VirtualNodes of
/// that namespace.
pub fn inject(pod: &mut Value, ns: &Value, virtual_nodes: &[&Value]) {
    if istio_namespace(ns) && !istio_opt_out(pod) && !has_container(pod, "istio-proxy") {
        push_container(
            pod,
            json!({
                "name": "istio-proxy", "image": ISTIO_PROXY_IMAGE,
                "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
                "imagePullPolicy": "IfNotPresent", "resources": {},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            }),
        );
        pod["metadata"]["annotations"]["sidecar.istio.io/status"] =
            json!("{\"initContainers\":null,\"containers\":[\"istio-proxy\"],\"volumes\":null}");
    }
    let appmesh_ns = labels_of(ns)
        .get("appmesh.k8s.aws/sidecarInjectorWebhook")
        .map(String::as_str)
        == Some("enabled");
    let opted_out =
        pod["metadata"]["annotations"]["appmesh.k8s.aws/sidecarInjectorWebhook"] == "disabled";
    if !appmesh_ns || opted_out || has_container(pod, "envoy") {
        return;
    }
    let pod_labels = labels_of(pod);
    let selected = virtual_nodes.iter().find(|vn| {
        vn["spec"]["podSelector"].is_object()
            && LabelSelector::from_json(&vn["spec"]["podSelector"])
                .is_ok_and(|s| s.matches(&pod_labels))
    });
    let Some(vn) = selected else { return };
    let mesh = vn["spec"]["meshRef"]["name"].as_str().unwrap_or_else(|| {
        ns["metadata"]["labels"]["mesh"]
            .as_str()
            .unwrap_or_default()
    });
    let arn = format!(
        "mesh/{mesh}/virtualNode/{}_{}",
        vn["metadata"]["name"].as_str().unwrap_or_default(),
        ns["metadata"]["name"].as_str().unwrap_or_default()
    );
    push_container(
        pod,
        json!({
            "name": "envoy", "image": APPMESH_ENVOY_IMAGE,
            "env": [{"name": "APPMESH_RESOURCE_ARN", "value": arn}, {"name": "APPMESH_PREVIEW", "value": "0"}],
            "ports": [{"containerPort": 9901, "name": "stats", "protocol": "TCP"}],
            "imagePullPolicy": "IfNotPresent", "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(labels: Value, annotations: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": labels, "annotations": annotations}, "spec": {"containers": [{"name": "app"}]}})
    }

    fn names(p: &Value) -> Vec<&str> {
        p["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn istio_injects_by_namespace_label_unless_the_pod_opts_out() {
        let ns = json!({"metadata": {"name": "a", "labels": {"istio.io/rev": "1-24"}}});
        let mut p = pod(json!({}), json!({}));
        inject(&mut p, &ns, &[]);
        assert_eq!(names(&p), ["app", "istio-proxy"]);
        let mut out = pod(json!({"sidecar.istio.io/inject": "false"}), json!({}));
        inject(&mut out, &ns, &[]);
        assert_eq!(names(&out), ["app"]);
        let disabled = json!({"metadata": {"name": "a", "labels": {"istio-injection": "disabled", "istio.io/rev": "x"}}});
        let mut p = pod(json!({}), json!({}));
        inject(&mut p, &disabled, &[]);
        assert_eq!(names(&p), ["app"]);
    }

    #[test]
    fn appmesh_injects_when_a_virtual_node_selects_the_pod() {
        let ns = json!({"metadata": {"name": "shop", "labels": {"appmesh.k8s.aws/sidecarInjectorWebhook": "enabled", "mesh": "m"}}});
        let vn = json!({"metadata": {"name": "red"}, "spec": {"podSelector": {"matchLabels": {"app": "red"}}}});
        let mut p = pod(json!({"app": "red"}), json!({}));
        inject(&mut p, &ns, &[&vn]);
        assert_eq!(names(&p), ["app", "envoy"]);
        assert_eq!(
            p["spec"]["containers"][1]["env"][0]["value"],
            "mesh/m/virtualNode/red_shop"
        );
        let mut other = pod(json!({"app": "blue"}), json!({}));
        inject(&mut other, &ns, &[&vn]);
        assert_eq!(names(&other), ["app"]);
    }
}
