//! A simulated Deployment controller: a new generation is rolled out in steps (observe, start new
//! pods, retire old pods), each a separate status write after the configured delay, with
//! ReplicaSets and Pods owned through ownerReferences.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::meta::{self, meta_str};
use crate::resources::ResourceInfo;
use crate::store::{State, Store};

const MANAGER: &str = "kube-controller-manager";

/// The pod-template-hash of a template: ten lowercase alphanumerics derived from its content.
pub fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    let mut h = DefaultHasher::new();
    t.to_string().hash(&mut h);
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = h.finish();
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Whether a Deployment has a generation its status has not caught up with.
pub fn needs_rollout(d: &Value) -> bool {
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = d["status"]["observedGeneration"].as_i64().unwrap_or(0);
    d["metadata"]["deletionTimestamp"].is_null()
        && generation > observed
        && d["spec"]["paused"].as_bool() != Some(true)
}

/// How many Deployments are still rolling out: a generation to roll out (see [`needs_rollout`]),
/// or fewer updated and available replicas than desired. A paused Deployment does not count; a
/// stalled one never finishes.
pub fn rolling_out(store: &Store) -> usize {
    let st = store.lock();
    let (dres, _, _) = resources(&st);
    st.objects_of(&dres, None)
        .filter(|d| {
            let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let status = &d["status"];
            let short = ["updatedReplicas", "availableReplicas", "replicas"]
                .iter()
                .any(|k| status[k].as_i64().unwrap_or(0) != want);
            needs_rollout(d)
                || (short
                    && d["metadata"]["deletionTimestamp"].is_null()
                    && d["spec"]["paused"].as_bool() != Some(true))
        })
        .count()
}

fn resources(st: &State) -> (ResourceInfo, ResourceInfo, ResourceInfo) {
    let reg = st.registry();
    let find = |g: &str, p: &str| reg.find(g, "v1", p).expect("built-in resource").clone();
    (
        find("apps", "deployments"),
        find("apps", "replicasets"),
        find("", "pods"),
    )
}

fn condition(kind: &str, status: &str, reason: &str, message: String, now: &str) -> Value {
    json!({"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// Replaces a condition, keeping its transition time when the status is unchanged.
fn set_condition(status: &mut Value, new: Value) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let list = status["conditions"].as_array_mut().expect("made an array");
    match list.iter_mut().find(|c| c["type"] == new["type"]) {
        Some(c) => {
            let mut new = new;
            if c["status"] == new["status"] {
                new["lastTransitionTime"] = c["lastTransitionTime"].clone();
            }
            *c = new;
        }
        None => list.push(new),
    }
}

fn owner_ref(obj: &Value, kind: &str, api_version: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true})
}

/// Pods owned by a ReplicaSet.
fn pods_of(st: &State, pods: &ResourceInfo, ns: &str, rs_uid: &str) -> Vec<String> {
    st.owned_names(rs_uid, pods, ns)
}

/// ReplicaSets owned by a Deployment: (name, uid, template hash).
fn replica_sets_of(
    st: &State,
    rs: &ResourceInfo,
    ns: &str,
    uid: &str,
) -> Vec<(String, String, String)> {
    st.owned_names(uid, rs, ns)
        .into_iter()
        .filter_map(|name| {
            let o = st.find(rs, ns, &name)?;
            Some((
                name,
                meta_str(o, "uid").to_string(),
                o["metadata"]["labels"]["pod-template-hash"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect()
}

/// The current Deployment if it still has `generation` (shared with the store).
fn current(
    st: &State,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    generation: i64,
) -> Option<Arc<Value>> {
    st.find(res, ns, name)
        .filter(|d| d["metadata"]["generation"].as_i64() == Some(generation))
        .cloned()
}

fn write_status(
    store: &Store,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    mut new: Value,
    status: Value,
) {
    new["status"] = status;
    // A concurrent write wins; the next event restarts the rollout from the new state.
    let _ = store.system_update(res, ns, name, new, Some("status"), MANAGER);
}

fn new_pod(rs: &Value, ns: &str, template: &Value) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": format!("{}-", meta_str(rs, "name")), "namespace": ns,
            "labels": template["metadata"]["labels"], "ownerReferences": [owner_ref(rs, "ReplicaSet", "apps/v1")]}});
    // Inserted, not given to `json!`, which would copy the spec once more.
    pod["spec"] = template["spec"].clone();
    if let Some(a) = template["metadata"]["annotations"].as_object() {
        pod["metadata"]["annotations"] = Value::Object(a.clone());
    }
    pod["spec"]["nodeName"] = json!("kubesim-node");
    pod
}

/// Marks a freshly created pod Running and Ready (through its status subresource).
fn start_pod(store: &Store, pods: &ResourceInfo, ns: &str, pod: &Value) {
    let now = meta::now();
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true, "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": now}}}))
        .collect();
    let n = meta_str(pod, "uid")
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    let ip = format!("10.244.{}.{}", (n >> 8) % 250, n % 250 + 2);
    let mut new = Value::clone(pod);
    new["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1", "startTime": now,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
        "containerStatuses": statuses, "qosClass": "BestEffort"});
    let _ = store.system_update(
        pods,
        ns,
        meta_str(pod, "name"),
        new,
        Some("status"),
        "kubelet",
    );
}

