//! What each kind of step does to the cluster, and how it is undone.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::Options;
use crate::cluster::{Cluster, ClusterError};
use crate::diff::strip_server_fields;
use crate::diff::{merge_patch, normalise};
use crate::object::ObjectRef;
use crate::state::PreImage;
use crate::steps::{Action, Change, ChangeAction, Step};

/// Runs `work` on every item, at most `limit` at a time, and returns the results in item order.
/// On an error no new work starts; what runs finishes, and the first error is returned.
pub(super) async fn bounded<T, R, Fut>(
    items: Vec<T>,
    limit: usize,
    work: impl Fn(T) -> Fut,
) -> Result<Vec<R>, ClusterError>
where
    R: Send + 'static,
    Fut: std::future::Future<Output = Result<R, ClusterError>> + Send + 'static,
{
    let mut running = tokio::task::JoinSet::new();
    let mut results: Vec<Option<R>> = Vec::with_capacity(items.len());
    let mut failure = None;
    for (i, item) in items.into_iter().enumerate() {
        results.push(None);
        while running.len() >= limit.max(1) {
            collect(&mut running, &mut results, &mut failure).await;
        }
        if failure.is_some() {
            break;
        }
        let task = work(item);
        running.spawn(async move { (i, task.await) });
    }
    while !running.is_empty() {
        collect(&mut running, &mut results, &mut failure).await;
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(results.into_iter().flatten().collect()),
    }
}

async fn collect<R: 'static>(
    running: &mut tokio::task::JoinSet<(usize, Result<R, ClusterError>)>,
    results: &mut [Option<R>],
    failure: &mut Option<ClusterError>,
) {
    if let Some(joined) = running.join_next().await {
        match joined.expect("object tasks do not panic") {
            (i, Ok(value)) => results[i] = Some(value),
            (_, Err(error)) => {
                failure.get_or_insert(error);
            }
        }
    }
}

/// Consecutive changes that may go together: each run concurrently, one run after another. App
/// Mesh objects go kind by kind, in order; Istio's go in two runs, what routes name
/// (ServiceEntries, DestinationRules with their subsets, Gateways) before the routes and the rest.
fn runs_of_kind(changes: &[Change]) -> Vec<Vec<Change>> {
    let mut runs: Vec<Vec<Change>> = Vec::new();
    for change in changes {
        match runs.last_mut() {
            Some(run) if run_of(&run[0].object) == run_of(&change.object) => {
                run.push(change.clone())
            }
            _ => runs.push(vec![change.clone()]),
        }
    }
    runs
}

/// Which run an object's change belongs to: an Istio object's stage, or any other's kind.
fn run_of(object: &ObjectRef) -> &str {
    if !object.group().ends_with(".istio.io") {
        return &object.kind;
    }
    match object.kind.as_str() {
        "ServiceEntry" | "DestinationRule" | "Gateway" => "istio: named by routes",
        _ => "istio: routes and the rest",
    }
}

/// The Kubernetes objects a step touches, as they are now (`None`: absent).
pub type Observed = BTreeMap<ObjectRef, Option<Value>>;

/// Reads the Kubernetes objects a step touches: one LIST per kind and namespace of which it
/// touches several, one GET for a kind of which it touches one; at most `limit` at once.
pub async fn observe(
    cluster: &Cluster,
    step: &Step,
    limit: usize,
) -> Result<Observed, ClusterError> {
    observe_objects(cluster, step.touched(), limit).await
}

/// Reads `objects` as [`observe`] does (an EKS add-on, no Kubernetes object, is left out).
pub async fn observe_objects(
    cluster: &Cluster,
    objects: Vec<ObjectRef>,
    limit: usize,
) -> Result<Observed, ClusterError> {
    let groups = crate::steps::by_kind(objects.into_iter().filter(|o| !o.is_eks_addon()));
    let reads = bounded(groups.into_values().collect(), limit, |objects| {
        let cluster = cluster.clone();
        async move {
            if let [object] = objects.as_slice() {
                let now = cluster.get(object).await?;
                return Ok(vec![(object.clone(), now)]);
            }
            let mut listed: BTreeMap<ObjectRef, Value> = cluster
                .list_objects(&objects[0])
                .await?
                .into_iter()
                .map(|o| (ObjectRef::of(&o), o))
                .collect();
            Ok(objects
                .into_iter()
                .map(|o| {
                    let now = listed.remove(&o);
                    (o, now)
                })
                .collect())
        }
    })
    .await?;
    Ok(reads.into_iter().flatten().collect())
}

