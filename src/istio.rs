//! Typed Istio resources (the fields meshplan emits), named as upstream.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::plan::IstioVersion;

/// The API versions to emit for a target Istio release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersions {
    /// `networking.istio.io/…`
    pub networking: &'static str,
    /// `security.istio.io/…`
    pub security: &'static str,
    /// `telemetry.istio.io/…`
    pub telemetry: &'static str,
}

impl ApiVersions {
    /// v1 for Istio 1.22 and later; v1beta1 / v1alpha1 before.
    pub fn for_version(version: &IstioVersion) -> Self {
        if version.serves_v1() {
            ApiVersions {
                networking: "networking.istio.io/v1",
                security: "security.istio.io/v1",
                telemetry: "telemetry.istio.io/v1",
            }
        } else {
            ApiVersions {
                networking: "networking.istio.io/v1beta1",
                security: "security.istio.io/v1beta1",
                telemetry: "telemetry.istio.io/v1alpha1",
            }
        }
    }
}

/// An Istio custom resource.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource<S> {
    /// API version.
    pub api_version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: S,
}

impl<S: Serialize> Resource<S> {
    /// The resource as JSON, held at its size (a plan keeps every translated object).
    pub fn to_value(&self) -> serde_json::Value {
        crate::tight::tighten(serde_json::to_value(self).expect("Istio resources serialise"))
    }
}

/// Equality labels selecting workloads (`selector` / `workloadSelector`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// `matchLabels` (Sidecar uses `labels`; see [`SidecarSelector`]).
    pub match_labels: BTreeMap<String, String>,
}

/// The Sidecar's and DestinationRule's `workloadSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SidecarSelector {
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
}

/// `DestinationRule.spec`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// The destination host (FQDN).
    pub host: String,
    /// Named subsets by pod labels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// Policy for all traffic to the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Workloads the rule applies to (all when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
}

/// A DestinationRule subset.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    /// Subset name.
    pub name: String,
    /// Pod labels that select the subset.
    pub labels: BTreeMap<String, String>,
    /// Policy for traffic to this subset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}

/// `trafficPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// Connection limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Passive health checking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// Client TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    /// Per-port overrides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

/// A per-port traffic policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortTrafficPolicy {
    /// The port.
    pub port: PortSelector,
    /// Connection limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Passive health checking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// Client TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
}

/// `connectionPool`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPoolSettings {
    /// TCP settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSettings>,
    /// HTTP settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
}

/// `connectionPool.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpSettings {
    /// Connection limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    /// Idle timeout of connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
}

/// `connectionPool.http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpSettings {
    /// Queued HTTP/1 requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http1_max_pending_requests: Option<i64>,
    /// Concurrent HTTP/2 requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_max_requests: Option<i64>,
    /// Idle timeout of upstream connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
}

/// `outlierDetection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Consecutive 5xx before ejection.
    #[serde(
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<i64>,
    /// Analysis interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Base ejection time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<String>,
    /// Maximum share ejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<i64>,
}

/// Client-side TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTlsSettings {
    /// `DISABLE`, `SIMPLE`, `MUTUAL` or `ISTIO_MUTUAL`.
    pub mode: &'static str,
    /// Client certificate file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// Client key file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// CA file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Accepted server names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

/// `VirtualService.spec`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// Hosts the rules apply to (FQDNs).
    pub hosts: Vec<String>,
    /// Gateways (`namespace/name`); absent means the mesh.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// HTTP routes, first match wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRoute>,
    /// TCP routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpRoute>,
}

/// One HTTP route.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Route name.
    pub name: String,
    /// Match conditions (ORed).
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub match_: Vec<HttpMatchRequest>,
    /// Weighted destinations.
    pub route: Vec<HttpRouteDestination>,
    /// Rewrites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    /// Whole-request timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
}

/// One match condition (its fields are ANDed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchRequest {
    /// URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// URI scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    /// HTTP method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// Host/authority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    /// Required headers (lower-case names; an empty match means "present").
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    /// Headers that must not match.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// Service port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Query parameters.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, StringMatch>,
}

/// An Istio string match; `Any` is the empty match ("present").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StringMatch {
    /// Exact string.
    Exact(String),
    /// Prefix.
    Prefix(String),
    /// RE2 regular expression (full match).
    Regex(String),
    /// Matches any value: serialises as `{}`.
    #[serde(untagged)]
    Any(Empty),
}

/// An empty object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

/// A weighted destination.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteDestination {
    /// Where to send.
    pub destination: Destination,
    /// Relative weight.
    pub weight: u32,
}

