//! `VirtualRouter` routes → one Istio VirtualService per host, plus DestinationRule subsets.

use std::collections::BTreeMap;

use crate::appmesh::{
    self, HttpMatch, Protocol, RetryPolicy, Route, RouteAction, RouteTimeout, VirtualNode,
    VirtualRouter, VirtualService,
};
use crate::findings::Code;
use crate::inventory::{Item, ServiceView};
use crate::istio::{self, HttpRetry};
use crate::object::ObjectRef;

use super::common::{carries, duration, metadata, millis_text};
use super::coverage::{Disposition, Field, duration as duration_fields, field};
use super::matching::{self, Problem};
use super::service::{by_arn, ensure_selector, override_key, ref_name};
use super::{Ctx, OverrideProblem, weights};

/// App Mesh's default per-request timeout, in milliseconds.
pub(super) const APPMESH_DEFAULT_TIMEOUT_MS: u64 = 15_000;
/// App Mesh's default TCP idle timeout.
const APPMESH_TCP_IDLE: &str = "300s";
/// What a route without a retry policy means.
pub(super) const DEFAULT_RETRIES_MESSAGE: &str = "no retry policy: App Mesh retried twice (503, gRPC UNAVAILABLE, connect-failure, \
     refused-stream, reset) for accounts that had no mesh before 2020-07-29 and not at all for \
     older accounts; Istio's default (2 attempts on connect-failure, refused-stream, \
     unavailable, cancelled, 503) applies, as no `retries` is emitted";

pub(super) fn coverage() -> Vec<Field> {
    let mut fields = vec![
        field("spec.awsName", Disposition::Drop, "none"),
        field(
            "spec.listeners[].portMapping.port",
            Disposition::Exact,
            "the host Service's port (checked to exist)",
        ),
        field(
            "spec.listeners[].portMapping.protocol",
            Disposition::Exact,
            "`appProtocol` of the host Service's port",
        ),
        field("spec.routes[].name", Disposition::Exact, "`http[].name`"),
        field(
            "spec.routes[].priority",
            Disposition::Exact,
            "position in `http[]` / `tcp[]` (0 first)",
        ),
    ];
    for kind in ["httpRoute", "http2Route", "grpcRoute", "tcpRoute"] {
        let p = format!("spec.routes[].{kind}");
        fields.extend(targets(&format!("{p}.action")));
        if kind == "tcpRoute" {
            fields.push(field(
                format!("{p}.match.port"),
                Disposition::Approx(Code::PortMatch),
                "`tcp[].match[].port` (Service port)",
            ));
            fields.extend(duration_fields(
                &format!("{p}.timeout.idle"),
                Disposition::Approx(Code::TcpIdleTimeout),
                "DestinationRule `trafficPolicy.connectionPool.tcp.idleTimeout` of the host",
            ));
            continue;
        }
        if kind == "grpcRoute" {
            fields.push(field(
                format!("{p}.match.serviceName"),
                Disposition::Exact,
                "`match[].uri`: prefix `/<service>/`, or exact `/<service>/<method>`",
            ));
            fields.push(field(
                format!("{p}.match.methodName"),
                Disposition::Exact,
                "`match[].uri.exact` `/<service>/<method>`",
            ));
            fields.extend(header_fields(&format!("{p}.match.metadata")));
            fields.push(field(
                format!("{p}.retryPolicy.grpcRetryEvents[]"),
                Disposition::Exact,
                "`retries.retryOn` (same gRPC status names)",
            ));
        } else {
            fields.extend(http_match_fields(&format!("{p}.match")));
            fields.push(field(
                format!("{p}.match.scheme"),
                Disposition::Approx(Code::SchemeMatch),
                "`match[].scheme.exact`",
            ));
        }
        fields.push(field(
            format!("{p}.match.port"),
            Disposition::Approx(Code::PortMatch),
            "`match[].port` (Service port)",
        ));
        fields.extend(retry_fields(&format!("{p}.retryPolicy")));
        fields.extend(duration_fields(
            &format!("{p}.timeout.perRequest"),
            Disposition::Exact,
            "`http[].timeout` (0 = none; capped by the targets' listener timeouts)",
        ));
        fields.extend(duration_fields(
            &format!("{p}.timeout.idle"),
            Disposition::Approx(Code::RouteIdleTimeout),
            "none per route (Envoy's stream idle default is also 5 min)",
        ));
    }
    fields.extend(super::coverage::mesh_ref());
    fields
}