/// The objects a step will touch as they are now, from `observed` (an EKS add-on is described).
pub async fn pre_images(
    cluster: &Cluster,
    step: &Step,
    observed: &Observed,
) -> Result<Vec<PreImage>, ClusterError> {
    let mut images = Vec::new();
    for object in step.touched() {
        let before = if object.is_eks_addon() {
            // Not a Kubernetes object: its pre-image is the add-on as EKS describes it, and an
            // empty one records that meshplan created it (only then may a rollback delete it).
            let addon = cluster.eks()?.describe(&object.name).await?;
            addon.map(|a| crate::eks::settings_value(&a, None))
        } else {
            // A Secret's data never goes into the journal.
            observed
                .get(&object)
                .cloned()
                .flatten()
                .map(|o| crate::diff::without_secret_data(&strip_server_fields(&o)))
        };
        images.push(PreImage { object, before });
    }
    Ok(images)
}

/// Brings one object to its planned state; nothing when it is there already.
async fn apply_change(
    cluster: Cluster,
    change: Change,
    current: Option<Value>,
) -> Result<(), ClusterError> {
    let Some(after) = &change.after else {
        return Ok(());
    };
    if current.as_ref().is_some_and(|c| same(c, after)) {
        return Ok(());
    }
    match (change.action, &current, &change.before) {
        // Objects meshplan owns: server-side apply.
        (ChangeAction::Create, _, _) => {
            cluster.apply(after).await?;
        }
        // Someone else's object: patch only the fields the plan changes.
        (_, Some(_), Some(before)) => {
            cluster
                .merge(
                    &change.object,
                    // Server-set fields (resourceVersion above all) are not ours to patch.
                    &merge_patch(&strip_server_fields(before), &strip_server_fields(after)),
                )
                .await?;
        }
        _ => {
            cluster.apply(after).await?;
        }
    }
    Ok(())
}

/// Reports how a long-running action is getting on.
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

