//! Typed App Mesh `appmesh.k8s.aws/v1beta2` resources, every field, named as upstream.
//!
//! The types accept unknown fields (the App Mesh CRDs preserve them and the controller ignores
//! them); the translator reports them from the raw object instead, so nothing passes silently.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;

/// The App Mesh API group.
pub const GROUP: &str = "appmesh.k8s.aws";
/// The App Mesh API version meshplan reads.
pub const API_VERSION: &str = "appmesh.k8s.aws/v1beta2";

/// The namespaced kinds with their plurals, entry points first: the order to delete them in.
pub const NAMESPACED_KINDS: &[(&str, &str)] = &[
    ("VirtualGateway", "virtualgateways"),
    ("GatewayRoute", "gatewayroutes"),
    ("VirtualService", "virtualservices"),
    ("VirtualRouter", "virtualrouters"),
    ("VirtualNode", "virtualnodes"),
    ("BackendGroup", "backendgroups"),
];

/// An App Mesh object: metadata and a spec.
#[derive(Debug, Clone, Deserialize)]
pub struct Object<S> {
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: S,
}

/// `Mesh`: the cluster-scoped mesh.
pub type Mesh = Object<MeshSpec>;
/// `VirtualNode`: a workload (a set of pods) in the mesh.
pub type VirtualNode = Object<VirtualNodeSpec>;
/// `VirtualService`: a name clients call, served by a router or a node.
pub type VirtualService = Object<VirtualServiceSpec>;
/// `VirtualRouter`: routes a virtual service's requests to virtual nodes.
pub type VirtualRouter = Object<VirtualRouterSpec>;
/// `VirtualGateway`: an ingress Envoy deployment.
pub type VirtualGateway = Object<VirtualGatewaySpec>;
/// `GatewayRoute`: a route of a virtual gateway to a virtual service.
pub type GatewayRoute = Object<GatewayRouteSpec>;
/// `BackendGroup`: a named set of virtual services.
pub type BackendGroup = Object<BackendGroupSpec>;

/// A reference to another App Mesh object by name (and optional namespace).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Ref {
    /// Object name.
    pub name: String,
    /// Namespace; the referrer's own when absent.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// An App Mesh duration.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct Duration {
    /// `s` or `ms`.
    pub unit: DurationUnit,
    /// Non-negative amount.
    pub value: i64,
}

/// Units of an App Mesh duration.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum DurationUnit {
    /// Seconds.
    #[serde(rename = "s")]
    Seconds,
    /// Milliseconds.
    #[serde(rename = "ms")]
    Millis,
}

impl Duration {
    /// The duration in milliseconds (negative values count as 0).
    pub fn millis(&self) -> u64 {
        let value = u64::try_from(self.value).unwrap_or(0);
        match self.unit {
            DurationUnit::Seconds => value.saturating_mul(1000),
            DurationUnit::Millis => value,
        }
    }
}

/// Listener protocols.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1.
    Http,
    /// HTTP/2.
    Http2,
    /// gRPC.
    Grpc,
    /// TCP.
    Tcp,
}

impl Protocol {
    /// The name as written in App Mesh (and in Kubernetes `appProtocol`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::Tcp => "tcp",
        }
    }
}

/// `portMapping`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port, 1–65535.
    pub port: i64,
    /// Protocol.
    pub protocol: Protocol,
}

/// `Mesh.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshSpec {
    /// App Mesh name.
    #[serde(default)]
    pub aws_name: Option<String>,
    /// Namespaces that belong to the mesh; absent selects none.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// Egress to destinations outside the mesh.
    #[serde(default)]
    pub egress_filter: Option<EgressFilter>,
    /// Owning account of a shared mesh.
    #[serde(default)]
    pub mesh_owner: Option<String>,
    /// IP family preference.
    #[serde(default)]
    pub mesh_service_discovery: Option<MeshServiceDiscovery>,
}

