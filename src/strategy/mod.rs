//! Strategies: turn a translation into a step graph.

mod in_place;
mod parallel;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::inventory::Inventory;
use crate::istio::{self, ApiVersions};
use crate::object::ObjectRef;
use crate::plan::{Mtls, PlanFile, StrategyKind};
use crate::steps::{Change, ChangeAction, StepGraph};
use crate::translate::{MANAGED_BY, Translation};

/// The App Mesh injector's namespace label.
pub const APPMESH_INJECTOR_LABEL: &str = "appmesh.k8s.aws/sidecarInjectorWebhook";
/// Istio's default-revision injection label.
pub const ISTIO_INJECTION_LABEL: &str = "istio-injection";
/// Istio's revision label.
pub const ISTIO_REV_LABEL: &str = "istio.io/rev";
/// Istio's root namespace, where mesh-wide configuration lives.
pub const ISTIO_ROOT_NAMESPACE: &str = "istio-system";

/// Builds the step graph of a plan.
pub fn build(
    plan: &PlanFile,
    kind: StrategyKind,
    inventory: &Inventory,
    translation: &Translation,
) -> Result<StepGraph, crate::Error> {
    match kind {
        StrategyKind::InPlace => Ok(in_place::build(plan, inventory, translation)),
        StrategyKind::ParallelNamespace => parallel::build(plan, inventory, translation),
    }
}

/// The labels that switch a namespace from App Mesh to Istio injection.
pub fn injection_labels(
    plan: &PlanFile,
    translation: &Translation,
) -> (Vec<String>, BTreeMap<String, String>) {
    let mut remove = vec![APPMESH_INJECTOR_LABEL.to_owned()];
    remove.extend(translation.mesh_labels.keys().cloned());
    let set = match &plan.spec.istio.revision {
        Some(rev) => BTreeMap::from([(ISTIO_REV_LABEL.to_owned(), rev.to_string())]),
        None => BTreeMap::from([(ISTIO_INJECTION_LABEL.to_owned(), "enabled".to_owned())]),
    };
    (remove, set)
}

fn managed(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY.0.to_owned(),
            MANAGED_BY.1.to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

/// The mesh-wide `Telemetry` that turns on Envoy access logs.
pub fn access_logging(api: ApiVersions) -> Value {
    istio::Resource {
        api_version: api.telemetry,
        kind: "Telemetry",
        metadata: managed("mesh-default", ISTIO_ROOT_NAMESPACE),
        spec: istio::TelemetrySpec {
            selector: None,
            access_logging: vec![istio::AccessLogging {
                providers: vec![istio::ProviderRef {
                    name: "envoy".to_owned(),
                }],
            }],
        },
    }
    .to_value()
}

/// The namespace-wide `PeerAuthentication` for the plan's mTLS mode.
pub fn peer_authentication(api: ApiVersions, namespace: &str, mtls: Mtls) -> Value {
    istio::Resource {
        api_version: api.security,
        kind: "PeerAuthentication",
        metadata: managed("default", namespace),
        spec: istio::PeerAuthenticationSpec {
            mtls: Some(istio::PeerMtls {
                mode: match mtls {
                    Mtls::Permissive => "PERMISSIVE",
                    Mtls::Strict => "STRICT",
                },
            }),
            ..Default::default()
        },
    }
    .to_value()
}

/// A change that creates `after`.
fn create(after: Value) -> Change {
    Change {
        action: ChangeAction::Create,
        object: ObjectRef::of(&after),
        before: None,
        after: Some(after),
    }
}
