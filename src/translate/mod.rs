//! App Mesh → Istio: a pure function from an inventory to Istio objects and findings.
//!
//! One module per App Mesh kind; each declares the disposition of every field of its kind
//! (`coverage()`) and translates the objects of that kind. They share [`Ctx`], which holds the
//! inventory, the findings and the objects being built, so that one destination host gets one
//! DestinationRule and one Service is edited once, whoever contributes to it.

mod backend_group;
pub mod common;
mod constraints;
pub mod coverage;
mod gateway;
mod index;
pub mod matching;
mod mesh;
mod node;
mod router;
mod service;
pub mod validate;
pub mod weights;
mod workload;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::appmesh::{self, Ref};
use crate::findings::{self, Code, Finding};
use crate::inventory::{Inventory, Item, ServiceView};
use crate::istio::{self, ApiVersions};
use crate::object::ObjectRef;
use crate::plan::IstioVersion;

/// Label put on every object meshplan creates, so it only ever deletes its own.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "meshplan");
/// Annotation naming the App Mesh object an Istio object was translated from.
pub const SOURCE_ANNOTATION: &str = "meshplan.io/source";

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
    /// The cluster's DNS domain (default `cluster.local`).
    pub cluster_domain: String,
}

/// An existing object (a Service, a Deployment) whose spec the migration changes.
#[derive(Debug, Clone)]
pub struct ObjectChange {
    /// The object as it is (as read: shared with the inventory).
    pub before: Arc<Value>,
    /// The object as Istio needs it.
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
    /// Istio objects, in apply order (registries and destination rules before routes).
    pub objects: Vec<Value>,
    /// Services that need a selector or a declared protocol for Istio.
    pub services: Vec<ObjectChange>,
    /// Deployments whose pod templates carry App Mesh settings, rewritten for Istio.
    pub workloads: Vec<ObjectChange>,
    /// Namespaced App Mesh objects in scope, in deletion order (as read: in the inventory).
    pub appmesh: Vec<ObjectRef>,
    /// Deployments that are App Mesh virtual gateways (their envoy is the gateway, not a
    /// sidecar): an Istio gateway replaces them (MP401), so they are neither restarted nor cloned.
    pub gateway_deployments: BTreeSet<ObjectRef>,
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
    let mut ctx = Ctx {
        inv: inventory,
        opts: options,
        api: ApiVersions::for_version(&options.version),
        out: Translation::default(),
        destination_rules: BTreeMap::new(),
        node_policies: BTreeMap::new(),
        used_overrides: BTreeSet::new(),
        table: coverage::table(),
        egress: None,
        declared: Vec::new(),
        index: index::Index::new(inventory),
        service_edits: HashMap::new(),
        routed: std::cell::OnceCell::new(),
    };
    mesh::translate(&mut ctx);
    ctx.others();
    node::translate(&mut ctx);
    backend_group::translate(&mut ctx);
    service::translate(&mut ctx);
    gateway::translate(&mut ctx);
    workload::translate(&mut ctx);
    ctx.finish()
}

/// A DestinationRule being assembled for one host.
struct PendingRule {
    namespace: String,
    name: String,
    source: ObjectRef,
    spec: istio::DestinationRuleSpec,
}

/// The translation in progress, shared by the per-kind translators.
pub(crate) struct Ctx<'a> {
    /// Everything read.
    pub inv: &'a Inventory,
    /// The options.
    pub opts: &'a Options,
    /// API versions to emit.
    pub api: ApiVersions,
    out: Translation,
    destination_rules: BTreeMap<String, PendingRule>,
    /// Client-side traffic policy of each node (namespace, name), applied to its subsets.
    pub node_policies: BTreeMap<(String, String), istio::TrafficPolicy>,
    used_overrides: BTreeSet<String>,
    table: Vec<coverage::KindCoverage>,
    /// The mesh's egress filter; `None` when the source has no mesh.
    pub egress: Option<appmesh::EgressFilterType>,
    /// Findings the coverage table raised; a translator's own finding for the same code, object
    /// and field (or a field inside it) replaces them with a more specific message.
    declared: Vec<Finding>,
    /// Lookups by name and namespace.
    pub index: index::Index<'a>,
    /// Where each edited Service is in `out.services`.
    service_edits: HashMap<ObjectRef, usize>,
    /// The virtual nodes some router sends traffic to, worked out on first use.
    pub routed: std::cell::OnceCell<std::collections::HashSet<ObjectRef>>,
}

impl<'a> Ctx<'a> {
    /// Records a finding.
    pub fn finding(
        &mut self,
        code: Code,
        object: &ObjectRef,
        field: &str,
        message: impl Into<String>,
    ) {
        self.out
            .findings
            .push(Finding::new(code, object.clone(), field, message));
    }