/// Performs a step's action on the objects as `observed` just before; `progress` hears how
/// rollouts advance.
pub async fn act(
    cluster: &Cluster,
    step: &Step,
    observed: &Observed,
    options: &Options,
    progress: Progress<'_>,
) -> Result<(), ClusterError> {
    match &step.action {
        Action::Preflight { namespaces, .. } => {
            match crate::cluster::missing_namespaces(cluster, namespaces)
                .await?
                .first()
            {
                Some(namespace) => Err(ClusterError::Check(format!(
                    "namespace `{namespace}` does not exist in the cluster"
                ))),
                None => Ok(()),
            }
        }
        Action::EnsureIstio { .. } => {
            // An add-on the plan installs or changes first; a plan that found it as wanted has
            // no add-on change, and goes straight to checking istiod.
            for change in step.changes.iter().filter(|c| c.object.is_eks_addon()) {
                let after = change.after.as_ref().ok_or_else(|| {
                    crate::eks::EksError::Settings("the add-on change has no settings".to_owned())
                })?;
                let settings = crate::eks::AddonSettings::from_value(after)?;
                cluster
                    .eks()?
                    .ensure(&settings, options.rollout_timeout, options.poll, progress)
                    .await?;
            }
            let istiod = ObjectRef::new("apps/v1", "Deployment", Some("istio-system"), "istiod");
            // istiod may still be starting (right after an install): wait for it, bounded.
            let deadline = tokio::time::Instant::now() + options.rollout_timeout;
            loop {
                match cluster.get(&istiod).await? {
                    None => {
                        return Err(ClusterError::Check(
                            "Istio is not installed: there is no Deployment istio-system/istiod; \
                             install Istio (or set `[istio] install = \"eks-addon\"`) first"
                                .to_owned(),
                        ));
                    }
                    Some(deployment) if available(&deployment) => break,
                    Some(_) if tokio::time::Instant::now() >= deadline => {
                        return Err(ClusterError::Check(format!(
                            "istiod did not become Available in istio-system within {:?}; check \
                             its pods",
                            options.rollout_timeout
                        )));
                    }
                    Some(_) => {
                        progress(
                            "waiting for istiod to become Available in istio-system".to_owned(),
                        );
                        tokio::time::sleep(options.poll).await;
                    }
                }
            }
            // Discovery fails when the Istio CRDs are not served.
            let probe = ObjectRef::new(
                "networking.istio.io/v1",
                "VirtualService",
                Some("istio-system"),
                "x",
            );
            cluster.resource(&probe).await.map(|_| ())
        }
        Action::Apply => {
            for run in runs_of_kind(&step.changes) {
                bounded(run, options.concurrency, |change| {
                    let current = observed.get(&change.object).cloned().flatten();
                    apply_change(cluster.clone(), change, current)
                })
                .await?;
            }
            Ok(())
        }
        Action::Relabel {
            namespace,
            remove,
            set,
        } => {
            let mut labels = Map::new();
            for key in remove {
                labels.insert(key.clone(), Value::Null);
            }
            for (key, value) in set {
                labels.insert(key.clone(), Value::String(value.clone()));
            }
            let object = ObjectRef::new("v1", "Namespace", None, namespace);
            cluster
                .merge(&object, &json!({"metadata": {"labels": labels}}))
                .await?;
            Ok(())
        }
        Action::Restart {
            namespace,
            deployment,
        } => {
            let template = step
                .changes
                .iter()
                .find(|c| c.action == ChangeAction::Update)
                .and_then(|c| {
                    Some(merge_patch(
                        &strip_server_fields(c.before.as_ref()?),
                        &strip_server_fields(c.after.as_ref()?),
                    ))
                });
            restart_with(cluster, namespace, deployment, template, options, progress).await
        }
        Action::VerifySidecars {
            namespace,
            deployments,
        } => {
            for (deployment, pods) in pods_of(cluster, namespace, deployments).await? {
                for (pod, names) in &pods {
                    let runs = |container: &str| names.iter().any(|n| n == container);
                    if !runs("istio-proxy") || runs("envoy") {
                        return Err(ClusterError::Check(format!(
                            "pod {namespace}/{pod} of Deployment {deployment} runs {names:?}: expected istio-proxy and no App Mesh envoy"
                        )));
                    }
                }
            }
            Ok(())
        }
        Action::Delete => {
            for run in runs_of_kind(&step.changes) {
                bounded(run, options.concurrency, |change| {
                    let cluster = cluster.clone();
                    async move { cluster.delete(&change.object).await }
                })
                .await?;
            }
            Ok(())
        }
        Action::WaitRollout {
            namespace,
            deployments,
        } => {
            for deployment in deployments {
                wait_rollout(cluster, namespace, deployment, None, options, progress).await?;
            }
            Ok(())
        }
        Action::CloneSecrets { from, .. } => {
            for change in &step.changes {
                if cluster.get(&change.object).await?.is_some() {
                    continue;
                }
                let source = ObjectRef::new("v1", "Secret", Some(from), &change.object.name);
                let secret = cluster.get(&source).await?.ok_or_else(|| {
                    ClusterError::Check(format!(
                        "Secret {from}/{} is gone since the plan was made",
                        change.object.name
                    ))
                })?;
                let mut copy = strip_server_fields(&secret);
                copy["metadata"]["namespace"] =
                    Value::String(change.object.namespace.clone().unwrap_or_default());
                if let Some(meta) = copy["metadata"].as_object_mut() {
                    meta.remove("ownerReferences");
                }
                match cluster.create(&copy).await {
                    // Copied already: by a retried create whose answer was lost.
                    Err(error) if error.already_exists() => {}
                    other => other?,
                }
            }
            Ok(())
        }
    }
}