fn set_rs_replicas(
    store: &Store,
    rs_res: &ResourceInfo,
    pods: &ResourceInfo,
    ns: &str,
    rs_name: &str,
    replicas: i64,
) {
    let Some(rs) = store.lock().find(rs_res, ns, rs_name).cloned() else {
        return;
    };
    // A new ReplicaSet is created at its count already, as the real controller creates one
    // scaled to what the rollout may start: only an old one is scaled.
    if rs["spec"]["replicas"].as_i64() != Some(replicas) {
        let mut new = Value::clone(&rs);
        new["spec"]["replicas"] = json!(replicas);
        let _ = store.system_update(rs_res, ns, rs_name, new, None, MANAGER);
    }
    let (count, rs) = {
        let st = store.lock();
        let count = pods_of(&st, pods, ns, meta_str(&rs, "uid")).len() as i64;
        (count, st.find(rs_res, ns, rs_name).cloned())
    };
    if let Some(rs) = rs {
        let mut new = Value::clone(&rs);
        new["status"] = json!({"replicas": count, "fullyLabeledReplicas": count, "readyReplicas": count, "availableReplicas": count,
            "observedGeneration": rs["metadata"]["generation"]});
        let _ = store.system_update(rs_res, ns, rs_name, new, Some("status"), MANAGER);
    }
}

/// Starts a pod created outside the Deployment controller after `delay` (Pending → Running).
pub async fn start_bare_pod(store: Arc<Store>, ns: String, name: String, delay: Duration) {
    tokio::time::sleep(delay).await;
    let (pods, pod) = {
        let st = store.lock();
        let (_, _, pods) = resources(&st);
        let pod = st.find(&pods, &ns, &name).cloned();
        (pods, pod)
    };
    let Some(pod) = pod else {
        return;
    };
    if pod["status"]["phase"] == "Pending" && pod["metadata"]["deletionTimestamp"].is_null() {
        start_pod(&store, &pods, &ns, &pod);
    }
}

/// The pod-template annotation that makes a simulated rollout hang, so that its progress deadline
/// passes (`Progressing=False`, reason `ProgressDeadlineExceeded`).
pub const STALL_ANNOTATION: &str = "kubesim.io/stall-rollout";

/// Handles a stalled rollout: waits for `progressDeadlineSeconds`, then reports the deadline
/// exceeded. Returns whether the rollout is stalled.
async fn stall(store: &Arc<Store>, ns: &str, name: &str, generation: i64) -> bool {
    let deadline = {
        let st = store.lock();
        let (dres, _, _) = resources(&st);
        let Some(d) = current(&st, &dres, ns, name, generation) else {
            return true;
        };
        if d["spec"]["template"]["metadata"]["annotations"][STALL_ANNOTATION] != "true" {
            return false;
        }
        d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600)
    };
    tokio::time::sleep(Duration::from_secs(deadline)).await;
    let (dres, d) = {
        let st = store.lock();
        let (dres, _, _) = resources(&st);
        let d = current(&st, &dres, ns, name, generation);
        (dres, d)
    };
    let Some(d) = d else {
        return true;
    };
    let mut status = d["status"].clone();
    let now = meta::now();
    set_condition(
        &mut status,
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{name}\" has timed out progressing."),
            &now,
        ),
    );
    write_status(store, &dres, ns, name, Value::clone(&d), status);
    true
}

