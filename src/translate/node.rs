//! `VirtualNode`: the workload side: discovery, backends (Sidecar egress), listener policies,
//! TLS, health checks and access logs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use crate::appmesh::{self, EgressFilterType, Protocol, Ref, TlsMode, VirtualNode, VirtualService};
use crate::findings::{Code, Finding};
use crate::inventory::{Item, ServiceView, Workload, WorkloadContainer};
use crate::istio;
use crate::object::ObjectRef;

use super::common::{arn_name, carries, dns_label, metadata};
use super::coverage::{Disposition, Field, duration, field, mesh_ref, selector};
use super::mesh::{AWS_APIS_HOST, aws_apis_namespace};
use super::service::by_arn;
use super::{Ctx, router};

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
            format!("{prefix}.validation.subjectAlternativeNames.match.exact[]"),
            Disposition::Approx(Code::ClientTls),
            "Istio verifies the server's SPIFFE identity itself",
        ),
        field(
            format!("{prefix}.validation.trust.acm.certificateAuthorityARNs[]"),
            Disposition::Unsupported(Code::AcmCertificate),
            "none: Istio has no ACM integration",
        ),
    ];
    for leaf in [
        "ports[]",
        "certificate.file.certificateChain",
        "certificate.file.privateKey",
        "certificate.sds.secretName",
        "validation.trust.file.certificateChain",
        "validation.trust.sds.secretName",
    ] {
        fields.push(field(
            format!("{prefix}.{leaf}"),
            Disposition::Approx(Code::ClientTls),
            auto,
        ));
    }
    fields.sort_by(|a, b| a.path.cmp(&b.path));
    fields
}

/// Listener TLS fields at `prefix` (a `listeners[].tls`) of a virtual node.
fn listener_tls(prefix: &str) -> Vec<Field> {
    vec![
        field(
            format!("{prefix}.mode"),
            Disposition::Exact,
            "PeerAuthentication `mtls.mode` for the node's pods (STRICT with MP308, \
             PERMISSIVE); DISABLED: nothing",
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

/// Istio's default trust domain (MeshConfig `trustDomain`): the first part of every principal.
const TRUST_DOMAIN: &str = "cluster.local";

/// Codes of the settings that only exist on the node's pods (Sidecar, probes, mTLS, logs); a
/// node whose pods Istio cannot select carries none of them over.
const WORKLOAD_CODES: [Code; 6] = [
    Code::EgressOpen,
    Code::HealthCheck,
    Code::ConnectionPool,
    Code::ListenerIdleTimeout,
    Code::SanAllowList,
    Code::AccessLog,
];

pub(super) fn translate(ctx: &mut Ctx<'_>) {
    let mut admitted = Vec::new();
    for node in &ctx.inv.virtual_nodes {
        if ctx.admit("VirtualNode", node) {
            one(ctx, node);
            admitted.push(node);
        }
    }
    overlaps(ctx, &admitted);
}

/// Pods that two virtual nodes select would get two Sidecars (and PeerAuthentications…), which
/// Istio resolves arbitrarily; App Mesh's injector refused such pods, so report every
/// Deployment whose pod template matches more than one node.
fn overlaps(ctx: &mut Ctx<'_>, nodes: &[&Item<VirtualNode>]) {
    // Each node's labels worked out once, not once per Deployment of its namespace.
    type Selecting<'n> = (&'n Item<VirtualNode>, BTreeMap<String, String>);
    let mut in_namespace: HashMap<&str, Vec<Selecting<'_>>> = HashMap::new();
    for node in nodes {
        if let Some(labels) = labels_of(node) {
            in_namespace
                .entry(node.namespace())
                .or_default()
                .push((node, labels));
        }
    }
    for deployment in &ctx.inv.deployments {
        let template = &deployment.value.template_labels;
        let matching: Vec<&Item<VirtualNode>> = in_namespace
            .get(deployment.namespace())
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|(_, labels)| carries(template, labels))
            .map(|(node, _)| *node)
            .collect();
        let [first, rest @ ..] = matching.as_slice() else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let others: Vec<String> = rest.iter().map(|n| format!("`{}`", n.name())).collect();
        ctx.finding(
            Code::WorkloadOverlap,
            &first.object_ref(),
            "spec.podSelector",
            format!(
                "the pods of Deployment `{}` match this node and {}: each would get several \
                 Sidecars, PeerAuthentications or Telemetries, and Istio picks one arbitrarily; \
                 give each node's pods a label of their own",
                deployment.name(),
                others.join(", ")
            ),
        );
    }
}

fn one(ctx: &mut Ctx<'_>, node: &Item<VirtualNode>) {
    let registry = registry(ctx, node);
    discovery(ctx, node, registry.as_ref());
    outlier_detection(ctx, node, registry.as_ref());
    if let Some(service) = ctx.node_service(node) {
        for listener in &node.value.spec.listeners {
            let mapping = listener.port_mapping;
            if let Some(number) = router::service_port(service, mapping.port) {
                router::declare_protocol(ctx, service, number, mapping.protocol);
            }
        }
    }
    let Some(labels) = workload_labels(ctx, node) else {
        return;
    };
    sidecar(ctx, node, &labels);
    peer_authentication(ctx, node, &labels);
    authorization(ctx, node, &labels);
    health_checks(ctx, node, &labels);
    access_log_telemetry(ctx, node, &labels);
}

/// Takes back the coverage table's generic findings of one object that `drop` selects, where
/// the translation shows they do not apply.
fn withdraw(ctx: &mut Ctx<'_>, object: &ObjectRef, drop: impl Fn(&Finding) -> bool) {
    ctx.declared.retain(|f| &f.object != object || !drop(f));
}

/// The equality labels of the node's pods; `None` (reported) when Istio cannot select them.
fn workload_labels(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
) -> Option<BTreeMap<String, String>> {
    let object = node.object_ref();
    let selector = node.value.spec.pod_selector.as_ref();
    if let Some(labels) = selector.and_then(appmesh::match_labels) {
        return Some(labels);
    }
    withdraw(ctx, &object, |f| WORKLOAD_CODES.contains(&f.code));
    let lost = workload_settings(&node.value.spec);
    let lost = if lost.is_empty() {
        String::new()
    } else {
        format!("; not carried over: {}", lost.join(", "))
    };
    if selector.is_none() {
        ctx.finding(
            Code::NoPods,
            &object,
            "spec.podSelector",
            format!(
                "no `podSelector`: the node selects no pods (App Mesh gave none an Envoy), so \
                 no Sidecar, PeerAuthentication, AuthorizationPolicy or Telemetry is emitted \
                 for it{lost}"
            ),
        );
    } else {
        ctx.finding(
            Code::SelectorExpressions,
            &object,
            "spec.podSelector.matchExpressions",
            format!(
                "Istio selects workloads by equality labels only, so no Sidecar, \
                 PeerAuthentication, AuthorizationPolicy or Telemetry is emitted for this \
                 node{lost}; rewrite the selector with `matchLabels` (an `In` with one value is \
                 an equality) and plan again"
            ),
        );
    }
    None
}

/// The node's settings that only exist on its pods, as a reader knows them.
fn workload_settings(spec: &appmesh::VirtualNodeSpec) -> Vec<&'static str> {
    let listeners = &spec.listeners;
    let any = |f: fn(&appmesh::NodeListener) -> bool| listeners.iter().any(f);
    let mut out = Vec::new();
    if !spec.backends.is_empty() || !spec.backend_groups.is_empty() {
        out.push("backends (Sidecar)");
    }
    if any(inbound_settings) {
        out.push("listener connection pool and idle timeouts (Sidecar)");
    }
    if any(|l| l.tls.is_some()) {
        out.push("listener TLS (PeerAuthentication, AuthorizationPolicy)");
    }
    if any(|l| l.health_check.is_some()) {
        out.push("health checks (readiness probe)");
    }
    if spec.logging.is_some() {
        out.push("access log (Telemetry)");
    }
    out
}

