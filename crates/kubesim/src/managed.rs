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
        .filter_map(parse)
        .collect()
}

/// Reads one entry; `None` for one without a manager.
fn parse(e: &Value) -> Option<Entry> {
    Some(Entry {
        manager: e.get("manager")?.as_str()?.to_string(),
        operation: e["operation"].as_str().unwrap_or("Update").to_string(),
        api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
        time: e["time"].as_str().unwrap_or_default().to_string(),
        subresource: e["subresource"].as_str().map(str::to_string),
        fields: FieldSet::from_json(&e["fieldsV1"]),
    })
}

/// An entry's JSON form.
fn render(e: &Entry) -> Value {
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
            render(e)
        })
        .collect();
    put_list(obj, list);
}

/// Sets the object's managedFields to `list`, or removes them when it is empty.
fn put_list(obj: &mut Value, list: Vec<Value>) {
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

/// Who records a non-apply write, through which version and subresource, and when: the
/// managedFields entry the write updates.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// The apiVersion written through.
    pub api_version: &'a str,
    /// The subresource written through, if any.
    pub subresource: Option<&'a str>,
    /// The write's time.
    pub time: &'a str,
}

/// Records a non-apply write: the manager takes every changed field, others lose them (entries
/// left owning nothing stay, for [`set_entries_keeping`] to drop). `only` names the one top-level
/// field in which `new` may differ from `old`, when the caller knows it: fields elsewhere are
/// neither compared nor looked for. `reset` names a top-level field the write cannot set (the
/// status, written through the main resource of a kind with a status subresource): as the
/// apiserver's reset fields, it is owned by no one for this write, so the creator of a Pod does
/// not own its empty status.
pub fn record_update(
    entries: &mut Vec<Entry>,
    old: Option<&Value>,
    new: &Value,
    only: Option<&str>,
    reset: Option<&str>,
    writer: &Writer<'_>,
    shape: &Shape<'_>,
) {
    let mut changed = match only {
        Some(field) => FieldSet::changed_field(old, new, field, shape),
        None => FieldSet::changed(old, new, shape),
    };
    if let Some(field) = reset {
        changed.children.remove(&format!("f:{field}"));
    }
    if !changed.is_empty() {
        for e in entries.iter_mut() {
            e.fields.subtract(&changed);
        }
        let mut mine = Entry {
            manager: writer.manager.to_string(),
            operation: "Update".into(),
            api_version: writer.api_version.to_string(),
            time: writer.time.to_string(),
            subresource: writer.subresource.map(str::to_string),
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
}

/// Records a non-apply write (an update, or a simulated controller's write) in `new`'s
/// managedFields: the entries `new` carries if its writer changed them, else those of `old`;
/// then [`record_update`]. `status_only`: `new` is `old` but for its status. `reset`: see
/// [`record_update`].
pub fn record_write(
    new: &mut Value,
    old: Option<&Value>,
    status_only: bool,
    reset: Option<&str>,
    writer: &Writer<'_>,
    shape: &Shape<'_>,
) {
    if status_only && old.is_some_and(|o| record_field_update(new, o, "status", writer, shape)) {
        return;
    }
    let supplied = new["metadata"].get("managedFields");
    let previous = old.and_then(|o| o["metadata"].get("managedFields"));
    // A status-only write carries the stored metadata, compared already.
    let unchanged = status_only || crate::equal::same_opt(supplied, previous);
    let from_stored = supplied.is_some() && unchanged;
    let mut entries = match supplied {
        Some(Value::Array(a))
            if !unchanged
                && a.iter()
                    .all(|e| e.as_object().is_some_and(|m| m.is_empty())) =>
        {
            vec![]
        }
        Some(_) if !unchanged => entries_of(new),
        _ => old.map(entries_of).unwrap_or_default(),
    };
    // Entries read from the stored object, which `new` still carries: those this write leaves
    // unchanged keep their JSON.
    let stored = if from_stored {
        entries.clone()
    } else {
        Vec::new()
    };
    record_update(
        &mut entries,
        old,
        new,
        status_only.then_some("status"),
        reset,
        writer,
        shape,
    );
    set_entries_keeping(new, entries, &stored);
}

/// [`record_update`] and [`set_entries_keeping`] for a write in which `obj` differs from `old`
/// in the top-level `field` only and still carries the stored managedFields: only the entries
/// the write can change are read and rendered again, those owning something under `field` and
/// the writer's own; the others keep their JSON. A controller's status write so leaves a Pod's
/// large spec entry alone. Returns false, changing nothing, when an entry is not one this
/// server stores (no manager, or fieldsV1 not an object): the general path handles those.
#[allow(clippy::too_many_arguments)]
pub fn record_field_update(
    obj: &mut Value,
    old: &Value,
    field: &str,
    writer: &Writer<'_>,
    shape: &Shape<'_>,
) -> bool {
    let key = format!("f:{field}");
    let Some(Value::Array(list)) = obj["metadata"].get("managedFields") else {
        return false;
    };
    let mut touched = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let (Some(m), Some(fields)) = (e.get("manager"), e.get("fieldsV1")) else {
            return false;
        };
        let (Some(m), Some(fields)) = (m.as_str(), fields.as_object()) else {
            return false;
        };
        let writers = m == writer.manager
            && e["operation"].as_str().unwrap_or("Update") == "Update"
            && e["subresource"].as_str() == writer.subresource
            && e["apiVersion"].as_str().unwrap_or_default() == writer.api_version;
        if writers || fields.contains_key(&key) {
            touched.push(i);
        }
    }
    let stored: Vec<Entry> = touched.iter().filter_map(|&i| parse(&list[i])).collect();
    let mut entries = stored.clone();
    record_update(
        &mut entries,
        Some(old),
        obj,
        Some(field),
        None,
        writer,
        shape,
    );
    let Some(Value::Array(list)) = obj["metadata"].get_mut("managedFields") else {
        unreachable!("read above");
    };
    // The touched entries come back in their order, the writer's new one (if any) after them.
    let mut changed = entries
        .into_iter()
        .zip(stored.iter().map(Some).chain(std::iter::repeat(None)));
    let mut out = Vec::with_capacity(list.len() + 1);
    let mut next = touched.iter().peekable();
    for (i, json) in std::mem::take(list).into_iter().enumerate() {
        if next.next_if_eq(&&i).is_none() {
            out.push(json);
            continue;
        }
        let (e, was) = changed.next().expect("one entry per touched one");
        if e.fields.is_empty() {
            continue;
        }
        out.push(if was == Some(&e) { json } else { render(&e) });
    }
    out.extend(
        changed
            .filter(|(e, _)| !e.fields.is_empty())
            .map(|(e, _)| render(&e)),
    );
    out.sort_by_key(|e| e["operation"] != "Apply");
    put_list(obj, out);
    true
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

    /// The general path of a status write: every entry read, recorded, and written back.
    fn general(obj: &mut Value, old: &Value, manager: &str) {
        let mut entries = entries_of(old);
        let stored = entries.clone();
        record_update(
            &mut entries,
            Some(old),
            obj,
            Some("status"),
            None,
            &status_writer(manager),
            &Shape::Builtin,
        );
        set_entries_keeping(obj, entries, &stored);
    }

    /// The quick path of the same write.
    fn quick(obj: &mut Value, old: &Value, manager: &str) -> bool {
        record_field_update(obj, old, "status", &status_writer(manager), &Shape::Builtin)
    }

    /// `manager` writing a status through the status subresource.
    fn status_writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "v1",
            subresource: Some("status"),
            time: "2026-01-02T00:00:00Z",
        }
    }

    #[test]
    fn a_status_write_reading_only_the_entries_it_can_change_records_what_the_general_path_does() {
        let apply = json!({"manager": "meshplan", "operation": "Apply", "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}});
        let spec = entry(
            "kube-controller-manager",
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}),
        );
        let mut kubelet = entry(
            "kubelet",
            json!({"f:status": {"f:phase": {}, "f:podIP": {}}}),
        );
        kubelet["subresource"] = json!("status");
        let old = json!({"metadata": {"name": "p", "labels": {"app": "a"},
                "managedFields": [apply, spec, kubelet]},
            "spec": {"containers": [{"name": "app", "image": "i"}]},
            "status": {"phase": "Pending", "podIP": "10.0.0.1"}});
        let writes = [
            // The kubelet changes a field it owns and adds one.
            (
                "kubelet",
                json!({"phase": "Running", "podIP": "10.0.0.1", "hostIP": "10.0.0.2"}),
            ),
            // Another manager takes a field from the kubelet: a new entry, after the others.
            ("other", json!({"phase": "Failed", "podIP": "10.0.0.1"})),
            // Another manager takes every field: the kubelet's entry goes.
            ("other", json!({"phase": "Failed", "podIP": "10.0.0.9"})),
            // A field removed: its owner loses it.
            ("kubelet", json!({"phase": "Pending"})),
            // Nothing changed.
            ("kubelet", json!({"phase": "Pending", "podIP": "10.0.0.1"})),
        ];
        for (manager, status) in writes {
            let mut new = old.clone();
            new["status"] = status.clone();
            let mut expected = new.clone();
            general(&mut expected, &old, manager);
            assert!(quick(&mut new, &old, manager));
            assert_eq!(new, expected, "{manager} writing {status}");
        }
        // The spec entry, which a status write cannot change, keeps its JSON as stored.
        let mut marked = old.clone();
        marked["metadata"]["managedFields"][1]["marker"] = json!(true);
        let mut new = marked.clone();
        new["status"]["phase"] = json!("Running");
        assert!(quick(&mut new, &marked, "kubelet"));
        assert_eq!(new["metadata"]["managedFields"][1]["marker"], true);

        // An entry without a manager is left to the general path, which drops it.
        let mut odd = old.clone();
        odd["metadata"]["managedFields"][1]
            .as_object_mut()
            .unwrap()
            .remove("manager");
        let mut new = odd.clone();
        assert!(!quick(&mut new, &odd, "kubelet"));
        assert_eq!(new, odd);
    }
}
