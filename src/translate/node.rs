//! `VirtualNode`: the workload side: discovery, backends (Sidecar egress), listener policies,
//! TLS, health checks and access logs.

use crate::findings::Code;

use super::Ctx;
use super::coverage::{Disposition, Field, duration, field, mesh_ref, selector};

/// Client TLS policy fields at `prefix` (a `clientPolicy.tls`).
pub(super) fn client_tls(prefix: &str) -> Vec<Field> {
    let auto = "nothing for in-mesh backends: Istio's automatic mTLS";
    let mut fields = vec![
        field(
            format!("{prefix}.enforce"),
            Disposition::Drop,
            "none: mTLS in the mesh is set by policy",
        ),
        field(
            format!("{prefix}.ports[]"),
            Disposition::Approx(Code::ClientTls),
            auto,
        ),
        field(
            format!("{prefix}.certificate.file.certificateChain"),
            Disposition::Approx(Code::ClientTls),
            auto,
        ),
        field(
            format!("{prefix}.certificate.file.privateKey"),
            Disposition::Approx(Code::ClientTls),
            auto,
        ),
        field(
            format!("{prefix}.certificate.sds.secretName"),
            Disposition::Approx(Code::ClientTls),
            auto,
        ),
        field(
            format!("{prefix}.validation.subjectAlternativeNames.match.exact[]"),
            Disposition::Approx(Code::ClientTls),
            "Istio verifies the server's SPIFFE identity itself",
        ),
        field(
            format!("{prefix}.validation.trust.acm.certificateAuthorityARNs[]"),
            Disposition::Unsupported(Code::AcmCertificate),
            "none: Istio has no ACM integration",
        ),
        field(
            format!("{prefix}.validation.trust.file.certificateChain"),
            Disposition::Approx(Code::ClientTls),
            auto,
        ),
        field(
            format!("{prefix}.validation.trust.sds.secretName"),
            Disposition::Approx(Code::ClientTls),
            auto,
        ),
    ];
    fields.sort_by(|a, b| a.path.cmp(&b.path));
    fields
}

/// Listener TLS fields at `prefix` (a `listeners[].tls`) of a virtual node.
fn listener_tls(prefix: &str) -> Vec<Field> {
    vec![
        field(
            format!("{prefix}.mode"),
            Disposition::Approx(Code::TlsStrict),
            "PeerAuthentication `mtls.mode` for the node's pods (STRICT, PERMISSIVE, DISABLE)",
        ),
        field(
            format!("{prefix}.certificate.acm.certificateARN"),
            Disposition::Unsupported(Code::AcmCertificate),
            "none: Istio issues its own certificates",
        ),
        field(
            format!("{prefix}.certificate.file.certificateChain"),
            Disposition::Approx(Code::CustomCertificate),
            "Istio-issued identity certificates",
        ),
        field(
            format!("{prefix}.certificate.file.privateKey"),
            Disposition::Approx(Code::CustomCertificate),
            "Istio-issued identity certificates",
        ),
        field(
            format!("{prefix}.certificate.sds.secretName"),
            Disposition::Approx(Code::CustomCertificate),
            "Istio-issued identity certificates (istio-agent is the SDS server)",
        ),
        field(
            format!("{prefix}.validation.subjectAlternativeNames.match.exact[]"),
            Disposition::Approx(Code::SanAllowList),
            "AuthorizationPolicy with the callers' service-account principals",
        ),
        field(
            format!("{prefix}.validation.trust.file.certificateChain"),
            Disposition::Approx(Code::CustomCertificate),
            "the mesh trust root validates peers",
        ),
        field(
            format!("{prefix}.validation.trust.sds.secretName"),
            Disposition::Approx(Code::CustomCertificate),
            "the mesh trust root validates peers",
        ),
    ]
}

/// Access-log fields at `prefix` (a `logging.accessLog.file`).
pub(super) fn access_log(prefix: &str) -> Vec<Field> {
    vec![
        field(
            format!("{prefix}.path"),
            Disposition::Approx(Code::AccessLog),
            "Telemetry `accessLogging` with the `envoy` provider (stdout)",
        ),
        field(
            format!("{prefix}.format.text"),
            Disposition::Approx(Code::AccessLog),
            "MeshConfig extension provider `envoyFileAccessLog.logFormat.text`",
        ),
        field(
            format!("{prefix}.format.json[].key"),
            Disposition::Approx(Code::AccessLog),
            "MeshConfig extension provider `envoyFileAccessLog.logFormat.labels`",
        ),
        field(
            format!("{prefix}.format.json[].value"),
            Disposition::Approx(Code::AccessLog),
            "MeshConfig extension provider `envoyFileAccessLog.logFormat.labels`",
        ),
    ]
}

/// Health-check fields at `prefix` (a `listeners[].healthCheck`).
pub(super) fn health_check(prefix: &str, code: Code, istio: &'static str) -> Vec<Field> {
    [
        "healthyThreshold",
        "intervalMillis",
        "path",
        "port",
        "protocol",
        "timeoutMillis",
        "unhealthyThreshold",
    ]
    .into_iter()
    .map(|leaf| field(format!("{prefix}.{leaf}"), Disposition::Approx(code), istio))
    .collect()
}

/// Listener connection-pool fields at `prefix`.
pub(super) fn connection_pool(
    prefix: &str,
    code: Code,
    istio: &'static str,
    tcp: bool,
) -> Vec<Field> {
    let mut leaves = vec![
        "grpc.maxRequests",
        "http.maxConnections",
        "http.maxPendingRequests",
        "http2.maxRequests",
    ];
    if tcp {
        leaves.push("tcp.maxConnections");
    }
    leaves
        .into_iter()
        .map(|leaf| field(format!("{prefix}.{leaf}"), Disposition::Approx(code), istio))
        .collect()
}

