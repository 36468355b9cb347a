//! App Mesh → Istio: a pure function from an inventory to Istio objects and findings.

mod fields;
pub mod weights;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value;

use crate::appmesh::{self, HttpRoute, Ref, VirtualNode, VirtualRouter, VirtualService};
use crate::findings::{self, Code, Finding};
use crate::inventory::{Inventory, Item};
use crate::istio;
use crate::object::ObjectRef;
use crate::plan::IstioVersion;

/// Label put on every object meshplan creates, so it only ever deletes its own.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "meshplan");
/// Annotation naming the App Mesh object an Istio object was translated from.
pub const SOURCE_ANNOTATION: &str = "meshplan.io/source";
/// App Mesh's default per-request timeout.
const APPMESH_DEFAULT_TIMEOUT: &str = "15s";

/// What the translation is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Namespaces in scope; `None` takes every namespace in the source.
    pub namespaces: Option<Vec<String>>,
    /// The mesh being migrated; `None` takes any.
    pub mesh: Option<String>,
    /// Target Istio release.
    pub version: IstioVersion,
    /// Weight overrides per virtual service (`name` or `namespace/name`), in percent.
    pub weights: BTreeMap<String, BTreeMap<String, u8>>,
    /// The cluster's DNS domain.
    pub cluster_domain: String,
}

/// A Service whose spec the migration changes.
#[derive(Debug, Clone)]
pub struct ServiceChange {
    /// The Service as it is.
    pub before: Value,
    /// The Service as Istio needs it.
    pub after: Value,
}

/// A weight override in the plan that does not fit the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideProblem {
    /// The `[routing.<key>]` the problem is in.
    pub service: String,
    /// The target name at fault, if it is one target.
    pub target: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What would be valid.
    pub help: String,
}

/// The Istio version of an App Mesh inventory.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    /// Istio objects: DestinationRules then VirtualServices, each sorted by namespace and name.
    pub objects: Vec<Value>,
    /// Services that need a selector or protocol for Istio.
    pub services: Vec<ServiceChange>,
    /// Namespaced App Mesh objects in scope, as read (what cleanup deletes).
    pub appmesh: Vec<Value>,
    /// The mesh's `namespaceSelector` labels (removed with App Mesh).
    pub mesh_labels: BTreeMap<String, String>,
    /// Findings, sorted.
    pub findings: Vec<Finding>,
    /// Overrides that name things the inventory does not have.
    pub override_problems: Vec<OverrideProblem>,
}

impl Translation {
    /// True when a finding is an error: the plan must not be applied.
    pub fn has_errors(&self) -> bool {
        findings::worst(&self.findings) == Some(findings::Severity::Error)
    }
}

/// Translates the App Mesh objects of an inventory into Istio.
pub fn translate(inventory: &Inventory, options: &Options) -> Translation {
    let mut t = Translator {
        inventory,
        options,
        api: istio::ApiVersions::for_version(&options.version),
        out: Translation::default(),
        used_overrides: BTreeSet::new(),
    };
    t.run();
    let mut out = t.out;
    findings::sort(&mut out.findings);
    out
}

struct Translator<'a> {
    inventory: &'a Inventory,
    options: &'a Options,
    api: istio::ApiVersions,
    out: Translation,
    used_overrides: BTreeSet<String>,
}