/// Rolls a Deployment generation out in three delayed steps. Each step reads under the store's
/// lock and writes through the store, one write at a time, as the real controllers do: other
/// writes may come between them.
pub async fn rollout(
    store: Arc<Store>,
    ns: String,
    name: String,
    generation: i64,
    delay: Duration,
) {
    tokio::time::sleep(delay).await;
    let (dres, rsres, pods) = resources(&store.lock());
    // Step 1: observe the generation, find or create the new ReplicaSet.
    let (new_rs, replicas) = {
        let (d, replicas, hash, rs_name, found, revision, stale) = {
            let st = store.lock();
            let Some(d) = current(&st, &dres, &ns, &name, generation) else {
                return;
            };
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let hash = template_hash(&d["spec"]["template"]);
            let rs_name = format!("{name}-{hash}");
            let existing = replica_sets_of(&st, &rsres, &ns, meta_str(&d, "uid"));
            let found = existing.iter().any(|(n, _, _)| *n == rs_name);
            let revision_of = |n: &str| -> u64 {
                st.find(&rsres, &ns, n)
                    .and_then(|rs| {
                        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                            .as_str()?
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            let max_revision = existing
                .iter()
                .map(|(n, _, _)| revision_of(n))
                .max()
                .unwrap_or(0);
            // The new ReplicaSet gets the next revision, also when an old one is reused
            // (rollback).
            let revision = if found && revision_of(&rs_name) == max_revision {
                max_revision
            } else {
                max_revision + 1
            };
            // A reused ReplicaSet whose revision annotation is behind.
            let stale = (found && revision_of(&rs_name) != revision)
                .then(|| st.find(&rsres, &ns, &rs_name).cloned())
                .flatten();
            (d, replicas, hash, rs_name, found, revision, stale)
        };
        if let Some(rs) = stale {
            let mut new = Value::clone(&rs);
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!(revision.to_string());
            let _ = store.system_update(&rsres, &ns, &rs_name, new, None, MANAGER);
        }
        if !found {
            let mut template = d["spec"]["template"].clone();
            template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": template["metadata"]["labels"].clone(),
                    "annotations": {"deployment.kubernetes.io/revision": revision.to_string(),
                        "deployment.kubernetes.io/desired-replicas": replicas.to_string()},
                    "ownerReferences": [owner_ref(&d, "Deployment", "apps/v1")]},
                "spec": {"replicas": replicas, "selector": selector, "template": template}});
            if store.system_create(&rsres, &ns, rs, MANAGER).is_err() {
                return;
            }
        }
        let now = meta::now();
        let mut status = d["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = json!(generation);
        // Nothing of the new template runs yet: clients see the rollout as in progress.
        let (pods_now, updated) = {
            let st = store.lock();
            let pods_now: usize = replica_sets_of(&st, &rsres, &ns, meta_str(&d, "uid"))
                .iter()
                .map(|(_, uid, _)| pods_of(&st, &pods, &ns, uid).len())
                .sum();
            let updated = st
                .find(&rsres, &ns, &rs_name)
                .map(|rs| pods_of(&st, &pods, &ns, meta_str(rs, "uid")).len())
                .unwrap_or(0);
            (pods_now, updated)
        };
        status["replicas"] = json!(pods_now);
        status["updatedReplicas"] = json!(updated);
        let (reason, message) = if found {
            (
                "FoundNewReplicaSet",
                format!("Found new replica set \"{rs_name}\""),
            )
        } else {
            (
                "NewReplicaSetCreated",
                format!("Created new replica set \"{rs_name}\""),
            )
        };
        set_condition(
            &mut status,
            condition("Progressing", "True", reason, message, &now),
        );
        // Like the real controller, the revision annotation travels with a status write, which
        // does not bump the generation.
        let mut annotated = Value::clone(&d);
        annotated["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            json!(revision.to_string());
        write_status(&store, &dres, &ns, &name, annotated, status);
        (rs_name, replicas)
    };
    tokio::time::sleep(delay).await;
    if stall(&store, &ns, &name, generation).await {
        return;
    }
    // Step 2: bring the new ReplicaSet to the desired count; old pods keep serving.
    {
        let (d, rs, mut have) = {
            let st = store.lock();
            let Some(d) = current(&st, &dres, &ns, &name, generation) else {
                return;
            };
            let Some(rs) = st.find(&rsres, &ns, &new_rs).cloned() else {
                return;
            };
            let have = pods_of(&st, &pods, &ns, meta_str(&rs, "uid"));
            (d, rs, have)
        };
        while (have.len() as i64) < replicas {
            match store.system_create(
                &pods,
                &ns,
                new_pod(&rs, &ns, &rs["spec"]["template"]),
                MANAGER,
            ) {
                Ok(w) => {
                    start_pod(&store, &pods, &ns, &w.object);
                    have.push(meta_str(&w.object, "name").to_string());
                }
                Err(_) => return,
            }
        }
        while (have.len() as i64) > replicas {
            if let Some(p) = have.pop() {
                let _ = store.lock().system_delete(&pods, &ns, &p);
            }
        }
        set_rs_replicas(&store, &rsres, &pods, &ns, &new_rs, replicas);
        let old: usize = {
            let st = store.lock();
            replica_sets_of(&st, &rsres, &ns, meta_str(&d, "uid"))
                .iter()
                .filter(|(n, _, _)| *n != new_rs)
                .map(|(_, uid, _)| pods_of(&st, &pods, &ns, uid).len())
                .sum()
        };
        let now = meta::now();
        let mut status = d["status"].clone();
        let total = old as i64 + replicas;
        status["replicas"] = json!(total);
        status["updatedReplicas"] = json!(replicas);
        status["readyReplicas"] = json!(total);
        status["availableReplicas"] = json!(total);
        set_condition(
            &mut status,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                &now,
            ),
        );
        if old > 0 {
            set_condition(
                &mut status,
                condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{new_rs}\" is progressing."),
                    &now,
                ),
            );
        }
        write_status(&store, &dres, &ns, &name, Value::clone(&d), status);
    }
    tokio::time::sleep(delay).await;
    // Step 3: retire old ReplicaSets' pods; the rollout is complete.
    let (d, old_sets) = {
        let st = store.lock();
        let Some(d) = current(&st, &dres, &ns, &name, generation) else {
            return;
        };
        let old_sets: Vec<(String, Vec<String>)> =
            replica_sets_of(&st, &rsres, &ns, meta_str(&d, "uid"))
                .into_iter()
                .filter(|(rs_name, _, _)| *rs_name != new_rs)
                .map(|(rs_name, uid, _)| {
                    let pods = pods_of(&st, &pods, &ns, &uid);
                    (rs_name, pods)
                })
                .collect();
        (d, old_sets)
    };
    for (rs_name, old_pods) in old_sets {
        for p in old_pods {
            let _ = store.lock().system_delete(&pods, &ns, &p);
        }
        set_rs_replicas(&store, &rsres, &pods, &ns, &rs_name, 0);
    }
    let now = meta::now();
    let mut status = d["status"].clone();
    status["replicas"] = json!(replicas);
    status["updatedReplicas"] = json!(replicas);
    status["readyReplicas"] = json!(replicas);
    status["availableReplicas"] = json!(replicas);
    if let Some(s) = status.as_object_mut() {
        s.remove("unavailableReplicas");
        if replicas == 0 {
            for k in ["readyReplicas", "availableReplicas", "updatedReplicas"] {
                s.remove(k);
            }
        }
    }
    set_condition(
        &mut status,
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            &now,
        ),
    );
    set_condition(
        &mut status,
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_rs}\" has successfully progressed."),
            &now,
        ),
    );
    write_status(&store, &dres, &ns, &name, Value::clone(&d), status);
}
