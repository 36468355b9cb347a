//! Kubernetes objects as JSON values, and references to them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `apiVersion` of the EKS add-on pseudo-object.
pub const EKS_ADDON_API_VERSION: &str = "eks.amazonaws.com";
/// Kind of the EKS add-on pseudo-object, as the plan shows it.
pub const EKS_ADDON_KIND: &str = "EKS Addon";

/// Names one object: its type and its place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `group/version` or `v1`.
    pub api_version: String,
    /// Kind, e.g. `VirtualService`.
    pub kind: String,
    /// Namespace; null for cluster-scoped objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// A reference from its parts.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// The reference of an object given as JSON (missing parts are empty).
    pub fn of(object: &Value) -> Self {
        let (api_version, kind, namespace, name) = parts(object);
        ObjectRef::new(api_version, kind, namespace, name)
    }

    /// This reference's parts, borrowed, in the order references sort by.
    pub fn parts(&self) -> Parts<'_> {
        (
            &self.api_version,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }

    /// The pseudo-object standing for an EKS add-on in a plan: not a Kubernetes object, so the
    /// engine reads, dry-runs and restores it through the EKS API, never the kube API. Its
    /// "namespace" is the EKS cluster (unknown until one is bound).
    pub fn eks_addon(cluster: Option<&str>, addon: &str) -> Self {
        ObjectRef::new(EKS_ADDON_API_VERSION, EKS_ADDON_KIND, cluster, addon)
    }

    /// True for the EKS add-on pseudo-object.
    pub fn is_eks_addon(&self) -> bool {
        self.api_version == EKS_ADDON_API_VERSION && self.kind == EKS_ADDON_KIND
    }

    /// The API group (empty for the core group).
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }
}

/// An object's apiVersion, kind, namespace and name, borrowed: what [`ObjectRef`] holds and
/// sorts by, without copying it (sorting and indexing thousands of objects).
pub type Parts<'a> = (&'a str, &'a str, Option<&'a str>, &'a str);

/// The parts of an object given as JSON (missing parts are empty).
pub fn parts(object: &Value) -> Parts<'_> {
    fn text(value: &Value) -> &str {
        value.as_str().unwrap_or_default()
    }
    (
        text(&object["apiVersion"]),
        text(&object["kind"]),
        object["metadata"]["namespace"].as_str(),
        text(&object["metadata"]["name"]),
    )
}

/// The API group of an `apiVersion` (empty for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("")
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}
