//! Simulated controllers: namespace deletion and garbage collection, driven by store events.

pub mod deployment;
pub mod gc;
pub mod injection;
pub mod namespace;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::store::Store;

/// Which controllers run.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Namespace controller: deletes the contents of terminating namespaces.
    pub namespaces: bool,
    /// Garbage collector: deletes dependents of deleted owners.
    pub garbage_collector: bool,
    /// Deployment controller: ReplicaSets, Pods and status for each new generation; also starts
    /// pods created directly (a simulated kubelet).
    pub deployments: bool,
    /// Delay between the steps of a simulated rollout.
    pub rollout_delay: Duration,
    /// Sidecar injection at pod creation.
    pub injection: bool,
    /// How long a terminating namespace waits before its contents are deleted (a real namespace
    /// controller takes a moment, so `kubectl delete -f` of a namespace and its objects succeeds).
    pub namespace_delay: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            namespaces: true,
            garbage_collector: true,
            deployments: true,
            rollout_delay: Duration::from_millis(100),
            injection: true,
            namespace_delay: Duration::from_secs(2),
        }
    }
}

/// Starts the enabled controllers; each runs until aborted.
pub fn spawn(store: Arc<Store>, cfg: ControllerConfig) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    if cfg.namespaces || cfg.garbage_collector {
        let mut rx = store.subscribe();
        let store = store.clone();
        let cfg = cfg.clone();
        let namespaces = Arc::new(namespace::Controller::new(cfg.namespace_delay));
        out.push(tokio::spawn(async move {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(RecvError::Lagged(_)) => {
                        // Missed events: sweep everything once.
                        if cfg.namespaces {
                            namespace::sweep_all(&store);
                        }
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                if cfg.garbage_collector {
                    gc::on_event(&store, &ev);
                }
                if cfg.namespaces {
                    namespaces.on_event(&store, &ev);
                }
            }
        }));
    }
    if cfg.deployments {
        let mut rx = store.subscribe();
        let delay = cfg.rollout_delay;
        out.push(tokio::spawn(async move {
            let mut started: HashMap<(String, String), i64> = HashMap::new();
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                if ev.group.is_empty()
                    && ev.plural == "pods"
                    && ev.kind == crate::store::EventType::Added
                {
                    // Pods the controller did not create are started by the simulated kubelet.
                    if ev.object["metadata"]["ownerReferences"].is_null() {
                        let name = ev.object["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        tokio::spawn(deployment::start_bare_pod(
                            store.clone(),
                            ev.namespace.clone(),
                            name,
                            delay,
                        ));
                    }
                    continue;
                }
                if ev.group != "apps" || ev.plural != "deployments" {
                    continue;
                }
                let d = &ev.object;
                let key = (
                    ev.namespace.clone(),
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                if ev.kind == crate::store::EventType::Deleted {
                    started.remove(&key);
                    continue;
                }
                let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
                if deployment::needs_rollout(d) && started.get(&key).is_none_or(|g| *g < generation)
                {
                    started.insert(key.clone(), generation);
                    tokio::spawn(deployment::rollout(
                        store.clone(),
                        key.0,
                        key.1,
                        generation,
                        delay,
                    ));
                }
            }
        }));
    }
    out
}
