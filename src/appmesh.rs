//! Typed App Mesh `appmesh.k8s.aws/v1beta2` resources, named as upstream.
//!
//! The types are lenient (unknown fields are ignored): what the translator does not read is
//! found by walking the raw object instead, so nothing is dropped silently.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;

/// The App Mesh API group.
pub const GROUP: &str = "appmesh.k8s.aws";
/// The App Mesh API version meshplan reads.
pub const API_VERSION: &str = "appmesh.k8s.aws/v1beta2";

/// A reference to another App Mesh object by name (and optional namespace).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Ref {
    /// Object name.
    pub name: String,
    /// Namespace; the referrer's own when absent.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `Mesh`: the cluster-scoped mesh.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mesh {
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// Mesh spec.
    #[serde(default)]
    pub spec: MeshSpec,
}

/// `Mesh.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshSpec {
    /// Namespaces that belong to the mesh.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
}

/// `VirtualNode`: a workload (a set of pods) in the mesh.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNode {
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// VirtualNode spec.
    #[serde(default)]
    pub spec: VirtualNodeSpec,
}

/// `VirtualNode.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNodeSpec {
    /// The pods of this node; absent selects none.
    #[serde(default)]
    pub pod_selector: Option<LabelSelector>,
    /// Inbound listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

/// A listener's port and protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Port and protocol.
    pub port_mapping: PortMapping,
}

/// `portMapping`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Container port.
    pub port: i64,
    /// `http`, `http2`, `grpc` or `tcp`.
    pub protocol: String,
}

/// `VirtualService`: a name clients call, served by a router or a node.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// VirtualService spec.
    #[serde(default)]
    pub spec: VirtualServiceSpec,
}

/// `VirtualService.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// The host name clients use; defaults to `name.namespace`.
    #[serde(default)]
    pub aws_name: Option<String>,
    /// What serves the name.
    #[serde(default)]
    pub provider: Option<Provider>,
}

/// `VirtualService.spec.provider`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// A router provider.
    #[serde(default)]
    pub virtual_router: Option<RouterProvider>,
    /// A node provider.
    #[serde(default)]
    pub virtual_node: Option<NodeProvider>,
}

/// `provider.virtualRouter`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterProvider {
    /// The router, by reference.
    #[serde(default)]
    pub virtual_router_ref: Option<Ref>,
}

/// `provider.virtualNode`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeProvider {
    /// The node, by reference.
    #[serde(default)]
    pub virtual_node_ref: Option<Ref>,
}

/// `VirtualRouter`: routes a virtual service's requests to virtual nodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualRouter {
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// VirtualRouter spec.
    #[serde(default)]
    pub spec: VirtualRouterSpec,
}

/// `VirtualRouter.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualRouterSpec {
    /// Router listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Routes, in the order written.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One route of a router; exactly one of the route kinds is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Route name.
    pub name: String,
    /// 0 (first) to 1000.
    #[serde(default)]
    pub priority: Option<i64>,
    /// HTTP/1 route.
    #[serde(default)]
    pub http_route: Option<HttpRoute>,
    /// HTTP/2 route.
    #[serde(default)]
    pub http2_route: Option<HttpRoute>,
}

/// `httpRoute` / `http2Route`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Request match.
    #[serde(rename = "match")]
    pub match_: HttpMatch,
    /// Where matched requests go.
    pub action: RouteAction,
}

/// `httpRoute.match`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    /// Path prefix.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// `action`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteAction {
    /// Weighted targets (1 to 10).
    pub weighted_targets: Vec<WeightedTarget>,
}

/// `action.weightedTargets[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedTarget {
    /// The target node, by reference.
    #[serde(default)]
    pub virtual_node_ref: Option<Ref>,
    /// Relative weight, 0 to 100.
    pub weight: i64,
    /// Target listener port.
    #[serde(default)]
    pub port: Option<i64>,
}
