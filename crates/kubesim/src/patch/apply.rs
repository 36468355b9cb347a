//! Server-side apply: merge an applied configuration, detect ownership conflicts, release dropped fields.

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::fieldset::{self, FieldSet, item_key, lookup};
use crate::managed::{Entry, upsert};
use crate::shape::{ListKind, Shape};

/// The outcome of an apply: the merged object and the new managedFields entries.
pub struct Applied {
    /// The object after merging and releasing dropped fields.
    pub object: Value,
    /// Updated managedFields entries.
    pub entries: Vec<Entry>,
}

/// Merges `applied` into `live` (or creates from it) as `manager`.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    mut entries: Vec<Entry>,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    force: bool,
    allowed: Option<&FieldSet>,
    shape: &Shape<'_>,
    now: &str,
) -> Result<Applied, ApiError> {
    let new_set = FieldSet::of_value(applied, shape);
    let mine = Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version.to_string(),
        time: now.to_string(),
        subresource: subresource.map(str::to_string),
        fields: new_set.clone(),
    };
    let is_mine = |e: &Entry| {
        e.manager == mine.manager && e.operation == "Apply" && e.subresource == mine.subresource
    };
    let base = live.cloned().unwrap_or_else(|| json!({}));

    // Conflicts: fields we set to a different value that someone else owns.
    let mut conflicts: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut taken = FieldSet::default();
    for path in new_set.owned_paths() {
        let (Some(have), Some(want)) = (lookup(&base, &path), lookup(applied, &path)) else {
            continue;
        };
        let is_item = path
            .last()
            .and_then(|l| fieldset::Elem::decode(l))
            .is_some_and(|e| !matches!(e, fieldset::Elem::Field(_)));
        if have == want || is_item {
            continue;
        }
        for e in entries.iter().filter(|e| !is_mine(e)) {
            if e.fields.contains(&path) {
                conflicts.push((e.describe(), fieldset::render_path(&path), path.clone()));
                add_path(&mut taken, &path);
            }
        }
    }
    // Fields kubectl applied client-side before may be taken over by `kubectl` without force
    // (the apiserver's client-side to server-side apply upgrade).
    let upgradable = |c: &(String, String, Vec<String>)| allowed.is_some_and(|a| a.contains(&c.2));
    if !force && conflicts.iter().any(|c| !upgradable(c)) {
        return Err(conflict_error(
            conflicts
                .into_iter()
                .filter(|c| !upgradable(c))
                .map(|c| (c.0, c.1))
                .collect(),
        ));
    }
    for e in entries.iter_mut().filter(|e| !is_mine(e)) {
        e.fields.subtract(&taken);
    }

    let previous = entries
        .iter()
        .find(|e| is_mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut merged = base;
    merge(&mut merged, applied, &mut Vec::new(), shape);

    // Release fields this manager applied before and no longer does.
    let mut released = previous;
    released.subtract(&new_set);
    // Shallowest first: removing a list item removes its fields too (removing the key fields
    // first would make the item impossible to find).
    let mut paths = released.owned_paths();
    paths.sort_by_key(Vec::len);
    let mut removed: Vec<Vec<String>> = Vec::new();
    for path in paths {
        if removed.iter().any(|r| path.starts_with(r)) {
            continue;
        }
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !is_mine(e))
            .any(|e| e.fields.touches(&path));
        if !owned_elsewhere && !new_set.touches(&path) && fieldset::remove(&mut merged, &path) {
            removed.push(path);
        }
    }

    upsert(&mut entries, mine);
    for e in entries.iter_mut() {
        e.fields.retain_existing(&merged);
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(Applied {
        object: merged,
        entries,
    })
}

fn add_path(set: &mut FieldSet, path: &[String]) {
    let mut cur = set;
    for p in path {
        cur = cur.children.get_or_default(p);
    }
    cur.own = true;
}

