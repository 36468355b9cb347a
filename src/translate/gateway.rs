//! `VirtualGateway` → Istio `Gateway`; `GatewayRoute` → VirtualServices bound to it, with App
//! Mesh's implicit rewrites made explicit and the target's router routes flattened in.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::appmesh::{
    self, GatewayListener, GatewayRewrite, GatewayRoute, GatewayRouteAction, HostnameMatch,
    Protocol, TlsMode, VirtualGateway,
};
use crate::findings::Code;
use crate::inventory::Item;
use crate::istio::{self, HttpMatchRequest, HttpRewrite, RegexRewrite, StringMatch};
use crate::object::ObjectRef;

use super::Ctx;
use super::common::{carries, dns_label, metadata, millis_text, re2_escape};
use super::coverage::{Disposition, Field, field, mesh_ref, selector};
use super::matching;
use super::node::{access_log, client_tls, connection_pool, health_check};
use super::router::{
    self, APPMESH_DEFAULT_TIMEOUT_MS, DEFAULT_RETRIES_MESSAGE, header_fields, http_match_fields,
    service_port,
};
use super::service::{by_arn, ref_name};

/// App Mesh's gateway route priority when none is given (the lowest).
const DEFAULT_PRIORITY: i64 = 1000;

/// Gateway listener TLS fields.
fn gateway_tls(prefix: &str) -> Vec<Field> {
    vec![
        field(
            format!("{prefix}.mode"),
            Disposition::Exact,
            "STRICT: server `tls.mode: SIMPLE` (MUTUAL with validation); DISABLED: plain; PERMISSIVE: unsupported (MP402)",
        ),
        field(
            format!("{prefix}.certificate.acm.certificateARN"),
            Disposition::Unsupported(Code::GatewayAcm),
            "none: terminate TLS on the AWS load balancer",
        ),
        field(
            format!("{prefix}.certificate.file.certificateChain"),
            Disposition::Exact,
            "server `tls.serverCertificate`",
        ),
        field(
            format!("{prefix}.certificate.file.privateKey"),
            Disposition::Exact,
            "server `tls.privateKey`",
        ),
        field(
            format!("{prefix}.certificate.sds.secretName"),
            Disposition::Approx(Code::CustomCertificate),
            "server `tls.credentialName` (a Kubernetes Secret of that name)",
        ),
        field(
            format!("{prefix}.validation.subjectAlternativeNames.match.exact[]"),
            Disposition::Exact,
            "server `tls.subjectAltNames`",
        ),
        field(
            format!("{prefix}.validation.trust.acm.certificateAuthorityARNs[]"),
            Disposition::Unsupported(Code::GatewayAcm),
            "none: export the CA to a Secret",
        ),
        field(
            format!("{prefix}.validation.trust.file.certificateChain"),
            Disposition::Exact,
            "server `tls.mode: MUTUAL` + `tls.caCertificates`",
        ),
        field(
            format!("{prefix}.validation.trust.sds.secretName"),
            Disposition::Approx(Code::CustomCertificate),
            "server `tls.mode: MUTUAL` + `tls.credentialName`",
        ),
    ]
}

/// A selector of gateway routes: meshplan evaluates it, expressions included.
fn route_selector(prefix: &str) -> Vec<Field> {
    [
        "matchLabels",
        "matchExpressions[].key",
        "matchExpressions[].operator",
        "matchExpressions[].values[]",
    ]
    .into_iter()
    .map(|leaf| {
        field(
            format!("{prefix}.{leaf}"),
            Disposition::Approx(Code::RouteSelection),
            "which gateway routes bind (evaluated at translation time)",
        )
    })
    .collect()
}

/// Dispositions of every VirtualGateway field.
pub(super) fn gateway_coverage() -> Vec<Field> {
    let mut fields = vec![
        field("spec.awsName", Disposition::Drop, "none"),
        field(
            "spec.listeners[].portMapping.port",
            Disposition::Exact,
            "Gateway `servers[].port.number`",
        ),
        field(
            "spec.listeners[].portMapping.protocol",
            Disposition::Exact,
            "Gateway `servers[].port.protocol` (upper case; HTTPS when TLS terminates)",
        ),
    ];
    fields.extend(selector(
        "spec.podSelector",
        Disposition::Approx(Code::GatewayDeployment),
        "Gateway `selector` (the Istio gateway pods must carry these labels)",
    ));
    fields.extend(route_selector("spec.namespaceSelector"));
    fields.extend(route_selector("spec.gatewayRouteSelector"));
    fields.extend(health_check(
        "spec.listeners[].healthCheck",
        Code::GatewayHealthCheck,
        "none: Istio gateways report readiness on port 15021",
    ));
    fields.extend(connection_pool(
        "spec.listeners[].connectionPool",
        Code::GatewayConnectionPool,
        "DestinationRule connection pool for the gateway's upstream hosts",
        false,
    ));
    fields.extend(gateway_tls("spec.listeners[].tls"));
    fields.extend(client_tls("spec.backendDefaults.clientPolicy.tls"));
    fields.extend(access_log("spec.logging.accessLog.file"));
    fields.extend(mesh_ref());
    fields
}

/// Dispositions of every GatewayRoute field.
pub(super) fn route_coverage() -> Vec<Field> {
    let mut fields = vec![
        field("spec.awsName", Disposition::Drop, "none"),
        field(
            "spec.priority",
            Disposition::Approx(Code::GatewayPriority),
            "position in the merged `http[]` of the host's VirtualService",
        ),
        field(
            "spec.virtualGatewayRef.name",
            Disposition::Exact,
            "VirtualService `gateways`",
        ),
        field(
            "spec.virtualGatewayRef.namespace",
            Disposition::Exact,
            "VirtualService `gateways`",
        ),
        field("spec.virtualGatewayRef.uid", Disposition::Drop, "none"),
    ];
    for kind in ["httpRoute", "http2Route", "grpcRoute"] {
        let p = format!("spec.{kind}");
        fields.push(field(
            format!("{p}.match.hostname.exact"),
            Disposition::Exact,
            "VirtualService `hosts`",
        ));
        fields.push(field(
            format!("{p}.match.hostname.suffix"),
            Disposition::Exact,
            "`hosts: [*<suffix>]` when the suffix starts with `.`; otherwise `*` with an authority regex (MP407)",
        ));
        fields.push(field(
            format!("{p}.match.port"),
            Disposition::Exact,
            "`match[].port` (the Gateway server's port)",
        ));
        if kind == "grpcRoute" {
            fields.push(field(
                format!("{p}.match.serviceName"),
                Disposition::Exact,
                "`match[].uri.prefix` `/<service>/`",
            ));
            fields.extend(header_fields(&format!("{p}.match.metadata")));
        } else {
            fields.extend(http_match_fields(&format!("{p}.match")));
            fields.push(field(
                format!("{p}.action.rewrite.path.exact"),
                Disposition::Exact,
                "`rewrite.uriRegexRewrite` (whole path)",
            ));
            fields.push(field(
                format!("{p}.action.rewrite.prefix.defaultPrefix"),
                Disposition::Exact,
                "ENABLED (default): `rewrite.uri: /` written explicitly; DISABLED: no rewrite",
            ));
            fields.push(field(
                format!("{p}.action.rewrite.prefix.value"),
                Disposition::Exact,
                "`rewrite.uri`",
            ));
        }
        fields.push(field(
            format!("{p}.action.rewrite.hostname.defaultTargetHostname"),
            Disposition::Exact,
            "ENABLED (default): `rewrite.authority: <target host>`; DISABLED: none",
        ));
        fields.push(field(
            format!("{p}.action.target.port"),
            Disposition::Approx(Code::TargetPort),
            "`route[].destination.port.number`",
        ));
        // The destination itself is exact; what serves it (a router to flatten, a node to reach
        // directly) is reported by the translation as MP405.
        for leaf in ["name", "namespace"] {
            fields.push(field(
                format!("{p}.action.target.virtualService.virtualServiceRef.{leaf}"),
                Disposition::Exact,
                "`route[].destination.host`: the target host, with its router's routes flattened in (MP405)",
            ));
        }
        fields.push(field(
            format!("{p}.action.target.virtualService.virtualServiceARN"),
            Disposition::Approx(Code::ArnResolved),
            "the virtual service of that name in the source",
        ));
    }
    fields.extend(mesh_ref());
    fields
}

