//! Normalised YAML of objects and unified diffs between them.

use serde_json::{Map, Value};
use similar::TextDiff;

/// Metadata the server sets; never part of a diff.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// What Secret values are replaced with.
pub const MASK: &str = "(sensitive value)";

/// The object as compared: no status or server-set metadata, Secret data masked, keys sorted.
pub fn normalise(object: &Value) -> Value {
    serde_json::to_value(Normalised::of(object)).expect("JSON values serialise")
}

/// An object as [`normalise`] makes it, serialised straight from the object: rendering a large
/// plan copied and re-sorted every object only to write it out.
struct Normalised<'a> {
    value: &'a Value,
    place: Place,
}

/// Where a value sits in the object: what normalising does to it.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// The object itself: no status; a core Secret's data masked.
    Root { secret: bool },
    /// `metadata`: no server-set fields.
    Metadata,
    /// `metadata.annotations`: no last-applied configuration.
    Annotations,
    /// A Secret's `data` or `stringData`: every value masked.
    Masked,
    /// Anywhere else: keys sorted, nothing dropped.
    Inner,
}

impl<'a> Normalised<'a> {
    fn of(object: &'a Value) -> Self {
        Normalised {
            value: object,
            place: Place::Root {
                secret: is_secret(object),
            },
        }
    }

    /// The place of the value at `key` of a mapping here, or `None` when normalising drops it.
    fn child(&self, key: &str, value: &Value) -> Option<Place> {
        match self.place {
            Place::Root { .. } if key == "status" => None,
            Place::Root { .. } if key == "metadata" => Some(Place::Metadata),
            Place::Root { secret: true } if key == "data" || key == "stringData" => {
                Some(if value.is_object() {
                    Place::Masked
                } else {
                    Place::Inner
                })
            }
            Place::Metadata if SERVER_METADATA.contains(&key) => None,
            // Dropped when nothing but the last-applied configuration is in it.
            Place::Metadata if key == "annotations" => match value {
                Value::Object(map) if map.keys().all(|k| k == LAST_APPLIED) => None,
                _ => Some(Place::Annotations),
            },
            Place::Annotations if key == LAST_APPLIED => None,
            _ => Some(Place::Inner),
        }
    }
}

impl serde::Serialize for Normalised<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, Normalised<'_>)> = map
                    .iter()
                    .filter_map(|(key, value)| {
                        let place = self.child(key, value)?;
                        Some((key, Normalised { value, place }))
                    })
                    .collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in &entries {
                    if self.place == Place::Masked {
                        out.serialize_entry(key, MASK)?;
                    } else {
                        out.serialize_entry(key, value)?;
                    }
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for value in items {
                    out.serialize_element(&Normalised {
                        value,
                        place: Place::Inner,
                    })?;
                }
                out.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

/// True for core Secrets.
pub fn is_secret(object: &Value) -> bool {
    object["kind"] == "Secret" && object["apiVersion"] == "v1"
}

/// The object as meshplan may store it: a Secret keeps its metadata only (no data, and no
/// last-applied annotation, which repeats the data); anything else is unchanged.
pub fn without_secret_data(object: &Value) -> Value {
    let mut value = object.clone();
    if is_secret(object)
        && let Value::Object(map) = &mut value
    {
        map.remove("data");
        map.remove("stringData");
        if let Some(Value::Object(meta)) = map.get_mut("metadata")
            && let Some(Value::Object(annotations)) = meta.get_mut("annotations")
        {
            annotations.remove(LAST_APPLIED);
        }
    }
    value
}

/// The object without what the server sets (status, server metadata), ready to be created again.
pub fn strip_server_fields(object: &Value) -> Value {
    let mut value = object.clone();
    if let Value::Object(map) = &mut value {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for key in SERVER_METADATA {
                meta.remove(*key);
            }
        }
    }
    value
}

/// Stable YAML of the normalised object.
pub fn to_yaml(object: &Value) -> String {
    serde_saphyr::to_string(&Normalised::of(object)).expect("JSON values serialise to YAML")
}

/// A unified diff of the normalised YAML of two versions of an object (either may be absent).
pub fn unified(before: Option<&Value>, after: Option<&Value>) -> String {
    // A created or deleted object is every line added or removed: no diff to compute.
    match (before, after) {
        (None, Some(after)) => return whole(&to_yaml(after), '+'),
        (Some(before), None) => return whole(&to_yaml(before), '-'),
        _ => {}
    }
    let old = before.map(to_yaml).unwrap_or_default();
    let new = after.map(to_yaml).unwrap_or_default();
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(
            if before.is_some() {
                "before"
            } else {
                "/dev/null"
            },
            if after.is_some() {
                "after"
            } else {
                "/dev/null"
            },
        )
        .to_string()
}