/// True when a listener sets what becomes `Sidecar.inboundConnectionPool`: a connection pool
/// or an idle timeout.
fn inbound_settings(listener: &appmesh::NodeListener) -> bool {
    let idle = listener.timeout.as_ref().is_some_and(|t| {
        t.tcp.as_ref().is_some_and(|x| x.idle.is_some())
            || [&t.grpc, &t.http, &t.http2]
                .into_iter()
                .any(|r| r.as_ref().is_some_and(|r| r.idle.is_some()))
    });
    listener.connection_pool.is_some() || idle
}

/// What registers a node's host in Istio.
enum Registry<'a> {
    /// A Service of the source that carries the node's own traffic.
    Service(&'a Item<ServiceView>),
    /// A Service meshplan creates for a Cloud Map node that no Service selects.
    Created {
        /// Service name.
        name: String,
        /// The node's pod labels.
        labels: BTreeMap<String, String>,
    },
    /// A ServiceEntry for a DNS name outside the cluster.
    External(String),
}

/// A node's host, with the namespace and name of the object that registers it.
struct Destination {
    host: String,
    namespace: String,
    name: String,
}

impl Registry<'_> {
    fn destination(&self, ctx: &Ctx<'_>, node: &Item<VirtualNode>) -> Destination {
        match self {
            Registry::Service(service) => Destination {
                host: ctx.service_host(service),
                namespace: service.namespace().to_owned(),
                name: service.name().to_owned(),
            },
            Registry::Created { name, .. } => Destination {
                host: format!("{name}.{}.svc.{}", node.namespace(), ctx.cluster_domain()),
                namespace: node.namespace().to_owned(),
                name: name.clone(),
            },
            Registry::External(hostname) => Destination {
                host: hostname.clone(),
                namespace: node.namespace().to_owned(),
                name: node.name().to_owned(),
            },
        }
    }
}

/// How callers reach the node, if it has a host of its own.
fn registry<'a>(ctx: &Ctx<'a>, node: &Item<VirtualNode>) -> Option<Registry<'a>> {
    if let Some(service) = ctx.node_service(node) {
        return Some(Registry::Service(service));
    }
    let discovery = node.value.spec.service_discovery.as_ref()?;
    if let Some(dns) = &discovery.dns {
        return (!cluster_like(ctx, &dns.hostname, node.namespace()))
            .then(|| Registry::External(dns.hostname.clone()));
    }
    discovery.aws_cloud_map.as_ref()?;
    let labels = labels_of(node).filter(|l| !l.is_empty())?;
    let name = dns_label(node.name());
    let reached = routed(ctx, node) || covering_service(ctx, node, &labels).is_some();
    (!reached && ctx.service(node.namespace(), &name).is_none())
        .then_some(Registry::Created { name, labels })
}

fn labels_of(node: &Item<VirtualNode>) -> Option<BTreeMap<String, String>> {
    node.value
        .spec
        .pod_selector
        .as_ref()
        .and_then(appmesh::match_labels)
}

/// True when a node's DNS host name names a cluster Service (see [`cluster_name`]).
fn cluster_like(ctx: &Ctx<'_>, hostname: &str, namespace: &str) -> bool {
    let known: Vec<&str> = ctx.inv.namespaces.iter().map(|n| n.name()).collect();
    cluster_name(hostname, namespace, ctx.cluster_domain(), &known)
}

/// True when a host name is a cluster Service name: a short name, `svc.<namespace>` for a
/// namespace of the node or of the source, `svc.ns.svc`, or anything under `.svc.<domain>`.
/// Other names (`api.example.com`, an RDS endpoint) are outside the cluster.
fn cluster_name(hostname: &str, namespace: &str, domain: &str, known: &[&str]) -> bool {
    if hostname.ends_with(&format!(".svc.{domain}")) || hostname.ends_with(".svc") {
        return true;
    }
    match hostname.split('.').collect::<Vec<_>>().as_slice() {
        [_] => true,
        [_, ns] => *ns == namespace || known.contains(ns),
        _ => false,
    }
}

/// A Service of the node's namespace whose selector picks the node's pods (maybe with others).
fn covering_service<'a>(
    ctx: &Ctx<'a>,
    node: &Item<VirtualNode>,
    labels: &BTreeMap<String, String>,
) -> Option<&'a Item<ServiceView>> {
    ctx.index
        .services_in(node.namespace())
        .iter()
        .copied()
        .find(|s| !s.value.selector.is_empty() && carries(labels, &s.value.selector))
}

/// True when a router sends traffic to the node (its pods are then reached through the
/// router's host and subsets).
fn routed(ctx: &Ctx<'_>, node: &Item<VirtualNode>) -> bool {
    ctx.routed
        .get_or_init(|| routed_nodes(ctx))
        .contains(&node.object_ref())
}

/// Every virtual node a router's weighted target names (one pass over the routers).
fn routed_nodes(ctx: &Ctx<'_>) -> HashSet<ObjectRef> {
    let mut found = HashSet::new();
    for router in &ctx.inv.virtual_routers {
        for route in &router.value.spec.routes {
            let actions = [
                route.http_route.as_ref().map(|r| &r.action),
                route.http2_route.as_ref().map(|r| &r.action),
                route.grpc_route.as_ref().map(|r| &r.action),
                route.tcp_route.as_ref().map(|r| &r.action),
            ];
            for target in actions
                .into_iter()
                .flatten()
                .flat_map(|action| &action.weighted_targets)
            {
                let node = match (&target.virtual_node_ref, &target.virtual_node_arn) {
                    (Some(r), _) => ctx.node(r, router.namespace()),
                    (None, Some(arn)) => {
                        by_arn(ctx, &ctx.inv.virtual_nodes, arn, router.namespace())
                    }
                    (None, None) => None,
                };
                found.extend(node.map(|n| n.object_ref()));
            }
        }
    }
    found
}

/// `serviceDiscovery`: DNS names and Cloud Map services become Istio registry entries.
fn discovery(ctx: &mut Ctx<'_>, node: &Item<VirtualNode>, registry: Option<&Registry<'_>>) {
    let Some(discovery) = node.value.spec.service_discovery.as_ref() else {
        return;
    };
    if let Some(dns) = &discovery.dns {
        dns_discovery(ctx, node, dns, registry);
    }
    if let Some(map) = &discovery.aws_cloud_map {
        cloud_map(ctx, node, map, registry);
    }
}

