//! The live cluster through kube-rs: connecting, and reading the inventory with one LIST per kind
//! per namespace (never a GET per object).

mod access;
mod ops;
mod retry;

pub use access::check_access;
pub use ops::{Cluster, FIELD_MANAGER};
pub use retry::{retry, retry_when, transient, unavailable};

use std::path::Path;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use crate::appmesh;
use crate::inventory::{Inventory, Origin};
use crate::steps::Access;

/// Errors talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot load the Kubernetes configuration: {0}")]
    Config(String),
    /// A request failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The cause.
        source: kube::Error,
    },
    /// The cluster is not in the state a step needs or produced.
    #[error("{0}")]
    Check(String),
    /// The user may not do everything the run needs (SelfSubjectAccessReview said no).
    #[error(
        "missing permissions; nothing was changed. This user may not:\n{}\nAsk for a Role or ClusterRole that grants them (check one with `kubectl auth can-i VERB RESOURCE -n NAMESPACE`).",
        .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n")
    )]
    Forbidden(Vec<String>),
    /// The Istio EKS add-on could not be installed or found healthy.
    #[error(transparent)]
    Eks(#[from] crate::eks::EksError),
    /// An object from the cluster does not fit the inventory.
    #[error("{0}")]
    Inventory(#[from] crate::inventory::ManifestError),
}

impl ClusterError {
    /// True for a 409 AlreadyExists: a create found the object there (a retry of a create whose
    /// answer was lost, or another writer).
    pub fn already_exists(&self) -> bool {
        matches!(self, ClusterError::Api { source: kube::Error::Api(status), .. }
            if status.code == 409 && status.reason == "AlreadyExists")
    }
}

/// Connects with a kubeconfig file (or `$KUBECONFIG` / `~/.kube/config`, or the in-cluster
/// service account when there is none) and an optional context.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Client, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config_error = |e: &dyn std::fmt::Display| ClusterError::Config(e.to_string());
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| config_error(&e))?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| config_error(&e))?,
        None => Config::infer().await.map_err(|e| config_error(&e))?,
    };
    Client::try_from(config).map_err(|e| ClusterError::Api {
        what: "creating the client".to_owned(),
        source: e,
    })
}

/// Connects as the pod's service account (the in-cluster configuration), ignoring kubeconfigs.
pub async fn connect_in_cluster() -> Result<Client, ClusterError> {
    let config = Config::incluster().map_err(|e| {
        ClusterError::Config(format!(
            "{e}: `--in-cluster` works inside a pod with a service account token"
        ))
    })?;
    Client::try_from(config).map_err(|e| ClusterError::Api {
        what: "creating the client".to_owned(),
        source: e,
    })
}

/// Connects with kubeconfig text (used with an in-process kubesim).
pub async fn connect_yaml(kubeconfig: &str) -> Result<Client, ClusterError> {
    let file =
        Kubeconfig::from_yaml(kubeconfig).map_err(|e| ClusterError::Config(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|e| ClusterError::Config(e.to_string()))?;
    Client::try_from(config).map_err(|e| ClusterError::Api {
        what: "creating the client".to_owned(),
        source: e,
    })
}

/// The namespaced kinds read per namespace, with their plural names.
const NAMESPACED: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Service", "services"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("apps", "v1", "Deployment", "deployments"),
    (appmesh::GROUP, "v1beta2", "VirtualNode", "virtualnodes"),
    (
        appmesh::GROUP,
        "v1beta2",
        "VirtualService",
        "virtualservices",
    ),
    (appmesh::GROUP, "v1beta2", "VirtualRouter", "virtualrouters"),
    (
        appmesh::GROUP,
        "v1beta2",
        "VirtualGateway",
        "virtualgateways",
    ),
    (appmesh::GROUP, "v1beta2", "GatewayRoute", "gatewayroutes"),
    (appmesh::GROUP, "v1beta2", "BackendGroup", "backendgroups"),
];

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The inventory's LISTs sent at once: more than the LISTs of one namespace, and few enough
/// that the answers held besides the inventory stay few.
const READS_AT_ONCE: usize = 16;