pub(super) fn coverage() -> Vec<Field> {
    let mut fields = vec![
        field("spec.awsName", Disposition::Drop, "none"),
        field(
            "spec.listeners[].portMapping.port",
            Disposition::Exact,
            "the workload's container port (Service `targetPort`)",
        ),
        field(
            "spec.listeners[].portMapping.protocol",
            Disposition::Exact,
            "`appProtocol` of the node's Service port",
        ),
        field(
            "spec.listeners[].outlierDetection.maxServerErrors",
            Disposition::Exact,
            "DestinationRule `outlierDetection.consecutive5xxErrors` of the node's host and subsets",
        ),
        field(
            "spec.listeners[].outlierDetection.maxEjectionPercent",
            Disposition::Exact,
            "DestinationRule `outlierDetection.maxEjectionPercent`",
        ),
        field(
            "spec.backends[].virtualService.virtualServiceRef.name",
            Disposition::Approx(Code::EgressOpen),
            "Sidecar `egress[].hosts` `<namespace>/<host>` with REGISTRY_ONLY",
        ),
        field(
            "spec.backends[].virtualService.virtualServiceRef.namespace",
            Disposition::Approx(Code::EgressOpen),
            "Sidecar `egress[].hosts` `<namespace>/<host>` with REGISTRY_ONLY",
        ),
        field(
            "spec.backends[].virtualService.virtualServiceARN",
            Disposition::Approx(Code::ArnResolved),
            "Sidecar `egress[].hosts` entry of the virtual service of that name",
        ),
        field(
            "spec.backendGroups[].name",
            Disposition::Exact,
            "Sidecar `egress[].hosts`: the group's virtual services (`*`: `<namespace>/*`)",
        ),
        field(
            "spec.backendGroups[].namespace",
            Disposition::Exact,
            "Sidecar `egress[].hosts`: the group's virtual services",
        ),
        field(
            "spec.serviceDiscovery.awsCloudMap.namespaceName",
            Disposition::Approx(Code::CloudMapReplaced),
            "the Kubernetes Service selecting the node's pods",
        ),
        field(
            "spec.serviceDiscovery.awsCloudMap.serviceName",
            Disposition::Approx(Code::CloudMapReplaced),
            "the Kubernetes Service selecting the node's pods",
        ),
        field(
            "spec.serviceDiscovery.awsCloudMap.attributes[].key",
            Disposition::Approx(Code::CloudMapAttributes),
            "subset labels when the keys are pod labels",
        ),
        field(
            "spec.serviceDiscovery.awsCloudMap.attributes[].value",
            Disposition::Approx(Code::CloudMapAttributes),
            "subset labels when the keys are pod labels",
        ),
        field(
            "spec.serviceDiscovery.dns.hostname",
            Disposition::Approx(Code::LoadBalancing),
            "the node's Service (in the cluster) or a ServiceEntry (outside it)",
        ),
        field(
            "spec.serviceDiscovery.dns.responseType",
            Disposition::Exact,
            "ServiceEntry `resolution`: ENDPOINTS → DNS, LOADBALANCER → DNS_ROUND_ROBIN",
        ),
    ];
    fields.extend(selector(
        "spec.podSelector",
        Disposition::Exact,
        "`workloadSelector` / `selector.matchLabels` of the node's Istio objects; subset labels",
    ));
    fields.extend(duration(
        "spec.listeners[].outlierDetection.interval",
        Disposition::Exact,
        "DestinationRule `outlierDetection.interval`",
    ));
    fields.extend(duration(
        "spec.listeners[].outlierDetection.baseEjectionDuration",
        Disposition::Exact,
        "DestinationRule `outlierDetection.baseEjectionTime`",
    ));
    fields.extend(health_check(
        "spec.listeners[].healthCheck",
        Code::HealthCheck,
        "the container's Kubernetes readiness probe (reported, not edited)",
    ));
    fields.extend(connection_pool(
        "spec.listeners[].connectionPool",
        Code::ConnectionPool,
        "Sidecar `inboundConnectionPool` of the node's pods",
        true,
    ));
    for proto in ["grpc", "http", "http2"] {
        fields.extend(duration(
            &format!("spec.listeners[].timeout.{proto}.perRequest"),
            Disposition::Approx(Code::ListenerTimeout),
            "callers' VirtualService `timeout` lowered to the listener's",
        ));
        fields.extend(duration(
            &format!("spec.listeners[].timeout.{proto}.idle"),
            Disposition::Approx(Code::ListenerIdleTimeout),
            "Sidecar `inboundConnectionPool.http.idleTimeout`",
        ));
    }
    fields.extend(duration(
        "spec.listeners[].timeout.tcp.idle",
        Disposition::Approx(Code::ListenerIdleTimeout),
        "Sidecar `inboundConnectionPool.tcp.idleTimeout`",
    ));
    fields.extend(listener_tls("spec.listeners[].tls"));
    fields.extend(client_tls("spec.backendDefaults.clientPolicy.tls"));
    fields.extend(client_tls(
        "spec.backends[].virtualService.clientPolicy.tls",
    ));
    fields.extend(access_log("spec.logging.accessLog.file"));
    fields.extend(mesh_ref());
    fields
}

pub(super) fn translate(ctx: &mut Ctx<'_>) {
    for node in &ctx.inv.virtual_nodes {
        ctx.admit("VirtualNode", node);
    }
}