/// Weighted targets at `prefix` (an `action`).
pub(super) fn targets(prefix: &str) -> Vec<Field> {
    vec![
        field(
            format!("{prefix}.weightedTargets[].virtualNodeRef.name"),
            Disposition::Exact,
            "`route[].destination.subset` of the host (a DestinationRule subset per node)",
        ),
        field(
            format!("{prefix}.weightedTargets[].virtualNodeRef.namespace"),
            Disposition::Exact,
            "`route[].destination.subset` of the host",
        ),
        field(
            format!("{prefix}.weightedTargets[].virtualNodeARN"),
            Disposition::Approx(Code::ArnResolved),
            "the node of that name in the source",
        ),
        field(
            format!("{prefix}.weightedTargets[].weight"),
            Disposition::Exact,
            "`route[].weight`, normalised to percentages",
        ),
        field(
            format!("{prefix}.weightedTargets[].port"),
            Disposition::Approx(Code::TargetPort),
            "`route[].destination.port.number` (Service port)",
        ),
    ]
}

/// Header (or gRPC metadata) matchers at `prefix`.
pub(super) fn header_fields(prefix: &str) -> Vec<Field> {
    let mut fields = vec![
        field(
            format!("{prefix}[].name"),
            Disposition::Exact,
            "`match[].headers` key (lower case)",
        ),
        field(
            format!("{prefix}[].invert"),
            Disposition::Exact,
            "`match[].withoutHeaders`",
        ),
    ];
    for (method, istio) in [
        ("exact", "`exact`"),
        ("prefix", "`prefix`"),
        ("regex", "`regex`"),
        ("suffix", "`regex: .*<escaped suffix>`"),
    ] {
        fields.push(field(
            format!("{prefix}[].match.{method}"),
            Disposition::Exact,
            istio,
        ));
    }
    for bound in ["start", "end"] {
        fields.push(field(
            format!("{prefix}[].match.range.{bound}"),
            Disposition::Approx(Code::HeaderRange),
            "`regex` generated for the integers in [start, end)",
        ));
    }
    fields
}

/// HTTP match fields shared with gateway routes (`prefix`, `path`, `method`, headers, query).
pub(super) fn http_match_fields(prefix: &str) -> Vec<Field> {
    let mut fields = vec![
        field(
            format!("{prefix}.prefix"),
            Disposition::Exact,
            "`match[].uri.prefix`",
        ),
        field(
            format!("{prefix}.path.exact"),
            Disposition::Exact,
            "`match[].uri.exact`",
        ),
        field(
            format!("{prefix}.path.regex"),
            Disposition::Exact,
            "`match[].uri.regex`",
        ),
        field(
            format!("{prefix}.method"),
            Disposition::Exact,
            "`match[].method.exact`",
        ),
        field(
            format!("{prefix}.queryParameters[].name"),
            Disposition::Exact,
            "`match[].queryParams` key (presence: `regex: .*`)",
        ),
        field(
            format!("{prefix}.queryParameters[].match.exact"),
            Disposition::Exact,
            "`match[].queryParams.<name>.exact`",
        ),
    ];
    fields.extend(header_fields(&format!("{prefix}.headers")));
    fields
}

fn retry_fields(prefix: &str) -> Vec<Field> {
    let mut fields = vec![
        field(
            format!("{prefix}.maxRetries"),
            Disposition::Exact,
            "`retries.attempts`",
        ),
        field(
            format!("{prefix}.httpRetryEvents[]"),
            Disposition::Exact,
            "`retries.retryOn`: server-error → 5xx,reset; gateway-error → gateway-error,reset; client-error → retriable-4xx; stream-error → refused-stream",
        ),
        field(
            format!("{prefix}.tcpRetryEvents[]"),
            Disposition::Exact,
            "`retries.retryOn`: connection-error → connect-failure",
        ),
    ];
    fields.extend(duration_fields(
        &format!("{prefix}.perRetryTimeout"),
        Disposition::Exact,
        "`retries.perTryTimeout`",
    ));
    fields
}

/// The Service port that reaches a container port (by `port` or `targetPort`).
pub(super) fn service_port(service: &Item<ServiceView>, container_port: i64) -> Option<u32> {
    let ports = &service.value.ports;
    let by_port = ports.iter().find(|p| i64::from(p.port) == container_port);
    let by_target = ports.iter().find(|p| {
        p.target_port
            .is_some_and(|t| i64::from(t) == container_port)
    });
    by_port
        .or(by_target)
        .or(if ports.len() == 1 {
            ports.first()
        } else {
            None
        })
        .and_then(|p| u32::try_from(p.port).ok())
}