/// Translates every virtual gateway with the gateway routes bound to it.
pub(super) fn translate(ctx: &mut Ctx<'_>) {
    let mut gateways = Vec::new();
    for gateway in &ctx.inv.virtual_gateways {
        if ctx.admit("VirtualGateway", gateway) {
            gateways.push(gateway);
            let labels = gateway
                .value
                .spec
                .pod_selector
                .as_ref()
                .and_then(crate::appmesh::match_labels)
                .unwrap_or_default();
            for deployment in super::node::deployments(ctx, gateway.namespace(), &labels) {
                ctx.out.gateway_deployments.insert(deployment.object_ref());
            }
        }
    }
    let mut bound: Vec<Vec<Binding<'_>>> = vec![Vec::new(); gateways.len()];
    for route in &ctx.inv.gateway_routes {
        if !ctx.admit("GatewayRoute", route) {
            continue;
        }
        for (index, by_selector) in bind(ctx, route, &gateways) {
            bound[index].push(Binding { route, by_selector });
        }
    }
    for (gateway, routes) in gateways.into_iter().zip(bound) {
        one_gateway(ctx, gateway, &routes);
    }
}

/// A gateway route bound to a gateway, and whether selectors (not a reference) bound it.
#[derive(Clone, Copy)]
struct Binding<'a> {
    route: &'a Item<GatewayRoute>,
    by_selector: bool,
}

/// The gateways (indices into `gateways`) a route binds to: its `virtualGatewayRef`, or the
/// gateways whose selectors pick its namespace and labels.
fn bind(
    ctx: &mut Ctx<'_>,
    route: &Item<GatewayRoute>,
    gateways: &[&Item<VirtualGateway>],
) -> Vec<(usize, bool)> {
    if let Some(r) = &route.value.spec.virtual_gateway_ref {
        let namespace = r.namespace.as_deref().unwrap_or(route.namespace());
        if let Some(index) = gateways
            .iter()
            .position(|g| g.namespace() == namespace && g.name() == r.name)
        {
            return vec![(index, false)];
        }
        ctx.finding(
            Code::GatewayTargetMissing,
            &route.object_ref(),
            "spec.virtualGatewayRef",
            format!(
                "virtual gateway `{namespace}/{}` is not in the source (or not in scope); the \
                 route is not translated",
                r.name
            ),
        );
        return Vec::new();
    }
    let namespace_labels = ctx
        .inv
        .namespaces
        .iter()
        .find(|n| n.name() == route.namespace())
        .and_then(|n| n.value.metadata.labels.clone())
        .unwrap_or_default();
    let route_labels = route.value.metadata.labels.clone().unwrap_or_default();
    let found: Vec<(usize, bool)> = gateways
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            let spec = &g.value.spec;
            spec.namespace_selector
                .as_ref()
                .is_some_and(|s| selects(s, &namespace_labels))
                && spec
                    .gateway_route_selector
                    .as_ref()
                    .is_none_or(|s| selects(s, &route_labels))
        })
        .map(|(i, _)| (i, true))
        .collect();
    if found.len() > 1 {
        let names: Vec<String> = found
            .iter()
            .map(|(i, _)| format!("{}/{}", gateways[*i].namespace(), gateways[*i].name()))
            .collect();
        ctx.finding(
            Code::RouteSelection,
            &route.object_ref(),
            "spec",
            format!(
                "the selectors of several virtual gateways pick this route ({}), which App Mesh \
                 refuses, so the source may not be what runs; it is bound to each of them",
                names.join(", ")
            ),
        );
    }
    if found.is_empty() {
        ctx.finding(
            Code::GatewayTargetMissing,
            &route.object_ref(),
            "spec",
            format!(
                "no virtual gateway in the source selects this route (by the labels of namespace \
                 `{}` and of the route), so App Mesh would not accept it; the route is not \
                 translated",
                route.namespace()
            ),
        );
    }
    found
}

/// True when `labels` satisfy `selector` (`matchLabels` and `matchExpressions`).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let equal = selector
        .match_labels
        .as_ref()
        .is_none_or(|wanted| carries(labels, wanted));
    equal
        && selector.match_expressions.iter().flatten().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// One gateway: its Istio `Gateway`, one VirtualService per host, and its access log.
fn one_gateway(ctx: &mut Ctx<'_>, gateway: &Item<VirtualGateway>, routes: &[Binding<'_>]) {
    let object = gateway.object_ref();
    let spec = &gateway.value.spec;
    let Some(labels) = spec
        .pod_selector
        .as_ref()
        .and_then(appmesh::match_labels)
        .filter(|l| !l.is_empty())
    else {
        ctx.finding(
            Code::GatewayDeployment,
            &object,
            "spec.podSelector",
            "the gateway selects its pods with no equality labels (`matchLabels`), and an Istio \
             Gateway selects its pods by equality labels only; no Gateway is emitted: give the \
             virtual gateway a `podSelector.matchLabels`",
        );
        return;
    };
    deployment_finding(ctx, gateway, &labels);
    selection_findings(ctx, gateway, routes);

    let translated: Vec<Translated> = routes
        .iter()
        .filter_map(|b| route(ctx, gateway, b.route))
        .collect();
    let servers = spec
        .listeners
        .iter()
        .enumerate()
        .map(|(i, listener)| server(ctx, gateway, i, listener, &translated))
        .collect();
    let resource = istio::Resource {
        api_version: ctx.api.networking,
        kind: "Gateway",
        metadata: metadata(gateway.name(), gateway.namespace(), &object),
        spec: istio::GatewaySpec {
            selector: labels.clone(),
            servers,
        },
    };
    ctx.emit(resource.to_value());

    let hosts: BTreeSet<&str> = translated.iter().map(|t| t.host.as_str()).collect();
    for host in hosts {
        virtual_service(ctx, gateway, host, &translated);
    }

    if spec
        .logging
        .as_ref()
        .and_then(|l| l.access_log.as_ref())
        .and_then(|a| a.file.as_ref())
        .is_some()
    {
        let resource = istio::Resource {
            api_version: ctx.api.telemetry,
            kind: "Telemetry",
            metadata: metadata(gateway.name(), gateway.namespace(), &object),
            spec: istio::TelemetrySpec {
                selector: Some(istio::WorkloadSelector {
                    match_labels: labels,
                }),
                access_logging: vec![istio::AccessLogging {
                    providers: vec![istio::ProviderRef {
                        name: "envoy".to_owned(),
                    }],
                }],
            },
        };
        ctx.emit(resource.to_value());
    }
}