    /// True when the namespace is in the plan's scope.
    pub fn in_scope(&self, namespace: &str) -> bool {
        match &self.opts.namespaces {
            Some(list) => list.iter().any(|n| n == namespace),
            None => true,
        }
    }

    /// The cluster's DNS domain.
    pub fn cluster_domain(&self) -> &str {
        if self.opts.cluster_domain.is_empty() {
            "cluster.local"
        } else {
            &self.opts.cluster_domain
        }
    }

    /// Checks scope and fields of a namespaced App Mesh object; true when it is to be translated.
    pub fn admit<T>(&mut self, kind: &str, item: &Item<T>) -> bool {
        if !self.in_scope(item.namespace()) {
            self.finding(
                Code::OutOfScope,
                &item.object_ref(),
                "",
                format!(
                    "namespace `{}` is not in the plan's scope; the object is left untouched",
                    item.namespace()
                ),
            );
            return false;
        }
        self.check_fields(kind, item);
        self.out.appmesh.push(item.object_ref());
        true
    }

    /// Raises the findings the coverage table declares for the fields present in an object.
    pub fn check_fields<T>(&mut self, kind: &str, item: &Item<T>) {
        let Some(fields) = self
            .table
            .iter()
            .find(|k| k.kind == kind)
            .map(|k| &k.fields)
        else {
            return;
        };
        let object = item.object_ref();
        let mut raised = Vec::new();
        // Fields of one code under one parent (a health check's seven leaves) are one finding.
        // With where the group's first field goes in Istio.
        let mut grouped: BTreeMap<(Code, String), (&str, Vec<String>)> = BTreeMap::new();
        for present in coverage::present(fields, &item.raw) {
            match present.field {
                None => raised.push(Finding::new(
                    Code::UnknownField,
                    object.clone(),
                    &present.path,
                    format!(
                        "`{}` is not a field of App Mesh v1beta2 {kind}; App Mesh ignores it and \
                         so does meshplan: check the spelling",
                        present.path
                    ),
                )),
                Some(field) => {
                    if let Some(code) = field.disposition.code() {
                        let parent = present
                            .path
                            .rsplit_once('.')
                            .map_or(present.path.clone(), |(p, _)| p.to_owned());
                        grouped
                            .entry((code, parent))
                            .or_insert_with(|| (field.istio, Vec::new()))
                            .1
                            .push(present.path);
                    }
                }
            }
        }
        for (path, problem) in validate::check(kind, &item.raw) {
            raised.push(Finding::new(
                Code::InvalidObject,
                object.clone(),
                &path,
                format!("{problem}; the App Mesh API server would reject this object"),
            ));
        }
        for ((code, parent), (istio, paths)) in grouped {
            let at = if paths.len() == 1 {
                paths[0].clone()
            } else {
                parent
            };
            raised.push(Finding::new(
                code,
                object.clone(),
                &at,
                format!("{} In Istio: {istio}.", code.summary()),
            ));
        }
        self.declared.extend(raised);
    }

    /// Adds an Istio object to the output.
    pub fn emit(&mut self, object: Value) {
        self.out.objects.push(object);
    }

    /// The DestinationRule of a destination host, created on first use (one per host).
    pub fn destination_rule(
        &mut self,
        host: &str,
        namespace: &str,
        name: &str,
        source: &ObjectRef,
    ) -> &mut istio::DestinationRuleSpec {
        &mut self
            .destination_rules
            .entry(host.to_owned())
            .or_insert_with(|| PendingRule {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source: source.clone(),
                spec: istio::DestinationRuleSpec {
                    host: host.to_owned(),
                    ..Default::default()
                },
            })
            .spec
    }

    /// The Service's desired state, starting from the Service as read.
    pub fn edit_service(&mut self, service: &Item<ServiceView>) -> &mut Value {
        let object = service.object_ref();
        let index = match self.service_edits.get(&object) {
            Some(&i) => i,
            None => {
                self.out.services.push(ObjectChange {
                    before: Arc::clone(&service.raw),
                    after: Value::clone(&service.raw),
                });
                let i = self.out.services.len() - 1;
                self.service_edits.insert(object, i);
                i
            }
        };
        &mut self.out.services[index].after
    }

    /// The Service as it will be after earlier edits (or as read).
    pub fn service_now<'s>(&'s self, service: &'s Item<ServiceView>) -> &'s Value {
        self.service_edits
            .get(&service.object_ref())
            .map_or(&service.raw, |&i| &self.out.services[i].after)
    }