/// The unified diff that adds (`+`) or removes (`-`) all of `text`, as `similar` writes it.
fn whole(text: &str, sign: char) -> String {
    let lines = text.lines().count();
    // A range of one line is written without its length.
    let range = if lines == 1 {
        "1".to_owned()
    } else {
        format!("1,{lines}")
    };
    let (header, hunk) = if sign == '+' {
        (
            "--- /dev/null\n+++ after\n",
            format!("@@ -0,0 +{range} @@\n"),
        )
    } else {
        (
            "--- before\n+++ /dev/null\n",
            format!("@@ -{range} +0,0 @@\n"),
        )
    };
    let mut out = String::with_capacity(text.len() + lines + header.len() + hunk.len());
    out.push_str(header);
    out.push_str(&hunk);
    for line in text.lines() {
        out.push(sign);
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The JSON merge patch that turns `before` into `after` (RFC 7386).
pub fn merge_patch(before: &Value, after: &Value) -> Value {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut patch = Map::new();
            for (key, value) in a {
                match b.get(key) {
                    Some(old) if old == value => {}
                    Some(old) => {
                        patch.insert(key.clone(), merge_patch(old, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        (_, a) => a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn created_and_deleted_objects_diff_as_similar_writes_them() {
        for object in [
            json!({"kind": "A"}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                   "data": {"k": "v", "list": "a\nb"}}),
        ] {
            let yaml = to_yaml(&object);
            let reference = |old: &str, new: &str, from: &str, to: &str| {
                TextDiff::from_lines(old, new)
                    .unified_diff()
                    .context_radius(3)
                    .header(from, to)
                    .to_string()
            };
            assert_eq!(
                unified(None, Some(&object)),
                reference("", &yaml, "/dev/null", "after")
            );
            assert_eq!(
                unified(Some(&object), None),
                reference(&yaml, "", "before", "/dev/null")
            );
        }
    }

    #[test]
    fn server_fields_are_dropped_and_secrets_masked() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "uid": "u", "resourceVersion": "7", "managedFields": [],
                         "annotations": {LAST_APPLIED: "{}"}},
            "data": {"password": "aHVudGVyMg=="},
            "status": {"x": 1}
        });
        let yaml = to_yaml(&secret);
        assert!(!yaml.contains("aHVudGVyMg"), "{yaml}");
        assert!(yaml.contains(MASK));
        for gone in [
            "uid",
            "resourceVersion",
            "managedFields",
            "status",
            "annotations",
        ] {
            assert!(!yaml.contains(gone), "{gone} in {yaml}");
        }
    }

    #[test]
    fn normalising_sorts_every_mapping_and_drops_only_server_fields() {
        let object = json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c", "generation": 3,
                         "annotations": {"z": "1", LAST_APPLIED: "{}", "a": "2"}},
            "data": {"b": "x", "a": "y"},
            "spec": {"list": [{"y": 1, "x": {"d": 1, "c": 2}}], "status": "kept below the root"},
            "status": {"x": 1}
        });
        let normalised = normalise(&object);
        assert_eq!(
            normalised,
            json!({
                "apiVersion": "v1", "data": {"a": "y", "b": "x"}, "kind": "ConfigMap",
                "metadata": {"annotations": {"a": "2", "z": "1"}, "name": "c"},
                "spec": {"list": [{"x": {"c": 2, "d": 1}, "y": 1}], "status": "kept below the root"}
            })
        );
        // Sorted all the way down, as the YAML shows it.
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&normalised),
            ["apiVersion", "data", "kind", "metadata", "spec"]
        );
        assert_eq!(keys(&normalised["spec"]["list"][0]["x"]), ["c", "d"]);
        assert_eq!(
            to_yaml(&object),
            serde_saphyr::to_string(&normalised).unwrap()
        );
    }

    #[test]
    fn merge_patches_set_change_and_remove() {
        let before = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        let after = json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"x": 1}});
        assert_eq!(
            merge_patch(&before, &after),
            json!({"metadata": {"labels": {"b": null, "c": "3"}}})
        );
    }

    #[test]
    fn diffs_show_only_what_changed() {
        let before = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "color"},
                            "spec": {"ports": [{"port": 8080}]}});
        let mut after = before.clone();
        after["spec"]["selector"] = json!({"app": "color"});
        let diff = unified(Some(&before), Some(&after));
        assert!(diff.contains("+  selector:\n+    app: color\n"), "{diff}");
        let removed = diff
            .lines()
            .filter(|l| l.starts_with('-') && !l.starts_with("---"));
        assert_eq!(removed.count(), 0, "{diff}");
        assert_eq!(unified(Some(&before), Some(&before)), "");
        assert!(unified(None, Some(&after)).starts_with("--- /dev/null\n+++ after\n"));
    }
}
