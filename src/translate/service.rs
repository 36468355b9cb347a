//! `VirtualService`: the host clients call, served by a router (→ Istio routes) or by a node.

use std::collections::BTreeMap;

use crate::appmesh::{Protocol, Ref, VirtualNode, VirtualRouter, VirtualService};
use crate::findings::Code;
use crate::inventory::{Item, ServiceView};
use crate::istio;

use super::common::{arn_name, metadata};
use super::coverage::{Disposition, Field, field};
use super::{Ctx, OverrideProblem, router};

pub(super) fn coverage() -> Vec<Field> {
    let mut fields = vec![
        field(
            "spec.awsName",
            Disposition::Exact,
            "VirtualService `hosts[0]`, as a cluster FQDN",
        ),
        field(
            "spec.provider.virtualRouter.virtualRouterRef.name",
            Disposition::Exact,
            "one VirtualService for the host with the router's routes",
        ),
        field(
            "spec.provider.virtualRouter.virtualRouterRef.namespace",
            Disposition::Exact,
            "one VirtualService for the host with the router's routes",
        ),
        field(
            "spec.provider.virtualRouter.virtualRouterARN",
            Disposition::Approx(Code::ArnResolved),
            "the router of that name in the source",
        ),
        field(
            "spec.provider.virtualNode.virtualNodeRef.name",
            Disposition::Approx(Code::NodeProvider),
            "a route to the node's Service with App Mesh's default timeout (nothing when the host is the node's own Service)",
        ),
        field(
            "spec.provider.virtualNode.virtualNodeRef.namespace",
            Disposition::Approx(Code::NodeProvider),
            "a route to the node's Service with App Mesh's default timeout (nothing when the host is the node's own Service)",
        ),
        field(
            "spec.provider.virtualNode.virtualNodeARN",
            Disposition::Approx(Code::ArnResolved),
            "the node of that name in the source",
        ),
    ];
    fields.extend(super::coverage::mesh_ref());
    fields
}

pub(super) fn translate(ctx: &mut Ctx<'_>) {
    for router in &ctx.inv.virtual_routers {
        ctx.admit("VirtualRouter", router);
    }
    for vs in &ctx.inv.virtual_services {
        if ctx.admit("VirtualService", vs) {
            one(ctx, vs);
        }
    }
}

fn one(ctx: &mut Ctx<'_>, vs: &Item<VirtualService>) {
    let object = vs.object_ref();
    let host = ctx.vs_host(vs, true);
    let Some(provider) = vs.value.spec.provider.clone() else {
        ctx.finding(
            Code::ProviderMissing,
            &object,
            "spec.provider",
            "the virtual service has no provider, so App Mesh cannot route it either; give it a \
             virtual router or node, or leave it out of the migration",
        );
        return;
    };
    let service = ctx.service_by_host(&host);
    // A Service that node translation creates (for a Cloud Map node) registers the host too.
    if service.is_none() && created_service(ctx, &host).is_none() {
        ctx.finding(
            Code::HostServiceMissing,
            &object,
            "spec.awsName",
            format!(
                "no Kubernetes Service in the source is named by host `{host}`; Istio routes only \
                 hosts in its registry: create the Service (it may have no selector) or a \
                 ServiceEntry"
            ),
        );
        return;
    }
    if let Some(router_provider) = &provider.virtual_router {
        let field = "spec.provider.virtualRouter";
        let found = match (
            &router_provider.virtual_router_ref,
            &router_provider.virtual_router_arn,
        ) {
            (Some(r), _) => ctx.router(r, vs.namespace()),
            (None, Some(arn)) => by_arn(ctx, &ctx.inv.virtual_routers, arn, vs.namespace()),
            (None, None) => None,
        };
        match (found, service) {
            (Some(r), Some(service)) => router::translate(ctx, vs, r, &host, service),
            // The router splits over subsets of the host's own Service, which only exists once
            // meshplan creates it: route by hand until then.
            (Some(_), None) => ctx.finding(
                Code::HostServiceMissing,
                &object,
                "spec.awsName",
                format!(
                    "host `{host}` has no Service in the source (meshplan creates one for its \
                     Cloud Map node, but the router's subsets need it to exist first): apply the \
                     created Service, then plan again"
                ),
            ),
            (None, _) => ctx.finding(
                Code::RouterMissing,
                &object,
                field,
                "the virtual router this service names does not exist in the source",
            ),
        }
    } else if let Some(node_provider) = &provider.virtual_node {
        let found = match (
            &node_provider.virtual_node_ref,
            &node_provider.virtual_node_arn,
        ) {
            (Some(r), _) => ctx.node(r, vs.namespace()),
            (None, Some(arn)) => by_arn(ctx, &ctx.inv.virtual_nodes, arn, vs.namespace()),
            (None, None) => None,
        };
        match found {
            Some(node) => node_provider_route(ctx, vs, node, &host),
            None => ctx.finding(
                Code::TargetMissing,
                &object,
                "spec.provider.virtualNode",
                "the virtual node this service names does not exist in the source",
            ),
        }
    } else {
        ctx.finding(
            Code::ProviderMissing,
            &object,
            "spec.provider",
            "the provider names neither a virtual router nor a virtual node",
        );
    }
}

