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
    /// The resource as JSON.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("Istio resources serialise")
    }
}

/// `DestinationRule.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// The destination host (FQDN).
    pub host: String,
    /// Named subsets by pod labels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
}

/// A DestinationRule subset.
#[derive(Debug, Clone, Serialize)]
pub struct Subset {
    /// Subset name.
    pub name: String,
    /// Pod labels that select the subset.
    pub labels: BTreeMap<String, String>,
}

/// `VirtualService.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// Hosts the rules apply to (FQDNs).
    pub hosts: Vec<String>,
    /// HTTP routes, first match wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRoute>,
}

/// One HTTP route.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Route name.
    pub name: String,
    /// Match conditions (ORed).
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub match_: Vec<HttpMatchRequest>,
    /// Weighted destinations.
    pub route: Vec<HttpRouteDestination>,
    /// Whole-request timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// One match condition (its fields are ANDed).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchRequest {
    /// URI match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
}

/// An Istio string match.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StringMatch {
    /// Exact string.
    Exact(String),
    /// Prefix.
    Prefix(String),
    /// RE2 regular expression.
    Regex(String),
}

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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct PortSelector {
    /// Port number.
    pub number: u32,
}

/// `Telemetry.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
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

/// `PeerAuthentication.spec`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerAuthenticationSpec {
    /// Mutual TLS settings.
    pub mtls: PeerMtls,
}

/// PeerAuthentication mTLS mode.
#[derive(Debug, Clone, Serialize)]
pub struct PeerMtls {
    /// `PERMISSIVE` or `STRICT`.
    pub mode: &'static str,
}
