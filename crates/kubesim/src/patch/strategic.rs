//! Strategic merge patch for built-in kinds: keyed list merging and `$patch` directives.

use serde_json::{Map, Value};

use crate::shape::{ListKind, Shape};

/// Applies a strategic merge patch to `target`.
pub fn apply(target: &mut Value, patch: &Value, shape: &Shape<'_>) {
    merge_value(target, patch, &mut Vec::new(), shape);
}

/// Removes directive keys from a value that is inserted as a whole.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn merge_value(target: &mut Value, patch: &Value, names: &mut Vec<String>, shape: &Shape<'_>) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = clean(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in p {
        if let Some(list) = k.strip_prefix("$setElementOrder/") {
            orders.push((list.to_string(), v.as_array().cloned().unwrap_or_default()));
            continue;
        }
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) = (target.get_mut(list), v.as_array())
            {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let t = target.as_object_mut().expect("made an object above");
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(inner)
                if inner.get("$patch").and_then(Value::as_str) == Some("delete") =>
            {
                t.remove(k);
            }
            Value::Object(_) => {
                names.push(k.clone());
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                if shape.atomic_map(names) {
                    *slot = clean(v);
                } else {
                    merge_value(slot, v, names, shape);
                }
                names.pop();
            }
            Value::Array(items) => {
                names.push(k.clone());
                let kind = shape.list_kind(names);
                let key = shape.patch_merge_key(names);
                let slot = t.entry(k.clone()).or_insert(Value::Array(vec![]));
                match (kind, key) {
                    (_, Some(key)) => merge_keyed(slot, items, key, names, shape),
                    (ListKind::Set, _) => {
                        let mut cur = slot.as_array().cloned().unwrap_or_default();
                        for i in items {
                            if !cur.contains(i) {
                                cur.push(i.clone());
                            }
                        }
                        *slot = Value::Array(cur);
                    }
                    _ => *slot = clean(v),
                }
                names.pop();
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
    for (list, order) in orders {
        names.push(list.clone());
        let key = shape.patch_merge_key(names);
        names.pop();
        if let Some(Value::Array(items)) = target.get_mut(&list) {
            reorder(items, &order, key);
        }
    }
    if let Some(Value::Array(retain)) = p.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        if let Some(t) = target.as_object_mut() {
            t.retain(|k, _| keep.contains(&k.as_str()));
        }
    }
}

fn merge_keyed(
    slot: &mut Value,
    items: &[Value],
    key: &str,
    names: &mut Vec<String>,
    shape: &Shape<'_>,
) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *slot = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(clean)
                .collect(),
        );
        return;
    }
    let mut cur = slot.as_array().cloned().unwrap_or_default();
    for item in items {
        let id = item.get(key);
        let pos = id.and_then(|id| cur.iter().position(|c| c.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                cur.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => merge_value(&mut cur[i], item, names, shape),
            (None, false) => cur.push(clean(item)),
        }
    }
    *slot = Value::Array(cur);
}

/// Orders list items as `$setElementOrder` says; unlisted items keep their relative order at the end.
fn reorder(items: &mut [Value], order: &[Value], key: Option<&str>) {
    let rank = |item: &Value| -> usize {
        order
            .iter()
            .position(|o| match key {
                Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
                None => o == item,
            })
            .unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_keep_order() {
        let mut live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
            "containers": [{"name": "web", "image": "nginx:1.26"}]}}}});
        apply(&mut live, &patch, &Shape::Builtin);
        let cs = &live["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            cs[0],
            json!({"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]})
        );
        assert_eq!(cs[1]["name"], "side");
    }

    #[test]
    fn directives_delete_and_replace() {
        let mut live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}],
            "tolerations": [{"key": "x"}]}}}, "metadata": {"labels": {"a": "1", "b": "2"}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}],
            "tolerations": [{"key": "y"}]}}}, "metadata": {"labels": {"a": null}}});
        apply(&mut live, &patch, &Shape::Builtin);
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b"}])
        );
        assert_eq!(
            live["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "y"}])
        );
        assert_eq!(live["metadata"]["labels"], json!({"b": "2"}));
    }
}