    /// A Service by namespace and name.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&'a Item<ServiceView>> {
        self.index.service(namespace, name)
    }

    /// The Service a cluster FQDN (`name.namespace.svc.<domain>`) names.
    pub fn service_by_host(&self, host: &str) -> Option<&'a Item<ServiceView>> {
        let suffix = format!(".svc.{}", self.cluster_domain());
        let (name, ns) = host.strip_suffix(&suffix)?.split_once('.')?;
        self.service(ns, name)
    }

    /// The cluster FQDN of a Service.
    pub fn service_host(&self, service: &Item<ServiceView>) -> String {
        format!(
            "{}.{}.svc.{}",
            service.name(),
            service.namespace(),
            self.cluster_domain()
        )
    }

    /// Expands a host name the way App Mesh clients resolve it in the cluster.
    pub fn fqdn(&self, host: &str, namespace: &str) -> String {
        let domain = self.cluster_domain();
        let labels: Vec<&str> = host.split('.').collect();
        match labels.as_slice() {
            [svc] => format!("{svc}.{namespace}.svc.{domain}"),
            [svc, ns] => format!("{svc}.{ns}.svc.{domain}"),
            [svc, ns, "svc"] => format!("{svc}.{ns}.svc.{domain}"),
            _ => host.to_owned(),
        }
    }

    /// A virtual node by reference (the referrer's namespace by default).
    pub fn node(&self, r: &Ref, namespace: &str) -> Option<&'a Item<appmesh::VirtualNode>> {
        let ns = r.namespace.as_deref().unwrap_or(namespace);
        self.index.node(ns, &r.name)
    }

    /// A virtual service by reference.
    pub fn virtual_service(
        &self,
        r: &Ref,
        namespace: &str,
    ) -> Option<&'a Item<appmesh::VirtualService>> {
        let ns = r.namespace.as_deref().unwrap_or(namespace);
        self.index.virtual_service(ns, &r.name)
    }

    /// A virtual router by reference.
    pub fn router(&self, r: &Ref, namespace: &str) -> Option<&'a Item<appmesh::VirtualRouter>> {
        let ns = r.namespace.as_deref().unwrap_or(namespace);
        self.index.router(ns, &r.name)
    }

    /// A backend group by reference.
    pub fn backend_group(
        &self,
        r: &Ref,
        namespace: &str,
    ) -> Option<&'a Item<appmesh::BackendGroup>> {
        let ns = r.namespace.as_deref().unwrap_or(namespace);
        self.index.backend_group(ns, &r.name)
    }

    /// The host name of an App Mesh virtual service, as an FQDN (`MP211` when expanded).
    pub fn vs_host(&mut self, vs: &Item<appmesh::VirtualService>, report: bool) -> String {
        let given = vs
            .value
            .spec
            .aws_name
            .clone()
            .unwrap_or_else(|| format!("{}.{}", vs.name(), vs.namespace()));
        let fqdn = self.fqdn(&given, vs.namespace());
        if report && fqdn != given {
            self.finding(
                Code::HostExpanded,
                &vs.object_ref(),
                "spec.awsName",
                format!(
                    "host `{given}` is written as `{fqdn}` because Istio reads names with a dot \
                     as FQDNs; clients that call `{given}` keep working through Kubernetes DNS \
                     search paths"
                ),
            );
        }
        fqdn
    }

    /// The Service that carries a node's own traffic: its DNS host name's Service, or the
    /// Service whose selector equals the node's pod labels.
    pub fn node_service(&self, node: &Item<appmesh::VirtualNode>) -> Option<&'a Item<ServiceView>> {
        let spec = &node.value.spec;
        if let Some(dns) = spec.service_discovery.as_ref().and_then(|d| d.dns.as_ref()) {
            let host = self.fqdn(&dns.hostname, node.namespace());
            if let Some(service) = self.service_by_host(&host) {
                return Some(service);
            }
        }
        let labels = spec.pod_selector.as_ref().and_then(appmesh::match_labels)?;
        if labels.is_empty() {
            return None;
        }
        self.index
            .services_in(node.namespace())
            .iter()
            .copied()
            .find(|s| s.value.selector == labels)
    }

    /// Objects outside App Mesh v1beta2, and objects that failed to decode.
    fn others(&mut self) {
        for (item, reason) in &self.inv.invalid {
            let object = item.object_ref();
            if !self.in_scope(item.namespace()) && !item.namespace().is_empty() {
                continue;
            }
            // The inventory writes "field `path`: message"; the path belongs in `field`.
            let (field, message) = reason
                .strip_prefix("field `")
                .and_then(|r| r.split_once("`: "))
                .unwrap_or(("", reason.as_str()));
            self.finding(
                Code::InvalidObject,
                &object,
                field,
                format!(
                    "{message} ({}:{}); the object is not translated",
                    item.origin.file.display(),
                    item.origin.line
                ),
            );
        }
        for item in &self.inv.other {
            let object = item.object_ref();
            if object.group() != appmesh::GROUP {
                self.finding(
                    Code::UnknownKind,
                    &object,
                    "",
                    format!(
                        "{} is not an App Mesh kind and is not changed by the migration",
                        object.kind
                    ),
                );
            } else if !self.in_scope(item.namespace()) && !item.namespace().is_empty() {
                self.finding(
                    Code::OutOfScope,
                    &object,
                    "",
                    format!(
                        "namespace `{}` is not in the plan's scope; the object is left untouched",
                        item.namespace()
                    ),
                );
            } else if object.api_version == "appmesh.k8s.aws/v1beta1" {
                self.finding(
                    Code::AppMeshV1beta1,
                    &object,
                    "apiVersion",
                    "appmesh.k8s.aws/v1beta1 is not translated: upgrade the App Mesh controller \
                     and convert the object to v1beta2 first",
                );
            } else {
                self.finding(
                    Code::UnknownAppMeshKind,
                    &object,
                    "",
                    format!(
                        "{} {} is not a kind of App Mesh v1beta2",
                        object.api_version, object.kind
                    ),
                );
            }
        }
    }

    fn finish(mut self) -> Translation {
        service::unused_overrides(&mut self);
        let declared = std::mem::take(&mut self.declared);
        // The translator's findings by object: each declared finding is checked against its
        // object's only, not against every finding.
        let mut by_object: HashMap<ObjectRef, Vec<usize>> = HashMap::new();
        for (i, f) in self.out.findings.iter().enumerate() {
            by_object.entry(f.object.clone()).or_default().push(i);
        }
        for finding in declared {
            let related = |a: &str, b: &str| {
                a == b
                    || a.starts_with(&format!("{b}."))
                    || b.starts_with(&format!("{a}."))
                    || a.starts_with(&format!("{b}["))
                    || b.starts_with(&format!("{a}["))
            };
            let own = by_object
                .get(&finding.object)
                .map_or(&[][..], Vec::as_slice);
            let specific = own.iter().map(|&i| &self.out.findings[i]).any(|f| {
                related(&f.field, &finding.field)
                    // Same code: the translator said it better. An error: the field did not
                    // carry over at all, so a note on how it carries over would mislead.
                    && (f.code == finding.code
                        || (f.severity == findings::Severity::Error
                            && finding.severity != findings::Severity::Error))
            });
            if !specific {
                by_object
                    .entry(finding.object.clone())
                    .or_default()
                    .push(self.out.findings.len());
                self.out.findings.push(finding);
            }
        }
        let rules = std::mem::take(&mut self.destination_rules);
        for rule in rules.into_values() {
            let resource = istio::Resource {
                api_version: self.api.networking,
                kind: "DestinationRule",
                metadata: common::metadata(&rule.name, &rule.namespace, &rule.source),
                spec: rule.spec,
            };
            self.out.objects.push(resource.to_value());
        }
        let mut out = self.out;
        // Sorted on borrowed keys: thousands of objects, a key made per comparison.
        fn apply_order(o: &Value) -> (usize, Option<&str>, &str) {
            let (_, kind, namespace, name) = crate::object::parts(o);
            (kind_rank(kind), namespace, name)
        }
        out.objects
            .sort_by(|a, b| apply_order(a).cmp(&apply_order(b)));
        fn object_order(a: &ObjectChange, b: &ObjectChange) -> std::cmp::Ordering {
            crate::object::parts(&a.after).cmp(&crate::object::parts(&b.after))
        }
        out.services.sort_by(object_order);
        // A Service change that ended up changing nothing is not a change.
        out.services.retain(|s| *s.before != s.after);
        out.workloads.sort_by(object_order);
        // Delete what refers first: gateway routes, gateways, services, routers, nodes, groups.
        out.appmesh.sort_by_cached_key(|r| {
            let rank = [
                "GatewayRoute",
                "VirtualGateway",
                "VirtualService",
                "VirtualRouter",
                "VirtualNode",
                "BackendGroup",
            ]
            .iter()
            .position(|k| *k == r.kind);
            (rank, r.namespace.clone(), r.name.clone())
        });
        findings::sort(&mut out.findings);
        out.findings.dedup();
        out
    }
}

/// Apply order of Istio kinds: registries and destination rules before the routes that use them.
fn kind_rank(kind: &str) -> usize {
    [
        "ServiceEntry",
        "DestinationRule",
        "Gateway",
        "VirtualService",
        "Sidecar",
        "PeerAuthentication",
        "AuthorizationPolicy",
        "Telemetry",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap_or(usize::MAX)
}