/// A node listener's per-request timeout for a protocol, in ms (`None` when unset).
pub(super) fn listener_timeout(
    node: &Item<VirtualNode>,
    protocol: Option<Protocol>,
) -> Option<u64> {
    let listener = node.value.spec.listeners.first()?;
    let timeout = listener.timeout.as_ref()?;
    let per_protocol = match protocol.unwrap_or(listener.port_mapping.protocol) {
        Protocol::Http => timeout.http.as_ref(),
        Protocol::Http2 => timeout.http2.as_ref(),
        Protocol::Grpc => timeout.grpc.as_ref(),
        Protocol::Tcp => None,
    };
    per_protocol?
        .per_request
        .as_ref()
        .map(appmesh::Duration::millis)
}

/// One route of the router in the form the translation needs.
enum Kind<'r> {
    Http(&'r appmesh::HttpRoute, &'static str, Protocol),
    Grpc(&'r appmesh::GrpcRoute),
    Tcp(&'r appmesh::TcpRoute),
}

impl Kind<'_> {
    fn action(&self) -> &RouteAction {
        match self {
            Kind::Http(r, ..) => &r.action,
            Kind::Grpc(r) => &r.action,
            Kind::Tcp(r) => &r.action,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            Kind::Http(_, name, _) => name,
            Kind::Grpc(_) => "grpcRoute",
            Kind::Tcp(_) => "tcpRoute",
        }
    }
}

fn kind_of(route: &Route) -> Option<Kind<'_>> {
    if let Some(r) = &route.http_route {
        Some(Kind::Http(r, "httpRoute", Protocol::Http))
    } else if let Some(r) = &route.http2_route {
        Some(Kind::Http(r, "http2Route", Protocol::Http2))
    } else if let Some(r) = &route.grpc_route {
        Some(Kind::Grpc(r))
    } else {
        route.tcp_route.as_ref().map(Kind::Tcp)
    }
}

/// Orders routes as App Mesh evaluates them: by priority, then (unprioritised) by specificity.
pub fn order(routes: &[Route]) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..routes.len()).collect();
    indices.sort_by_key(|&i| {
        let route = &routes[i];
        let (rank, length, conditions) = specificity(route);
        (
            route.priority.is_none(),
            route.priority.unwrap_or(0),
            rank,
            std::cmp::Reverse(length),
            std::cmp::Reverse(conditions),
            route.name.clone(),
        )
    });
    indices
}

/// Exact path, regex path, prefix (longer first), none; then the number of other conditions.
fn specificity(route: &Route) -> (u8, usize, usize) {
    let http = |m: &HttpMatch| {
        let (rank, length) = match (&m.path, &m.prefix) {
            (Some(p), _) if p.exact.is_some() => (0, 0),
            (Some(_), _) => (1, 0),
            (None, Some(prefix)) => (2, prefix.len()),
            (None, None) => (3, 0),
        };
        let conditions = m.headers.len()
            + m.query_parameters.len()
            + usize::from(m.method.is_some())
            + usize::from(m.scheme.is_some())
            + usize::from(m.port.is_some());
        (rank, length, conditions)
    };
    match kind_of(route) {
        Some(Kind::Http(r, ..)) => http(&r.match_),
        Some(Kind::Grpc(r)) => {
            let m = &r.match_;
            let (rank, length) = match (&m.service_name, &m.method_name) {
                (Some(_), Some(_)) => (0, 0),
                (Some(s), None) => (2, s.len()),
                (None, Some(_)) => (1, 0),
                (None, None) => (3, 0),
            };
            (
                rank,
                length,
                m.metadata.len() + usize::from(m.port.is_some()),
            )
        }
        Some(Kind::Tcp(r)) => (
            3,
            0,
            usize::from(r.match_.as_ref().and_then(|m| m.port).is_some()),
        ),
        None => (4, 0, 0),
    }
}

/// What the router needs to know about one of its target nodes.
struct Target<'a> {
    node: &'a Item<VirtualNode>,
    weight: u64,
    port: Option<i64>,
}

