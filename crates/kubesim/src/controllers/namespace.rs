//! The namespace controller: empties terminating namespaces, then removes them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::{Event, EventType, Store};

/// Namespaces whose termination grace delay has passed.
pub struct Controller {
    delay: Duration,
    armed: Arc<Mutex<HashSet<String>>>,
}

impl Controller {
    /// A controller that starts emptying a namespace `delay` after it starts terminating.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            armed: Arc::default(),
        }
    }

    /// Reacts to a store event.
    pub fn on_event(&self, store: &Arc<Store>, ev: &Event) {
        let is_ns = ev.group.is_empty() && ev.plural == "namespaces";
        let ns = if is_ns {
            ev.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            ev.namespace.clone()
        };
        if ns.is_empty() {
            return;
        }
        if is_ns && ev.kind == EventType::Deleted {
            self.armed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&ns);
            return;
        }
        let armed = self
            .armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&ns);
        if armed {
            sweep(store, &ns);
        } else if is_ns && !ev.object["metadata"]["deletionTimestamp"].is_null() {
            let (store, set, delay) = (store.clone(), self.armed.clone(), self.delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                set.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(ns.clone());
                sweep(&store, &ns);
            });
        }
    }
}

/// Deletes the contents of the namespace if it is terminating, and the namespace once empty.
pub fn sweep(store: &Store, ns: &str) {
    let mut st = store.lock();
    let reg = st.registry().clone();
    let nsres = reg
        .find("", "v1", "namespaces")
        .expect("namespaces are built in");
    let terminating = st
        .find(nsres, "", ns)
        .is_some_and(|n| !n["metadata"]["deletionTimestamp"].is_null());
    if !terminating {
        return;
    }
    let contents = st.namespace_contents(ns);
    for (res, name) in &contents {
        // Objects with finalizers stay (marked) until their finalizers are removed.
        let _ = st.system_delete(res, ns, name);
    }
    if st.namespace_contents(ns).is_empty() {
        st.finish_namespace(ns);
    }
}

/// Sweeps every terminating namespace.
pub fn sweep_all(store: &Store) {
    let names: Vec<String> = {
        let st = store.lock();
        let reg = st.registry().clone();
        let nsres = reg
            .find("", "v1", "namespaces")
            .expect("namespaces are built in")
            .clone();
        drop(st);
        let (items, _) = store.list(&nsres, None, &Default::default(), &Default::default());
        items
            .iter()
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    };
    for n in names {
        sweep(store, &n);
    }
}
