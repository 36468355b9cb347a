//! Object metadata helpers: timestamps, uids, generation rules.

use serde_json::Value;

use crate::resources::ResourceInfo;

/// The current time as RFC 3339 with seconds precision, as the apiserver writes it.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A fresh object uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether the kind carries `metadata.generation`.
pub fn has_generation(res: &ResourceInfo) -> bool {
    res.is_custom()
        || matches!(
            res.group.as_str(),
            "apps" | "batch" | "apiextensions.k8s.io"
        )
}

/// Whether a change from `old` to `new` bumps `metadata.generation`.
///
/// Any change outside metadata and status counts (status too for custom resources without a
/// status subresource); Deployments also count annotation changes.
pub fn generation_changes(res: &ResourceInfo, old: &Value, new: &Value) -> bool {
    // Everything but metadata, apiVersion and kind (and status, where it has its own subresource
    // or is built in), compared key by key without copying either object.
    let compared = |k: &str| {
        !matches!(k, "metadata" | "apiVersion" | "kind")
            && !(k == "status" && (res.status || !res.is_custom()))
    };
    let declared_changes = match (old.as_object(), new.as_object()) {
        (Some(o), Some(n)) => o
            .keys()
            .chain(n.keys())
            .filter(|k| compared(k))
            .any(|k| o.get(k) != n.get(k)),
        _ => old != new,
    };
    if declared_changes {
        return true;
    }
    res.group == "apps"
        && res.kind == "Deployment"
        && old["metadata"]["annotations"] != new["metadata"]["annotations"]
}

/// `metadata.<field>` as a string, or "".
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

/// Sets `metadata.<field>`, creating `metadata` if needed.
pub fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if !obj["metadata"].is_object() {
        obj["metadata"] = Value::Object(Default::default());
    }
    obj["metadata"][field] = value;
}

/// Removes `metadata.<field>`.
pub fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove(field);
    }
}

/// The object's finalizers.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use serde_json::json;

    #[test]
    fn only_declared_changes_bump_the_generation() {
        let registry = Registry::new();
        let deployments = registry.find("apps", "v1", "deployments").unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"a": "1"}}, "spec": {"replicas": 1}, "status": {}});
        let with = |path: &[&str], value: Value| {
            let mut v = d.clone();
            let mut at = &mut v;
            for key in path {
                at = &mut at[*key];
            }
            *at = value;
            v
        };
        assert!(!generation_changes(deployments, &d, &d));
        let cases: [(&[&str], Value, bool); 5] = [
            (&["spec", "replicas"], json!(2), true),
            // A new top-level field counts; metadata and status do not.
            (&["extra"], json!(1), true),
            (&["metadata", "labels", "a"], json!("2"), false),
            (&["status", "replicas"], json!(1), false),
            // Deployments also count annotations (a rollout restart is one).
            (&["metadata", "annotations"], json!({"x": "y"}), true),
        ];
        for (path, value, bumps) in cases {
            assert_eq!(
                generation_changes(deployments, &d, &with(path, value)),
                bumps,
                "{path:?}"
            );
        }
    }
}