/// Translates the routes of `router` for the host of `vs`, whose Service is `service`.
pub(super) fn translate(
    ctx: &mut Ctx<'_>,
    vs: &Item<VirtualService>,
    router: &Item<VirtualRouter>,
    host: &str,
    service: &Item<ServiceView>,
) {
    declare_protocols(ctx, router, service);
    let built = routes(ctx, vs, router, host, service);
    ctx.out.override_problems.extend(built.override_problems);
    if built.http.is_empty() && built.tcp.is_empty() {
        return;
    }
    subsets(ctx, vs, router, host, service, &built.nodes, built.tcp_idle);
    let resource = istio::Resource {
        api_version: ctx.api.networking,
        kind: "VirtualService",
        metadata: metadata(vs.name(), vs.namespace(), &vs.object_ref()),
        spec: istio::VirtualServiceSpec {
            hosts: vec![host.to_owned()],
            gateways: Vec::new(),
            http: built.http,
            tcp: built.tcp,
        },
    };
    ctx.emit(resource.to_value());
}

/// The Istio HTTP routes of `router` for the host of `vs`, exactly as its mesh VirtualService
/// carries them (same destinations and subsets), for gateways to flatten. Findings repeat those
/// of the mesh translation and are merged with them.
pub(super) fn http_routes(
    ctx: &mut Ctx<'_>,
    vs: &Item<VirtualService>,
    router: &Item<VirtualRouter>,
    host: &str,
    service: &Item<ServiceView>,
) -> Vec<istio::HttpRoute> {
    routes(ctx, vs, router, host, service).http
}

/// A router's routes translated for one host, before anything is emitted.
struct Built<'a> {
    http: Vec<istio::HttpRoute>,
    tcp: Vec<istio::TcpRoute>,
    nodes: Vec<&'a Item<VirtualNode>>,
    tcp_idle: Option<String>,
    override_problems: Vec<OverrideProblem>,
}

fn routes<'a>(
    ctx: &mut Ctx<'a>,
    vs: &Item<VirtualService>,
    router: &Item<VirtualRouter>,
    host: &str,
    service: &Item<ServiceView>,
) -> Built<'a> {
    let router_object = router.object_ref();
    let spec = &router.value.spec;
    let override_key = override_key(ctx, vs);
    let mut override_problems = Vec::new();
    let overrides = override_key.as_ref().map(|k| ctx.opts.weights[k].clone());

    let ordered = order(&spec.routes);
    if spec.routes.len() > 1 && spec.routes.iter().any(|r| r.priority.is_none()) {
        let shown: Vec<&str> = ordered
            .iter()
            .map(|&i| spec.routes[i].name.as_str())
            .collect();
        ctx.finding(
            Code::RouteOrder,
            &router_object,
            "spec.routes",
            format!(
                "routes without `priority` were ordered by specificity (exact path, regex, longer \
                 prefix, more conditions, then name), as App Mesh builds them: {}",
                shown.join(", ")
            ),
        );
    }

    let mut http = Vec::new();
    let mut tcp = Vec::new();
    let mut nodes: Vec<&Item<VirtualNode>> = Vec::new();
    let mut tcp_idle: Option<String> = None;
    for &index in &ordered {
        let route = &spec.routes[index];
        let Some(kind) = kind_of(route) else {
            ctx.finding(
                Code::RouteKindMissing,
                &router_object,
                &format!("spec.routes[{index}]"),
                format!(
                    "route `{}` has no httpRoute, http2Route, grpcRoute or tcpRoute",
                    route.name
                ),
            );
            continue;
        };
        let field = format!("spec.routes[{index}].{}", kind.field());
        let Some(targets) = resolve_targets(ctx, router, kind.action(), &field) else {
            continue;
        };
        let Some(percent) = route_weights(
            ctx,
            &targets,
            override_key.as_deref(),
            overrides.as_ref(),
            &router_object,
            &field,
            &mut override_problems,
        ) else {
            continue;
        };
        let mut destinations = Vec::new();
        for (target, weight) in targets.iter().zip(&percent) {
            if !nodes.iter().any(|n| std::ptr::eq(*n, target.node)) {
                nodes.push(target.node);
            }
            if *weight == 0 {
                continue;
            }
            let port = target
                .port
                .or_else(|| {
                    (spec.listeners.len() == 1).then(|| spec.listeners[0].port_mapping.port)
                })
                .and_then(|p| service_port(service, p));
            destinations.push((
                istio::Destination {
                    host: host.to_owned(),
                    subset: Some(target.node.name().to_owned()),
                    port: port.map(|number| istio::PortSelector { number }),
                },
                *weight,
            ));
        }
        match kind {
            Kind::Tcp(r) => {
                let port = r
                    .match_
                    .as_ref()
                    .and_then(|m| m.port)
                    .and_then(|p| service_port(service, p));
                tcp.push(istio::TcpRoute {
                    match_: port
                        .map(|p| vec![istio::L4MatchAttributes { port: Some(p) }])
                        .unwrap_or_default(),
                    route: destinations
                        .into_iter()
                        .map(|(destination, weight)| istio::RouteDestination {
                            destination,
                            weight,
                        })
                        .collect(),
                });
                match r.timeout.as_ref().and_then(|t| t.idle.as_ref()) {
                    Some(idle) => {
                        let text = duration(idle).unwrap_or_else(|| "0s".to_owned());
                        tcp_idle = Some(text);
                    }
                    None => {
                        ctx.finding(
                            Code::TcpIdleTimeout,
                            &router_object,
                            &field,
                            format!(
                                "no idle timeout: App Mesh's TCP default of {APPMESH_TCP_IDLE} is \
                                 written on the host's DestinationRule (Istio's default is 1h)"
                            ),
                        );
                        tcp_idle.get_or_insert_with(|| APPMESH_TCP_IDLE.to_owned());
                    }
                }
            }
            Kind::Http(r, _, protocol) => {
                let mut problems = Vec::new();
                let mut request =
                    matching::http(&r.match_, &format!("{field}.match"), &mut problems);
                request.port = r.match_.port.and_then(|p| service_port(service, p));
                let built = http_route(
                    ctx,
                    route,
                    (request, problems),
                    destinations,
                    (r.retry_policy.as_ref(), r.timeout.as_ref()),
                    (&targets, protocol),
                    (&router_object, &field),
                );
                http.push(built);
            }
            Kind::Grpc(r) => {
                let mut problems = Vec::new();
                let mut request =
                    matching::grpc(&r.match_, &format!("{field}.match"), &mut problems);
                request.port = r.match_.port.and_then(|p| service_port(service, p));
                let built = http_route(
                    ctx,
                    route,
                    (request, problems),
                    destinations,
                    (r.retry_policy.as_ref(), r.timeout.as_ref()),
                    (&targets, Protocol::Grpc),
                    (&router_object, &field),
                );
                http.push(built);
            }
        }
    }
    Built {
        http,
        tcp,
        nodes,
        tcp_idle,
        override_problems,
    }
}

