//! Strategies: turn a translation into a step graph.

mod in_place;
mod parallel;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::inventory::Inventory;
use crate::istio::{self, ApiVersions};
use crate::object::ObjectRef;
use crate::plan::{Install, Istio, Mtls, PlanFile, PlanSpec, StrategyKind};
use crate::steps::{Action, Change, ChangeAction, StepGraph};
use crate::translate::{MANAGED_BY, Translation};

/// The App Mesh injector's namespace label.
pub const APPMESH_INJECTOR_LABEL: &str = "appmesh.k8s.aws/sidecarInjectorWebhook";
/// Istio's default-revision injection label.
pub const ISTIO_INJECTION_LABEL: &str = "istio-injection";
/// Istio's revision label.
pub const ISTIO_REV_LABEL: &str = "istio.io/rev";
/// Istio's root namespace, where mesh-wide configuration lives.
pub const ISTIO_ROOT_NAMESPACE: &str = "istio-system";

/// Builds the step graph of a plan. The translated objects, Services and workloads move into
/// the graph's changes (a large mesh is not held twice): `translation` keeps the rest.
pub fn build(
    plan: &PlanFile,
    kind: StrategyKind,
    inventory: &Inventory,
    translation: &mut Translation,
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

/// The `istio` step: its description, action and, for an EKS add-on install, the add-on's
/// change (shown as a create until `eks::observe` compares it with the cluster's add-on).
fn istio_step(spec: &PlanSpec) -> (String, Action, Vec<Change>) {
    let istio = &spec.istio;
    let action = Action::EnsureIstio {
        install: istio.install,
        revision: istio.revision.as_ref().map(|r| r.to_string()),
        eks: match istio.install {
            Install::EksAddon => spec.source.eks.clone(),
            Install::Existing => None,
        },
    };
    match istio.install {
        Install::Existing => (
            format!(
                "Make sure Istio {} is installed: istiod available and the Istio CRDs served",
                istio.version
            ),
            action,
            Vec::new(),
        ),
        Install::EksAddon => {
            let cluster = spec.source.eks.as_ref().map(|c| c.name.as_str());
            let change = Change {
                action: ChangeAction::Create,
                object: ObjectRef::eks_addon(cluster, istio.addon_name()),
                before: None,
                after: Some(addon_settings(istio)),
            };
            (
                format!(
                    "Install Istio {} as the EKS add-on {}, wait for it to be ACTIVE, then check \
                     istiod is available and the Istio CRDs served",
                    istio.version,
                    istio.addon_name()
                ),
                action,
                vec![change],
            )
        }
    }
}

/// The settings of the Istio EKS add-on a plan asks for, as the add-on's change shows them.
pub fn addon_settings(istio: &Istio) -> Value {
    let mut settings = serde_json::Map::new();
    settings.insert("addonName".into(), Value::from(istio.addon_name()));
    if let Some(version) = &istio.addon_version {
        settings.insert("addonVersion".into(), Value::from(version.as_str()));
    }
    if let Some(values) = &istio.configuration_values {
        settings.insert("configurationValues".into(), Value::from(values.as_str()));
    }
    if let Some(resolve) = istio.resolve_conflicts {
        settings.insert("resolveConflicts".into(), Value::from(resolve.as_str()));
    }
    Value::Object(settings)
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
