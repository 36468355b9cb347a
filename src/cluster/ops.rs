//! Object operations the engine needs, on any kind: read, apply, patch, create, delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersion;
use kube::discovery::pinned_group;
use kube::error::DiscoveryError;
use serde_json::Value;
use tokio::sync::Mutex;

use super::ClusterError;
use super::retry::retry;
use crate::object::ObjectRef;

/// The field manager meshplan writes with.
pub const FIELD_MANAGER: &str = "meshplan";

/// A client with the API resources it has discovered.
#[derive(Clone)]
pub struct Cluster {
    /// The kube-rs client.
    pub client: Client,
    /// The resources of each group-version discovered so far, by apiVersion.
    resources: Arc<Mutex<BTreeMap<String, Arc<Vec<ApiResource>>>>>,
    eks: Option<crate::eks::Addons>,
}

impl Cluster {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Cluster {
            client,
            resources: Arc::default(),
            eks: None,
        }
    }

    /// The same cluster, with the EKS API of its add-ons.
    pub fn with_eks(mut self, addons: crate::eks::Addons) -> Self {
        self.eks = Some(addons);
        self
    }

    /// The EKS add-ons of the cluster; an error when no EKS cluster is known.
    pub fn eks(&self) -> Result<&crate::eks::Addons, crate::eks::EksError> {
        self.eks.as_ref().ok_or(crate::eks::EksError::NoCluster)
    }

    /// The API resource of a kind; each group-version is discovered once, all its kinds at a time.
    pub async fn resource(&self, object: &ObjectRef) -> Result<ApiResource, ClusterError> {
        let discovering = |source| ClusterError::Api {
            what: format!("discovering {} {}", object.api_version, object.kind),
            source,
        };
        self.served(&object.api_version)
            .await
            .map_err(discovering)?
            .iter()
            .find(|r| r.kind == object.kind)
            .cloned()
            .ok_or_else(|| {
                discovering(kube::Error::Discovery(DiscoveryError::MissingKind(
                    format!("{} {}", object.api_version, object.kind),
                )))
            })
    }

    /// Discovers the group-versions not yet known, all at once (a request each), so that the
    /// lookups that follow need no round trip. A failure is not kept: the lookup of a kind of
    /// that group-version asks again and reports it.
    pub async fn discover(&self, api_versions: &[&str]) {
        futures_util::future::join_all(api_versions.iter().map(|v| self.served(v))).await;
    }

    /// The resources served in a group-version, discovered on first use.
    async fn served(&self, api_version: &str) -> Result<Arc<Vec<ApiResource>>, kube::Error> {
        if let Some(served) = self.resources.lock().await.get(api_version) {
            return Ok(served.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gv = GroupVersion::gv(group, version);
        let found = retry(|| pinned_group(&self.client, &gv)).await?;
        let served: Arc<Vec<ApiResource>> = Arc::new(
            found
                .versioned_resources(version)
                .into_iter()
                .map(|(resource, _)| resource)
                .collect(),
        );
        self.resources
            .lock()
            .await
            .insert(api_version.to_owned(), served.clone());
        Ok(served)
    }

    async fn api(&self, object: &ObjectRef) -> Result<Api<DynamicObject>, ClusterError> {
        let resource = self.resource(object).await?;
        Ok(match &object.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// The object as it is now (without managedFields, as `kubectl get` shows it), or `None`.
    pub async fn get(&self, object: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let api = self.api(object).await?;
        let found = retry(|| api.get_opt(&object.name))
            .await
            .map_err(|source| ClusterError::Api {
                what: format!("reading {object}"),
                source,
            })?;
        Ok(found.map(|o| with_type(o, object)))
    }

    /// The objects of a kind (that of `probe`) in `probe`'s namespace, or cluster-wide.
    pub async fn list(&self, probe: &ObjectRef) -> Result<Vec<ObjectRef>, ClusterError> {
        Ok(self
            .list_objects(probe)
            .await?
            .iter()
            .map(ObjectRef::of)
            .collect())
    }

    /// The objects of a kind (that of `probe`) in `probe`'s namespace, or cluster-wide, whole:
    /// one request however many there are.
    pub async fn list_objects(&self, probe: &ObjectRef) -> Result<Vec<Value>, ClusterError> {
        let api = self.api(probe).await?;
        let params = kube::api::ListParams::default();
        let list = retry(|| api.list(&params))
            .await
            .map_err(|source| ClusterError::Api {
                what: format!("listing {} {}", probe.api_version, probe.kind),
                source,
            })?;
        Ok(list
            .items
            .into_iter()
            .map(|o| with_type(o, probe))
            .collect())
    }

    /// The versions of one object after `resource_version`, as the server reports them, for at
    /// most `timeout` (`None`: deleted). One request, however many changes it brings. Each is
    /// decoded as `T`, what the caller reads of the object: the rest is skipped, not built.
    pub async fn watch<T>(
        &self,
        object: &ObjectRef,
        resource_version: &str,
        timeout: std::time::Duration,
    ) -> Result<BoxStream<'static, Result<Option<T>, ClusterError>>, ClusterError>
    where
        T: serde::de::DeserializeOwned + Clone + Send + 'static,
    {
        use futures_util::StreamExt;
        use kube::api::{WatchEvent, WatchParams};
        let api = self.api(object).await?;
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", object.name))
            .timeout(timeout.as_secs().clamp(1, 290) as u32);
        let what = move || format!("watching {object}");
        let request = || async {
            let mut request = kube::core::Request::new(api.resource_url())
                .watch(&params, resource_version)
                .map_err(kube::Error::BuildRequest)?;
            request.extensions_mut().insert("watch");
            self.client.request_events::<T>(request).await
        };
        let stream = retry(request).await.map_err(|source| ClusterError::Api {
            what: what(),
            source,
        })?;
        let object = object.clone();
        Ok(stream
            .filter_map(move |event| {
                let object = object.clone();
                async move {
                    match event {
                        Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => Some(Ok(Some(o))),
                        Ok(WatchEvent::Deleted(_)) => Some(Ok(None)),
                        Ok(WatchEvent::Bookmark(_)) => None,
                        Ok(WatchEvent::Error(status)) => Some(Err(ClusterError::Api {
                            what: format!("watching {object}"),
                            source: kube::Error::Api(status),
                        })),
                        Err(source) => Some(Err(ClusterError::Api {
                            what: format!("watching {object}"),
                            source,
                        })),
                    }
                }
            })
            .boxed())
    }

    /// Server-side apply of a whole object, as its owner (`force`: take over conflicting fields).
    pub async fn apply(&self, desired: &Value) -> Result<Value, ClusterError> {
        let object = ObjectRef::of(desired);
        let api = self.api(&object).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(desired);
        let applied = retry(|| api.patch(&object.name, &params, &patch))
            .await
            .map_err(|source| ClusterError::Api {
                what: format!("applying {object}"),
                source,
            })?;
        Ok(with_type(applied, &object))
    }

    /// What the server would store for a server-side apply, without storing it (dry run).
    pub async fn dry_run_apply(&self, desired: &Value) -> Result<Value, ClusterError> {
        let object = ObjectRef::of(desired);
        let api = self.api(&object).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let patch = Patch::Apply(desired);
        let applied = retry(|| api.patch(&object.name, &params, &patch))
            .await
            .map_err(|source| ClusterError::Api {
                what: format!("dry-run applying {object}"),
                source,
            })?;
        Ok(with_type(applied, &object))
    }

    /// What the server would store for a merge patch, without storing it (dry run).
    pub async fn dry_run_merge(
        &self,
        object: &ObjectRef,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        self.merge_patch(object, patch, true, super::transient, "dry-run patching")
            .await
    }

    /// A JSON merge patch (`null` removes a key).
    pub async fn merge(&self, object: &ObjectRef, patch: &Value) -> Result<Value, ClusterError> {
        self.merge_patch(object, patch, false, super::transient, "patching")
            .await
    }

    /// Merge-patches an object on the condition that it is still at `resource_version`: a 409
    /// Conflict (someone changed it since it was read) is returned, not retried.
    pub async fn merge_unchanged(
        &self,
        object: &ObjectRef,
        patch: &Value,
        resource_version: &str,
    ) -> Result<Value, ClusterError> {
        let mut patch = patch.clone();
        patch["metadata"]["resourceVersion"] = Value::String(resource_version.to_owned());
        self.merge_patch(object, &patch, false, super::unavailable, "patching")
            .await
    }

    /// One merge-patch request as meshplan's field manager, retried while `again` says so.
    async fn merge_patch(
        &self,
        object: &ObjectRef,
        patch: &Value,
        dry_run: bool,
        again: fn(&kube::Error) -> bool,
        what: &str,
    ) -> Result<Value, ClusterError> {
        let api = self.api(object).await?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            dry_run,
            ..PatchParams::default()
        };
        let patch = Patch::Merge(patch);
        let patched = super::retry_when(again, || api.patch(&object.name, &params, &patch))
            .await
            .map_err(|source| ClusterError::Api {
                what: format!("{what} {object}"),
                source,
            })?;
        Ok(with_type(patched, object))
    }

    /// Creates an object.
    pub async fn create(&self, value: &Value) -> Result<(), ClusterError> {
        let object = ObjectRef::of(value);
        let api = self.api(&object).await?;
        let typed: DynamicObject = serde_json::from_value(value.clone()).map_err(|e| {
            ClusterError::Check(format!("{object} is not a Kubernetes object: {e}"))
        })?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        retry(|| api.create(&params, &typed))
            .await
            .map_err(|source| ClusterError::Api {
                what: format!("creating {object}"),
                source,
            })?;
        Ok(())
    }

    /// Deletes an object; absent is fine.
    pub async fn delete(&self, object: &ObjectRef) -> Result<(), ClusterError> {
        let api = self.api(object).await?;
        let params = DeleteParams::default();
        match retry(|| api.delete(&object.name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(ClusterError::Api {
                what: format!("deleting {object}"),
                source,
            }),
        }
    }
}

/// The object as JSON, typed as `r` says, without `metadata.managedFields` (as `kubectl get`
/// shows it): meshplan never reads them, compares or keeps objects without them, and they were
/// most of the work of converting a written object. Its fields other than metadata are moved,
/// not serialised again: a Deployment's or Pod's spec and status are most of the rest.
fn with_type(mut object: DynamicObject, r: &ObjectRef) -> Value {
    object.metadata.managed_fields = None;
    let mut value = serde_json::Map::new();
    value.insert("apiVersion".into(), Value::String(r.api_version.clone()));
    value.insert("kind".into(), Value::String(r.kind.clone()));
    value.insert(
        "metadata".into(),
        serde_json::to_value(object.metadata).expect("metadata serialises"),
    );
    if let Value::Object(data) = object.data {
        value.extend(
            data.into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")),
        );
    }
    Value::Object(value)
}