/// `Mesh.spec.egressFilter`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EgressFilter {
    /// `ALLOW_ALL` or `DROP_ALL`.
    #[serde(rename = "type")]
    pub type_: EgressFilterType,
}

/// Egress filter types.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EgressFilterType {
    /// Anything may be reached.
    AllowAll,
    /// Only mesh backends and AWS APIs (the App Mesh default).
    DropAll,
}

/// `Mesh.spec.meshServiceDiscovery`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshServiceDiscovery {
    /// `IPv4_ONLY` or `IPv6_ONLY`.
    #[serde(default)]
    pub ip_preference: Option<String>,
}

/// `VirtualNode.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNodeSpec {
    /// App Mesh name.
    #[serde(default)]
    pub aws_name: Option<String>,
    /// The pods of this node; absent selects none.
    #[serde(default)]
    pub pod_selector: Option<LabelSelector>,
    /// Inbound listeners (at most one in App Mesh's API).
    #[serde(default)]
    pub listeners: Vec<NodeListener>,
    /// Virtual services this node calls.
    #[serde(default)]
    pub backends: Vec<Backend>,
    /// Backend groups this node calls.
    #[serde(default)]
    pub backend_groups: Vec<Ref>,
    /// Client policy for every backend. Boxed, as are the two fields after it: often unset, and
    /// a plan holds thousands of nodes.
    #[serde(default)]
    pub backend_defaults: Option<Box<BackendDefaults>>,
    /// How clients find the node.
    #[serde(default)]
    pub service_discovery: Option<Box<ServiceDiscovery>>,
    /// Access logging.
    #[serde(default)]
    pub logging: Option<Box<Logging>>,
}

/// A virtual node listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeListener {
    /// Port and protocol.
    pub port_mapping: PortMapping,
    /// Active health check.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Passive outlier detection, applied by clients.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    /// Limits toward the local application.
    #[serde(default)]
    pub connection_pool: Option<ConnectionPool>,
    /// Listener timeouts.
    #[serde(default)]
    pub timeout: Option<ListenerTimeout>,
    /// Server-side TLS.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
}

/// `healthCheck`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Successes before healthy (2–10).
    pub healthy_threshold: i64,
    /// Milliseconds between checks.
    pub interval_millis: i64,
    /// HTTP path.
    #[serde(default)]
    pub path: Option<String>,
    /// Port; the listener's when absent.
    #[serde(default)]
    pub port: Option<i64>,
    /// Protocol of the check.
    pub protocol: Protocol,
    /// Milliseconds before a check fails.
    pub timeout_millis: i64,
    /// Failures before unhealthy (2–10).
    pub unhealthy_threshold: i64,
}

/// `outlierDetection`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Base ejection time.
    pub base_ejection_duration: Duration,
    /// Analysis interval.
    pub interval: Duration,
    /// Maximum share of hosts ejected.
    pub max_ejection_percent: i64,
    /// Consecutive server errors before ejection.
    pub max_server_errors: i64,
}

/// Listener connection pool (one protocol set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPool {
    /// gRPC limits.
    #[serde(default)]
    pub grpc: Option<MaxRequests>,
    /// HTTP/1 limits.
    #[serde(default)]
    pub http: Option<HttpPool>,
    /// HTTP/2 limits.
    #[serde(default)]
    pub http2: Option<MaxRequests>,
    /// TCP limits.
    #[serde(default)]
    pub tcp: Option<TcpPool>,
}

/// `maxRequests` pools (gRPC, HTTP/2).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaxRequests {
    /// Concurrent requests.
    pub max_requests: i64,
}

/// HTTP/1 pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPool {
    /// Connections.
    pub max_connections: i64,
    /// Queued requests.
    #[serde(default)]
    pub max_pending_requests: Option<i64>,
}

/// TCP pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpPool {
    /// Connections.
    pub max_connections: i64,
}