fn dns_discovery(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    dns: &appmesh::DnsDiscovery,
    registry: Option<&Registry<'_>>,
) {
    let object = node.object_ref();
    let field = "spec.serviceDiscovery.dns.hostname";
    let hostname = &dns.hostname;
    let host = ctx.fqdn(hostname, node.namespace());
    if let Some(service) = ctx.service_by_host(&host) {
        ctx.finding(
            Code::LoadBalancing,
            &object,
            field,
            format!(
                "`{hostname}` is Service `{}/{}`: nothing to create. App Mesh callers resolved \
                 its ClusterIP (kube-proxy balanced per connection); Istio balances per request \
                 across its pod endpoints, so long-lived HTTP/2 and gRPC connections are spread \
                 across pods",
                service.namespace(),
                service.name()
            ),
        );
        return;
    }
    withdraw(ctx, &object, |f| {
        f.code == Code::LoadBalancing && f.field.starts_with("spec.serviceDiscovery.dns")
    });
    let Some(Registry::External(hostname)) = registry else {
        ctx.finding(
            Code::NodeServiceMissing,
            &object,
            field,
            format!(
                "`{host}` is a cluster Service name but no such Service is in the source: add \
                 the Service to the manifests so that Istio can route to the node and apply its \
                 policies"
            ),
        );
        return;
    };
    let mut ports: Vec<istio::ServicePort> = Vec::new();
    for listener in &node.value.spec.listeners {
        let protocol = listener.port_mapping.protocol;
        let Some(number) = super::common::port(listener.port_mapping.port) else {
            continue;
        };
        if ports.iter().all(|p| p.number != number) {
            ports.push(istio::ServicePort {
                number,
                protocol: upper(protocol),
                name: format!("{}-{number}", protocol.as_str()),
            });
        }
    }
    let (resolution, meaning) = match dns.response_type.as_deref() {
        Some("ENDPOINTS") => ("DNS", "every address DNS returns (ENDPOINTS)"),
        _ => (
            "DNS_ROUND_ROBIN",
            "the first address DNS returns, per new connection (LOADBALANCER)",
        ),
    };
    let shown: Vec<String> = ports
        .iter()
        .map(|p| format!("{} {}", p.number, p.protocol))
        .collect();
    let entry = istio::Resource {
        api_version: ctx.api.networking,
        kind: "ServiceEntry",
        metadata: metadata(node.name(), node.namespace(), &object),
        spec: istio::ServiceEntrySpec {
            hosts: vec![hostname.clone()],
            ports,
            location: "MESH_EXTERNAL",
            resolution,
        },
    };
    ctx.emit(entry.to_value());
    ctx.finding(
        Code::ExternalDns,
        &object,
        field,
        format!(
            "`{hostname}` is not a Service of the cluster: ServiceEntry `{}` registers it \
             (MESH_EXTERNAL, resolution {resolution}: {meaning}; ports {}); if its endpoints run \
             Istio sidecars, make it MESH_INTERNAL",
            node.name(),
            if shown.is_empty() {
                "none: the node has no listener".to_owned()
            } else {
                shown.join(", ")
            }
        ),
    );
}

/// The ServiceEntry protocol of a listener protocol.
fn upper(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http => "HTTP",
        Protocol::Http2 => "HTTP2",
        Protocol::Grpc => "GRPC",
        Protocol::Tcp => "TCP",
    }
}

fn cloud_map(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    map: &appmesh::CloudMap,
    registry: Option<&Registry<'_>>,
) {
    let object = node.object_ref();
    let cloud = format!("{}/{}", map.namespace_name, map.service_name);
    let labels = labels_of(node).unwrap_or_default();
    // Labels every pod of the node carries: its selector's, and those all its Deployments share.
    let mut pod_labels = labels.clone();
    let templates: Vec<&BTreeMap<String, String>> = deployments(ctx, node.namespace(), &labels)
        .into_iter()
        .map(|d| &d.value.template_labels)
        .collect();
    if let Some(first) = templates.first() {
        pod_labels.extend(
            first
                .iter()
                .filter(|(k, v)| templates.iter().all(|t| t.get(*k) == Some(*v)))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    // Attributes that are pod labels still select the same pods; others cannot.
    let mut filter = BTreeMap::new();
    let mut problems = Vec::new();
    for kv in &map.attributes {
        match pod_labels.get(&kv.key) {
            Some(v) if *v == kv.value => {
                filter.insert(kv.key.clone(), kv.value.clone());
            }
            Some(v) => problems.push(format!(
                "`{}={}` matches none of the node's pods, which carry `{}={v}`",
                kv.key, kv.value, kv.key
            )),
            None => problems.push(format!(
                "`{}={}`: `{}` is not a label that every pod of the node carries, so Istio \
                 cannot select by it",
                kv.key, kv.value, kv.key
            )),
        }
    }
    // Every pod of the node carries the filter's labels, so a selector that includes the node's
    // labels keeps the filter's meaning; a broader one (other nodes' pods too) must select by
    // the filter itself.
    let unselected = |selector: &BTreeMap<String, String>, by: &str| -> Vec<String> {
        if carries(selector, &labels) {
            return Vec::new();
        }
        filter
            .iter()
            .filter(|(k, v)| selector.get(*k) != Some(*v))
            .map(|(k, v)| format!("`{k}={v}`: {by} does not select by it"))
            .collect()
    };
    let replaced = match registry {
        Some(Registry::Service(service)) => {
            problems.extend(unselected(
                &service.value.selector,
                &format!("Service `{}`", service.name()),
            ));
            format!(
                "Service `{}` selects the node's pods and replaces Cloud Map service `{cloud}`",
                service.name()
            )
        }
        Some(Registry::Created { name, labels }) => {
            let mut selector = labels.clone();
            selector.extend(filter.clone());
            let ports = created_service(ctx, node, name, &selector);
            format!(
                "no Service selects the node's pods, so Service `{name}` is created to replace \
                 Cloud Map service `{cloud}` (selector {}; ports {ports})",
                show_labels(&selector)
            )
        }
        _ if routed(ctx, node) => {
            format!(
                "Cloud Map service `{cloud}` is replaced by the host of the virtual service whose \
                 router targets this node (a subset selects its pods)"
            )
        }
        _ => match covering_service(ctx, node, &labels) {
            Some(service) => {
                problems.extend(unselected(
                    &service.value.selector,
                    &format!("Service `{}`", service.name()),
                ));
                format!(
                    "Service `{}` selects the node's pods (among others) and replaces Cloud Map \
                     service `{cloud}`",
                    service.name()
                )
            }
            None => format!(
                "no Service selects the node's pods and none is created ({}): create a Service \
                 selecting them to replace Cloud Map service `{cloud}`",
                if labels.is_empty() {
                    "the node has no equality pod labels to select them by".to_owned()
                } else {
                    format!(
                        "a Service named `{}` already exists for other pods",
                        dns_label(node.name())
                    )
                }
            ),
        },
    };
    ctx.finding(
        Code::CloudMapReplaced,
        &object,
        "spec.serviceDiscovery.awsCloudMap",
        format!(
            "{replaced}; after the migration delete the Cloud Map service and remove the \
             readiness gate `conditions.appmesh.k8s.aws/aws-cloudmap-healthy` from the pod \
             template"
        ),
    );
    if map.attributes.is_empty() {
        return;
    }
    if problems.is_empty() {
        withdraw(ctx, &object, |f| f.code == Code::CloudMapAttributes);
    } else {
        ctx.finding(
            Code::CloudMapAttributes,
            &object,
            "spec.serviceDiscovery.awsCloudMap.attributes",
            format!(
                "Cloud Map returned only the instances with these attributes; in Istio: {}. \
                 Make the attributes pod labels of the node's pods (and of its Service's \
                 selector), or give these pods a Deployment and Service of their own",
                problems.join("; ")
            ),
        );
    }
}

/// Emits the Service that replaces a Cloud Map registration; returns its ports for the message.
fn created_service(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    name: &str,
    selector: &BTreeMap<String, String>,
) -> String {
    let mut ports: Vec<Value> = Vec::new();
    let mut shown = Vec::new();
    for listener in &node.value.spec.listeners {
        let protocol = listener.port_mapping.protocol.as_str();
        let number = listener.port_mapping.port;
        if ports.iter().any(|p| p["port"] == number) {
            continue;
        }
        shown.push(format!("{number} {protocol}"));
        ports.push(json!({
            "name": format!("{protocol}-{number}"),
            "port": number,
            "targetPort": number,
            "protocol": "TCP",
            "appProtocol": protocol,
        }));
    }
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, node.namespace(), &node.object_ref()),
        "spec": {"selector": selector, "ports": ports},
    });
    ctx.emit(service);
    if shown.is_empty() {
        "none: the node has no listener".to_owned()
    } else {
        shown.join(", ")
    }
}

