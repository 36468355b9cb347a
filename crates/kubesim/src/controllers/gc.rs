//! The garbage collector: when an owner is deleted, its dependents (by ownerReferences uid) are
//! deleted too (background propagation); a foreground deletion waits for them.

use serde_json::Value;

use crate::meta::{finalizers, meta_str};
use crate::store::{Event, EventType, Store};

/// Reacts to a store event.
pub fn on_event(store: &Store, ev: &Event) {
    let uid = meta_str(&ev.object, "uid").to_string();
    if uid.is_empty() {
        return;
    }
    let deleting = ev.kind == EventType::Deleted
        || (!ev.object["metadata"]["deletionTimestamp"].is_null()
            && finalizers(&ev.object)
                .iter()
                .any(|f| f == "foregroundDeletion"));
    if deleting {
        let mut st = store.lock();
        let dependents = st.dependents(&uid);
        for (res, ns, name) in &dependents {
            // Dependents that are already gone or pending are fine.
            let _ = st.system_delete(res, ns, name);
        }
        drop(st);
        if ev.kind != EventType::Deleted && dependents.is_empty() {
            release_owner(store, &uid);
        }
    }
    // Whenever a dependent disappears, an owner waiting in foreground deletion may be done.
    if ev.kind == EventType::Deleted {
        release_foreground_owners(store, ev);
    }
}

fn release_foreground_owners(store: &Store, ev: &Event) {
    let owners: Vec<String> = ev.object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(str::to_string))
        .collect();
    if owners.is_empty() {
        return;
    }
    for owner_uid in owners {
        release_owner(store, &owner_uid);
    }
}

/// Removes `foregroundDeletion` from a deleting owner once it has no dependents left.
fn release_owner(store: &Store, owner_uid: &str) {
    let mut st = store.lock();
    if !st.dependents(owner_uid).is_empty() {
        return;
    }
    let Some((res, ns, name, obj)) = st.find_by_uid(owner_uid) else {
        return;
    };
    if obj["metadata"]["deletionTimestamp"].is_null() {
        return;
    }
    let (res, ns, name) = (res.clone(), ns.to_string(), name.to_string());
    let mut new = Value::clone(obj);
    let remaining: Vec<String> = finalizers(&new)
        .into_iter()
        .filter(|f| f != "foregroundDeletion")
        .collect();
    new["metadata"]["finalizers"] = serde_json::json!(remaining);
    // A concurrent change simply leaves the owner for the next event.
    let _ = st.system_update(&res, &ns, &name, new, None, "garbage-collector");
}