/// Restarts a Deployment as `kubectl rollout restart` does and waits for the rollout.
pub async fn restart(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    options: &Options,
    progress: Progress<'_>,
) -> Result<(), ClusterError> {
    restart_with(cluster, namespace, name, None, options, progress).await
}

/// Restarts a Deployment, changing its template with `patch` in the same rollout, and waits.
async fn restart_with(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    patch: Option<Value>,
    options: &Options,
    progress: Progress<'_>,
) -> Result<(), ClusterError> {
    let object = ObjectRef::new("apps/v1", "Deployment", Some(namespace), name);
    let mut patch = patch.unwrap_or_else(|| json!({}));
    patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        Value::String(jiff::Timestamp::now().to_string());
    let patched = cluster.merge(&object, &patch).await?;
    wait_rollout(cluster, namespace, name, Some(patched), options, progress).await
}

/// Waits until a Deployment (`current`: as just read or written) has rolled out, reporting
/// replica counts; bounded by the plan's rollout timeout. It watches the Deployment rather than
/// polling it, so a rollout is seen done as soon as it is, for one request; when a watch fails or
/// ends, the Deployment is read again.
async fn wait_rollout(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    current: Option<Value>,
    options: &Options,
    progress: Progress<'_>,
) -> Result<(), ClusterError> {
    use futures_util::StreamExt;
    let object = ObjectRef::new("apps/v1", "Deployment", Some(namespace), name);
    let gone = || {
        ClusterError::Check(format!(
            "Deployment {namespace}/{name} disappeared during its rollout"
        ))
    };
    let deadline = tokio::time::Instant::now() + options.rollout_timeout;
    let mut current = Rollout::of(&match current {
        Some(current) => current,
        None => cluster.get(&object).await?.ok_or_else(gone)?,
    });
    loop {
        if current.done() {
            return Ok(());
        }
        progress(current.progress());
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(ClusterError::Check(format!(
                "Deployment {namespace}/{name} did not finish its rollout within {:?}",
                options.rollout_timeout
            )));
        }
        let version = current
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let watched = async {
            let mut changes = cluster.watch::<Rollout>(&object, &version, left).await?;
            while let Some(change) = changes.next().await {
                let changed = change?.ok_or_else(gone)?;
                if changed.done() {
                    return Ok(true);
                }
                progress(changed.progress());
                current = changed;
            }
            Ok::<_, ClusterError>(false)
        };
        match tokio::time::timeout(left, watched).await {
            Ok(Ok(true)) => return Ok(()),
            Ok(Err(error @ ClusterError::Check(_))) => return Err(error),
            // The watch ended or failed (a dropped connection, a compacted history): pause a
            // moment, then read the Deployment again and watch from there.
            Ok(Ok(false)) | Ok(Err(_)) | Err(_) => {
                tracing::debug!(deployment = %object, "rollout watch ended; reading again");
                tokio::time::sleep((options.poll / 8).min(left)).await;
                current = Rollout::of(&cluster.get(&object).await?.ok_or_else(gone)?);
            }
        }
    }
}

/// Puts an object back as its pre-image says, from `current` (as just read; `None`: absent).
pub async fn restore(
    cluster: &Cluster,
    image: &PreImage,
    current: Option<Value>,
) -> Result<(), ClusterError> {
    match (&image.before, current) {
        // meshplan never changes a Secret that exists (cloning skips them), and the journal keeps
        // no Secret data to put one back with: one that was there is left as it is.
        (Some(before), _) if crate::diff::is_secret(before) => Ok(()),
        (None, Some(_)) => cluster.delete(&image.object).await,
        (None, None) => Ok(()),
        (Some(before), None) => match cluster.create(before).await {
            // There after all (a retried create whose answer was lost): patched back instead.
            Err(error) if error.already_exists() => match cluster.get(&image.object).await? {
                Some(now) => merge_back(cluster, image, before, &now).await,
                None => Err(error),
            },
            other => other,
        },
        (Some(before), Some(now)) => merge_back(cluster, image, before, &now).await,
    }
}

