//! `apply --rehearse`: the whole migration against an in-process kubesim loaded with the plan's
//! source manifests, a simulated istiod and the CRDs they need, so a team sees every step run
//! before touching a cluster.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{self, Cluster};
use crate::inventory::{self, ManifestError};
use crate::plan::PlanFile;
use crate::{Error, appmesh};

/// App Mesh kinds: (kind, plural, namespaced).
const APPMESH_KINDS: &[(&str, &str, bool)] = &[
    ("Mesh", "meshes", false),
    ("VirtualNode", "virtualnodes", true),
    ("VirtualService", "virtualservices", true),
    ("VirtualRouter", "virtualrouters", true),
    ("VirtualGateway", "virtualgateways", true),
    ("GatewayRoute", "gatewayroutes", true),
    ("BackendGroup", "backendgroups", true),
];

/// Istio (and Gateway API) kinds meshplan emits: (group, kind, plural, served versions).
const ISTIO_KINDS: &[(&str, &str, &str, &[&str])] = &[
    (
        "networking.istio.io",
        "VirtualService",
        "virtualservices",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "DestinationRule",
        "destinationrules",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "Gateway",
        "gateways",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "ServiceEntry",
        "serviceentries",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "Sidecar",
        "sidecars",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "security.istio.io",
        "PeerAuthentication",
        "peerauthentications",
        &["v1", "v1beta1"],
    ),
    (
        "security.istio.io",
        "AuthorizationPolicy",
        "authorizationpolicies",
        &["v1", "v1beta1"],
    ),
    (
        "telemetry.istio.io",
        "Telemetry",
        "telemetries",
        &["v1", "v1alpha1"],
    ),
    // The entry of a parallel-namespace migration may be a Gateway API route.
    (
        "gateway.networking.k8s.io",
        "HTTPRoute",
        "httproutes",
        &["v1"],
    ),
    (
        "gateway.networking.k8s.io",
        "ReferenceGrant",
        "referencegrants",
        &["v1beta1"],
    ),
];

/// A permissive CRD (any spec) for a kind; the rehearsal checks behaviour, not schemas.
fn crd(group: &str, kind: &str, plural: &str, versions: &[&str], namespaced: bool) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}
            })
        })
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.to_ascii_lowercase(), "listKind": format!("{kind}List")},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": versions
        }
    })
}

/// The CRDs the rehearsal cluster serves, and an istiod that becomes Available.
pub fn cluster_objects() -> Vec<Value> {
    let mut out: Vec<Value> = APPMESH_KINDS
        .iter()
        .map(|(kind, plural, namespaced)| {
            crd(appmesh::GROUP, kind, plural, &["v1beta2"], *namespaced)
        })
        .collect();
    out.extend(
        ISTIO_KINDS
            .iter()
            .map(|(group, kind, plural, versions)| crd(group, kind, plural, versions, true)),
    );
    out.push(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
    );
    out.push(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": "istio-system"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "istiod"}},
            "template": {
                "metadata": {"labels": {"app": "istiod"}},
                "spec": {"containers": [{"name": "discovery", "image": "istio/pilot (simulated)"}]}
            }
        }
    }));
    out
}

/// Starts the rehearsal cluster: simulated CRDs and istiod, then the plan's source manifests.
pub async fn start(plan: &PlanFile) -> Result<(kubesim::RunningServer, Cluster), Error> {
    start_with(plan, Duration::from_millis(50)).await
}

/// [`start`], with Deployments taking `rollout_delay` to roll out (benchmarks take none).
pub async fn start_with(
    plan: &PlanFile,
    rollout_delay: Duration,
) -> Result<(kubesim::RunningServer, Cluster), Error> {
    if plan.spec.source.manifests.is_empty() {
        return Err(Error::Unsupported(
            "--rehearse replays the plan's `source.manifests`; this plan reads a live cluster"
                .to_owned(),
        ));
    }
    let rehearsal = |e: &dyn std::fmt::Display| Error::Rehearsal(e.to_string());
    let server = kubesim::Server::builder()
        .rollout_delay(rollout_delay)
        .start()
        .await
        .map_err(|e| rehearsal(&e))?;
    kubesim::load::load_objects(server.store(), "rehearsal", cluster_objects())
        .map_err(|e| rehearsal(&e))?;
    let mut texts = Vec::new();
    for path in &plan.spec.source.manifests {
        for file in inventory::yaml_files(&plan.base_dir().join(path))? {
            let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Io {
                path: file.clone(),
                source,
            })?;
            texts.push(text);
        }
    }
    // One stream, so kubesim creates Namespaces before the objects in them.
    server
        .load_yaml("source manifests", &texts.join("\n---\n"))
        .map_err(|e| rehearsal(&e))?;
    let client = cluster::connect_yaml(&server.kubeconfig_yaml()).await?;
    Ok((server, Cluster::new(client)))
}