/// An object named by the last segment of an ARN: App Mesh name (`awsName`), `name_namespace`,
/// or plain name, in that order.
pub(super) fn by_arn<'a, T: HasAwsName>(
    _ctx: &Ctx<'a>,
    items: &'a [Item<T>],
    arn: &str,
    namespace: &str,
) -> Option<&'a Item<T>> {
    let name = arn_name(arn)?;
    items
        .iter()
        .find(|i| i.value.aws_name() == Some(name))
        .or_else(|| {
            items
                .iter()
                .find(|i| format!("{}_{}", i.name(), i.namespace()) == name)
        })
        .or_else(|| {
            items
                .iter()
                .find(|i| i.namespace() == namespace && i.name() == name)
        })
}

/// Objects with an App Mesh name.
pub(super) trait HasAwsName {
    /// `spec.awsName`.
    fn aws_name(&self) -> Option<&str>;
}

impl HasAwsName for VirtualRouter {
    fn aws_name(&self) -> Option<&str> {
        self.spec.aws_name.as_deref()
    }
}

impl HasAwsName for VirtualNode {
    fn aws_name(&self) -> Option<&str> {
        self.spec.aws_name.as_deref()
    }
}

impl HasAwsName for VirtualService {
    fn aws_name(&self) -> Option<&str> {
        self.spec.aws_name.as_deref()
    }
}

/// A virtual service served directly by a node: a route to the node's own Service.
fn node_provider_route(
    ctx: &mut Ctx<'_>,
    vs: &Item<VirtualService>,
    node: &Item<VirtualNode>,
    host: &str,
) {
    let object = vs.object_ref();
    let node_host = match ctx.node_service(node) {
        Some(service) => ctx.service_host(service),
        None => match created_for_node(ctx, node) {
            Some(host) => host,
            None => {
                ctx.finding(
                    Code::HostServiceMissing,
                    &object,
                    "spec.provider.virtualNode",
                    format!(
                        "virtual node `{}` has no Kubernetes Service of its own (by DNS host name \
                         or by a selector equal to its pod labels), so there is nothing to route \
                         `{host}` to",
                        node.name()
                    ),
                );
                return;
            }
        },
    };
    if node_host == host {
        // The host is the node's own Service: plain Kubernetes routing, nothing to emit.
        return;
    }
    let listener = node.value.spec.listeners.first();
    // The node's Service exposes its listener ports as they are (created ones do by design).
    let port = listener.and_then(|l| match ctx.node_service(node) {
        Some(service) => router::service_port(service, l.port_mapping.port),
        None => super::common::port(l.port_mapping.port),
    });
    let destination = istio::Destination {
        host: node_host,
        subset: None,
        port: port.map(|number| istio::PortSelector { number }),
    };
    let mut spec = istio::VirtualServiceSpec {
        hosts: vec![host.to_owned()],
        ..Default::default()
    };
    if listener.is_some_and(|l| l.port_mapping.protocol == Protocol::Tcp) {
        spec.tcp.push(istio::TcpRoute {
            match_: Vec::new(),
            route: vec![istio::RouteDestination {
                destination,
                weight: 100,
            }],
        });
    } else {
        let timeout = router::listener_timeout(node, listener.map(|l| l.port_mapping.protocol))
            .unwrap_or(router::APPMESH_DEFAULT_TIMEOUT_MS);
        spec.http.push(istio::HttpRoute {
            name: vs.name().to_owned(),
            route: vec![istio::HttpRouteDestination {
                destination,
                weight: 100,
            }],
            timeout: (timeout > 0).then(|| super::common::millis_text(timeout)),
            ..Default::default()
        });
        ctx.finding(
            Code::DefaultRetries,
            &object,
            "spec.provider.virtualNode",
            router::DEFAULT_RETRIES_MESSAGE,
        );
    }
    let resource = istio::Resource {
        api_version: ctx.api.networking,
        kind: "VirtualService",
        metadata: metadata(vs.name(), vs.namespace(), &object),
        spec,
    };
    ctx.emit(resource.to_value());
}