/// `{a: b, c: d}`.
fn show_labels(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// An App Mesh duration Istio must get as at least 1ms (`MP219` when App Mesh's is 0).
fn at_least_1ms(
    ctx: &mut Ctx<'_>,
    object: &ObjectRef,
    field: &str,
    value: &appmesh::Duration,
    meaning: &str,
) -> String {
    super::common::duration(value).unwrap_or_else(|| {
        ctx.finding(
            Code::ZeroDuration,
            object,
            field,
            format!(
                "0 is written as `1ms`, the smallest value Istio accepts (it rejects `0s`): \
                 {meaning}"
            ),
        );
        "1ms".to_owned()
    })
}

/// `listeners[].outlierDetection`: a client-side policy on the node's host and its subsets.
fn outlier_detection(ctx: &mut Ctx<'_>, node: &Item<VirtualNode>, own: Option<&Registry<'_>>) {
    let object = node.object_ref();
    let listeners = &node.value.spec.listeners;
    let destination = own.map(|r| r.destination(ctx, node));
    let mut policy = istio::TrafficPolicy::default();
    let mut applied = Vec::new();
    for (i, listener) in listeners.iter().enumerate() {
        let Some(od) = &listener.outlier_detection else {
            continue;
        };
        let at = format!("spec.listeners[{i}].outlierDetection");
        let interval = at_least_1ms(
            ctx,
            &object,
            &format!("{at}.interval"),
            &od.interval,
            "callers count errors over 1ms windows",
        );
        let ejection = at_least_1ms(
            ctx,
            &object,
            &format!("{at}.baseEjectionDuration"),
            &od.base_ejection_duration,
            "ejected pods come back almost at once, close to App Mesh's 0",
        );
        let detection = istio::OutlierDetection {
            consecutive_5xx_errors: Some(od.max_server_errors),
            interval: Some(interval),
            base_ejection_time: Some(ejection),
            max_ejection_percent: Some(od.max_ejection_percent),
        };
        if listeners.len() == 1 {
            policy.outlier_detection = Some(detection);
        } else {
            // Several listeners: one policy per Service port.
            let number = match own {
                Some(Registry::Service(service)) => {
                    router::service_port(service, listener.port_mapping.port)
                }
                _ => super::common::port(listener.port_mapping.port),
            };
            let Some(number) = number else {
                continue;
            };
            policy.port_level_settings.push(istio::PortTrafficPolicy {
                port: istio::PortSelector { number },
                outlier_detection: Some(detection),
                ..Default::default()
            });
        }
        applied.push(at);
    }
    if applied.is_empty() {
        return;
    }
    ctx.node_policies.insert(
        (node.namespace().to_owned(), node.name().to_owned()),
        policy.clone(),
    );
    // A host several nodes share (one Service over several versions) must not carry one
    // node's policy for all of them: the subsets carry it instead.
    let sharing: Vec<String> = destination
        .as_ref()
        .map(|d| {
            ctx.inv
                .virtual_nodes
                .iter()
                .filter(|n| n.object_ref() != object)
                .filter(|n| registry(ctx, n).is_some_and(|r| r.destination(ctx, n).host == d.host))
                .map(|n| format!("`{}`", n.name()))
                .collect()
        })
        .unwrap_or_default();
    let target = match &destination {
        Some(d) if !sharing.is_empty() => format!(
            "the subsets of routers that target the node, not on the DestinationRule of `{}`, \
             which also serves {}",
            d.host,
            sharing.join(", ")
        ),
        Some(d) => {
            let rule = ctx.destination_rule(&d.host, &d.namespace, &d.name, &object);
            let traffic = rule.traffic_policy.get_or_insert_with(Default::default);
            if policy.outlier_detection.is_some() {
                traffic.outlier_detection = policy.outlier_detection.clone();
            }
            traffic
                .port_level_settings
                .extend(policy.port_level_settings.iter().cloned());
            if routed(ctx, node) {
                format!(
                    "the DestinationRule of `{}` and the subsets of routers that target the node",
                    d.host
                )
            } else {
                format!("the DestinationRule of `{}`", d.host)
            }
        }
        None if routed(ctx, node) => {
            "the subsets of routers that target the node (it has no host of its own)".to_owned()
        }
        None => "nothing yet: the node has no host of its own and no router targets it, so \
                 it applies once a router subset targets the node"
            .to_owned(),
    };
    for at in applied {
        ctx.finding(
            Code::OutlierDetection,
            &object,
            &at,
            format!(
                "outlier detection is set on {target}; callers' sidecars eject failing pods, as \
                 callers' Envoys did in App Mesh"
            ),
        );
    }
}

/// The Sidecar: declared backends (and under DROP_ALL the AWS APIs) as the only egress hosts,
/// plus the listeners' limits toward the local application.
fn sidecar(ctx: &mut Ctx<'_>, node: &Item<VirtualNode>, labels: &BTreeMap<String, String>) {
    let spec = &node.value.spec;
    let object = node.object_ref();
    let restricted = !spec.backends.is_empty() || !spec.backend_groups.is_empty();
    let drop_all = ctx.egress == Some(EgressFilterType::DropAll);
    let mut hosts = BTreeSet::new();
    for (i, backend) in spec.backends.iter().enumerate() {
        backend_hosts(ctx, node, i, &backend.virtual_service, &mut hosts);
    }
    for (i, group) in spec.backend_groups.iter().enumerate() {
        group_hosts(ctx, node, i, group, &mut hosts);
    }
    let declared: Vec<String> = hosts.iter().map(|h| format!("`{h}`")).collect();
    if drop_all {
        let namespace = aws_apis_namespace(ctx, node.namespace());
        hosts.insert(format!("{namespace}/{AWS_APIS_HOST}"));
    }
    let pool = inbound_pool(ctx, node);
    if !restricted && !drop_all && pool.is_none() {
        return;
    }
    let mut sidecar = istio::SidecarSpec {
        workload_selector: (!labels.is_empty()).then(|| istio::SidecarSelector {
            labels: labels.clone(),
        }),
        inbound_connection_pool: pool,
        ..Default::default()
    };
    if restricted || drop_all {
        // No resolvable backend: `~/*` imports nothing, as App Mesh gave the node no route.
        let hosts = if hosts.is_empty() {
            vec!["~/*".to_owned()]
        } else {
            hosts.into_iter().collect()
        };
        sidecar.egress = vec![istio::EgressListener { hosts }];
        sidecar.outbound_traffic_policy = Some(istio::OutboundTrafficPolicy {
            mode: "REGISTRY_ONLY",
        });
    }
    if restricted {
        let field = if spec.backends.is_empty() {
            "spec.backendGroups"
        } else {
            "spec.backends"
        };
        ctx.finding(
            Code::EgressOpen,
            &object,
            field,
            format!(
                "Sidecar `{}` (REGISTRY_ONLY) lets the node's pods reach {}{}, as App Mesh made \
                 undeclared backends unreachable; external hosts the pods call need a \
                 ServiceEntry listed there too. Istio hides the other hosts but does not \
                 enforce it: add AuthorizationPolicies on the servers if callers must be \
                 restricted",
                node.name(),
                if declared.is_empty() {
                    "no mesh host (none of its backends is in the source)".to_owned()
                } else {
                    format!("only {}", declared.join(", "))
                },
                if drop_all { " and the AWS APIs" } else { "" }
            ),
        );
    }
    let resource = istio::Resource {
        api_version: ctx.api.networking,
        kind: "Sidecar",
        metadata: metadata(node.name(), node.namespace(), &object),
        spec: sidecar,
    };
    ctx.emit(resource.to_value());
}

/// Sidecar hosts of one backend.
fn backend_hosts(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    i: usize,
    backend: &appmesh::VirtualServiceBackend,
    hosts: &mut BTreeSet<String>,
) {
    let object = node.object_ref();
    let at = format!("spec.backends[{i}].virtualService");
    if let Some(r) = &backend.virtual_service_ref {
        match ctx.virtual_service(r, node.namespace()) {
            Some(vs) => hosts.extend(vs_hosts(ctx, vs)),
            None => ctx.finding(
                Code::BackendMissing,
                &object,
                &format!("{at}.virtualServiceRef"),
                format!(
                    "virtual service `{}/{}` is not in the source, so the Sidecar does not list \
                     it: add it to the source or remove the backend",
                    r.namespace.as_deref().unwrap_or(node.namespace()),
                    r.name
                ),
            ),
        }
    } else if let Some(arn) = &backend.virtual_service_arn {
        let field = format!("{at}.virtualServiceARN");
        if let Some(vs) = by_arn(ctx, &ctx.inv.virtual_services, arn, node.namespace()) {
            let found = vs_hosts(ctx, vs);
            let shown: Vec<String> = found.iter().map(|h| format!("`{h}`")).collect();
            ctx.finding(
                Code::ArnResolved,
                &object,
                &field,
                format!(
                    "`{arn}` is taken to be virtual service `{}/{}` of the source; the Sidecar \
                     lists {}",
                    vs.namespace(),
                    vs.name(),
                    shown.join(", ")
                ),
            );
            hosts.extend(found);
            return;
        }
        withdraw(ctx, &object, |f| {
            f.code == Code::ArnResolved && f.field == field
        });
        let listed = match arn_name(arn) {
            Some(name) => {
                hosts.insert(format!("*/{name}"));
                format!(
                    "the Sidecar lists `*/{name}`, the name App Mesh clients called, which Istio \
                     routes only once a ServiceEntry registers it"
                )
            }
            None => "it is not an App Mesh ARN, so the Sidecar lists nothing for it".to_owned(),
        };
        ctx.finding(
            Code::ArnUnresolved,
            &object,
            &field,
            format!(
                "`{arn}` names no virtual service of the source (another cluster or account?); \
                 {listed}"
            ),
        );
    }
}

/// Sidecar hosts of one backend group reference.
fn group_hosts(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    i: usize,
    group: &Ref,
    hosts: &mut BTreeSet<String>,
) {
    let object = node.object_ref();
    let namespace = group.namespace.as_deref().unwrap_or(node.namespace());
    let field = format!("spec.backendGroups[{i}]");
    if group.name == "*" {
        hosts.insert(format!("{namespace}/*"));
        return;
    }
    let Some(found) = ctx.backend_group(group, node.namespace()) else {
        ctx.finding(
            Code::BackendGroupMissing,
            &object,
            &field,
            format!(
                "backend group `{namespace}/{}` is not in the source, so the Sidecar lists none \
                 of its virtual services: add it to the source or fix the reference",
                group.name
            ),
        );
        return;
    };
    let mut listed = Vec::new();
    for member in &found.value.spec.virtualservices {
        if let Some(vs) = ctx.virtual_service(member, found.namespace()) {
            listed.extend(vs_hosts(ctx, vs));
        }
    }
    let shown: Vec<String> = listed.iter().map(|h| format!("`{h}`")).collect();
    ctx.finding(
        Code::BackendGroupExpanded,
        &object,
        &field,
        format!(
            "backend group `{namespace}/{}` adds {} to the Sidecar",
            group.name,
            if shown.is_empty() {
                "no host (none of its virtual services is in the source)".to_owned()
            } else {
                shown.join(", ")
            }
        ),
    );
    hosts.extend(listed);
}

/// `<namespace>/<host>` entries that make a virtual service reachable: its host where the
/// routes and the Service are declared, and the node Service a node provider routes to.
fn vs_hosts(ctx: &mut Ctx<'_>, vs: &Item<VirtualService>) -> Vec<String> {
    let host = ctx.vs_host(vs, false);
    let mut out = vec![format!("{}/{host}", vs.namespace())];
    if let Some(service) = ctx.service_by_host(&host)
        && service.namespace() != vs.namespace()
    {
        out.push(format!("{}/{host}", service.namespace()));
    }
    let provider = vs
        .value
        .spec
        .provider
        .as_ref()
        .and_then(|p| p.virtual_node.as_ref());
    if let Some(provider) = provider {
        let target = match (&provider.virtual_node_ref, &provider.virtual_node_arn) {
            (Some(r), _) => ctx.node(r, vs.namespace()),
            (None, Some(arn)) => by_arn(ctx, &ctx.inv.virtual_nodes, arn, vs.namespace()),
            (None, None) => None,
        };
        if let Some(reg) = target.and_then(|n| registry(ctx, n).map(|r| (n, r))) {
            let destination = reg.1.destination(ctx, reg.0);
            if destination.host != host {
                out.push(format!("{}/{}", destination.namespace, destination.host));
            }
        }
    }
    out
}

/// `connectionPool` and idle timeouts of the listeners → `Sidecar.inboundConnectionPool`.
fn inbound_pool(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
) -> Option<istio::ConnectionPoolSettings> {
    let object = node.object_ref();
    let name = node.name();
    let version = &ctx.opts.version;
    if (version.major, version.minor) < (1, 20) {
        let release = version.to_string();
        for (i, listener) in node.value.spec.listeners.iter().enumerate() {
            if !inbound_settings(listener) {
                continue;
            }
            let at = format!("spec.listeners[{i}]");
            withdraw(ctx, &object, |f| {
                [Code::ConnectionPool, Code::ListenerIdleTimeout].contains(&f.code)
                    && f.field.starts_with(&at)
            });
            ctx.finding(
                Code::InboundPoolUnavailable,
                &object,
                &at,
                format!(
                    "Istio {release} has no `Sidecar.inboundConnectionPool` (added in 1.20), so \
                     the listener's connection pool and idle timeouts toward the application \
                     are not carried over; target Istio 1.20 or later to keep them"
                ),
            );
        }
        return None;
    }
    let mut pool = istio::ConnectionPoolSettings::default();
    for (i, listener) in node.value.spec.listeners.iter().enumerate() {
        let at = format!("spec.listeners[{i}]");
        if let Some(cp) = &listener.connection_pool {
            let mut set = Vec::new();
            let connections = cp
                .tcp
                .as_ref()
                .map(|t| t.max_connections)
                .or(cp.http.as_ref().map(|h| h.max_connections));
            if let Some(n) = connections {
                let tcp = pool.tcp.get_or_insert_with(Default::default);
                tcp.max_connections.get_or_insert(n);
                set.push(format!("tcp.maxConnections {n}"));
            }
            if let Some(n) = cp.http.as_ref().and_then(|h| h.max_pending_requests) {
                let http = pool.http.get_or_insert_with(Default::default);
                http.http1_max_pending_requests.get_or_insert(n);
                set.push(format!("http.http1MaxPendingRequests {n}"));
            }
            let streams = cp
                .http2
                .as_ref()
                .or(cp.grpc.as_ref())
                .map(|m| m.max_requests);
            if let Some(n) = streams {
                let http = pool.http.get_or_insert_with(Default::default);
                http.http2_max_requests.get_or_insert(n);
                set.push(format!("http.http2MaxRequests {n}"));
            }
            ctx.finding(
                Code::ConnectionPool,
                &object,
                &format!("{at}.connectionPool"),
                format!(
                    "Sidecar `{name}` limits traffic to the local application with \
                     `inboundConnectionPool` {} (Istio 1.20 or later), as the App Mesh \
                     listener did",
                    set.join(", ")
                ),
            );
        }
        let Some(timeout) = &listener.timeout else {
            continue;
        };
        per_request_timeouts(ctx, node, i, timeout);
        for (proto, per) in [
            ("grpc", &timeout.grpc),
            ("http", &timeout.http),
            ("http2", &timeout.http2),
        ] {
            let Some(idle) = per.as_ref().and_then(|t| t.idle) else {
                continue;
            };
            let field = format!("{at}.timeout.{proto}.idle");
            match super::common::duration(&idle) {
                Some(text) => {
                    let http = pool.http.get_or_insert_with(Default::default);
                    http.idle_timeout.get_or_insert(text.clone());
                    ctx.finding(
                        Code::ListenerIdleTimeout,
                        &object,
                        &field,
                        format!(
                            "Sidecar `{name}` sets `inboundConnectionPool.http.idleTimeout: \
                             {text}`: Istio closes connections to the application that stay \
                             idle that long, where App Mesh timed out idle streams"
                        ),
                    );
                }
                None => {
                    withdraw(ctx, &object, |f| {
                        f.code == Code::ListenerIdleTimeout && f.field == field
                    });
                    ctx.finding(
                        Code::ZeroDuration,
                        &object,
                        &field,
                        "idle 0 (no idle timeout) cannot be written: Istio's HTTP idle timeout \
                         must be at least 1ms, so Istio's default (1h) applies",
                    );
                }
            }
        }
        if let Some(idle) = timeout.tcp.as_ref().and_then(|t| t.idle) {
            // Istio's TCP idle timeout accepts `0s`, which disables it like App Mesh's 0.
            let text = super::common::duration(&idle).unwrap_or_else(|| "0s".to_owned());
            let tcp = pool.tcp.get_or_insert_with(Default::default);
            tcp.idle_timeout.get_or_insert(text.clone());
            ctx.finding(
                Code::ListenerIdleTimeout,
                &object,
                &format!("{at}.timeout.tcp.idle"),
                format!(
                    "Sidecar `{name}` sets `inboundConnectionPool.tcp.idleTimeout: {text}` for \
                     connections to the application{}",
                    if text == "0s" {
                        " (0s: never, as App Mesh's 0)"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    (pool != istio::ConnectionPoolSettings::default()).then_some(pool)
}

/// Listener per-request timeouts: Istio has none server-side; say where the value went.
fn per_request_timeouts(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    i: usize,
    timeout: &appmesh::ListenerTimeout,
) {
    for (proto, per) in [
        ("grpc", &timeout.grpc),
        ("http", &timeout.http),
        ("http2", &timeout.http2),
    ] {
        let Some(value) = per.as_ref().and_then(|t| t.per_request) else {
            continue;
        };
        let effect = match super::common::duration(&value) {
            Some(text) => format!(
                "the timeout of {proto} routes that reach this node (router routes, a virtual \
                 service it provides) is capped at {text}; callers that do not go through those \
                 routes (other hosts, clients outside the mesh) get no timeout from the node"
            ),
            None => "0 turns the listener's timeout off, so routes that reach this node keep \
                     their own timeout and App Mesh's 15s listener default does not cap them"
                .to_owned(),
        };
        ctx.finding(
            Code::ListenerTimeout,
            &node.object_ref(),
            &format!("spec.listeners[{i}].timeout.{proto}.perRequest"),
            format!("Istio has no server-side request timeout: {effect}"),
        );
    }
}

/// Listener TLS modes → PeerAuthentication for the node's pods.
fn peer_authentication(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    labels: &BTreeMap<String, String>,
) {
    let object = node.object_ref();
    let listeners = &node.value.spec.listeners;
    let modes: Vec<(usize, i64, TlsMode)> = listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.tls.as_ref().map(|t| (i, l.port_mapping.port, t.mode)))
        .collect();
    let Some(first) = modes.first().map(|m| m.2) else {
        return;
    };
    let istio_mode = |mode: TlsMode| match mode {
        TlsMode::Strict => Some("STRICT"),
        TlsMode::Permissive => Some("PERMISSIVE"),
        TlsMode::Disabled => None,
    };
    let mut spec = istio::PeerAuthenticationSpec {
        selector: (!labels.is_empty()).then(|| istio::WorkloadSelector {
            match_labels: labels.clone(),
        }),
        ..Default::default()
    };
    let uniform = modes.len() == listeners.len() && modes.iter().all(|m| m.2 == first);
    if uniform {
        let Some(mode) = istio_mode(first) else {
            return;
        };
        spec.mtls = Some(istio::PeerMtls { mode });
    } else if labels.is_empty() {
        for (i, _, mode) in &modes {
            if *mode == TlsMode::Strict {
                ctx.finding(
                    Code::TlsStrict,
                    &object,
                    &format!("spec.listeners[{i}].tls.mode"),
                    "only some listeners use TLS and the node selects every pod of the \
                     namespace (`podSelector: {}`); Istio sets per-port mTLS only with a \
                     selector, so nothing is emitted: write a PeerAuthentication by hand",
                );
            }
        }
        return;
    } else {
        for (_, port, mode) in &modes {
            if let (Some(mode), Some(port)) = (istio_mode(*mode), super::common::port(*port)) {
                spec.port_level_mtls.insert(port, istio::PeerMtls { mode });
            }
        }
        if spec.port_level_mtls.is_empty() {
            return;
        }
    }
    for (i, port, mode) in &modes {
        if *mode != TlsMode::Strict {
            continue;
        }
        let scope = if uniform {
            "for the node's pods".to_owned()
        } else {
            format!("on container port {port}")
        };
        ctx.finding(
            Code::TlsStrict,
            &object,
            &format!("spec.listeners[{i}].tls.mode"),
            format!(
                "PeerAuthentication `{}` requires mTLS {scope}: Istio STRICT accepts only \
                 callers with an Istio identity, where App Mesh STRICT required TLS (client \
                 certificates only with `validation`). Callers still on App Mesh or outside the \
                 mesh are rejected: apply it after every caller runs an Istio sidecar",
                node.name()
            ),
        );
    }
    let resource = istio::Resource {
        api_version: ctx.api.security,
        kind: "PeerAuthentication",
        metadata: metadata(node.name(), node.namespace(), &object),
        spec,
    };
    ctx.emit(resource.to_value());
}

/// Listener SAN allow-lists → an AuthorizationPolicy of service-account principals, when every
/// SAN maps to one.
fn authorization(ctx: &mut Ctx<'_>, node: &Item<VirtualNode>, labels: &BTreeMap<String, String>) {
    let object = node.object_ref();
    let listeners = &node.value.spec.listeners;
    let lists: Vec<(usize, &Vec<String>)> = listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let sans = l
                .tls
                .as_ref()?
                .validation
                .as_ref()?
                .subject_alternative_names
                .as_ref()?;
            Some((i, &sans.match_.exact))
        })
        .collect();
    let Some(first) = lists.first().map(|l| l.0) else {
        return;
    };
    let field = format!("spec.listeners[{first}].tls.validation.subjectAlternativeNames");
    let mut principals = BTreeSet::new();
    let mut mapped = Vec::new();
    let mut unmapped = Vec::new();
    for san in lists.iter().flat_map(|l| l.1.iter()) {
        match principal(ctx, san) {
            Some(p) => {
                mapped.push(format!("`{san}` as `{p}`"));
                principals.insert(p);
            }
            None => unmapped.push(format!("`{san}`")),
        }
    }
    let partial = lists.len() < listeners.len();
    if unmapped.is_empty() && !partial && !principals.is_empty() {
        let spec = istio::AuthorizationPolicySpec {
            selector: (!labels.is_empty()).then(|| istio::WorkloadSelector {
                match_labels: labels.clone(),
            }),
            action: "ALLOW",
            rules: vec![istio::Rule {
                from: vec![istio::RuleFrom {
                    source: istio::Source {
                        principals: principals.into_iter().collect(),
                    },
                }],
            }],
        };
        let resource = istio::Resource {
            api_version: ctx.api.security,
            kind: "AuthorizationPolicy",
            metadata: metadata(node.name(), node.namespace(), &object),
            spec,
        };
        ctx.emit(resource.to_value());
        ctx.finding(
            Code::SanAllowList,
            &object,
            &field,
            format!(
                "AuthorizationPolicy `{}` allows only {}: Istio identities are service \
                 accounts, so every pod running as them is allowed, and callers without mTLS \
                 (no identity) are denied",
                node.name(),
                mapped.join(", ")
            ),
        );
        return;
    }
    let reason = if unmapped.is_empty() {
        "only some of the node's listeners check client names, and an ALLOW policy applies to \
         every port"
            .to_owned()
    } else {
        format!(
            "{} cannot be mapped to a service account (meshplan maps \
             `spiffe://<td>/ns/<ns>/sa/<sa>` IDs, and the DNS name or SDS secret of a virtual \
             node whose Deployment sets `serviceAccountName`)",
            unmapped.join(", ")
        )
    };
    ctx.finding(
        Code::SanAllowList,
        &object,
        &field,
        format!(
            "no AuthorizationPolicy is emitted: {reason}{}. Write one: AuthorizationPolicy `{}` \
             with selector {}, `action: ALLOW` and `rules: [{{from: [{{source: {{principals: \
             [{TRUST_DOMAIN}/ns/<ns>/sa/<sa>]}}}}]}}]` listing the service account of every \
             allowed caller",
            if mapped.is_empty() {
                String::new()
            } else {
                format!(" (mapped: {})", mapped.join(", "))
            },
            node.name(),
            show_labels(labels)
        ),
    );
}

/// The Istio principal a SAN stands for: a SPIFFE ID of Istio's form, or the name (DNS host name
/// or SDS secret) of virtual nodes whose Deployments all name one service account.
fn principal(ctx: &Ctx<'_>, san: &str) -> Option<String> {
    if let Some(id) = istio_spiffe_id(san) {
        return Some(id.to_owned());
    }
    let named = ctx.inv.virtual_nodes.iter().filter(|n| {
        let spec = &n.value.spec;
        let dns = spec
            .service_discovery
            .as_ref()
            .and_then(|d| d.dns.as_ref())
            .is_some_and(|d| d.hostname == san || ctx.fqdn(&d.hostname, n.namespace()) == san);
        let sds = spec.listeners.iter().any(|l| {
            l.tls
                .as_ref()
                .and_then(|t| t.certificate.as_ref())
                .and_then(|c| c.sds.as_ref())
                .is_some_and(|s| s.secret_name == san)
        });
        dns || sds
    });
    // Several nodes (or Deployments) may share one name, e.g. one Service over versions: all
    // must resolve to the same identity, or the SAN stays unmapped.
    let mut found: Option<String> = None;
    for node in named {
        let labels = labels_of(node).filter(|l| !l.is_empty())?;
        let workloads = deployments(ctx, node.namespace(), &labels);
        if workloads.is_empty() {
            return None;
        }
        for workload in workloads {
            let account = workload.value.service_account_name.as_deref()?;
            let principal = format!("{TRUST_DOMAIN}/ns/{}/sa/{account}", node.namespace());
            if found.as_ref().is_some_and(|f| *f != principal) {
                return None;
            }
            found = Some(principal);
        }
    }
    found
}

/// `spiffe://<td>/ns/<ns>/sa/<sa>` without the scheme (Istio's principal form), if `san` is one.
fn istio_spiffe_id(san: &str) -> Option<&str> {
    let id = san.strip_prefix("spiffe://")?;
    let parts: Vec<&str> = id.split('/').collect();
    match parts.as_slice() {
        [td, "ns", ns, "sa", sa] if [td, ns, sa].iter().all(|p| !p.is_empty()) => Some(id),
        _ => None,
    }
}

/// The Deployments of a namespace whose pod templates carry all of `labels` (none for empty
/// labels: every Deployment would match).
pub(super) fn deployments<'a>(
    ctx: &Ctx<'a>,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<&'a Item<Workload>> {
    if labels.is_empty() {
        return Vec::new();
    }
    ctx.index
        .deployments_in(namespace)
        .iter()
        .copied()
        .filter(|d| carries(&d.value.template_labels, labels))
        .collect()
}

/// Health checks → the readiness probe to add, with what each Deployment of the node has today.
fn health_checks(ctx: &mut Ctx<'_>, node: &Item<VirtualNode>, labels: &BTreeMap<String, String>) {
    let object = node.object_ref();
    let workloads = deployments(ctx, node.namespace(), labels);
    for (i, listener) in node.value.spec.listeners.iter().enumerate() {
        let Some(check) = &listener.health_check else {
            continue;
        };
        let port = check.port.unwrap_or(listener.port_mapping.port);
        let probe = readiness_probe(check, port);
        let mut status: Vec<String> = workloads.iter().map(|d| probe_status(d, port)).collect();
        if status.is_empty() {
            status.push(
                "no Deployment in the source runs the node's pods: add it to their application \
                 container"
                    .to_owned(),
            );
        }
        let note = if check.protocol == Protocol::Http2 {
            " (an HTTP/1.1 probe: a server that only speaks h2c may fail it)"
        } else {
            ""
        };
        ctx.finding(
            Code::HealthCheck,
            &object,
            &format!("spec.listeners[{i}].healthCheck"),
            format!(
                "App Mesh's Envoys health-checked the node; in Istio the Kubernetes readiness \
                 probe takes pods out of rotation: `readinessProbe: {probe}`{note}; {}",
                status.join("; ")
            ),
        );
    }
}

/// Whether a Deployment's application container (the one serving `port`, else the first that is
/// not a proxy) already has a readiness probe.
fn probe_status(deployment: &Item<Workload>, port: i64) -> String {
    let containers = &deployment.value.containers;
    let serves = |c: &&WorkloadContainer| c.ports.iter().any(|&p| i64::from(p) == port);
    let app = containers.iter().find(serves).or_else(|| {
        containers
            .iter()
            .find(|c| !["envoy", "istio-proxy", "xray-daemon"].contains(&c.name.as_str()))
    });
    let name = deployment.name();
    match app {
        Some(c) if c.readiness_probe => format!(
            "container `{}` of Deployment `{name}` already has a readiness probe: keep it if it \
             checks the same thing, else replace it",
            c.name
        ),
        Some(c) => format!(
            "container `{}` of Deployment `{name}` has no readiness probe: add it",
            c.name
        ),
        None => format!("Deployment `{name}` has no application container to add it to"),
    }
}

/// A health check as a Kubernetes readiness probe, in YAML flow style.
fn readiness_probe(check: &appmesh::HealthCheck, port: i64) -> String {
    let handler = match check.protocol {
        Protocol::Http | Protocol::Http2 => format!(
            "httpGet: {{path: {}, port: {port}}}",
            check.path.as_deref().unwrap_or("/")
        ),
        Protocol::Grpc => format!("grpc: {{port: {port}}}"),
        Protocol::Tcp => format!("tcpSocket: {{port: {port}}}"),
    };
    format!(
        "{{{handler}, periodSeconds: {}, timeoutSeconds: {}, successThreshold: {}, \
         failureThreshold: {}}}",
        seconds(check.interval_millis),
        seconds(check.timeout_millis),
        check.healthy_threshold,
        check.unhealthy_threshold
    )
}

/// Milliseconds as whole seconds, rounded up (probes count in seconds, at least 1).
fn seconds(millis: i64) -> i64 {
    ((millis.max(0) + 999) / 1000).max(1)
}

/// `logging.accessLog.file` → a Telemetry turning on the `envoy` access log for the node's pods.
fn access_log_telemetry(
    ctx: &mut Ctx<'_>,
    node: &Item<VirtualNode>,
    labels: &BTreeMap<String, String>,
) {
    let Some(file) = node
        .value
        .spec
        .logging
        .as_ref()
        .and_then(|l| l.access_log.as_ref())
        .and_then(|a| a.file.as_ref())
    else {
        return;
    };
    let object = node.object_ref();
    let resource = istio::Resource {
        api_version: ctx.api.telemetry,
        kind: "Telemetry",
        metadata: metadata(node.name(), node.namespace(), &object),
        spec: istio::TelemetrySpec {
            selector: (!labels.is_empty()).then(|| istio::WorkloadSelector {
                match_labels: labels.clone(),
            }),
            access_logging: vec![istio::AccessLogging {
                providers: vec![istio::ProviderRef {
                    name: "envoy".to_owned(),
                }],
            }],
        },
    };
    ctx.emit(resource.to_value());
    let stdout = file.path == "/dev/stdout";
    if stdout && file.format.is_none() {
        ctx.finding(
            Code::AccessLog,
            &object,
            "spec.logging.accessLog.file.path",
            format!(
                "Telemetry `{}` turns on Istio's `envoy` access log (stdout) for the node's pods, \
                 inbound and outbound as in App Mesh; the line format is Istio's default, not \
                 App Mesh's",
                node.name()
            ),
        );
        return;
    }
    let provider = format!("{}-access-log", dns_label(node.name()));
    let mut notes = Vec::new();
    let log_format = match &file.format {
        Some(format) if !format.json.is_empty() => {
            let mut labels = BTreeMap::new();
            for kv in &format.json {
                if labels.insert(kv.key.clone(), kv.value.clone()).is_some() {
                    notes.push(format!(
                        "key `{}` appears twice: the last value is kept",
                        kv.key
                    ));
                }
            }
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{}: {}", json_text(k), json_text(v)))
                .collect();
            format!(", logFormat: {{labels: {{{}}}}}", pairs.join(", "))
        }
        Some(format) => format
            .text
            .as_ref()
            .map(|t| format!(", logFormat: {{text: {}}}", json_text(t)))
            .unwrap_or_default(),
        None => String::new(),
    };
    if !stdout {
        notes.push(format!(
            "`{}` must be on a volume mounted into `istio-proxy` (pod annotations \
             `sidecar.istio.io/userVolume` and `sidecar.istio.io/userVolumeMount`)",
            file.path
        ));
    }
    ctx.finding(
        Code::AccessLog,
        &object,
        "spec.logging.accessLog.file",
        format!(
            "Telemetry `{}` turns on Istio's `envoy` access log, which writes Istio's default \
             format to stdout. To keep App Mesh's file and format, add the MeshConfig extension \
             provider `extensionProviders: [{{name: {provider}, envoyFileAccessLog: {{path: \
             {}{log_format}}}}}]` \
             (install values) and set the Telemetry's provider to `{provider}`{}",
            node.name(),
            json_text(&file.path),
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            }
        ),
    );
}

/// A string quoted for YAML flow style (JSON strings are valid YAML).
fn json_text(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appmesh::HealthCheck;

    #[test]
    fn only_istio_shaped_spiffe_ids_are_principals() {
        assert_eq!(
            istio_spiffe_id("spiffe://cluster.local/ns/shop/sa/front"),
            Some("cluster.local/ns/shop/sa/front")
        );
        assert_eq!(istio_spiffe_id("spiffe://example.org/front"), None);
        assert_eq!(istio_spiffe_id("spiffe://td/ns//sa/x"), None);
        assert_eq!(istio_spiffe_id("front.shop.svc.cluster.local"), None);
    }

    #[test]
    fn cluster_names_are_told_from_external_ones() {
        let known = ["shop", "ops"];
        let cluster = |h: &str| cluster_name(h, "shop", "cluster.local", &known);
        assert!(cluster("catalog"));
        assert!(cluster("catalog.shop"));
        assert!(cluster("prober.ops"));
        assert!(cluster("catalog.shop.svc"));
        assert!(cluster("catalog.shop.svc.cluster.local"));
        assert!(!cluster("example.com"));
        assert!(!cluster("api.partner.example.com"));
        assert!(!cluster("orders.cluster-abc.eu-west-1.rds.amazonaws.com"));
    }

    #[test]
    fn probes_round_milliseconds_up_to_seconds() {
        let check = HealthCheck {
            healthy_threshold: 2,
            interval_millis: 5500,
            path: Some("/ping".to_owned()),
            port: None,
            protocol: Protocol::Http,
            timeout_millis: 2000,
            unhealthy_threshold: 3,
        };
        assert_eq!(
            readiness_probe(&check, 8080),
            "{httpGet: {path: /ping, port: 8080}, periodSeconds: 6, timeoutSeconds: 2, \
             successThreshold: 2, failureThreshold: 3}"
        );
        let grpc = HealthCheck {
            protocol: Protocol::Grpc,
            path: None,
            ..check
        };
        assert!(readiness_probe(&grpc, 9000).starts_with("{grpc: {port: 9000}, "));
        assert_eq!(seconds(0), 1);
    }
}