/// The routes' target nodes, or `None` (with a finding) when one is missing.
fn resolve_targets<'a>(
    ctx: &mut Ctx<'a>,
    router: &Item<VirtualRouter>,
    action: &RouteAction,
    field: &str,
) -> Option<Vec<Target<'a>>> {
    let mut targets = Vec::new();
    for (t, target) in action.weighted_targets.iter().enumerate() {
        let node = match (&target.virtual_node_ref, &target.virtual_node_arn) {
            (Some(r), _) => ctx.node(r, router.namespace()),
            (None, Some(arn)) => by_arn(ctx, &ctx.inv.virtual_nodes, arn, router.namespace()),
            (None, None) => None,
        };
        let Some(node) = node else {
            let (code, what) =
                if target.virtual_node_ref.is_none() && target.virtual_node_arn.is_some() {
                    (
                        Code::ArnUnresolved,
                        "ARN names no virtual node in the source",
                    )
                } else {
                    (Code::TargetMissing, "does not exist in the source")
                };
            ctx.finding(
                code,
                &router.object_ref(),
                &format!("{field}.action.weightedTargets[{t}]"),
                format!(
                    "target virtual node `{}` {what}; the route cannot be translated",
                    ref_name(
                        target.virtual_node_ref.as_ref(),
                        target.virtual_node_arn.as_deref()
                    )
                ),
            );
            return None;
        };
        targets.push(Target {
            node,
            weight: u64::try_from(target.weight).unwrap_or(0),
            port: target.port.filter(|p| *p > 0),
        });
    }
    (!targets.is_empty()).then_some(targets)
}