/// Fields of each kind the translator reads; everything else is reported.
const VIRTUAL_NODE_FIELDS: &[&str] = &[
    "spec.podSelector.matchLabels",
    "spec.listeners[].portMapping",
    "spec.serviceDiscovery.awsCloudMap",
    "spec.backends[].virtualService.virtualServiceRef",
    "spec.awsName",
    "spec.meshRef",
];
const VIRTUAL_SERVICE_FIELDS: &[&str] = &[
    "spec.awsName",
    "spec.provider.virtualRouter.virtualRouterRef",
    "spec.meshRef",
];
const VIRTUAL_ROUTER_FIELDS: &[&str] = &[
    "spec.listeners[].portMapping",
    "spec.routes[].name",
    "spec.routes[].httpRoute.match.prefix",
    "spec.routes[].httpRoute.action.weightedTargets[].virtualNodeRef",
    "spec.routes[].httpRoute.action.weightedTargets[].weight",
    "spec.routes[].httpRoute.action.weightedTargets[].port",
    "spec.routes[].http2Route.match.prefix",
    "spec.routes[].http2Route.action.weightedTargets[].virtualNodeRef",
    "spec.routes[].http2Route.action.weightedTargets[].weight",
    "spec.routes[].http2Route.action.weightedTargets[].port",
    "spec.awsName",
    "spec.meshRef",
];
const MESH_FIELDS: &[&str] = &["spec.namespaceSelector.matchLabels", "spec.awsName"];

impl<'a> Translator<'a> {
    fn in_scope(&self, namespace: &str) -> bool {
        match &self.options.namespaces {
            Some(list) => list.iter().any(|n| n == namespace),
            None => true,
        }
    }

    fn finding(&mut self, code: Code, object: ObjectRef, field: &str, message: String) {
        self.out
            .findings
            .push(Finding::new(code, object, field, message));
    }

    /// Reports fields nobody reads, and objects outside the scope; true when the item is in scope.
    fn admit<T>(&mut self, item: &Item<T>, handled: &[&str]) -> bool {
        if !self.in_scope(item.namespace()) {
            self.finding(
                Code::OutOfScope,
                item.object_ref(),
                "",
                format!(
                    "namespace `{}` is not in the plan's scope; the object is left untouched",
                    item.namespace()
                ),
            );
            return false;
        }
        self.unread_fields(item, handled);
        true
    }

    /// Reports the fields of an object the translator does not read.
    fn unread_fields<T>(&mut self, item: &Item<T>, handled: &[&str]) {
        for field in fields::unhandled(&item.raw, handled) {
            self.finding(
                Code::FieldNotTranslated,
                item.object_ref(),
                &field,
                format!(
                    "`{field}` is not translated by this version of meshplan; configure its Istio \
                     equivalent by hand or wait for a release that maps it"
                ),
            );
        }
    }

    fn run(&mut self) {
        self.meshes();
        self.namespaces();
        self.others();
        for node in &self.inventory.virtual_nodes {
            if self.admit(node, VIRTUAL_NODE_FIELDS) {
                self.virtual_node(node);
            }
        }
        for router in &self.inventory.virtual_routers {
            if self.admit(router, VIRTUAL_ROUTER_FIELDS) {
                self.out.appmesh.push(router.raw.clone());
            }
        }
        for service in &self.inventory.virtual_services {
            if self.admit(service, VIRTUAL_SERVICE_FIELDS) {
                self.out.appmesh.push(service.raw.clone());
                self.virtual_service(service);
            }
        }
        self.unused_overrides();
        // Delete what refers first: virtual services, then routers, then nodes.
        self.out.appmesh.sort_by_key(|raw| {
            let r = ObjectRef::of(raw);
            let rank = ["VirtualService", "VirtualRouter", "VirtualNode"]
                .iter()
                .position(|k| *k == r.kind);
            (rank, r.namespace, r.name)
        });
        self.out.objects.sort_by_key(|o| {
            let r = ObjectRef::of(o);
            // DestinationRules first: subsets must exist before routes use them.
            (r.kind != "DestinationRule", r.namespace, r.name)
        });
        self.out.services.sort_by_key(|s| ObjectRef::of(&s.after));
    }