/// One LIST of the inventory.
struct Read {
    resource: ApiResource,
    /// `None` for a cluster-scoped resource.
    namespace: Option<String>,
    /// Only the objects' metadata (Secrets: never their data).
    metadata_only: bool,
    /// What is being read, for errors.
    what: String,
}

impl Read {
    fn new(resource: ApiResource, namespace: Option<&str>, what: String) -> Self {
        Read {
            resource,
            namespace: namespace.map(str::to_owned),
            metadata_only: false,
            what,
        }
    }

    async fn list(&self, client: &Client) -> Result<Vec<DynamicObject>, ClusterError> {
        let api: Api<DynamicObject> = match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        };
        let params = ListParams::default();
        let failed = |source| ClusterError::Api {
            what: self.what.clone(),
            source,
        };
        if self.metadata_only {
            let items = retry(|| api.list_metadata(&params)).await.map_err(failed)?;
            return Ok(items
                .into_iter()
                .map(|item| DynamicObject {
                    types: None,
                    metadata: item.metadata,
                    data: Value::Object(Default::default()),
                })
                .collect());
        }
        Ok(retry(|| api.list(&params)).await.map_err(failed)?.items)
    }
}

/// Reads the App Mesh objects and workloads of `namespaces` (and the cluster's Meshes); with
/// `secrets`, the metadata of their Secrets too (never their data). The LISTs go out
/// concurrently; the inventory is built in the same order whatever order they answer in.
pub async fn inventory(
    client: &Client,
    namespaces: &[String],
    secrets: bool,
) -> Result<Inventory, ClusterError> {
    use futures_util::StreamExt;

    let mut reads = vec![
        Read::new(
            resource("", "v1", "Namespace", "namespaces"),
            None,
            "listing namespaces".into(),
        ),
        Read::new(
            resource(appmesh::GROUP, "v1beta2", "Mesh", "meshes"),
            None,
            "listing App Mesh meshes".into(),
        ),
    ];
    for namespace in namespaces {
        for (group, version, kind, plural) in NAMESPACED {
            reads.push(Read::new(
                resource(group, version, kind, plural),
                Some(namespace),
                format!("listing {plural} in {namespace}"),
            ));
        }
        if secrets {
            reads.push(Read {
                metadata_only: true,
                ..Read::new(
                    resource("", "v1", "Secret", "secrets"),
                    Some(namespace),
                    format!("listing secrets in {namespace}"),
                )
            });
        }
    }
    // In order, each list added as soon as it and those before it have answered, so that at
    // most a few lists are held besides the inventory. Each is read and decoded in a task of
    // its own, so that answers are decoded on every worker thread rather than one by one here.
    let mut lists = futures_util::stream::iter(reads)
        .map(|read| {
            let client = client.clone();
            tokio::spawn(async move {
                let objects = values(read.list(&client).await?, &read.resource);
                Ok::<_, ClusterError>((read.resource, objects))
            })
        })
        .buffered(READS_AT_ONCE);
    let mut inventory = Inventory::default();
    let mut index = 0;
    while let Some(listed) = lists.next().await {
        let (ar, objects) = listed.expect("inventory reads do not panic")?;
        for (name, value) in objects {
            // Only the namespaces in scope.
            if ar.kind == "Namespace" && !namespaces.contains(&name) {
                continue;
            }
            let origin = Origin {
                file: format!("cluster:{}/{name}", ar.plural).into(),
                line: 0,
            };
            inventory.add(value, origin, index)?;
            index += 1;
        }
    }
    Ok(inventory)
}