/// Percentages for one route's targets: the override's, or the router's normalised.
fn route_weights(
    ctx: &mut Ctx<'_>,
    targets: &[Target<'_>],
    override_key: Option<&str>,
    overrides: Option<&BTreeMap<String, u8>>,
    router: &ObjectRef,
    field: &str,
    problems: &mut Vec<OverrideProblem>,
) -> Option<Vec<u32>> {
    let names: Vec<&str> = targets.iter().map(|t| t.node.name()).collect();
    if let (Some(key), Some(weights)) = (override_key, overrides) {
        let unknown: Vec<&String> = weights
            .keys()
            .filter(|n| !names.contains(&n.as_str()))
            .collect();
        for name in &unknown {
            problems.push(OverrideProblem {
                service: key.to_owned(),
                target: Some((*name).clone()),
                message: format!("`{name}` is not a target of {router} ({field})"),
                help: format!("the targets are: {}", names.join(", ")),
            });
        }
        if !unknown.is_empty() {
            return None;
        }
        let percent: Vec<u32> = names
            .iter()
            .map(|n| weights.get(*n).map_or(0, |w| u32::from(*w)))
            .collect();
        let shown: Vec<String> = names
            .iter()
            .zip(&percent)
            .map(|(n, w)| format!("{n} {w}"))
            .collect();
        ctx.finding(
            Code::WeightsOverridden,
            router,
            &format!("{field}.action.weightedTargets"),
            format!(
                "weights from the plan's `[routing.{key}]`: {}",
                shown.join(", ")
            ),
        );
        return Some(percent);
    }
    let raw: Vec<u64> = targets.iter().map(|t| t.weight).collect();
    let Some(percent) = weights::normalise(&raw) else {
        ctx.finding(
            Code::AllWeightsZero,
            router,
            &format!("{field}.action.weightedTargets"),
            "every target has weight 0, so neither App Mesh nor Istio can route it; give a target \
             a weight or override the weights in the plan",
        );
        return None;
    };
    // A lone target gets everything; saying "1 → 100" tells the reader nothing.
    if targets.len() > 1
        && percent
            .iter()
            .map(|p| u64::from(*p))
            .ne(raw.iter().copied())
    {
        let shown: Vec<String> = names
            .iter()
            .zip(raw.iter().zip(&percent))
            .map(|(n, (w, p))| format!("{n} {w} → {p}"))
            .collect();
        ctx.finding(
            Code::WeightsNormalised,
            router,
            &format!("{field}.action.weightedTargets"),
            format!(
                "relative weights normalised to percentages: {}",
                shown.join(", ")
            ),
        );
    }
    Some(percent)
}

/// Builds one Istio HTTP route: match, destinations, retries and timeout.
fn http_route(
    ctx: &mut Ctx<'_>,
    route: &Route,
    (request, problems): (istio::HttpMatchRequest, Vec<Problem>),
    destinations: Vec<(istio::Destination, u32)>,
    (retry, timeout): (Option<&RetryPolicy>, Option<&RouteTimeout>),
    (targets, protocol): (&[Target<'_>], Protocol),
    (router, field): (&ObjectRef, &str),
) -> istio::HttpRoute {
    for (code, at, message) in problems {
        ctx.finding(code, router, &at, message);
    }
    let retries = match retry {
        Some(policy) => Some(retries(
            ctx,
            policy,
            router,
            &format!("{field}.retryPolicy"),
        )),
        None => {
            ctx.finding(Code::DefaultRetries, router, field, DEFAULT_RETRIES_MESSAGE);
            None
        }
    };
    let timeout = effective_timeout(ctx, timeout, targets, protocol, router, field);
    istio::HttpRoute {
        name: route.name.clone(),
        match_: if request == istio::HttpMatchRequest::default() {
            Vec::new()
        } else {
            vec![request]
        },
        route: destinations
            .into_iter()
            .map(|(destination, weight)| istio::HttpRouteDestination {
                destination,
                weight,
            })
            .collect(),
        rewrite: None,
        timeout,
        retries,
    }
}

/// The route timeout App Mesh enforced: min(route, each target's listener), 15 s by default.
fn effective_timeout(
    ctx: &mut Ctx<'_>,
    timeout: Option<&RouteTimeout>,
    targets: &[Target<'_>],
    protocol: Protocol,
    router: &ObjectRef,
    field: &str,
) -> Option<String> {
    let route_ms = match timeout.and_then(|t| t.per_request.as_ref()) {
        Some(d) => d.millis(),
        None => {
            ctx.finding(
                Code::DefaultTimeout,
                router,
                field,
                "no timeout: App Mesh's default of 15s per request is written as `timeout: 15s` \
                 (Istio has none by default)",
            );
            APPMESH_DEFAULT_TIMEOUT_MS
        }
    };
    let mut effective = route_ms;
    let mut capped_by = Vec::new();
    for target in targets {
        let listener =
            listener_timeout(target.node, Some(protocol)).unwrap_or(APPMESH_DEFAULT_TIMEOUT_MS);
        // 0 disables a timeout in App Mesh.
        if listener > 0 && (effective == 0 || listener < effective) {
            effective = listener;
            capped_by.push(target.node.name().to_owned());
        }
    }
    if !capped_by.is_empty() && effective != route_ms {
        ctx.finding(
            Code::ListenerTimeout,
            router,
            &format!("{field}.timeout"),
            format!(
                "App Mesh ended requests at the smaller of the route timeout ({}) and the target \
                 listener's ({}; nodes {}); Istio has no server-side timeout, so the route gets \
                 {}",
                if route_ms == 0 {
                    "none".to_owned()
                } else {
                    millis_text(route_ms)
                },
                millis_text(effective),
                capped_by.join(", "),
                millis_text(effective)
            ),
        );
    }
    (effective > 0).then(|| millis_text(effective))
}

/// App Mesh retry policy → Istio `retries`.
fn retries(ctx: &mut Ctx<'_>, policy: &RetryPolicy, router: &ObjectRef, field: &str) -> HttpRetry {
    let mut tokens: Vec<&str> = Vec::new();
    let push = |token: &'static str, tokens: &mut Vec<&str>| {
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    };
    for event in &policy.http_retry_events {
        match event.as_str() {
            "server-error" => {
                push("5xx", &mut tokens);
                push("reset", &mut tokens);
                ctx.finding(
                    Code::ServerErrorRetry,
                    router,
                    &format!("{field}.httpRetryEvents"),
                    "`server-error` became `5xx,reset`: Envoy's 5xx also retries 509 and \
                     connection failures, which App Mesh's list did not name",
                );
            }
            "gateway-error" => {
                push("gateway-error", &mut tokens);
                push("reset", &mut tokens);
            }
            "client-error" => push("retriable-4xx", &mut tokens),
            "stream-error" => push("refused-stream", &mut tokens),
            _ => {}
        }
    }
    for event in &policy.tcp_retry_events {
        if event == "connection-error" {
            push("connect-failure", &mut tokens);
        }
    }
    for event in &policy.grpc_retry_events {
        match event.as_str() {
            "cancelled" => push("cancelled", &mut tokens),
            "deadline-exceeded" => push("deadline-exceeded", &mut tokens),
            "internal" => push("internal", &mut tokens),
            "resource-exhausted" => push("resource-exhausted", &mut tokens),
            "unavailable" => push("unavailable", &mut tokens),
            _ => {}
        }
    }
    let per_try = duration(&policy.per_retry_timeout);
    if per_try.is_none() {
        ctx.finding(
            Code::ZeroDuration,
            router,
            &format!("{field}.perRetryTimeout"),
            "a per-retry timeout of 0 (no limit per attempt) cannot be written in Istio; it is \
             left out, so each attempt is bounded by the route timeout only",
        );
    }
    if tokens.is_empty() {
        // Without events App Mesh retried nothing; an empty retryOn would bring Istio's defaults.
        return HttpRetry {
            attempts: 0,
            per_try_timeout: None,
            retry_on: None,
        };
    }
    HttpRetry {
        attempts: policy.max_retries.max(0),
        per_try_timeout: per_try,
        retry_on: Some(tokens.join(",")),
    }
}

/// Declares the router listeners' protocols on the host Service's ports.
fn declare_protocols(ctx: &mut Ctx<'_>, router: &Item<VirtualRouter>, service: &Item<ServiceView>) {
    for (i, listener) in router.value.spec.listeners.iter().enumerate() {
        let mapping = listener.port_mapping;
        let Some(number) = service_port(service, mapping.port) else {
            ctx.finding(
                Code::PortMatch,
                &router.object_ref(),
                &format!("spec.listeners[{i}].portMapping.port"),
                format!(
                    "Service `{}` has no port {}: Istio routes only ports the Service declares; \
                     add the port to the Service",
                    service.name(),
                    mapping.port
                ),
            );
            continue;
        };
        declare_protocol(ctx, service, number, mapping.protocol);
    }
}

/// Sets `appProtocol` on a Service port whose name does not already declare the protocol.
pub(super) fn declare_protocol(
    ctx: &mut Ctx<'_>,
    service: &Item<ServiceView>,
    number: u32,
    protocol: Protocol,
) {
    let Some(ports) = ctx.service_now(service)["spec"]["ports"].as_array() else {
        return;
    };
    let Some(index) = ports
        .iter()
        .position(|p| p["port"].as_u64() == Some(u64::from(number)))
    else {
        return;
    };
    let port = &ports[index];
    let name = port["name"].as_str().unwrap_or_default();
    let declared = port["appProtocol"].is_string()
        || [
            "http", "http2", "grpc", "tcp", "https", "tls", "grpc-web", "mongo", "mysql", "redis",
        ]
        .iter()
        .any(|p| {
            name.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        });
    if declared {
        return;
    }
    ctx.finding(
        Code::ProtocolDeclared,
        &service.object_ref(),
        &format!("spec.ports[{index}].appProtocol"),
        format!(
            "port {number} gets `appProtocol: {}` (from the App Mesh listener), so Istio does not \
             sniff the protocol",
            protocol.as_str()
        ),
    );
    ctx.edit_service(service)["spec"]["ports"][index]["appProtocol"] =
        serde_json::Value::String(protocol.as_str().to_owned());
}

/// DestinationRule subsets for the router's target nodes, and the host Service's selector.
fn subsets(
    ctx: &mut Ctx<'_>,
    vs: &Item<VirtualService>,
    router: &Item<VirtualRouter>,
    host: &str,
    service: &Item<ServiceView>,
    nodes: &[&Item<VirtualNode>],
    tcp_idle: Option<String>,
) {
    let router_object = router.object_ref();
    let mut selectors = Vec::new();
    for node in nodes {
        match node
            .value
            .spec
            .pod_selector
            .as_ref()
            .and_then(appmesh::match_labels)
        {
            Some(labels) if !labels.is_empty() => selectors.push(labels),
            _ => {
                ctx.finding(
                    Code::SubsetLabels,
                    &node.object_ref(),
                    "spec.podSelector",
                    format!(
                        "virtual node `{}` is a target of {router_object} but does not select its \
                         pods with `matchLabels` alone; Istio subsets need equality labels",
                        node.name()
                    ),
                );
                return;
            }
        }
    }
    let common: BTreeMap<String, String> = selectors[0]
        .iter()
        .filter(|(k, v)| selectors.iter().all(|s| s.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let distinct: Vec<BTreeMap<String, String>> = selectors
        .iter()
        .map(|s| {
            let own: BTreeMap<String, String> = s
                .iter()
                .filter(|(k, _)| !common.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if own.is_empty() { s.clone() } else { own }
        })
        .collect();
    if nodes.len() > 1 {
        for (i, labels) in distinct.iter().enumerate() {
            if distinct[..i].contains(labels) || selectors[i] == common {
                ctx.finding(
                    Code::SubsetLabels,
                    &router_object,
                    "spec.routes",
                    format!(
                        "virtual node `{}` selects the same pods as another target; give each \
                         target a label of its own (e.g. `version`) so Istio can split traffic \
                         between them",
                        nodes[i].name()
                    ),
                );
                return;
            }
        }
    }
    if !ensure_selector(ctx, service, &common, vs) {
        return;
    }
    // Subsets only split the Service's own endpoints: its selector must cover every target.
    let selector: BTreeMap<String, String> =
        serde_json::from_value(ctx.service_now(service)["spec"]["selector"].clone())
            .unwrap_or_default();
    for (node, labels) in nodes.iter().zip(&selectors) {
        if !carries(labels, &selector) {
            ctx.finding(
                Code::SubsetLabels,
                &router_object,
                "spec.routes",
                format!(
                    "Service `{}` selects pods by {selector:?}, but the pods of target `{}` are \
                     selected by {labels:?}: a subset can only split the Service's own endpoints",
                    service.name(),
                    node.name()
                ),
            );
            return;
        }
    }
    let policies: Vec<Option<istio::TrafficPolicy>> = nodes
        .iter()
        .map(|n| {
            ctx.node_policies
                .get(&(n.namespace().to_owned(), n.name().to_owned()))
                .cloned()
        })
        .collect();
    let rule = ctx.destination_rule(host, service.namespace(), service.name(), &vs.object_ref());
    for ((node, labels), policy) in nodes.iter().zip(distinct).zip(policies) {
        if rule.subsets.iter().any(|s| s.name == node.name()) {
            continue;
        }
        rule.subsets.push(istio::Subset {
            name: node.name().to_owned(),
            labels,
            traffic_policy: policy,
        });
    }
    rule.subsets.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(idle) = tcp_idle {
        let policy = rule.traffic_policy.get_or_insert_with(Default::default);
        let pool = policy.connection_pool.get_or_insert_with(Default::default);
        pool.tcp.get_or_insert_with(Default::default).idle_timeout = Some(idle);
    }
}