    fn meshes(&mut self) {
        let wanted = self.options.mesh.clone();
        let mut found = false;
        for mesh in &self.inventory.meshes {
            if wanted.as_deref().is_some_and(|w| w != mesh.name()) {
                self.finding(
                    Code::OutOfScope,
                    mesh.object_ref(),
                    "",
                    format!(
                        "mesh `{}` is not the plan's mesh `{}`; it is left untouched",
                        mesh.name(),
                        wanted.as_deref().unwrap_or_default()
                    ),
                );
                continue;
            }
            found = true;
            self.unread_fields(mesh, MESH_FIELDS);
            if let Some(labels) = mesh
                .value
                .spec
                .namespace_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone())
            {
                self.out.mesh_labels.extend(labels);
            }
        }
        if let (Some(name), false) = (wanted, found) {
            self.finding(
                Code::MeshMissing,
                ObjectRef::new(appmesh::API_VERSION, "Mesh", None, &name),
                "",
                format!(
                    "the plan's mesh `{name}` is not in the source; check `source.mesh` and \
                     that the manifests include the Mesh object"
                ),
            );
        }
    }

    fn namespaces(&mut self) {
        let Some(wanted) = &self.options.namespaces else {
            return;
        };
        for name in wanted {
            if !self.inventory.namespaces.iter().any(|n| n.name() == name) {
                self.finding(
                    Code::NamespaceMissing,
                    ObjectRef::new("v1", "Namespace", None, name),
                    "",
                    format!(
                        "namespace `{name}` is in `source.namespaces` but not in the source; add \
                         its Namespace object or remove it from the plan"
                    ),
                );
            }
        }
    }

    fn others(&mut self) {
        for item in &self.inventory.other {
            let object = item.object_ref();
            if object.group() != appmesh::GROUP {
                self.finding(
                    Code::UnknownKind,
                    object.clone(),
                    "",
                    format!(
                        "{} is not an App Mesh kind and is not changed by the migration",
                        object.kind
                    ),
                );
            } else if !self.in_scope(item.namespace()) && !item.namespace().is_empty() {
                self.finding(
                    Code::OutOfScope,
                    object,
                    "",
                    format!(
                        "namespace `{}` is not in the plan's scope; the object is left untouched",
                        item.namespace()
                    ),
                );
            } else if object.api_version == "appmesh.k8s.aws/v1beta1" {
                self.finding(
                    Code::AppMeshV1beta1,
                    object,
                    "apiVersion",
                    "appmesh.k8s.aws/v1beta1 is not translated: upgrade the App Mesh controller \
                     and convert the object to v1beta2 first"
                        .to_owned(),
                );
            } else {
                self.finding(
                    Code::KindNotTranslated,
                    object.clone(),
                    "",
                    format!(
                        "{} {} is not translated by this version of meshplan; its traffic would \
                         not be carried over",
                        object.api_version, object.kind
                    ),
                );
            }
        }
    }

    fn virtual_node(&mut self, node: &Item<VirtualNode>) {
        let object = node.object_ref();
        self.out.appmesh.push(node.raw.clone());
        if node.raw["spec"]["serviceDiscovery"]
            .get("awsCloudMap")
            .is_some()
        {
            self.finding(
                Code::CloudMapReplaced,
                object.clone(),
                "spec.serviceDiscovery.awsCloudMap",
                "Istio finds the pods through the Kubernetes Service, not Cloud Map; the Cloud \
                 Map service can be removed after the migration"
                    .to_owned(),
            );
        }
        if node.raw["spec"]["backends"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
        {
            self.finding(
                Code::EgressOpen,
                object,
                "spec.backends",
                "App Mesh only let this node reach its declared backends; Istio lets it reach \
                 every service unless a Sidecar or AuthorizationPolicy restricts it"
                    .to_owned(),
            );
        }
    }

    fn virtual_service(&mut self, vs: &Item<VirtualService>) {
        let object = vs.object_ref();
        let namespace = vs.namespace().to_owned();
        let host = self.host(vs);
        let Some(service) = self.host_service(&host, &object) else {
            return;
        };
        let Some(provider) = &vs.value.spec.provider else {
            self.finding(
                Code::ProviderMissing,
                object,
                "spec.provider",
                "the virtual service has no provider, so App Mesh cannot route it either; give \
                 it a virtual router or node, or leave it out of the migration"
                    .to_owned(),
            );
            return;
        };
        if provider.virtual_node.is_some() {
            self.finding(
                Code::FieldNotTranslated,
                object,
                "spec.provider.virtualNode",
                "virtual services served by a virtual node are not translated by this version \
                 of meshplan; route the host to the node's Service by hand"
                    .to_owned(),
            );
            return;
        }
        let Some(router_ref) = provider
            .virtual_router
            .as_ref()
            .and_then(|r| r.virtual_router_ref.as_ref())
        else {
            return;
        };
        let router_ns = router_ref
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.clone());
        let Some(router) = self
            .inventory
            .virtual_routers
            .iter()
            .find(|r| r.namespace() == router_ns && r.name() == router_ref.name)
        else {
            self.finding(
                Code::RouterMissing,
                object,
                "spec.provider.virtualRouter.virtualRouterRef",
                format!(
                    "virtual router `{router_ns}/{}` does not exist in the source",
                    router_ref.name
                ),
            );
            return;
        };
        self.route(vs, router, &host, service);
    }

    /// The virtual service's host as an FQDN.
    fn host(&mut self, vs: &Item<VirtualService>) -> String {
        let namespace = vs.namespace();
        let domain = self.cluster_domain();
        let given = vs
            .value
            .spec
            .aws_name
            .clone()
            .unwrap_or_else(|| format!("{}.{}", vs.name(), namespace));
        let labels: Vec<&str> = given.split('.').collect();
        let fqdn = match labels.as_slice() {
            [svc] => format!("{svc}.{namespace}.svc.{domain}"),
            [svc, ns] => format!("{svc}.{ns}.svc.{domain}"),
            [svc, ns, "svc"] => format!("{svc}.{ns}.svc.{domain}"),
            _ => return given,
        };
        self.finding(
            Code::HostExpanded,
            vs.object_ref(),
            "spec.awsName",
            format!(
                "host `{given}` is written as `{fqdn}` because Istio reads names with a dot as \
                 FQDNs; clients that call `{given}` keep working through Kubernetes DNS search"
            ),
        );
        fqdn
    }

    fn cluster_domain(&self) -> &str {
        if self.options.cluster_domain.is_empty() {
            "cluster.local"
        } else {
            &self.options.cluster_domain
        }
    }

    /// The Kubernetes Service a host FQDN names, if it is a cluster Service.
    fn host_service(&mut self, host: &str, object: &ObjectRef) -> Option<&'a Item<Service>> {
        let suffix = format!(".svc.{}", self.cluster_domain());
        let found = host.strip_suffix(&suffix).and_then(|rest| {
            let (name, ns) = rest.split_once('.')?;
            self.inventory
                .services
                .iter()
                .find(|s| s.namespace() == ns && s.name() == name)
        });
        if found.is_none() {
            self.finding(
                Code::HostServiceMissing,
                object.clone(),
                "spec.awsName",
                format!(
                    "no Kubernetes Service in the source is named by host `{host}`; Istio routes \
                     only hosts in its registry: create the Service (it may have no selector) \
                     or a ServiceEntry"
                ),
            );
        }
        found
    }

    fn route(
        &mut self,
        vs: &Item<VirtualService>,
        router: &Item<VirtualRouter>,
        host: &str,
        service: &Item<Service>,
    ) {
        let vs_object = vs.object_ref();
        let router_object = router.object_ref();
        let router_ns = router.namespace().to_owned();
        let port = destination_port(router, service);
        let override_key = self.override_key(vs);
        let override_weights = override_key
            .as_ref()
            .map(|k| self.options.weights[k].clone());

        let mut http = Vec::new();
        let mut subsets: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut target_nodes: Vec<&Item<VirtualNode>> = Vec::new();
        for (index, route) in router.value.spec.routes.iter().enumerate() {
            let (kind, http_route) = match (&route.http_route, &route.http2_route) {
                (Some(r), _) => ("httpRoute", r),
                (None, Some(r)) => ("http2Route", r),
                // Other route kinds are reported by the field walker.
                (None, None) => continue,
            };
            let field = format!("spec.routes[{index}].{kind}");
            let mut targets = Vec::new();
            for (t, target) in http_route.action.weighted_targets.iter().enumerate() {
                let Some(node) = self.target_node(target.virtual_node_ref.as_ref(), &router_ns)
                else {
                    self.finding(
                        Code::TargetMissing,
                        router_object.clone(),
                        &format!("{field}.action.weightedTargets[{t}].virtualNodeRef"),
                        format!(
                            "target virtual node `{}` does not exist in the source; the route \
                             cannot be translated",
                            target
                                .virtual_node_ref
                                .as_ref()
                                .map_or("(none)", |r| r.name.as_str())
                        ),
                    );
                    targets.clear();
                    break;
                };
                targets.push((node, u64::try_from(target.weight).unwrap_or(0)));
            }
            if targets.is_empty() {
                continue;
            }
            let Some(percent) = self.weights(
                &targets,
                override_key.as_deref(),
                override_weights.as_ref(),
                &router_object,
                &field,
            ) else {
                continue;
            };
            let mut route_out = Vec::new();
            for ((node, _), weight) in targets.iter().zip(percent) {
                if !target_nodes.iter().any(|n| std::ptr::eq(*n, *node)) {
                    target_nodes.push(node);
                }
                if weight == 0 {
                    continue;
                }
                route_out.push(istio::HttpRouteDestination {
                    destination: istio::Destination {
                        host: host.to_owned(),
                        subset: Some(node.name().to_owned()),
                        port: port.map(|number| istio::PortSelector { number }),
                    },
                    weight,
                });
            }
            self.finding(
                Code::DefaultRetries,
                router_object.clone(),
                &field,
                "no retry policy: App Mesh retried twice (503, gRPC UNAVAILABLE, connect-failure, \
                 refused-stream, reset) for accounts created after 2020-07-29 and not at all \
                 before; Istio's default (2 attempts on connect-failure, refused-stream, \
                 unavailable, cancelled, 503) applies, as no `retries` is emitted"
                    .to_owned(),
            );
            self.finding(
                Code::DefaultTimeout,
                router_object.clone(),
                &field,
                format!(
                    "no timeout: App Mesh's default of {APPMESH_DEFAULT_TIMEOUT} per request is \
                     written as `timeout: {APPMESH_DEFAULT_TIMEOUT}` (Istio has none by default)"
                ),
            );
            http.push(istio::HttpRoute {
                name: route.name.clone(),
                match_: http_match(http_route),
                route: route_out,
                timeout: Some(APPMESH_DEFAULT_TIMEOUT.to_owned()),
            });
        }
        if http.is_empty() {
            return;
        }
        let Some(labels) = self.subset_labels(&target_nodes, &router_object) else {
            return;
        };
        for (node, node_labels) in target_nodes.iter().zip(labels.distinct) {
            subsets.insert(node.name().to_owned(), node_labels);
        }
        self.service_selector(service, &labels.common, &vs_object);

        let metadata = |name: &str| managed_metadata(name, &router_ns, &vs_object);
        let destination_rule = istio::Resource {
            api_version: self.api.networking,
            kind: "DestinationRule",
            metadata: metadata(vs.name()),
            spec: istio::DestinationRuleSpec {
                host: host.to_owned(),
                subsets: subsets
                    .into_iter()
                    .map(|(name, labels)| istio::Subset { name, labels })
                    .collect(),
            },
        };
        let virtual_service = istio::Resource {
            api_version: self.api.networking,
            kind: "VirtualService",
            metadata: metadata(vs.name()),
            spec: istio::VirtualServiceSpec {
                hosts: vec![host.to_owned()],
                http,
            },
        };
        self.out.objects.push(destination_rule.to_value());
        self.out.objects.push(virtual_service.to_value());
    }

    fn target_node(
        &self,
        node_ref: Option<&Ref>,
        router_ns: &str,
    ) -> Option<&'a Item<VirtualNode>> {
        let node_ref = node_ref?;
        let ns = node_ref.namespace.as_deref().unwrap_or(router_ns);
        self.inventory
            .virtual_nodes
            .iter()
            .find(|n| n.namespace() == ns && n.name() == node_ref.name)
    }

    /// Which `[routing.*]` override applies to a virtual service.
    fn override_key(&mut self, vs: &Item<VirtualService>) -> Option<String> {
        let qualified = format!("{}/{}", vs.namespace(), vs.name());
        let key = [qualified, vs.name().to_owned()]
            .into_iter()
            .find(|k| self.options.weights.contains_key(k))?;
        self.used_overrides.insert(key.clone());
        Some(key)
    }

    /// Percentages for one route's targets: the override's, or the router's normalised.
    fn weights(
        &mut self,
        targets: &[(&Item<VirtualNode>, u64)],
        override_key: Option<&str>,
        override_weights: Option<&BTreeMap<String, u8>>,
        router: &ObjectRef,
        field: &str,
    ) -> Option<Vec<u32>> {
        if let (Some(key), Some(weights)) = (override_key, override_weights) {
            let names: Vec<&str> = targets.iter().map(|(n, _)| n.name()).collect();
            let mut fits = true;
            for name in weights.keys() {
                if !names.contains(&name.as_str()) {
                    fits = false;
                    self.out.override_problems.push(OverrideProblem {
                        service: key.to_owned(),
                        target: Some(name.clone()),
                        message: format!("`{name}` is not a target of {router} ({field})"),
                        help: format!("the targets are: {}", names.join(", ")),
                    });
                }
            }
            if !fits {
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
            self.finding(
                Code::WeightsOverridden,
                router.clone(),
                &format!("{field}.action.weightedTargets"),
                format!(
                    "weights from the plan's `[routing.{key}]`: {}",
                    shown.join(", ")
                ),
            );
            return Some(percent);
        }
        let raw: Vec<u64> = targets.iter().map(|(_, w)| *w).collect();
        let Some(percent) = weights::normalise(&raw) else {
            self.finding(
                Code::AllWeightsZero,
                router.clone(),
                &format!("{field}.action.weightedTargets"),
                "every target has weight 0, so neither App Mesh nor Istio can route it; give a \
                 target a weight or override the weights in the plan"
                    .to_owned(),
            );
            return None;
        };
        if percent
            .iter()
            .map(|p| u64::from(*p))
            .ne(raw.iter().copied())
        {
            let shown: Vec<String> = targets
                .iter()
                .zip(&percent)
                .map(|((n, w), p)| format!("{} {w} → {p}", n.name()))
                .collect();
            self.finding(
                Code::WeightsNormalised,
                router.clone(),
                &format!("{field}.action.weightedTargets"),
                format!(
                    "relative weights normalised to percentages: {}",
                    shown.join(", ")
                ),
            );
        }
        Some(percent)
    }

    fn unused_overrides(&mut self) {
        for key in self.options.weights.keys() {
            if !self.used_overrides.contains(key) {
                let names: Vec<String> = self
                    .inventory
                    .virtual_services
                    .iter()
                    .filter(|v| self.in_scope(v.namespace()))
                    .map(|v| v.name().to_owned())
                    .collect();
                self.out.override_problems.push(OverrideProblem {
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
    }

    /// The labels the targets share, and per target the labels that tell it apart.
    fn subset_labels(
        &mut self,
        nodes: &[&Item<VirtualNode>],
        router: &ObjectRef,
    ) -> Option<SubsetLabels> {
        let mut selectors = Vec::new();
        for node in nodes {
            match match_labels(node.value.spec.pod_selector.as_ref()) {
                Some(labels) if !labels.is_empty() => selectors.push(labels),
                _ => {
                    self.finding(
                        Code::SubsetLabels,
                        node.object_ref(),
                        "spec.podSelector",
                        format!(
                            "virtual node `{}` is a target of {router} but selects its pods \
                             without `matchLabels`; Istio subsets need equality labels",
                            node.name()
                        ),
                    );
                    return None;
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
                    self.finding(
                        Code::SubsetLabels,
                        router.clone(),
                        "spec.routes",
                        format!(
                            "virtual node `{}` selects the same pods as another target; give \
                             each target a label of its own (e.g. `version`) so Istio can split \
                             traffic between them",
                            nodes[i].name()
                        ),
                    );
                    return None;
                }
            }
        }
        Some(SubsetLabels { common, distinct })
    }

    /// Gives a selector-less host Service the labels its target pods share.
    fn service_selector(
        &mut self,
        service: &Item<Service>,
        common: &BTreeMap<String, String>,
        vs: &ObjectRef,
    ) {
        let has_selector = service
            .value
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|s| !s.is_empty());
        if has_selector
            || self
                .out
                .services
                .iter()
                .any(|c| ObjectRef::of(&c.before) == service.object_ref())
        {
            return;
        }
        if common.is_empty() {
            self.finding(
                Code::SubsetLabels,
                vs.clone(),
                "spec.provider.virtualRouter",
                format!(
                    "Service `{}` has no selector and the router's targets share no pod label, \
                     so no selector can be derived; add a shared label (e.g. `app`) to the \
                     targets' pod selectors",
                    service.name()
                ),
            );
            return;
        }
        let mut after = service.raw.clone();
        after["spec"]["selector"] = serde_json::to_value(common).expect("labels serialise");
        let shown: Vec<String> = common.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        self.finding(
            Code::SelectorAdded,
            service.object_ref(),
            "spec.selector",
            format!(
                "the Service had no selector (App Mesh only needed its name to resolve); it gets \
                 `{}`, the labels shared by the pods of {vs}",
                shown.join(", ")
            ),
        );
        self.out.services.push(ServiceChange {
            before: service.raw.clone(),
            after,
        });
    }
}

struct SubsetLabels {
    common: BTreeMap<String, String>,
    distinct: Vec<BTreeMap<String, String>>,
}

fn match_labels(selector: Option<&LabelSelector>) -> Option<BTreeMap<String, String>> {
    selector?.match_labels.clone()
}

fn http_match(route: &HttpRoute) -> Vec<istio::HttpMatchRequest> {
    match &route.match_.prefix {
        Some(prefix) => vec![istio::HttpMatchRequest {
            uri: Some(istio::StringMatch::Prefix(prefix.clone())),
        }],
        None => Vec::new(),
    }
}

/// The Service port to address: the router listener's port when the Service has it.
fn destination_port(router: &Item<VirtualRouter>, service: &Item<Service>) -> Option<u32> {
    let ports: Vec<i32> = service
        .value
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(|p| p.iter().map(|p| p.port).collect())
        .unwrap_or_default();
    let listener = router
        .value
        .spec
        .listeners
        .first()
        .map(|l| l.port_mapping.port);
    let chosen = match (listener, ports.as_slice()) {
        (Some(port), _) if ports.iter().any(|p| i64::from(*p) == port) => Some(port),
        (_, [only]) => Some(i64::from(*only)),
        _ => None,
    };
    chosen.and_then(|p| u32::try_from(p).ok())
}

fn managed_metadata(name: &str, namespace: &str, source: &ObjectRef) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY.0.to_owned(),
            MANAGED_BY.1.to_owned(),
        )])),
        annotations: Some(BTreeMap::from([(
            SOURCE_ANNOTATION.to_owned(),
            source.to_string(),
        )])),
        ..ObjectMeta::default()
    }
}