/// Listener timeouts per protocol.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTimeout {
    /// gRPC.
    #[serde(default)]
    pub grpc: Option<RouteTimeout>,
    /// HTTP/1.
    #[serde(default)]
    pub http: Option<RouteTimeout>,
    /// HTTP/2.
    #[serde(default)]
    pub http2: Option<RouteTimeout>,
    /// TCP.
    #[serde(default)]
    pub tcp: Option<TcpTimeout>,
}

/// Request timeouts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTimeout {
    /// Idle stream timeout.
    #[serde(default)]
    pub idle: Option<Duration>,
    /// Whole-request timeout.
    #[serde(default)]
    pub per_request: Option<Duration>,
}

/// TCP timeout.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpTimeout {
    /// Idle connection timeout.
    #[serde(default)]
    pub idle: Option<Duration>,
}

/// Server-side TLS of a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// The server certificate.
    #[serde(default)]
    pub certificate: Option<TlsCertificate>,
    /// `STRICT`, `PERMISSIVE` or `DISABLED`.
    pub mode: TlsMode,
    /// Client certificate validation.
    #[serde(default)]
    pub validation: Option<TlsValidation>,
}

/// TLS modes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TlsMode {
    /// TLS required.
    Strict,
    /// TLS and plaintext.
    Permissive,
    /// Plaintext.
    Disabled,
}

/// A TLS certificate source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsCertificate {
    /// From ACM.
    #[serde(default)]
    pub acm: Option<AcmCertificate>,
    /// From files.
    #[serde(default)]
    pub file: Option<FileCertificate>,
    /// From an SDS server.
    #[serde(default)]
    pub sds: Option<SdsSecret>,
}

/// An ACM certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcmCertificate {
    /// Certificate ARN.
    #[serde(rename = "certificateARN")]
    pub certificate_arn: String,
}

/// A certificate in files.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCertificate {
    /// Chain file.
    pub certificate_chain: String,
    /// Key file.
    #[serde(default)]
    pub private_key: Option<String>,
}

/// An SDS secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdsSecret {
    /// Secret name (often a SPIFFE ID).
    pub secret_name: String,
}

/// TLS peer validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsValidation {
    /// Accepted subject alternative names.
    #[serde(default)]
    pub subject_alternative_names: Option<SubjectAlternativeNames>,
    /// Trust anchors.
    #[serde(default)]
    pub trust: Option<TlsTrust>,
}

/// `subjectAlternativeNames`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectAlternativeNames {
    /// `match.exact`.
    #[serde(rename = "match", default)]
    pub match_: SanMatch,
}

/// `subjectAlternativeNames.match`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SanMatch {
    /// Exact names.
    #[serde(default)]
    pub exact: Vec<String>,
}

/// Trust anchors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsTrust {
    /// ACM private CAs.
    #[serde(default)]
    pub acm: Option<AcmTrust>,
    /// A CA file.
    #[serde(default)]
    pub file: Option<FileTrust>,
    /// An SDS secret.
    #[serde(default)]
    pub sds: Option<SdsSecret>,
}

/// ACM trust.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcmTrust {
    /// CA ARNs.
    #[serde(rename = "certificateAuthorityARNs", default)]
    pub certificate_authority_arns: Vec<String>,
}

/// File trust.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileTrust {
    /// CA chain file.
    pub certificate_chain: String,
}

/// A backend of a virtual node.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The virtual service called.
    pub virtual_service: VirtualServiceBackend,
}

/// `backends[].virtualService`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceBackend {
    /// By reference.
    #[serde(default)]
    pub virtual_service_ref: Option<Ref>,
    /// By ARN.
    #[serde(rename = "virtualServiceARN", default)]
    pub virtual_service_arn: Option<String>,
    /// Client TLS for this backend.
    #[serde(default)]
    pub client_policy: Option<ClientPolicy>,
}

/// `backendDefaults`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendDefaults {
    /// Client TLS for every backend.
    #[serde(default)]
    pub client_policy: Option<ClientPolicy>,
}

/// `clientPolicy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientPolicy {
    /// Client TLS.
    #[serde(default)]
    pub tls: Option<ClientTls>,
}

