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
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            // Without a status subresource, a custom resource's status is part of what it declares.
            if res.status || !res.is_custom() {
                m.remove("status");
            }
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    if strip(old) != strip(new) {
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