/// Patches an object from how it is now back to its pre-image.
async fn merge_back(
    cluster: &Cluster,
    image: &PreImage,
    before: &Value,
    now: &Value,
) -> Result<(), ClusterError> {
    // Both sides come from the server, defaults included: the patch is exactly what the
    // migration changed (a containment check would miss added fields).
    let patch = merge_patch(&strip_server_fields(now), before);
    if patch.as_object().is_some_and(|p| p.is_empty()) {
        return Ok(());
    }
    cluster.merge(&image.object, &patch).await.map(|_| ())
}

/// True when the object already is what the plan wants (server-set fields aside).
fn same(current: &Value, desired: &Value) -> bool {
    contains(&normalise(current), &normalise(desired))
}

/// Every field of `want` is in `have` with the same value (the server may add defaults).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (h, w) => h == w,
    }
}

fn available(deployment: &Value) -> bool {
    deployment["status"]["conditions"]
        .as_array()
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True")
        })
}

/// What a rollout check reads of a Deployment: a watch decodes only this of each change, not
/// the pod template and managedFields.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Rollout {
    metadata: RolloutMeta,
    spec: RolloutSpec,
    status: RolloutStatus,
}

/// [`Rollout`]'s metadata.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RolloutMeta {
    generation: Option<i64>,
    resource_version: Option<String>,
}

/// [`Rollout`]'s spec.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
struct RolloutSpec {
    replicas: Option<i64>,
}

/// [`Rollout`]'s status.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RolloutStatus {
    observed_generation: Option<i64>,
    replicas: Option<i64>,
    updated_replicas: Option<i64>,
    ready_replicas: Option<i64>,
    available_replicas: Option<i64>,
}

impl Rollout {
    /// The rollout of a Deployment read whole (one whose fields do not fit reads as nothing
    /// rolled out yet).
    fn of(deployment: &Value) -> Self {
        serde::Deserialize::deserialize(deployment).unwrap_or_default()
    }

    /// The desired replicas (1 when unset, as the API defaults it).
    fn replicas(&self) -> i64 {
        self.spec.replicas.unwrap_or(1)
    }

    /// Whether the current generation is observed and every replica updated and available.
    fn done(&self) -> bool {
        let s = &self.status;
        let replicas = self.replicas();
        s.observed_generation.unwrap_or(0) >= self.metadata.generation.unwrap_or(0)
            && s.updated_replicas.unwrap_or(0) == replicas
            && s.available_replicas.unwrap_or(0) == replicas
            && s.replicas.unwrap_or(0) == replicas
    }

    /// `2/3 updated, 1/3 ready, 1/3 available, 1 old pending termination`, as `kubectl rollout
    /// status` counts.
    fn progress(&self) -> String {
        let s = &self.status;
        let replicas = self.replicas();
        let updated = s.updated_replicas.unwrap_or(0);
        let mut line = format!(
            "{updated}/{replicas} updated, {}/{replicas} ready, {}/{replicas} available",
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0)
        );
        let old = s.replicas.unwrap_or(0) - updated;
        if old > 0 {
            line.push_str(&format!(", {old} old pending termination"));
        }
        line
    }
}