/// Client TLS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    /// Client certificate (mTLS).
    #[serde(default)]
    pub certificate: Option<TlsCertificate>,
    /// Enforce TLS.
    #[serde(default)]
    pub enforce: Option<bool>,
    /// Ports it applies to.
    #[serde(default)]
    pub ports: Vec<i64>,
    /// Server validation.
    #[serde(default)]
    pub validation: Option<TlsValidation>,
}

/// `serviceDiscovery`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDiscovery {
    /// AWS Cloud Map.
    #[serde(default)]
    pub aws_cloud_map: Option<CloudMap>,
    /// DNS.
    #[serde(default)]
    pub dns: Option<DnsDiscovery>,
}

/// Cloud Map discovery.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudMap {
    /// Cloud Map namespace.
    pub namespace_name: String,
    /// Cloud Map service.
    pub service_name: String,
    /// Instance attribute filter.
    #[serde(default)]
    pub attributes: Vec<KeyValue>,
}

/// A key and a value.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// DNS discovery.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsDiscovery {
    /// Host name.
    pub hostname: String,
    /// `ENDPOINTS` or `LOADBALANCER`.
    #[serde(default)]
    pub response_type: Option<String>,
}

/// `logging`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    /// Access log.
    #[serde(default)]
    pub access_log: Option<AccessLog>,
}

/// `logging.accessLog`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLog {
    /// To a file.
    #[serde(default)]
    pub file: Option<FileAccessLog>,
}

/// `accessLog.file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAccessLog {
    /// File path.
    pub path: String,
    /// Line format.
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// Access log format.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFormat {
    /// JSON keys and Envoy operators.
    #[serde(default)]
    pub json: Vec<KeyValue>,
    /// A text line with Envoy operators.
    #[serde(default)]
    pub text: Option<String>,
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
    /// The router, by ARN.
    #[serde(rename = "virtualRouterARN", default)]
    pub virtual_router_arn: Option<String>,
}

/// `provider.virtualNode`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeProvider {
    /// The node, by reference.
    #[serde(default)]
    pub virtual_node_ref: Option<Ref>,
    /// The node, by ARN.
    #[serde(rename = "virtualNodeARN", default)]
    pub virtual_node_arn: Option<String>,
}

/// `VirtualRouter.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualRouterSpec {
    /// App Mesh name.
    #[serde(default)]
    pub aws_name: Option<String>,
    /// Router listeners.
    #[serde(default)]
    pub listeners: Vec<RouterListener>,
    /// Routes, in the order written.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A router listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterListener {
    /// Port and protocol.
    pub port_mapping: PortMapping,
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
    /// gRPC route.
    #[serde(default)]
    pub grpc_route: Option<GrpcRoute>,
    /// TCP route.
    #[serde(default)]
    pub tcp_route: Option<TcpRoute>,
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
    /// Retries.
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// Timeouts.
    #[serde(default)]
    pub timeout: Option<RouteTimeout>,
}

/// `httpRoute.match`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// Exact or regex path.
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// Listener port.
    #[serde(default)]
    pub port: Option<i64>,
    /// Path prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Query parameter conditions.
    #[serde(default)]
    pub query_parameters: Vec<QueryParameterMatch>,
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: Option<String>,
}

/// A header (or gRPC metadata) condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// Negate the match.
    #[serde(default)]
    pub invert: Option<bool>,
    /// The value condition; absent means "present".
    #[serde(rename = "match", default)]
    pub match_: Option<HeaderMatchMethod>,
}

/// A header value condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatchMethod {
    /// Exact value.
    #[serde(default)]
    pub exact: Option<String>,
    /// Prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Integer range `[start, end)`.
    #[serde(default)]
    pub range: Option<MatchRange>,
    /// Regular expression.
    #[serde(default)]
    pub regex: Option<String>,
    /// Suffix.
    #[serde(default)]
    pub suffix: Option<String>,
}