/// Which `[routing.*]` override applies to a virtual service.
pub(super) fn override_key(ctx: &mut Ctx<'_>, vs: &Item<VirtualService>) -> Option<String> {
    let qualified = format!("{}/{}", vs.namespace(), vs.name());
    let keys: Vec<String> = [qualified, vs.name().to_owned()]
        .into_iter()
        .filter(|k| ctx.opts.weights.contains_key(k))
        .collect();
    ctx.used_overrides.extend(keys.iter().cloned());
    if let [qualified, bare] = keys.as_slice() {
        // Two tables for one service: which one wins would be a guess, so neither does.
        ctx.out.override_problems.push(OverrideProblem {
            service: bare.clone(),
            target: None,
            message: format!(
                "`[routing.{bare}]` and `[routing.\"{qualified}\"]` both override virtual \
                 service {qualified}"
            ),
            help: format!("keep one of them, e.g. `[routing.\"{qualified}\"]`"),
        });
        return None;
    }
    keys.into_iter().next()
}

/// Overrides that matched no virtual service in scope.
pub(super) fn unused_overrides(ctx: &mut Ctx<'_>) {
    let keys: Vec<String> = ctx.opts.weights.keys().cloned().collect();
    for key in keys {
        if ctx.used_overrides.contains(&key) {
            continue;
        }
        let names: Vec<String> = ctx
            .inv
            .virtual_services
            .iter()
            .filter(|v| ctx.in_scope(v.namespace()))
            .map(|v| v.name().to_owned())
            .collect();
        ctx.out.override_problems.push(OverrideProblem {
            service: key.clone(),
            target: None,
            message: format!("no App Mesh virtual service `{key}` in scope"),
            help: if names.is_empty() {
                "there are no virtual services in scope".to_owned()
            } else {
                format!("the virtual services in scope are: {}", names.join(", "))
            },
        });
    }
}

/// Gives a selector-less host Service the labels its target pods share.
pub(super) fn ensure_selector(
    ctx: &mut Ctx<'_>,
    service: &Item<ServiceView>,
    common: &BTreeMap<String, String>,
    vs: &Item<VirtualService>,
) -> bool {
    let current = ctx.service_now(service);
    let has_selector = current["spec"]["selector"]
        .as_object()
        .is_some_and(|s| !s.is_empty());
    if has_selector {
        return true;
    }
    if common.is_empty() {
        ctx.finding(
            Code::SubsetLabels,
            &vs.object_ref(),
            "spec.provider.virtualRouter",
            format!(
                "Service `{}` has no selector and the router's targets share no pod label, so no \
                 selector can be derived; add a shared label (e.g. `app`) to the targets' pod \
                 selectors",
                service.name()
            ),
        );
        return false;
    }
    let shown: Vec<String> = common.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    ctx.finding(
        Code::SelectorAdded,
        &service.object_ref(),
        "spec.selector",
        format!(
            "the Service had no selector (App Mesh only needed its name to resolve); it gets `{}`, \
             the labels shared by the pods of {}",
            shown.join(", "),
            vs.object_ref()
        ),
    );
    ctx.edit_service(service)["spec"]["selector"] =
        serde_json::to_value(common).expect("labels serialise");
    true
}

/// A reference's display form.
pub(super) fn ref_name(r: Option<&Ref>, arn: Option<&str>) -> String {
    match (r, arn) {
        (Some(r), _) => match &r.namespace {
            Some(ns) => format!("{ns}/{}", r.name),
            None => r.name.clone(),
        },
        (None, Some(arn)) => arn.to_owned(),
        (None, None) => "(none)".to_owned(),
    }
}

/// A Service meshplan itself creates (for a Cloud Map node) named by a cluster host, if any.
fn created_service(ctx: &Ctx<'_>, host: &str) -> Option<String> {
    let suffix = format!(".svc.{}", ctx.cluster_domain());
    let (name, namespace) = host.strip_suffix(&suffix)?.split_once('.')?;
    ctx.out
        .objects
        .iter()
        .any(|o| {
            o["apiVersion"] == "v1"
                && o["kind"] == "Service"
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"] == namespace
        })
        .then(|| host.to_owned())
}

/// The host of a Service meshplan creates for a node, selecting exactly its pods.
fn created_for_node(ctx: &Ctx<'_>, node: &Item<VirtualNode>) -> Option<String> {
    let labels = node
        .value
        .spec
        .pod_selector
        .as_ref()
        .and_then(crate::appmesh::match_labels)?;
    let labels = serde_json::to_value(labels).ok()?;
    ctx.out
        .objects
        .iter()
        .find(|o| {
            o["apiVersion"] == "v1"
                && o["kind"] == "Service"
                && o["metadata"]["namespace"] == node.namespace()
                && o["spec"]["selector"] == labels
        })
        .map(|o| {
            format!(
                "{}.{}.svc.{}",
                o["metadata"]["name"].as_str().unwrap_or_default(),
                node.namespace(),
                ctx.cluster_domain()
            )
        })
}