/// MP401: the App Mesh gateway Deployment gives way to an Istio gateway with the same labels.
fn deployment_finding(
    ctx: &mut Ctx<'_>,
    gateway: &Item<VirtualGateway>,
    labels: &BTreeMap<String, String>,
) {
    let deployments: Vec<&str> = ctx
        .index
        .deployments_in(gateway.namespace())
        .iter()
        .filter(|d| carries(&d.value.template_labels, labels))
        .map(|d| d.name())
        .collect();
    let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    // The load balancer in front of the gateway: a Service whose selector the labels satisfy.
    let services: Vec<String> = ctx
        .index
        .services_in(gateway.namespace())
        .iter()
        .filter(|svc| !svc.value.selector.is_empty() && carries(labels, &svc.value.selector))
        .map(|svc| format!("`{}`", svc.name()))
        .collect();
    let keep = if services.is_empty() {
        "point the load balancer Service at the new pods so the external address survives"
            .to_owned()
    } else {
        format!(
            "Service {} already selects these labels: keep it (with its load balancer \
             annotations) so the external address survives",
            services.join(", ")
        )
    };
    // Certificate files were mounted into the App Mesh gateway pods; the new pods need them too.
    let mut files = BTreeSet::new();
    for tls in gateway
        .value
        .spec
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
    {
        if let Some(file) = tls.certificate.as_ref().and_then(|c| c.file.as_ref()) {
            files.insert(file.certificate_chain.clone());
            files.extend(file.private_key.clone());
        }
        let trust = tls.validation.as_ref().and_then(|v| v.trust.as_ref());
        if let Some(file) = trust.and_then(|t| t.file.as_ref()) {
            files.insert(file.certificate_chain.clone());
        }
    }
    let mounts = if files.is_empty() {
        String::new()
    } else {
        format!(
            ", and mount the certificate files ({}) into them at the same paths (or move them to \
             a Kubernetes TLS Secret and use `credentialName`)",
            files
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let which = if deployments.is_empty() {
        "no Deployment in the source carries these labels".to_owned()
    } else {
        format!(
            "Deployment {} runs the App Mesh gateway (its `envoy` container is configured by App \
             Mesh) and must be replaced",
            deployments
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    ctx.finding(
        Code::GatewayDeployment,
        &gateway.object_ref(),
        "spec.podSelector",
        format!(
            "the Istio Gateway selects pods labelled `{}`; {which}: deploy Istio's gateway (Helm \
             chart `gateway`) in namespace `{}` with these pod labels{mounts}; {keep}",
            shown.join(", "),
            gateway.namespace()
        ),
    );
}

/// MP408: which routes the gateway's selectors bound.
fn selection_findings(ctx: &mut Ctx<'_>, gateway: &Item<VirtualGateway>, routes: &[Binding<'_>]) {
    let by_selector: Vec<String> = routes
        .iter()
        .filter(|b| b.by_selector)
        .map(|b| format!("{}/{}", b.route.namespace(), b.route.name()))
        .collect();
    if by_selector.is_empty() {
        return;
    }
    let message = format!(
        "the selectors were evaluated against the source: gateway routes {} bind to this \
         gateway; Istio binds routes by name (`gateways: [{}/{}]`), so a route created later \
         must name the gateway itself",
        by_selector.join(", "),
        gateway.namespace(),
        gateway.name()
    );
    let spec = &gateway.value.spec;
    for (present, at) in [
        (spec.namespace_selector.is_some(), "spec.namespaceSelector"),
        (
            spec.gateway_route_selector.is_some(),
            "spec.gatewayRouteSelector",
        ),
    ] {
        if present {
            ctx.finding(
                Code::RouteSelection,
                &gateway.object_ref(),
                at,
                message.clone(),
            );
        }
    }
}

/// One Istio server for a gateway listener.
fn server(
    ctx: &mut Ctx<'_>,
    gateway: &Item<VirtualGateway>,
    index: usize,
    listener: &GatewayListener,
    translated: &[Translated],
) -> istio::Server {
    let number = u32::try_from(listener.port_mapping.port).unwrap_or_default();
    let plain = match listener.port_mapping.protocol {
        Protocol::Http2 => "HTTP2",
        Protocol::Grpc => "GRPC",
        Protocol::Http | Protocol::Tcp => "HTTP",
    };
    if let Some(pool) = &listener.connection_pool {
        pool_finding(ctx, gateway, index, pool);
    }
    let tls = listener
        .tls
        .as_ref()
        .and_then(|tls| server_tls(ctx, gateway, index, number, tls));
    let protocol = if tls.is_some() { "HTTPS" } else { plain };
    let mut hosts: BTreeSet<String> = translated
        .iter()
        .filter(|t| t.port.is_none_or(|p| p == number))
        .map(|t| t.host.clone())
        .collect();
    if hosts.is_empty() || hosts.contains("*") {
        hosts = BTreeSet::from(["*".to_owned()]);
    }
    istio::Server {
        port: istio::ServerPort {
            number,
            name: format!("{}-{number}", protocol.to_ascii_lowercase()),
            protocol,
        },
        hosts: hosts.into_iter().collect(),
        tls,
    }
}

/// Server TLS of a listener; `None` for a plain server.
fn server_tls(
    ctx: &mut Ctx<'_>,
    gateway: &Item<VirtualGateway>,
    index: usize,
    port: u32,
    tls: &appmesh::ListenerTls,
) -> Option<istio::ServerTlsSettings> {
    let object = gateway.object_ref();
    let at = format!("spec.listeners[{index}].tls");
    if tls.mode == TlsMode::Disabled {
        return None;
    }
    let certificate = tls.certificate.clone().unwrap_or_default();
    if let Some(acm) = &certificate.acm {
        ctx.finding(
            Code::GatewayAcm,
            &object,
            &format!("{at}.certificate.acm"),
            format!(
                "ACM certificate `{}` cannot be loaded by an Istio gateway; port {port} is emitted \
                 as plain HTTP, so terminate TLS with this certificate on the AWS load balancer \
                 (NLB TLS listener or ALB) in front of the gateway, or put the certificate in a \
                 Kubernetes TLS Secret and set `tls.credentialName`",
                acm.certificate_arn
            ),
        );
        return None;
    }
    let mut out = istio::ServerTlsSettings {
        mode: "SIMPLE",
        ..Default::default()
    };
    if let Some(file) = &certificate.file {
        out.server_certificate = Some(file.certificate_chain.clone());
        out.private_key = file.private_key.clone();
    } else if let Some(sds) = &certificate.sds {
        out.credential_name = Some(sds.secret_name.clone());
        sds_finding(
            ctx,
            gateway,
            &format!("{at}.certificate.sds"),
            &sds.secret_name,
            "certificate and key (`tls.crt`, `tls.key`)",
        );
    }
    if let Some(validation) = &tls.validation {
        if let Some(trust) = &validation.trust {
            if let Some(file) = &trust.file {
                out.mode = "MUTUAL";
                out.ca_certificates = Some(file.certificate_chain.clone());
            } else if let Some(sds) = &trust.sds {
                out.mode = "MUTUAL";
                out.ca_cert_credential_name = Some(sds.secret_name.clone());
                sds_finding(
                    ctx,
                    gateway,
                    &format!("{at}.validation.trust.sds"),
                    &sds.secret_name,
                    "client CA certificate (`ca.crt`)",
                );
            } else if trust.acm.is_some() {
                ctx.finding(
                    Code::GatewayAcm,
                    &object,
                    &format!("{at}.validation.trust.acm"),
                    format!(
                        "client certificates on port {port} were checked against ACM Private CAs, \
                         which an Istio gateway cannot read; the server is emitted as SIMPLE (no \
                         client certificate required): export the CA certificate to a Secret \
                         and set `tls.mode: MUTUAL` with `caCertCredentialName`"
                    ),
                );
            }
        }
        if let Some(names) = &validation.subject_alternative_names {
            out.subject_alt_names = names.match_.exact.clone();
        }
    }
    if tls.mode == TlsMode::Permissive {
        ctx.finding(
            Code::GatewayTlsPermissive,
            &object,
            &format!("{at}.mode"),
            format!(
                "port {port} accepted both TLS and plaintext; the Istio server is emitted with TLS \
                 only (`{}`), so plaintext clients of this port are refused: move them to a \
                 separate plain port, or confirm that every client uses TLS",
                out.mode
            ),
        );
    }
    Some(out)
}

/// MP310: an SDS secret name becomes the name of a Kubernetes Secret the Istio gateway reads.
fn sds_finding(
    ctx: &mut Ctx<'_>,
    gateway: &Item<VirtualGateway>,
    at: &str,
    name: &str,
    what: &str,
) {
    ctx.finding(
        Code::CustomCertificate,
        &gateway.object_ref(),
        at,
        format!(
            "App Mesh fetched SDS secret `{name}` from its SDS provider (e.g. SPIRE); the Istio \
             gateway reads its {what} from a Kubernetes Secret named `{name}` in namespace `{}`: \
             create that Secret before the switch",
            gateway.namespace()
        ),
    );
}

/// MP410: listener connection limits have no place on an Istio gateway's inbound side.
fn pool_finding(
    ctx: &mut Ctx<'_>,
    gateway: &Item<VirtualGateway>,
    index: usize,
    pool: &appmesh::ConnectionPool,
) {
    let mut limits = Vec::new();
    if let Some(http) = &pool.http {
        limits.push(format!("{} connections", http.max_connections));
        if let Some(pending) = http.max_pending_requests {
            limits.push(format!("{pending} pending requests"));
        }
    }
    for (name, limit) in [("http2", &pool.http2), ("grpc", &pool.grpc)] {
        if let Some(limit) = limit {
            limits.push(format!("{} concurrent {name} requests", limit.max_requests));
        }
    }
    ctx.finding(
        Code::GatewayConnectionPool,
        &gateway.object_ref(),
        &format!("spec.listeners[{index}].connectionPool"),
        format!(
            "the gateway listener limited clients to {}; an Istio gateway has no inbound \
             connection pool, so nothing is emitted: to keep the limit, add `trafficPolicy.\
             connectionPool` for the hosts it routes to in a DestinationRule with a \
             `workloadSelector` for the gateway pods, in namespace `{}`",
            limits.join(", "),
            gateway.namespace()
        ),
    );
}

/// A gateway route translated for one gateway.
struct Translated {
    /// The route's name, for messages.
    name: String,
    /// The route object.
    object: ObjectRef,
    /// Host pattern it serves: an exact host, `*.<suffix>`, or `*`.
    host: String,
    /// The gateway port it is restricted to.
    port: Option<u32>,
    /// Evaluation order: priority, then the more specific path first, then name.
    order: (i64, u8, std::cmp::Reverse<usize>, String),
    /// The `http[]` entries, in order.
    entries: Vec<istio::HttpRoute>,
}

/// The route kinds a gateway route can have.
enum Kind<'r> {
    Http(&'r appmesh::GatewayHttpRoute, &'static str),
    Grpc(&'r appmesh::GatewayGrpcRoute),
}

/// Translates one gateway route for `gateway`; `None` (with a finding) when it cannot be.
fn route(
    ctx: &mut Ctx<'_>,
    gateway: &Item<VirtualGateway>,
    route: &Item<GatewayRoute>,
) -> Option<Translated> {
    let object = route.object_ref();
    let spec = &route.value.spec;
    let kind = if let Some(r) = &spec.http_route {
        Kind::Http(r, "httpRoute")
    } else if let Some(r) = &spec.http2_route {
        Kind::Http(r, "http2Route")
    } else if let Some(r) = &spec.grpc_route {
        Kind::Grpc(r)
    } else {
        ctx.finding(
            Code::RouteKindMissing,
            &object,
            "spec",
            "the gateway route has no httpRoute, http2Route or grpcRoute, so it routes nothing",
        );
        return None;
    };
    let mut problems = Vec::new();
    let (field, request, hostname, port, action) = match kind {
        Kind::Http(r, name) => {
            let field = format!("spec.{name}");
            let request =
                matching::gateway_http(&r.match_, &format!("{field}.match"), &mut problems);
            (
                field,
                request,
                r.match_.hostname.as_ref(),
                r.match_.port,
                &r.action,
            )
        }
        Kind::Grpc(r) => {
            let field = "spec.grpcRoute".to_owned();
            let request =
                matching::gateway_grpc(&r.match_, &format!("{field}.match"), &mut problems);
            (
                field,
                request,
                r.match_.hostname.as_ref(),
                r.match_.port,
                &r.action,
            )
        }
    };
    for (code, at, message) in problems {
        ctx.finding(code, &object, &at, message);
    }
    let (host, authority) = host_pattern(ctx, &object, &field, hostname);
    let mut request = HttpMatchRequest {
        authority,
        ..request
    };
    let port = port.and_then(|p| u32::try_from(p).ok());
    if let Some(p) = port {
        if !gateway
            .value
            .spec
            .listeners
            .iter()
            .any(|l| l.port_mapping.port == i64::from(p))
        {
            ctx.finding(
                Code::PortMatch,
                &object,
                &format!("{field}.match.port"),
                format!(
                    "virtual gateway `{}` has no listener on port {p}, so the route matches no \
                     request",
                    gateway.name()
                ),
            );
        }
        request.port = Some(p);
    }
    let target = target(ctx, route, action, &field)?;
    let path = match kind {
        Kind::Http(..) => path_of(request.uri.as_ref(), action.rewrite.as_ref()),
        // gRPC paths name the method: App Mesh never rewrites them.
        Kind::Grpc(_) => Path::Prefix {
            sent: describe_prefix(request.uri.as_ref()),
            seen: describe_prefix(request.uri.as_ref()),
            loose: false,
        },
    };
    let mut rewrite = rewrite_of(&path);
    let mut explicit = Vec::new();
    if let Path::Prefix { sent, seen, .. } = &path
        && sent != seen
        && action
            .rewrite
            .as_ref()
            .and_then(|r| r.prefix.as_ref())
            .and_then(|p| p.value.as_ref())
            .is_none()
    {
        explicit.push(format!("path prefix `{sent}` → `{seen}`"));
    }
    let host_rewrite = action
        .rewrite
        .as_ref()
        .and_then(|r| r.hostname.as_ref())
        .and_then(|h| h.default_target_hostname.as_deref())
        != Some("DISABLED");
    if host_rewrite {
        rewrite.authority = Some(target.authority.clone());
        explicit.push(format!("Host → `{}`", target.authority));
    }
    if !explicit.is_empty() {
        ctx.finding(
            Code::RewriteExplicit,
            &object,
            &format!("{field}.action.rewrite"),
            format!(
                "App Mesh's default rewrites are written out: {}",
                explicit.join(", ")
            ),
        );
    }
    let rewrite = (rewrite != HttpRewrite::default()).then_some(rewrite);
    let entries = match &target.routes {
        Some(routes) => flatten(
            ctx,
            route,
            &field,
            &target,
            (&request, &path),
            routes,
            rewrite.as_ref(),
        ),
        None => vec![istio::HttpRoute {
            name: route.name().to_owned(),
            match_: if request == HttpMatchRequest::default() {
                Vec::new()
            } else {
                vec![request.clone()]
            },
            route: vec![istio::HttpRouteDestination {
                destination: target.destination.clone(),
                weight: 100,
            }],
            rewrite,
            timeout: target.timeout.clone(),
            retries: None,
        }],
    };
    let (rank, length) = match &path {
        Path::Prefix { sent, .. } => (2, sent.len()),
        Path::Whole {
            sent: StringMatch::Exact(_),
            ..
        } => (0, 0),
        Path::Whole { .. } => (1, 0),
    };
    Some(Translated {
        name: route.name().to_owned(),
        object,
        host,
        port,
        order: (
            spec.priority.unwrap_or(DEFAULT_PRIORITY),
            rank,
            std::cmp::Reverse(length),
            format!("{}/{}", route.namespace(), route.name()),
        ),
        entries,
    })
}

/// The literal prefix of a `uri` prefix condition (empty for none).
fn describe_prefix(uri: Option<&StringMatch>) -> String {
    match uri {
        Some(StringMatch::Prefix(p)) => p.clone(),
        _ => String::new(),
    }
}

/// The host pattern of a hostname match, and the authority condition a raw suffix needs.
fn host_pattern(
    ctx: &mut Ctx<'_>,
    object: &ObjectRef,
    field: &str,
    hostname: Option<&HostnameMatch>,
) -> (String, Option<StringMatch>) {
    let Some(hostname) = hostname else {
        return ("*".to_owned(), None);
    };
    if let Some(exact) = &hostname.exact {
        return (exact.to_ascii_lowercase(), None);
    }
    let Some(suffix) = &hostname.suffix else {
        return ("*".to_owned(), None);
    };
    let suffix = suffix.to_ascii_lowercase();
    let at = format!("{field}.match.hostname.suffix");
    // A suffix starting at a label boundary names the same hosts as the Istio wildcard.
    if suffix.starts_with('.') {
        return (format!("*{suffix}"), None);
    }
    let regex = format!("^.*{}(:[0-9]+)?$", re2_escape(&suffix));
    ctx.finding(
        Code::HostnameSuffix,
        object,
        &at,
        format!(
            "suffix `{suffix}` is not label-aligned (it also matches e.g. `x{suffix}`), which \
             Istio host wildcards cannot say: the route is served for host `*` with the \
             condition `authority.regex: {regex}`"
        ),
    );
    ("*".to_owned(), Some(StringMatch::Regex(regex)))
}

/// Where a gateway route sends requests.
struct Target {
    /// The Host App Mesh rewrote requests to: the virtual service's name.
    authority: String,
    /// The destination when the target is not flattened.
    destination: istio::Destination,
    /// Timeout of the destination when not flattened.
    timeout: Option<String>,
    /// The router's translated routes, when the virtual service is served by a router.
    routes: Option<Flattening>,
}

/// A router to flatten into the gateway route.
struct Flattening {
    /// The router, for messages.
    router: ObjectRef,
    /// Its routes, as the mesh VirtualService carries them.
    routes: Vec<istio::HttpRoute>,
    /// The Service port the gateway route's target port selects.
    port: Option<u32>,
}

/// Resolves the target virtual service and what serves it.
fn target(
    ctx: &mut Ctx<'_>,
    route: &Item<GatewayRoute>,
    action: &GatewayRouteAction,
    field: &str,
) -> Option<Target> {
    let object = route.object_ref();
    let at = format!("{field}.action.target.virtualService");
    let reference = &action.target.virtual_service;
    let vs = match (
        &reference.virtual_service_ref,
        &reference.virtual_service_arn,
    ) {
        (Some(r), _) => ctx.virtual_service(r, route.namespace()),
        (None, Some(arn)) => by_arn(ctx, &ctx.inv.virtual_services, arn, route.namespace()),
        (None, None) => None,
    };
    let Some(vs) = vs else {
        let (code, at) =
            if reference.virtual_service_ref.is_none() && reference.virtual_service_arn.is_some() {
                (Code::ArnUnresolved, format!("{at}.virtualServiceARN"))
            } else {
                (Code::GatewayTargetMissing, at)
            };
        ctx.finding(
            code,
            &object,
            &at,
            format!(
                "target virtual service `{}` is not in the source; the route is not translated",
                ref_name(
                    reference.virtual_service_ref.as_ref(),
                    reference.virtual_service_arn.as_deref()
                )
            ),
        );
        return None;
    };
    if reference.virtual_service_ref.is_none()
        && let Some(arn) = &reference.virtual_service_arn
    {
        ctx.finding(
            Code::ArnResolved,
            &object,
            &format!("{at}.virtualServiceARN"),
            format!(
                "ARN `{arn}` was resolved to virtual service `{}/{}` of the source",
                vs.namespace(),
                vs.name()
            ),
        );
    }
    let host = ctx.vs_host(vs, false);
    let authority = vs
        .value
        .spec
        .aws_name
        .clone()
        .unwrap_or_else(|| format!("{}.{}", vs.name(), vs.namespace()));
    let service = ctx.service_by_host(&host);
    let port = action.target.port.and_then(|p| match service {
        Some(s) => service_port(s, p),
        None => u32::try_from(p).ok(),
    });
    if let Some(p) = action.target.port {
        let mapped = match (service, port) {
            (Some(s), Some(number)) => format!("port {number} of Service `{}`", s.name()),
            _ => format!("port {p} of `{host}`, which no Service in the source declares"),
        };
        ctx.finding(
            Code::TargetPort,
            &object,
            &format!("{field}.action.target.port"),
            format!(
                "target port {p} (a listener port of the target) is {mapped}; Istio destinations \
                 name Service ports"
            ),
        );
    }
    let mut out = Target {
        authority,
        destination: istio::Destination {
            host: host.clone(),
            subset: None,
            port: port.map(|number| istio::PortSelector { number }),
        },
        timeout: Some(millis_text(APPMESH_DEFAULT_TIMEOUT_MS)),
        routes: None,
    };
    let provider = vs.value.spec.provider.as_ref();
    let router = provider
        .and_then(|p| p.virtual_router.as_ref())
        .and_then(|p| match (&p.virtual_router_ref, &p.virtual_router_arn) {
            (Some(r), _) => ctx.router(r, vs.namespace()),
            (None, Some(arn)) => by_arn(ctx, &ctx.inv.virtual_routers, arn, vs.namespace()),
            (None, None) => None,
        });
    let node = provider
        .and_then(|p| p.virtual_node.as_ref())
        .and_then(|p| match (&p.virtual_node_ref, &p.virtual_node_arn) {
            (Some(r), _) => ctx.node(r, vs.namespace()),
            (None, Some(arn)) => by_arn(ctx, &ctx.inv.virtual_nodes, arn, vs.namespace()),
            (None, None) => None,
        });
    if let (Some(router), Some(service)) = (router, service) {
        let routes = router::http_routes(ctx, vs, router, &host, service);
        if !routes.is_empty() {
            out.routes = Some(Flattening {
                router: router.object_ref(),
                routes,
                port,
            });
            return Some(out);
        }
    }
    let what = if let Some(node) = node {
        node_destination(ctx, node, &mut out, action.target.port);
        if out.destination.host == host {
            format!(
                "virtual service `{}` is served by virtual node `{}`, whose Service is the host \
                 itself: the gateway routes to it directly, with App Mesh's defaults for a node \
                 provider (the node's listener timeout)",
                vs.name(),
                node.name()
            )
        } else {
            format!(
                "virtual service `{}` is served by virtual node `{}`, so the gateway sends its \
             requests straight to `{}`: Istio gateways do not apply the mesh VirtualService of \
             `{host}`",
                vs.name(),
                node.name(),
                out.destination.host
            )
        }
    } else if let Some(router) = router {
        format!(
            "virtual service `{}` is served by router `{}`, which has no HTTP route to flatten; \
             the gateway sends requests to `{host}`",
            vs.name(),
            router.name()
        )
    } else {
        format!(
            "virtual service `{}` has no router or node in the source; the gateway sends requests \
             to `{host}`",
            vs.name()
        )
    };
    ctx.finding(Code::TwoStageRouting, &object, &at, what);
    let timeout = out.timeout.as_deref().unwrap_or("none");
    ctx.finding(
        Code::DefaultTimeout,
        &object,
        field,
        format!(
            "gateway routes have no timeout of their own: the target's request timeout in App \
             Mesh ({timeout}) is written as the route's `timeout`"
        ),
    );
    ctx.finding(
        Code::DefaultRetries,
        &object,
        field,
        DEFAULT_RETRIES_MESSAGE,
    );
    Some(out)
}

/// Points an unflattened target at the node serving the virtual service, with its timeout.
fn node_destination(
    ctx: &mut Ctx<'_>,
    node: &Item<appmesh::VirtualNode>,
    out: &mut Target,
    target_port: Option<i64>,
) {
    let listener = node.value.spec.listeners.first();
    let timeout = router::listener_timeout(node, listener.map(|l| l.port_mapping.protocol))
        .unwrap_or(APPMESH_DEFAULT_TIMEOUT_MS);
    out.timeout = (timeout > 0).then(|| millis_text(timeout));
    if let Some(service) = ctx.node_service(node) {
        let container_port = target_port.or(listener.map(|l| l.port_mapping.port));
        out.destination = istio::Destination {
            host: ctx.service_host(service),
            subset: None,
            port: container_port
                .and_then(|p| service_port(service, p))
                .map(|number| istio::PortSelector { number }),
        };
    }
}

/// How the gateway turns the path a client sent into the path the target sees.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    /// Paths starting with `sent` (empty: every path) reach the target starting with `seen`.
    /// `loose`: `sent` lacks the trailing `/` and the rewrite also consumes an optional `/`.
    Prefix {
        sent: String,
        seen: String,
        loose: bool,
    },
    /// Paths matching `sent` reach the target as `seen`, or unchanged when `None`.
    Whole {
        sent: StringMatch,
        seen: Option<String>,
    },
}

/// The path behaviour of a gateway match (`uri`) and its rewrite, App Mesh defaults included.
fn path_of(uri: Option<&StringMatch>, rewrite: Option<&GatewayRewrite>) -> Path {
    let whole = rewrite
        .and_then(|r| r.path.as_ref())
        .and_then(|p| p.exact.clone());
    let prefix_rewrite = rewrite.and_then(|r| r.prefix.as_ref());
    match uri {
        Some(StringMatch::Prefix(sent)) if whole.is_none() => {
            let seen = match prefix_rewrite {
                Some(p) if p.default_prefix.as_deref() == Some("DISABLED") => sent.clone(),
                Some(p) if p.value.is_some() => p.value.clone().unwrap_or_default(),
                // App Mesh rewrites the matched prefix to `/` unless told otherwise.
                _ => "/".to_owned(),
            };
            let loose = seen != *sent && !sent.ends_with('/');
            Path::Prefix {
                sent: sent.clone(),
                seen,
                loose,
            }
        }
        Some(sent) => Path::Whole {
            sent: sent.clone(),
            seen: whole,
        },
        None => match whole {
            Some(seen) => Path::Whole {
                sent: StringMatch::Prefix("/".to_owned()),
                seen: Some(seen),
            },
            None => Path::Prefix {
                sent: String::new(),
                seen: String::new(),
                loose: false,
            },
        },
    }
}

/// The Istio path rewrite for a path behaviour (no `//` after a prefix without trailing `/`).
fn rewrite_of(path: &Path) -> HttpRewrite {
    let mut out = HttpRewrite::default();
    match path {
        Path::Prefix { sent, seen, .. } if sent == seen => {}
        Path::Prefix {
            sent,
            seen,
            loose: true,
        } => {
            out.uri_regex_rewrite = Some(RegexRewrite {
                match_: format!("^{}/?", re2_escape(sent)),
                rewrite: seen.clone(),
            });
        }
        Path::Prefix { seen, .. } => out.uri = Some(seen.clone()),
        Path::Whole {
            sent: StringMatch::Exact(_),
            seen: Some(seen),
        } => out.uri = Some(seen.clone()),
        // `uri` would be a prefix rewrite after a regex match: replace the whole path instead.
        Path::Whole {
            seen: Some(seen), ..
        } => {
            out.uri_regex_rewrite = Some(RegexRewrite {
                match_: "^.*$".to_owned(),
                rewrite: seen.clone(),
            });
        }
        Path::Whole { seen: None, .. } => {}
    }
    out
}

/// The rewrite of a flattened entry. Envoy's prefix rewrite replaces the prefix the entry
/// *matched*; once a router condition lengthens it (`/color/` + `/blue`), `uri: /` would eat the
/// router's part too (`/color/blue/x` → `//x`), so the gateway prefix is rewritten by a regex.
fn rewrite_for(
    rewrite: Option<&HttpRewrite>,
    path: &Path,
    matched: Option<&StringMatch>,
) -> Option<HttpRewrite> {
    let mut out = rewrite.cloned()?;
    if let Path::Prefix {
        sent,
        seen,
        loose: false,
    } = path
        && out.uri.is_some()
        && matched != Some(&StringMatch::Prefix(sent.clone()))
    {
        out.uri = None;
        out.uri_regex_rewrite = Some(RegexRewrite {
            match_: format!("^{}", re2_escape(sent)),
            rewrite: seen.clone(),
        });
    }
    Some(out)
}

/// A router route's path condition combined with a gateway route's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Combined {
    /// The condition on the path the client sent (`None`: any path).
    Uri(Option<StringMatch>),
    /// No request of the gateway route can match the router route.
    Never,
    /// The combination cannot be written as one Istio `uri` condition.
    Unsupported(String),
}

/// Translates the router's path condition (on the rewritten path) into a condition on the path
/// the client sent, intersected with the gateway route's own path condition.
fn combine_uri(path: &Path, router: Option<&StringMatch>) -> Combined {
    match path {
        Path::Prefix { sent, seen, loose } => {
            let own = (!sent.is_empty()).then(|| StringMatch::Prefix(sent.clone()));
            let join = |tail: &str, exact: bool| {
                if *loose {
                    let any = if exact { "" } else { ".*" };
                    StringMatch::Regex(format!("{}/?{}{any}", re2_escape(sent), re2_escape(tail)))
                } else if exact {
                    StringMatch::Exact(format!("{sent}{tail}"))
                } else {
                    StringMatch::Prefix(format!("{sent}{tail}"))
                }
            };
            match router {
                None | Some(StringMatch::Any(_)) => Combined::Uri(own),
                Some(StringMatch::Prefix(q)) => match q.strip_prefix(seen.as_str()) {
                    Some("") => Combined::Uri(own),
                    Some(tail) => Combined::Uri(Some(join(tail, false))),
                    None if seen.starts_with(q.as_str()) => Combined::Uri(own),
                    None => Combined::Never,
                },
                Some(StringMatch::Exact(e)) => match e.strip_prefix(seen.as_str()) {
                    Some(tail) => Combined::Uri(Some(join(tail, true))),
                    None => Combined::Never,
                },
                Some(StringMatch::Regex(x)) if sent.is_empty() => {
                    Combined::Uri(Some(StringMatch::Regex(x.clone())))
                }
                Some(StringMatch::Regex(x)) => match regex_tail(x, seen) {
                    Some(tail) => {
                        let slash = if *loose { "/?" } else { "" };
                        Combined::Uri(Some(StringMatch::Regex(format!(
                            "{}{slash}(?:{tail})",
                            re2_escape(sent)
                        ))))
                    }
                    None => Combined::Unsupported(format!(
                        "the router's path regex `{x}` does not start with the literal `{seen}` \
                         the gateway rewrites to, so it cannot be moved in front of the gateway's \
                         prefix `{sent}`"
                    )),
                },
            }
        }
        Path::Whole { sent, seen } => {
            let literal = seen.as_deref().or(match sent {
                StringMatch::Exact(e) => Some(e.as_str()),
                _ => None,
            });
            let holds = match (router, literal) {
                (None | Some(StringMatch::Any(_)), _) => Some(true),
                (Some(StringMatch::Prefix(q)), _) if q == "/" => Some(true),
                (Some(StringMatch::Prefix(q)), Some(l)) => Some(l.starts_with(q.as_str())),
                (Some(StringMatch::Exact(e)), Some(l)) => Some(l == e),
                _ => None,
            };
            match holds {
                Some(true) => Combined::Uri(Some(sent.clone())),
                Some(false) => Combined::Never,
                None => Combined::Unsupported(
                    "the router's path condition cannot be evaluated against the gateway route's \
                     path (a regular expression on either side)"
                        .to_owned(),
                ),
            }
        }
    }
}

/// The rest of `regex` after the literal text `literal`, when the regex is that literal
/// followed by more (no top-level alternation, no quantifier on the literal's last character).
fn regex_tail(regex: &str, literal: &str) -> Option<String> {
    let body = regex.strip_prefix('^').unwrap_or(regex);
    let tail = body.strip_prefix(re2_escape(literal).as_str())?;
    if tail.starts_with(['*', '+', '?', '{']) || top_level_alternation(body) {
        return None;
    }
    Some(tail.to_owned())
}

/// True when `regex` has a `|` outside groups and character classes.
fn top_level_alternation(regex: &str) -> bool {
    let (mut depth, mut class, mut escaped) = (0i32, false, false);
    for c in regex.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !class => class = true,
            ']' if class => class = false,
            '(' if !class => depth += 1,
            ')' if !class => depth -= 1,
            '|' if !class && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Why a gateway match and a router match cannot be one Istio match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clash {
    /// No request satisfies both.
    Never(String),
    /// Both constrain the same header or query parameter differently.
    Conflict(String),
}

/// The gateway route's conditions AND the router route's (except the path, combined apart).
fn merge(
    gateway: &HttpMatchRequest,
    router: &HttpMatchRequest,
    uri: Option<StringMatch>,
) -> Result<HttpMatchRequest, Clash> {
    let mut out = gateway.clone();
    out.uri = uri;
    match (&gateway.method, &router.method) {
        (Some(a), Some(b)) if a != b => {
            return Err(Clash::Never(format!(
                "the gateway route matches method {} and the router route {}",
                describe(a),
                describe(b)
            )));
        }
        (None, Some(b)) => out.method = Some(b.clone()),
        _ => {}
    }
    out.scheme = router.scheme.clone();
    for (name, value) in &router.headers {
        let merged = match out.headers.get(name) {
            None => value.clone(),
            Some(mine) => both(mine, value, &format!("header `{name}`"))?,
        };
        out.headers.insert(name.clone(), merged);
    }
    for (name, value) in &router.without_headers {
        // NOT a AND NOT b is one condition only when one of them is "absent" or they are equal.
        let merged = match out.without_headers.get(name) {
            None => value.clone(),
            Some(mine) if mine == value || matches!(mine, StringMatch::Any(_)) => mine.clone(),
            Some(_) if matches!(value, StringMatch::Any(_)) => value.clone(),
            Some(_) => return Err(Clash::Conflict(format!("header `{name}` (inverted)"))),
        };
        out.without_headers.insert(name.clone(), merged);
    }
    for (name, value) in &router.query_params {
        let merged = match out.query_params.get(name) {
            None => value.clone(),
            Some(mine) => both(mine, value, &format!("query parameter `{name}`"))?,
        };
        out.query_params.insert(name.clone(), merged);
    }
    Ok(out)
}

/// One condition equivalent to `a` AND `b` on the same value, when there is one.
fn both(a: &StringMatch, b: &StringMatch, what: &str) -> Result<StringMatch, Clash> {
    use StringMatch::{Any, Exact, Prefix};
    let never = || {
        Clash::Never(format!(
            "the gateway route wants {what} {} and the router route {}",
            describe(a),
            describe(b)
        ))
    };
    match (a, b) {
        (x, y) if x == y => Ok(x.clone()),
        (Any(_), x) | (x, Any(_)) => Ok(x.clone()),
        (Exact(_), Exact(_)) => Err(never()),
        (Exact(v), Prefix(p)) | (Prefix(p), Exact(v)) => {
            if v.starts_with(p.as_str()) {
                Ok(Exact(v.clone()))
            } else {
                Err(never())
            }
        }
        (Prefix(p), Prefix(q)) => {
            if p.starts_with(q.as_str()) {
                Ok(a.clone())
            } else if q.starts_with(p.as_str()) {
                Ok(b.clone())
            } else {
                Err(never())
            }
        }
        _ => Err(Clash::Conflict(what.to_owned())),
    }
}

/// The value of a condition, for messages.
fn describe(m: &StringMatch) -> String {
    match m {
        StringMatch::Exact(v) | StringMatch::Prefix(v) | StringMatch::Regex(v) => v.clone(),
        StringMatch::Any(_) => "present".to_owned(),
    }
}

/// One `http[]` entry per router route: the gateway match AND the router match in the client's
/// terms, the router's destinations, retries and timeout, and the gateway's rewrites.
fn flatten(
    ctx: &mut Ctx<'_>,
    route: &Item<GatewayRoute>,
    field: &str,
    target: &Target,
    (request, path): (&HttpMatchRequest, &Path),
    flattening: &Flattening,
    rewrite: Option<&HttpRewrite>,
) -> Vec<istio::HttpRoute> {
    let object = route.object_ref();
    let mut entries = Vec::new();
    let mut kept = Vec::new();
    let mut never = Vec::new();
    for r in &flattening.routes {
        let condition = r.match_.first().cloned().unwrap_or_default();
        if let (Some(wanted), Some(port)) = (flattening.port, condition.port)
            && wanted != port
        {
            never.push(format!(
                "`{}` (it matches port {port}, the gateway targets {wanted})",
                r.name
            ));
            continue;
        }
        let uri = match combine_uri(path, condition.uri.as_ref()) {
            Combined::Uri(uri) => uri,
            Combined::Never => {
                never.push(format!(
                    "`{}` (its path condition excludes every path this route forwards)",
                    r.name
                ));
                continue;
            }
            Combined::Unsupported(why) => {
                ctx.finding(
                    Code::FlattenUnsupported,
                    &object,
                    &format!("{field}.match"),
                    format!(
                        "router route `{}` of {} is left out: {why}; write the combined route by \
                         hand",
                        r.name, flattening.router
                    ),
                );
                continue;
            }
        };
        let mut condition = condition;
        condition.port = None;
        let combined = match merge(request, &condition, uri) {
            Ok(m) => m,
            Err(Clash::Never(why)) => {
                never.push(format!("`{}` ({why})", r.name));
                continue;
            }
            Err(Clash::Conflict(what)) => {
                ctx.finding(
                    Code::HeaderConflict,
                    &object,
                    &format!("{field}.match"),
                    format!(
                        "the gateway route and router route `{}` of {} both constrain {what} \
                         differently; Istio keeps one condition per name, so this combination \
                         is left out: requests it would have matched fall through to the next \
                         route",
                        r.name, flattening.router
                    ),
                );
                continue;
            }
        };
        kept.push(format!("`{}`", r.name));
        let matched = combined.uri.clone();
        entries.push(istio::HttpRoute {
            name: format!("{}-{}", route.name(), r.name),
            match_: if combined == HttpMatchRequest::default() {
                Vec::new()
            } else {
                vec![combined]
            },
            rewrite: rewrite_for(rewrite, path, matched.as_ref()),
            route: r.route.clone(),
            timeout: r.timeout.clone(),
            retries: r.retries.clone(),
        });
    }
    let mut message = format!(
        "the target `{}` is served by {}, whose routes Istio's gateway would not apply: they are \
         flattened into this route's entries with the router's weights, subsets, retries and \
         timeouts ({})",
        target.destination.host,
        flattening.router,
        if kept.is_empty() {
            "none".to_owned()
        } else {
            kept.join(", ")
        }
    );
    if !never.is_empty() {
        message.push_str(&format!(
            "; not reachable through this gateway route and left out: {}",
            never.join(", ")
        ));
    }
    if !entries
        .iter()
        .any(|e| e.match_.first() == Some(request) || e.match_.is_empty())
    {
        message.push_str(
            "; no router route takes every request of this gateway route: in Istio a request \
             none of them takes falls through to the host's next route, while App Mesh applied \
             the router to it (404 when no router route matched, inferred): confirm against the \
             App Mesh gateway's config_dump, or give the router a catch-all route",
        );
    }
    ctx.finding(
        Code::TwoStageRouting,
        &object,
        &format!("{field}.action.target.virtualService"),
        message,
    );
    entries
}

/// The VirtualService of one host on a gateway: every route serving the host, in App Mesh order.
fn virtual_service(
    ctx: &mut Ctx<'_>,
    gateway: &Item<VirtualGateway>,
    host: &str,
    translated: &[Translated],
) {
    let mut members: Vec<&Translated> = translated
        .iter()
        .filter(|t| covers(&t.host, host))
        .collect();
    members.sort_by(|a, b| a.order.cmp(&b.order));
    let label = host.replace('*', "wildcard");
    let name = dns_label(&format!("{}-{label}", gateway.name()));
    if members.len() > 1 {
        let order: Vec<&str> = members.iter().map(|t| t.name.as_str()).collect();
        for (position, member) in members.iter().enumerate() {
            ctx.finding(
                Code::GatewayPriority,
                &member.object,
                "spec.priority",
                format!(
                    "host `{host}` is served by one VirtualService `{}/{name}` whose routes are \
                     ordered by priority (default 1000), then exact path, regex path, longer \
                     prefix, then name: {}; this route is number {}",
                    gateway.namespace(),
                    order.join(", "),
                    position + 1
                ),
            );
        }
    }
    let http: Vec<istio::HttpRoute> = members
        .iter()
        .flat_map(|t| t.entries.iter().cloned())
        .collect();
    let resource = istio::Resource {
        api_version: ctx.api.networking,
        kind: "VirtualService",
        metadata: metadata(&name, gateway.namespace(), &gateway.object_ref()),
        spec: istio::VirtualServiceSpec {
            hosts: vec![host.to_owned()],
            gateways: vec![format!("{}/{}", gateway.namespace(), gateway.name())],
            http,
            tcp: Vec::new(),
        },
    };
    ctx.emit(resource.to_value());
}

/// True when a route for host pattern `pattern` also serves requests for `host`: Istio sends a
/// request to the most specific host only, so broader routes are repeated under narrower hosts.
fn covers(pattern: &str, host: &str) -> bool {
    pattern == "*"
        || pattern == host
        || pattern
            .strip_prefix('*')
            .is_some_and(|suffix| host.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appmesh::{PathRewrite, PrefixRewrite};

    fn prefix(p: &str) -> StringMatch {
        StringMatch::Prefix(p.to_owned())
    }

    fn regex(p: &str) -> StringMatch {
        StringMatch::Regex(p.to_owned())
    }

    fn rewrite(prefix: Option<PrefixRewrite>, path: Option<&str>) -> GatewayRewrite {
        GatewayRewrite {
            hostname: None,
            path: path.map(|p| PathRewrite {
                exact: Some(p.to_owned()),
            }),
            prefix,
        }
    }

    #[test]
    fn default_prefix_rewrite_never_doubles_slashes() {
        let with_slash = rewrite_of(&path_of(Some(&prefix("/color/")), None));
        assert_eq!(with_slash.uri.as_deref(), Some("/"));
        let without = rewrite_of(&path_of(Some(&prefix("/color")), None));
        assert_eq!(without.uri, None);
        assert_eq!(
            without.uri_regex_rewrite,
            Some(RegexRewrite {
                match_: "^/color/?".to_owned(),
                rewrite: "/".to_owned()
            })
        );
        assert_eq!(
            rewrite_of(&path_of(Some(&prefix("/")), None)),
            HttpRewrite::default()
        );
    }

    #[test]
    fn explicit_rewrites_follow_the_match_kind() {
        let disabled = Some(PrefixRewrite {
            default_prefix: Some("DISABLED".to_owned()),
            value: None,
        });
        let r = rewrite(disabled, None);
        assert_eq!(
            rewrite_of(&path_of(Some(&prefix("/a/")), Some(&r))),
            HttpRewrite::default()
        );
        let value = Some(PrefixRewrite {
            default_prefix: None,
            value: Some("/v2/".to_owned()),
        });
        let r = rewrite(value, None);
        assert_eq!(
            rewrite_of(&path_of(Some(&prefix("/a/")), Some(&r)))
                .uri
                .as_deref(),
            Some("/v2/")
        );
        let r = rewrite(None, Some("/new"));
        let exact = StringMatch::Exact("/old".to_owned());
        assert_eq!(
            rewrite_of(&path_of(Some(&exact), Some(&r))).uri.as_deref(),
            Some("/new")
        );
        let whole = rewrite_of(&path_of(Some(&regex("/old/.*")), Some(&r)));
        assert_eq!(whole.uri, None);
        assert_eq!(whole.uri_regex_rewrite.unwrap().match_, "^.*$");
    }

    #[test]
    fn router_prefixes_move_in_front_of_the_gateway_prefix() {
        let color = path_of(Some(&prefix("/color/")), None);
        assert_eq!(
            combine_uri(&color, Some(&prefix("/blue"))),
            Combined::Uri(Some(prefix("/color/blue")))
        );
        assert_eq!(
            combine_uri(&color, Some(&prefix("/"))),
            Combined::Uri(Some(prefix("/color/")))
        );
        assert_eq!(
            combine_uri(&color, Some(&StringMatch::Exact("/ping".to_owned()))),
            Combined::Uri(Some(StringMatch::Exact("/color/ping".to_owned())))
        );
        assert_eq!(
            combine_uri(&color, Some(&regex("^/v[0-9]+/.*"))),
            Combined::Uri(Some(regex("/color/(?:v[0-9]+/.*)")))
        );
        assert!(matches!(
            combine_uri(&color, Some(&regex("/a|/b"))),
            Combined::Unsupported(_)
        ));
        let loose = path_of(Some(&prefix("/color")), None);
        assert_eq!(
            combine_uri(&loose, Some(&prefix("/blue"))),
            Combined::Uri(Some(regex("/color/?blue.*")))
        );
        let disabled = Path::Prefix {
            sent: "/api/".to_owned(),
            seen: "/api/".to_owned(),
            loose: false,
        };
        assert_eq!(
            combine_uri(&disabled, Some(&prefix("/other"))),
            Combined::Never
        );
        assert_eq!(
            combine_uri(&disabled, Some(&prefix("/api/v1"))),
            Combined::Uri(Some(prefix("/api/v1")))
        );
    }

    #[test]
    fn regex_tails_are_taken_only_where_concatenation_is_safe() {
        assert_eq!(regex_tail("^/v1/.*", "/").as_deref(), Some("v1/.*"));
        assert_eq!(regex_tail("/(a|b)/x", "/").as_deref(), Some("(a|b)/x"));
        assert_eq!(regex_tail("/[|]x", "/").as_deref(), Some("[|]x"));
        assert_eq!(regex_tail("/a|/b", "/"), None);
        assert_eq!(regex_tail("/+x", "/"), None);
        assert_eq!(regex_tail("/api/.*", "/web/"), None);
    }

    #[test]
    fn fixed_paths_evaluate_the_router_condition() {
        let exact = Path::Whole {
            sent: StringMatch::Exact("/old".to_owned()),
            seen: Some("/new/x".to_owned()),
        };
        let sent = Combined::Uri(Some(StringMatch::Exact("/old".to_owned())));
        assert_eq!(combine_uri(&exact, Some(&prefix("/new"))), sent);
        assert_eq!(combine_uri(&exact, Some(&prefix("/x"))), Combined::Never);
        assert!(matches!(
            combine_uri(&exact, Some(&regex("/n.*"))),
            Combined::Unsupported(_)
        ));
    }

    #[test]
    fn conflicting_headers_are_refused() {
        let mut gateway = HttpMatchRequest::default();
        gateway
            .headers
            .insert("x-canary".to_owned(), StringMatch::Exact("yes".to_owned()));
        let mut router = HttpMatchRequest::default();
        router.headers.insert("x-canary".to_owned(), regex("y.*"));
        assert!(matches!(
            merge(&gateway, &router, None),
            Err(Clash::Conflict(_))
        ));
        router
            .headers
            .insert("x-canary".to_owned(), StringMatch::Exact("yes".to_owned()));
        assert!(merge(&gateway, &router, None).is_ok());
    }

    #[test]
    fn compatible_conditions_on_one_header_intersect() {
        let exact = StringMatch::Exact("v2-beta".to_owned());
        assert_eq!(both(&exact, &prefix("v2"), "h"), Ok(exact.clone()));
        assert_eq!(both(&prefix("v2"), &prefix("v2-"), "h"), Ok(prefix("v2-")));
        assert!(matches!(
            both(&exact, &StringMatch::Exact("v1".to_owned()), "h"),
            Err(Clash::Never(_))
        ));
        assert_eq!(
            both(&StringMatch::Any(istio::Empty {}), &exact, "h"),
            Ok(exact.clone())
        );
    }

    #[test]
    fn selectors_evaluate_labels_and_expressions() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        let labels = BTreeMap::from([("gateway".to_owned(), "ingress".to_owned())]);
        let by_label = LabelSelector {
            match_labels: Some(labels.clone()),
            match_expressions: None,
        };
        assert!(selects(&by_label, &labels));
        assert!(!selects(&by_label, &BTreeMap::new()));
        assert!(selects(&LabelSelector::default(), &BTreeMap::new()));
        let not_in = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "gateway".to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(vec!["ingress".to_owned()]),
            }]),
        };
        assert!(!selects(&not_in, &labels));
        assert!(selects(&not_in, &BTreeMap::new()));
    }

    #[test]
    fn broader_hosts_cover_narrower_ones() {
        assert!(covers("*", "shop.example.com"));
        assert!(covers("*.example.com", "shop.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("shop.example.com", "*.example.com"));
    }
}