/// An integer range `[start, end)`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct MatchRange {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// `path`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PathMatch {
    /// Exact path.
    #[serde(default)]
    pub exact: Option<String>,
    /// Regex path.
    #[serde(default)]
    pub regex: Option<String>,
}

/// A query parameter condition.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryParameterMatch {
    /// Parameter name.
    pub name: String,
    /// Value condition; absent means "present".
    #[serde(rename = "match", default)]
    pub match_: Option<QueryValueMatch>,
}

/// Query value condition.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueryValueMatch {
    /// Exact value.
    #[serde(default)]
    pub exact: Option<String>,
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
    /// The target node, by ARN.
    #[serde(rename = "virtualNodeARN", default)]
    pub virtual_node_arn: Option<String>,
    /// Relative weight, 0 to 100.
    pub weight: i64,
    /// Target listener port.
    #[serde(default)]
    pub port: Option<i64>,
}

/// `retryPolicy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// gRPC status events.
    #[serde(default)]
    pub grpc_retry_events: Vec<String>,
    /// HTTP events.
    #[serde(default)]
    pub http_retry_events: Vec<String>,
    /// Retries after the first attempt.
    pub max_retries: i64,
    /// Timeout of each attempt.
    pub per_retry_timeout: Duration,
    /// TCP events.
    #[serde(default)]
    pub tcp_retry_events: Vec<String>,
}

/// `grpcRoute`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRoute {
    /// Request match.
    #[serde(rename = "match")]
    pub match_: GrpcMatch,
    /// Where matched requests go.
    pub action: RouteAction,
    /// Retries.
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// Timeouts.
    #[serde(default)]
    pub timeout: Option<RouteTimeout>,
}

/// `grpcRoute.match`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcMatch {
    /// Method name.
    #[serde(default)]
    pub method_name: Option<String>,
    /// Metadata conditions.
    #[serde(default)]
    pub metadata: Vec<HeaderMatch>,
    /// Listener port.
    #[serde(default)]
    pub port: Option<i64>,
    /// Fully qualified service name.
    #[serde(default)]
    pub service_name: Option<String>,
}

/// `tcpRoute`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpRoute {
    /// Where connections go.
    pub action: RouteAction,
    /// Port match.
    #[serde(rename = "match", default)]
    pub match_: Option<TcpMatch>,
    /// Timeouts.
    #[serde(default)]
    pub timeout: Option<TcpTimeout>,
}

/// `tcpRoute.match`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TcpMatch {
    /// Listener port.
    #[serde(default)]
    pub port: Option<i64>,
}

/// `VirtualGateway.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualGatewaySpec {
    /// App Mesh name.
    #[serde(default)]
    pub aws_name: Option<String>,
    /// Client TLS toward backends.
    #[serde(default)]
    pub backend_defaults: Option<Box<BackendDefaults>>,
    /// Which gateway routes attach.
    #[serde(default)]
    pub gateway_route_selector: Option<LabelSelector>,
    /// Listeners.
    #[serde(default)]
    pub listeners: Vec<GatewayListener>,
    /// Access logging.
    #[serde(default)]
    pub logging: Option<Box<Logging>>,
    /// Namespaces whose gateway routes attach.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// The gateway pods.
    #[serde(default)]
    pub pod_selector: Option<LabelSelector>,
}

/// A virtual gateway listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListener {
    /// Port and protocol.
    pub port_mapping: PortMapping,
    /// Limits.
    #[serde(default)]
    pub connection_pool: Option<ConnectionPool>,
    /// Health check.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// TLS termination.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
}

/// `GatewayRoute.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRouteSpec {
    /// App Mesh name.
    #[serde(default)]
    pub aws_name: Option<String>,
    /// 0 (first) to 1000.
    #[serde(default)]
    pub priority: Option<i64>,
    /// HTTP/1 route. The three routes are boxed: a route sets one, and a plan holds thousands.
    #[serde(default)]
    pub http_route: Option<Box<GatewayHttpRoute>>,
    /// HTTP/2 route.
    #[serde(default)]
    pub http2_route: Option<Box<GatewayHttpRoute>>,
    /// gRPC route.
    #[serde(default)]
    pub grpc_route: Option<Box<GatewayGrpcRoute>>,
    /// The gateway (set by the webhook).
    #[serde(default)]
    pub virtual_gateway_ref: Option<Ref>,
}

