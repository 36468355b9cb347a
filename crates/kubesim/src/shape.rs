//! How lists and maps of a kind merge: keyed lists, sets and atomic values, from built-in knowledge
//! (the patch merge keys of the Kubernetes types) or a CRD's structural schema.

use serde_json::Value;

/// How a list merges and is owned.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    /// Replaced wholesale, one owner.
    Atomic,
    /// Scalar members merged as a set.
    Set,
    /// Items merged by these key fields.
    Map(Vec<&'static str>),
    /// Items merged by these key fields (from a CRD schema).
    MapOwned(Vec<String>),
}

impl ListKind {
    /// The key fields of a keyed list.
    pub fn keys(&self) -> Vec<String> {
        match self {
            ListKind::Map(k) => k.iter().map(|s| s.to_string()).collect(),
            ListKind::MapOwned(k) => k.clone(),
            _ => vec![],
        }
    }
}

/// Merge knowledge for one resource kind.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// A built-in kind: list keys come from the Kubernetes types' patch metadata.
    Builtin,
    /// A custom resource with the CRD version's schema (if any).
    Schema(Option<&'a Value>),
}

impl<'a> Shape<'a> {
    /// The list semantics at a field path (field names only, list positions skipped).
    pub fn list_kind(&self, path: &[String]) -> ListKind {
        let last = path.last().map(String::as_str).unwrap_or_default();
        let in_container = path.len() >= 2
            && matches!(
                path[path.len() - 2].as_str(),
                "containers" | "initContainers" | "ephemeralContainers"
            );
        if path.len() == 2 && path[0] == "metadata" {
            return match last {
                "finalizers" => ListKind::Set,
                "ownerReferences" => ListKind::Map(vec!["uid"]),
                _ => ListKind::Atomic,
            };
        }
        match self {
            Shape::Builtin => match last {
                "containers"
                | "initContainers"
                | "ephemeralContainers"
                | "volumes"
                | "imagePullSecrets" => ListKind::Map(vec!["name"]),
                "env" if in_container => ListKind::Map(vec!["name"]),
                "volumeMounts" if in_container => ListKind::Map(vec!["mountPath"]),
                "ports" if in_container => ListKind::Map(vec!["containerPort", "protocol"]),
                "ports" if path.len() == 2 && path[0] == "spec" => {
                    ListKind::Map(vec!["port", "protocol"])
                }
                "conditions" if path.first().is_some_and(|p| p == "status") => {
                    ListKind::Map(vec!["type"])
                }
                "hostAliases" => ListKind::Map(vec!["ip"]),
                "finalizers" if path.len() == 2 && path[0] == "spec" => ListKind::Set,
                _ => ListKind::Atomic,
            },
            Shape::Schema(schema) => {
                let Some(node) = schema.and_then(|s| schema_node(s, path)) else {
                    return ListKind::Atomic;
                };
                match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListKind::Set,
                    Some("map") => ListKind::MapOwned(
                        node["x-kubernetes-list-map-keys"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect(),
                    ),
                    _ => ListKind::Atomic,
                }
            }
        }
    }

    /// The strategic-merge-patch key of a list (built-ins only): a single field, ports by number.
    pub fn patch_merge_key(&self, path: &[String]) -> Option<&'static str> {
        match self.list_kind(path) {
            ListKind::Map(keys) => keys.first().copied(),
            _ => None,
        }
    }

    /// Whether a map/struct at this path is atomic (owned and replaced as a whole).
    pub fn atomic_map(&self, path: &[String]) -> bool {
        match self {
            // LabelSelector and Service selectors are atomic in the Kubernetes types.
            Shape::Builtin => path.last().is_some_and(|l| l == "selector"),
            Shape::Schema(schema) => {
                schema
                    .and_then(|s| schema_node(s, path))
                    .and_then(|n| n.get("x-kubernetes-map-type"))
                    .and_then(Value::as_str)
                    == Some("atomic")
            }
        }
    }
}

/// The schema node at a field path; list items are entered implicitly.
pub fn schema_node<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = schema;
    for seg in path {
        while node.get("type").and_then(Value::as_str) == Some("array") {
            node = node.get("items")?;
        }
        node = match node.get("properties").and_then(|p| p.get(seg)) {
            Some(n) => n,
            None => node.get("additionalProperties").filter(|a| a.is_object())?,
        };
    }
    Some(node)
}