/// Listed objects as JSON with their apiVersion and kind, which LIST items do not carry, by name.
fn values(objects: Vec<DynamicObject>, ar: &ApiResource) -> Vec<(String, Value)> {
    objects
        .into_iter()
        .map(|object| {
            let name = object.metadata.name.clone().unwrap_or_default();
            let mut value = serde_json::to_value(&object).expect("objects serialise");
            value["apiVersion"] = Value::String(ar.api_version.clone());
            value["kind"] = Value::String(ar.kind.clone());
            (name, value)
        })
        .collect()
}

/// Those of `namespaces` the cluster does not have, in order; all looked up at once (a round
/// trip, whatever their number).
pub async fn missing_namespaces<'a>(
    cluster: &Cluster,
    namespaces: &'a [String],
) -> Result<Vec<&'a str>, ClusterError> {
    use crate::object::ObjectRef;
    let found = futures_util::future::try_join_all(namespaces.iter().map(|namespace| async move {
        cluster
            .get(&ObjectRef::new("v1", "Namespace", None, namespace))
            .await
    }))
    .await?;
    Ok(namespaces
        .iter()
        .zip(found)
        .filter(|(_, found)| found.is_none())
        .map(|(namespace, _)| namespace.as_str())
        .collect())
}

/// Checks, before anything is read or changed, that the cluster serves what the migration needs:
/// the App Mesh CRDs, the Istio CRDs (when `istio`), the namespaces in scope, and that this user
/// may read them (with `secrets`, their Secrets' metadata too).
pub async fn preflight(
    cluster: &Cluster,
    namespaces: &[String],
    istio: bool,
    secrets: bool,
) -> Result<(), ClusterError> {
    use crate::object::ObjectRef;
    // Reading the inventory: one LIST per kind per namespace, and the cluster's namespaces and meshes.
    let mut reads = vec![
        Access::new("list", "v1", "Namespace", None),
        Access::new("list", appmesh::API_VERSION, "Mesh", None),
    ];
    for namespace in namespaces {
        for (group, version, kind, _) in NAMESPACED {
            let api_version = if group.is_empty() {
                (*version).to_owned()
            } else {
                format!("{group}/{version}")
            };
            reads.push(Access::new("list", &api_version, kind, Some(namespace)));
        }
        if secrets {
            reads.push(Access::new("list", "v1", "Secret", Some(namespace)));
        }
    }
    // Every group-version the checks below look up, discovered at once rather than in turn.
    let istio_version = "networking.istio.io/v1";
    let versions = access::api_versions(
        reads
            .iter()
            .map(|a| a.api_version.as_str())
            .chain([appmesh::API_VERSION])
            .chain(istio.then_some(istio_version)),
    );
    cluster.discover(&versions).await;
    let appmesh = ObjectRef::new(appmesh::API_VERSION, "VirtualNode", Some("default"), "x");
    if cluster.resource(&appmesh).await.is_err() {
        return Err(ClusterError::Check(
            "this cluster does not serve the App Mesh CRDs (appmesh.k8s.aws/v1beta2): check the \
             kubeconfig context; there is no App Mesh here to migrate"
                .to_owned(),
        ));
    }
    if istio {
        let vs = ObjectRef::new(istio_version, "VirtualService", Some("default"), "x");
        if cluster.resource(&vs).await.is_err() {
            return Err(ClusterError::Check(
                "this cluster does not serve the Istio CRDs (networking.istio.io/v1): install Istio \
                 first (its CRDs and istiod), then apply"
                    .to_owned(),
            ));
        }
    }
    // The namespaces are looked up while the permissions are checked (a round trip saved); a
    // missing permission is reported first, as it explains a failed lookup.
    let (access, missing) = tokio::join!(
        check_access(cluster, &reads),
        missing_namespaces(cluster, namespaces)
    );
    access?;
    let missing = missing?;
    if !missing.is_empty() {
        return Err(ClusterError::Check(format!(
            "namespace(s) {} of `source.namespaces` do not exist in this cluster",
            missing.join(", ")
        )));
    }
    Ok(())
}