/// The 409 an apply conflict produces.
fn conflict_error(mut conflicts: Vec<(String, String)>) -> ApiError {
    conflicts.sort();
    let n = conflicts.len();
    let message = if n == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].0, conflicts[0].1
        )
    } else {
        let mut s = format!("Apply failed with {n} conflicts: ");
        let mut managers: Vec<&String> = conflicts.iter().map(|c| &c.0).collect();
        managers.dedup();
        let parts: Vec<String> = managers
            .iter()
            .map(|m| {
                let fields: Vec<String> = conflicts
                    .iter()
                    .filter(|c| &c.0 == *m)
                    .map(|c| format!("- {}", c.1))
                    .collect();
                format!("conflicts with {m}:\n{}", fields.join("\n"))
            })
            .collect();
        s.push_str(&parts.join("\n"));
        s
    };
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(m, f)| {
            Cause::new(
                "FieldManagerConflict",
                format!("conflict with {m}"),
                f.clone(),
            )
        })
        .collect();
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(Box::new(
        json!({"causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>()}),
    ));
    e
}

/// Apply merge: maps by key, keyed lists by item key, sets by member, everything else replaced.
fn merge(live: &mut Value, applied: &Value, names: &mut Vec<String>, shape: &Shape<'_>) {
    match (live.as_object_mut(), applied) {
        (Some(l), Value::Object(a)) if names.is_empty() || !shape.atomic_map(names) => {
            for (k, v) in a {
                names.push(k.clone());
                match l.get_mut(k) {
                    Some(slot) => merge(slot, v, names, shape),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
                names.pop();
            }
        }
        _ => match (live.as_array_mut(), applied, shape.list_kind(names)) {
            (Some(l), Value::Array(a), ListKind::Set) => {
                for v in a {
                    if !l.contains(v) {
                        l.push(v.clone());
                    }
                }
            }
            (Some(l), Value::Array(a), kind @ (ListKind::Map(_) | ListKind::MapOwned(_))) => {
                let keys = kind.keys();
                for item in a {
                    let key = item_key(item, &keys);
                    let pos = key.as_ref().and_then(|k| {
                        l.iter()
                            .position(|x| item_key(x, &keys).as_ref() == Some(k))
                    });
                    match pos {
                        Some(i) => merge(&mut l[i], item, names, shape),
                        None => l.push(item.clone()),
                    }
                }
            }
            _ => *live = applied.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        live: Option<&Value>,
        applied: Value,
        entries: Vec<Entry>,
        manager: &str,
        force: bool,
    ) -> Result<Applied, ApiError> {
        apply(
            live,
            &applied,
            entries,
            manager,
            "apps/v1",
            None,
            force,
            None,
            &Shape::Builtin,
            "2026-01-01T00:00:00Z",
        )
    }

    fn containers(v: &Value) -> Vec<&str> {
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn dropped_list_items_are_released_and_removed() {
        let two = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let first = run(None, two, vec![], "m", false).unwrap();
        assert_eq!(containers(&first.object), ["a", "b"]);
        let one =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x2"}]}}}});
        let second = run(Some(&first.object), one, first.entries, "m", false).unwrap();
        assert_eq!(containers(&second.object), ["a"]);
        assert_eq!(
            second.object["spec"]["template"]["spec"]["containers"][0]["image"],
            "x2"
        );
    }

    #[test]
    fn items_owned_by_another_manager_survive_and_sets_merge() {
        let base = json!({"metadata": {"finalizers": ["a"]}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let first = run(None, base, vec![], "m", false).unwrap();
        let other = json!({"metadata": {"finalizers": ["b"]}, "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}});
        let second = run(Some(&first.object), other, first.entries, "n", false).unwrap();
        assert_eq!(second.object["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(containers(&second.object), ["a", "side"]);
        // m stops applying its container and finalizer: only m's parts go.
        let third = run(
            Some(&second.object),
            json!({"spec": {"replicas": 1}}),
            second.entries,
            "m",
            false,
        )
        .unwrap();
        assert_eq!(third.object["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(containers(&third.object), ["side"]);
    }

    #[test]
    fn conflicts_name_every_manager_and_force_takes_ownership() {
        let first = run(
            None,
            json!({"spec": {"replicas": 1, "paused": false}}),
            vec![],
            "a",
            false,
        )
        .unwrap();
        let err = run(
            Some(&first.object),
            json!({"spec": {"replicas": 2, "paused": true}}),
            first.entries.clone(),
            "b",
            false,
        )
        .err()
        .unwrap();
        assert_eq!(
            err.message,
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.paused\n- .spec.replicas"
        );
        let forced = run(
            Some(&first.object),
            json!({"spec": {"replicas": 2}}),
            first.entries,
            "b",
            true,
        )
        .unwrap();
        let a = forced.entries.iter().find(|e| e.manager == "a").unwrap();
        assert!(
            !a.fields
                .contains(&["f:spec".to_string(), "f:replicas".to_string()])
        );
        assert!(
            a.fields
                .contains(&["f:spec".to_string(), "f:paused".to_string()])
        );
    }
}