/// The live pods of each named Deployment of a namespace (matched by the Deployment's
/// `matchLabels`), each as its name and its containers' names, from one LIST of Deployments and
/// one of Pods, whatever their number.
async fn pods_of(
    cluster: &Cluster,
    namespace: &str,
    deployments: &[String],
) -> Result<Vec<(String, Vec<(String, Vec<String>)>)>, ClusterError> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};
    let listed = |what: String| move |source| ClusterError::Api { what, source };
    let params = ListParams::default();
    let deployments_api: Api<Deployment> = Api::namespaced(cluster.client.clone(), namespace);
    let pods_api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    // Both LISTs at once: the pod LIST is the largest read of a run.
    let (live, pods) = tokio::join!(
        crate::cluster::retry(|| deployments_api.list(&params)),
        crate::cluster::retry(|| pods_api.list(&params)),
    );
    let live = live.map_err(listed(format!("listing the Deployments of {namespace}")))?;
    let pods = pods.map_err(listed(format!("listing the pods of {namespace}")))?;
    let pods: Vec<&Pod> = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let mut out = Vec::new();
    for name in deployments {
        // A Deployment gone since the plan has no pods to check.
        let Some(deployment) = live
            .items
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name.as_str()))
        else {
            out.push((name.clone(), Vec::new()));
            continue;
        };
        let selector = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        let selected = pods
            .iter()
            .filter(|p| {
                let labels = p.metadata.labels.as_ref();
                selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .map(|p| {
                let containers = p.spec.iter().flat_map(|s| &s.containers);
                (
                    p.metadata.name.clone().unwrap_or_default(),
                    containers.map(|c| c.name.clone()).collect(),
                )
            })
            .collect();
        out.push((name.clone(), selected));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(api_version: &str, kind: &str, name: &str) -> Change {
        Change {
            action: ChangeAction::Create,
            object: ObjectRef::new(api_version, kind, Some("shop"), name),
            before: None,
            after: None,
        }
    }

    fn kinds(runs: &[Vec<Change>]) -> Vec<Vec<&str>> {
        runs.iter()
            .map(|run| run.iter().map(|c| c.object.kind.as_str()).collect())
            .collect()
    }

    #[test]
    fn a_rollout_is_done_once_its_generation_is_observed_and_every_replica_is_updated() {
        let mut deployment = json!({
            "metadata": {"generation": 3, "resourceVersion": "7",
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app"}]}}},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2,
                "readyReplicas": 2, "availableReplicas": 2}});
        let rollout = Rollout::of(&deployment);
        assert_eq!(rollout.metadata.resource_version.as_deref(), Some("7"));
        assert!(!rollout.done());
        assert_eq!(
            rollout.progress(),
            "2/2 updated, 2/2 ready, 2/2 available, 1 old pending termination"
        );
        deployment["status"]["replicas"] = json!(2);
        assert!(Rollout::of(&deployment).done());
        deployment["metadata"]["generation"] = json!(4);
        assert!(!Rollout::of(&deployment).done());
        // Unset replicas are one.
        let bare = json!({"status": {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}});
        assert!(Rollout::of(&bare).done());
    }

    #[test]
    fn istio_objects_go_in_two_runs_and_app_mesh_objects_kind_by_kind() {
        let net = "networking.istio.io/v1";
        let istio = [
            change(net, "ServiceEntry", "a"),
            change(net, "DestinationRule", "a"),
            change(net, "DestinationRule", "b"),
            change(net, "Gateway", "g"),
            change(net, "VirtualService", "a"),
            change(net, "Sidecar", "a"),
            change("security.istio.io/v1", "PeerAuthentication", "default"),
        ];
        assert_eq!(
            kinds(&runs_of_kind(&istio)),
            [
                vec![
                    "ServiceEntry",
                    "DestinationRule",
                    "DestinationRule",
                    "Gateway"
                ],
                vec!["VirtualService", "Sidecar", "PeerAuthentication"],
            ]
        );
        let appmesh = "appmesh.k8s.aws/v1beta2";
        let deletions = [
            change(appmesh, "GatewayRoute", "r"),
            change(appmesh, "VirtualGateway", "g"),
            change(appmesh, "VirtualService", "s"),
            change(appmesh, "VirtualRouter", "r"),
            change(appmesh, "VirtualNode", "a"),
            change(appmesh, "VirtualNode", "b"),
        ];
        assert_eq!(
            kinds(&runs_of_kind(&deletions)),
            [
                vec!["GatewayRoute"],
                vec!["VirtualGateway"],
                vec!["VirtualService"],
                vec!["VirtualRouter"],
                vec!["VirtualNode", "VirtualNode"],
            ]
        );
    }
}
