//! The registry of served resource types: built-in kinds plus those registered by CRDs.

use serde_json::Value;

/// Paths of a CRD's scale subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    /// JSON path of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// JSON path of the observed replicas.
    pub status_replicas: String,
}

/// One served resource of one group-version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// API group, "" for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular resource name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    pub categories: Vec<String>,
    /// Whether a `status` subresource exists.
    pub status: bool,
    /// The scale subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Name of the CRD that registered this resource; `None` for built-ins.
    pub crd: Option<String>,
    /// The CRD version's `openAPIV3Schema`.
    pub schema: Option<std::sync::Arc<Value>>,
    /// The CRD version's `additionalPrinterColumns`.
    pub printer_columns: Vec<Value>,
    /// The `Warning` text for a deprecated CRD version.
    pub deprecation: Option<String>,
}

impl ResourceInfo {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    /// The error-message identity of this resource.
    pub fn qualified(&self) -> crate::error::Qualified<'_> {
        crate::error::Qualified {
            plural: &self.plural,
            group: &self.group,
        }
    }

    /// The storage key shared by all versions of this resource.
    pub fn storage_key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }
}

/// Declares a built-in resource.
#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    all: bool,
    status: bool,
    scale: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.to_string(),
        version: "v1".to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".to_string()] } else { vec![] },
        status,
        scale: scale.then(|| ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
        }),
        crd: None,
        schema: None,
        printer_columns: vec![],
        deprecation: None,
    }
}

/// The built-in resources kubesim serves.
pub fn builtins() -> Vec<ResourceInfo> {
    vec![
        builtin(
            "",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            false,
            true,
            false,
        ),
        builtin("", "Service", "services", true, &["svc"], true, true, false),
        builtin("", "Pod", "pods", true, &["po"], true, true, false),
        builtin(
            "",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            false,
            false,
            false,
        ),
        builtin("", "Secret", "secrets", true, &[], false, false, false),
        builtin(
            "",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
            false,
            false,
        ),
        builtin("", "Event", "events", true, &["ev"], false, false, false),
        builtin(
            "apps",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            true,
            true,
            true,
        ),
        builtin(
            "apps",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            true,
            true,
            true,
        ),
        builtin("batch", "Job", "jobs", true, &[], true, true, false),
        builtin(
            "batch",
            "CronJob",
            "cronjobs",
            true,
            &["cj"],
            true,
            true,
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "Lease",
            "leases",
            true,
            &[],
            false,
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "Role",
            "roles",
            true,
            &[],
            false,
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            false,
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            false,
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
            false,
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            false,
            true,
            false,
        ),
    ]
}

/// Orders versions as Kubernetes does: GA > beta > alpha, higher numbers first, others last.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match num.parse::<u32>() {
        Ok(n) => (level, major, n),
        Err(_) => (0, 0, 0),
    }
}

/// The resources a CRD object registers: one per served version.
pub fn from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<ResourceInfo> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .map(|v| {
            let sub = &v["subresources"];
            ResourceInfo {
                group: group.to_string(),
                version: v["name"].as_str().unwrap_or_default().to_string(),
                kind: kind.to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status: sub.get("status").is_some_and(|s| !s.is_null()),
                scale: sub
                    .get("scale")
                    .filter(|s| !s.is_null())
                    .map(|s| ScalePaths {
                        spec_replicas: s["specReplicasPath"]
                            .as_str()
                            .unwrap_or(".spec.replicas")
                            .to_string(),
                        status_replicas: s["statusReplicasPath"]
                            .as_str()
                            .unwrap_or(".status.replicas")
                            .to_string(),
                    }),
                crd: crd["metadata"]["name"].as_str().map(str::to_string),
                schema: v["schema"]
                    .get("openAPIV3Schema")
                    .cloned()
                    .map(std::sync::Arc::new),
                deprecation: (v["deprecated"].as_bool() == Some(true)).then(|| {
                    v["deprecationWarning"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!(
                                "{group}/{} {kind} is deprecated",
                                v["name"].as_str().unwrap_or_default()
                            )
                        })
                }),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(version_priority(&r.version)));
    out
}

/// All served resources, with group and version lookup. Shared, so that a request's copy of it
/// costs a reference count; a CRD change copies it once.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    resources: std::sync::Arc<Vec<ResourceInfo>>,
}

impl Registry {
    /// A registry holding the built-in resources.
    pub fn new() -> Self {
        Self {
            resources: std::sync::Arc::new(builtins()),
        }
    }

    /// Every served resource.
    pub fn all(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// Finds a resource by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Finds a resource by group, version and kind.
    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Groups in discovery order (core excluded), each with versions in preference order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.resources.iter().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => groups.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups
    }

    /// Resources of one group-version.
    pub fn group_version(&self, group: &str, version: &str) -> Vec<&ResourceInfo> {
        self.resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .collect()
    }

    /// Replaces the resources registered by the named CRD.
    pub fn set_crd(&mut self, crd_name: &str, resources: Vec<ResourceInfo>) {
        let all = std::sync::Arc::make_mut(&mut self.resources);
        all.retain(|r| r.crd.as_deref() != Some(crd_name));
        all.extend(resources);
    }

    /// Whether another CRD or a built-in already serves this group and plural.
    pub fn plural_taken(&self, crd_name: &str, group: &str, plural: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.group == group && r.plural == plural && r.crd.as_deref() != Some(crd_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1beta1", "v1", "v2beta1", "v1beta2", "foo"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(
            v,
            ["v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }
}