/// A gateway HTTP route.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayHttpRoute {
    /// Request match.
    #[serde(rename = "match")]
    pub match_: GatewayHttpMatch,
    /// Target and rewrites.
    pub action: GatewayRouteAction,
}

/// A gateway HTTP match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayHttpMatch {
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// Host name condition.
    #[serde(default)]
    pub hostname: Option<HostnameMatch>,
    /// HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// Exact or regex path.
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// Listener port.
    #[serde(default)]
    pub port: Option<i64>,
    /// Path prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Query parameter conditions.
    #[serde(default)]
    pub query_parameters: Vec<QueryParameterMatch>,
}

/// Host name condition.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostnameMatch {
    /// Exact host.
    #[serde(default)]
    pub exact: Option<String>,
    /// Host suffix.
    #[serde(default)]
    pub suffix: Option<String>,
}

/// A gateway gRPC route.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayGrpcRoute {
    /// Request match.
    #[serde(rename = "match")]
    pub match_: GatewayGrpcMatch,
    /// Target and rewrites.
    pub action: GatewayRouteAction,
}

/// A gateway gRPC match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayGrpcMatch {
    /// Host name condition.
    #[serde(default)]
    pub hostname: Option<HostnameMatch>,
    /// Metadata conditions.
    #[serde(default)]
    pub metadata: Vec<HeaderMatch>,
    /// Listener port.
    #[serde(default)]
    pub port: Option<i64>,
    /// Fully qualified service name.
    #[serde(default)]
    pub service_name: Option<String>,
}

/// Gateway route action.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRouteAction {
    /// Where requests go.
    pub target: GatewayTarget,
    /// Path and host rewrites.
    #[serde(default)]
    pub rewrite: Option<GatewayRewrite>,
}

/// Gateway route target.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayTarget {
    /// The virtual service.
    pub virtual_service: GatewayTargetService,
    /// Target port.
    #[serde(default)]
    pub port: Option<i64>,
}

/// `target.virtualService`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayTargetService {
    /// By reference.
    #[serde(default)]
    pub virtual_service_ref: Option<Ref>,
    /// By ARN.
    #[serde(rename = "virtualServiceARN", default)]
    pub virtual_service_arn: Option<String>,
}

/// Gateway rewrites.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRewrite {
    /// Host rewrite.
    #[serde(default)]
    pub hostname: Option<HostnameRewrite>,
    /// Whole-path rewrite.
    #[serde(default)]
    pub path: Option<PathRewrite>,
    /// Prefix rewrite.
    #[serde(default)]
    pub prefix: Option<PrefixRewrite>,
}

/// `rewrite.hostname`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostnameRewrite {
    /// `ENABLED` (default) or `DISABLED`.
    #[serde(default)]
    pub default_target_hostname: Option<String>,
}

/// `rewrite.path`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PathRewrite {
    /// New path.
    #[serde(default)]
    pub exact: Option<String>,
}

/// `rewrite.prefix`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixRewrite {
    /// `ENABLED` (default) or `DISABLED`.
    #[serde(default)]
    pub default_prefix: Option<String>,
    /// New prefix.
    #[serde(default)]
    pub value: Option<String>,
}

/// `BackendGroup.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendGroupSpec {
    /// Member virtual services.
    #[serde(default)]
    pub virtualservices: Vec<Ref>,
}

/// Equality labels of a selector, if it has no set-based expressions.
pub fn match_labels(selector: &LabelSelector) -> Option<BTreeMap<String, String>> {
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return None;
    }
    Some(selector.match_labels.clone().unwrap_or_default())
}