/// A destination service (and subset, and port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Service FQDN.
    pub host: String,
    /// DestinationRule subset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Service port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// A port by number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortSelector {
    /// Port number.
    pub number: u32,
}

/// `rewrite`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRewrite {
    /// Replace the matched prefix (or the exact path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Replace the Host/authority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Regex rewrite of the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// `uriRegexRewrite`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegexRewrite {
    /// RE2 pattern.
    #[serde(rename = "match")]
    pub match_: String,
    /// Replacement.
    pub rewrite: String,
}

/// `retries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    /// Retries after the first attempt.
    pub attempts: i64,
    /// Timeout per attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    /// Envoy retry conditions, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

/// One TCP route.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TcpRoute {
    /// Port conditions.
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub match_: Vec<L4MatchAttributes>,
    /// Weighted destinations.
    pub route: Vec<RouteDestination>,
}

/// A TCP match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct L4MatchAttributes {
    /// Service port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// A weighted TCP destination.
#[derive(Debug, Clone, Serialize)]
pub struct RouteDestination {
    /// Where to send.
    pub destination: Destination,
    /// Relative weight.
    pub weight: u32,
}

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewaySpec {
    /// Labels of the gateway pods.
    pub selector: BTreeMap<String, String>,
    /// Listening servers.
    pub servers: Vec<Server>,
}

/// A Gateway server.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// The port.
    pub port: ServerPort,
    /// Host names served.
    pub hosts: Vec<String>,
    /// TLS termination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
}

/// A Gateway server port.
#[derive(Debug, Clone, Serialize)]
pub struct ServerPort {
    /// Port number.
    pub number: u32,
    /// Port name.
    pub name: String,
    /// `HTTP`, `HTTPS`, `HTTP2`, `GRPC` or `TCP`.
    pub protocol: &'static str,
}

/// Server-side TLS of a Gateway server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTlsSettings {
    /// `SIMPLE` or `MUTUAL`.
    pub mode: &'static str,
    /// Kubernetes Secret holding the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    /// Certificate file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<String>,
    /// Key file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// CA file for client certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Kubernetes Secret holding the CA for client certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert_credential_name: Option<String>,
    /// Accepted client names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

/// `ServiceEntry.spec`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// Host names.
    pub hosts: Vec<String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// `MESH_EXTERNAL` or `MESH_INTERNAL`.
    pub location: &'static str,
    /// `NONE`, `STATIC`, `DNS` or `DNS_ROUND_ROBIN`.
    pub resolution: &'static str,
}

/// A ServiceEntry port.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePort {
    /// Port number.
    pub number: u32,
    /// `HTTP`, `HTTP2`, `GRPC`, `TCP` or `TLS`.
    pub protocol: &'static str,
    /// Port name.
    pub name: String,
}

/// `Sidecar.spec`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// Workloads (all in the namespace when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<SidecarSelector>,
    /// Hosts the workloads may reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressListener>,
    /// Outbound traffic to unknown hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    /// Limits toward the local application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_connection_pool: Option<ConnectionPoolSettings>,
}

/// A Sidecar egress listener.
#[derive(Debug, Clone, Serialize)]
pub struct EgressListener {
    /// `namespace/host` entries.
    pub hosts: Vec<String>,
}

/// `outboundTrafficPolicy`.
#[derive(Debug, Clone, Serialize)]
pub struct OutboundTrafficPolicy {
    /// `REGISTRY_ONLY` or `ALLOW_ANY`.
    pub mode: &'static str,
}

/// `PeerAuthentication.spec`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// Workloads (all in the namespace when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Mutual TLS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls: Option<PeerMtls>,
    /// Per workload port.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_mtls: BTreeMap<u32, PeerMtls>,
}

/// PeerAuthentication mTLS mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerMtls {
    /// `PERMISSIVE`, `STRICT` or `DISABLE`.
    pub mode: &'static str,
}

/// `AuthorizationPolicy.spec`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthorizationPolicySpec {
    /// Workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// `ALLOW` or `DENY`.
    pub action: &'static str,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// An authorization rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Sources.
    pub from: Vec<RuleFrom>,
}

/// `rules[].from[]`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleFrom {
    /// The source.
    pub source: Source,
}

/// `from[].source`.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// Peer identities.
    pub principals: Vec<String>,
}

/// `Telemetry.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    /// Workloads (all in the namespace when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Access logging configuration.
    pub access_logging: Vec<AccessLogging>,
}

/// One access-logging entry.
#[derive(Debug, Clone, Serialize)]
pub struct AccessLogging {
    /// Providers to log to.
    pub providers: Vec<ProviderRef>,
}

/// A provider by name.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderRef {
    /// Provider name (`envoy` is Istio's built-in stdout logger).
    pub name: String,
}
