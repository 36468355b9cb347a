//! `metadata.managedFields`: per-manager ownership records and their update rules.

use serde_json::Value;

use crate::fieldset::FieldSet;
use crate::shape::Shape;

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The field manager.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The apiVersion the manager used.
    pub api_version: String,
    /// RFC 3339 time of the last change to this entry.
    pub time: String,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
    /// Owned fields.
    pub fields: FieldSet,
}

impl Entry {
    /// Whether two entries are the same record: same manager, operation, subresource, and for
    /// updates the same apiVersion.
    fn same_slot(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    /// The manager as named in conflict messages.
    pub fn describe(&self) -> String {
        let mut s = format!("\"{}\"", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource \"{sub}\""));
        }
        if self.operation != "Apply" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// Reads the entries of an object.
pub fn entries_of(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(Entry {
                manager: e.get("manager")?.as_str()?.to_string(),
                operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                time: e["time"].as_str().unwrap_or_default().to_string(),
                subresource: e["subresource"].as_str().map(str::to_string),
                fields: FieldSet::from_json(&e["fieldsV1"]),
            })
        })
        .collect()
}

/// Writes entries into the object, dropping empty ones; Apply entries first.
pub fn set_entries(obj: &mut Value, entries: Vec<Entry>) {
    set_entries_keeping(obj, entries, &[]);
}

/// As [`set_entries`], where `stored` are the entries the object's managedFields hold now, in
/// their order: an entry unchanged from one of them keeps its JSON rather than being rendered
/// again (most of a controller's writes change one entry, if any).
pub fn set_entries_keeping(obj: &mut Value, mut entries: Vec<Entry>, stored: &[Entry]) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by_key(|e| e.operation != "Apply");
    let mut kept = match obj["metadata"].get_mut("managedFields") {
        Some(Value::Array(list)) if list.len() == stored.len() => std::mem::take(list),
        _ => Vec::new(),
    };
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let same = stored.iter().position(|s| s == e);
            if let Some(json) = same.and_then(|i| kept.get_mut(i)).filter(|j| !j.is_null()) {
                return json.take();
            }
            // Built in place: `json!` would copy the rendered field set once more.
            let mut v = serde_json::Map::with_capacity(7);
            for (key, value) in [
                ("manager", &e.manager),
                ("operation", &e.operation),
                ("apiVersion", &e.api_version),
                ("time", &e.time),
            ] {
                v.insert(key.into(), Value::String(value.clone()));
            }
            v.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            v.insert("fieldsV1".into(), e.fields.to_json());
            if let Some(s) = &e.subresource {
                v.insert("subresource".into(), Value::String(s.clone()));
            }
            Value::Object(v)
        })
        .collect();
    if let Some(m) = obj["metadata"].as_object_mut() {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Inserts or replaces the entry for the same slot.
pub fn upsert(entries: &mut Vec<Entry>, entry: Entry) {
    match entries.iter_mut().find(|e| e.same_slot(&entry)) {
        Some(e) => {
            if e.fields != entry.fields {
                e.time = entry.time;
            }
            e.fields = entry.fields;
            e.api_version = entry.api_version;
        }
        None => entries.push(entry),
    }
}

/// Records a non-apply write: the manager takes every changed field, others lose them. `only`
/// names the one top-level field in which `new` may differ from `old`, when the caller knows it:
/// fields elsewhere are neither compared nor looked for.
#[allow(clippy::too_many_arguments)]
pub fn record_update(
    entries: &mut Vec<Entry>,
    old: Option<&Value>,
    new: &Value,
    only: Option<&str>,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    shape: &Shape<'_>,
    now: &str,
) {
    let changed = match only {
        Some(field) => FieldSet::changed_field(old, new, field, shape),
        None => FieldSet::changed(old, new, shape),
    };
    if !changed.is_empty() {
        for e in entries.iter_mut() {
            e.fields.subtract(&changed);
        }
        let mut mine = Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            subresource: subresource.map(str::to_string),
            fields: FieldSet::default(),
        };
        if let Some(prev) = entries.iter().find(|e| e.same_slot(&mine)) {
            mine.fields = prev.fields.clone();
        }
        mine.fields.union(&changed);
        upsert(entries, mine);
    }
    for e in entries.iter_mut() {
        match only {
            // The rest of `new` is `old`, which the entries describe already.
            Some(field) => e.fields.retain_existing_in(new, field),
            None => e.fields.retain_existing(new),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": "Update", "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn unchanged_entries_keep_their_json_and_changed_ones_are_rendered_again() {
        let mut kept = entry("a", json!({"f:data": {"f:x": {}}}));
        // Not part of an entry as read: it stays only if the entry's JSON is kept.
        kept["marker"] = json!(true);
        let mut obj = json!({"metadata": {"managedFields": [
            kept.clone(), entry("b", json!({"f:data": {"f:y": {}}}))]}});
        let stored = entries_of(&obj);
        let mut entries = stored.clone();
        entries[1]
            .fields
            .union(&FieldSet::from_json(&json!({"f:data": {"f:z": {}}})));
        entries[1].time = "2026-01-02T00:00:00Z".into();
        set_entries_keeping(&mut obj, entries, &stored);
        let list = &obj["metadata"]["managedFields"];
        assert_eq!(list[0], kept);
        assert_eq!(
            list[1]["fieldsV1"],
            json!({"f:data": {"f:y": {}, "f:z": {}}})
        );
        assert_eq!(list[1]["time"], "2026-01-02T00:00:00Z");

        // Stored JSON that does not match the entries read from it (one has no manager) is all
        // rendered again.
        let mut obj = json!({"metadata": {"managedFields": [kept, {"operation": "Update"}]}});
        let stored = entries_of(&obj);
        set_entries_keeping(&mut obj, stored.clone(), &stored);
        let list = &obj["metadata"]["managedFields"];
        assert_eq!(list.as_array().map(Vec::len), Some(1));
        assert!(list[0].get("marker").is_none(), "{list}");
    }
}
