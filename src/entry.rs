//! The traffic entry of a parallel-namespace migration: the one object whose weights move traffic
//! from the old (App Mesh) side to the new (Istio) side — a VirtualService on an Istio Gateway, or
//! a Gateway API HTTPRoute (with the ReferenceGrant that lets it reach the old namespace).
//!
//! Pure: it builds the objects for a weight, and reads the weight back from a live object.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::inventory::Inventory;
use crate::istio::{self, ApiVersions};
use crate::object::ObjectRef;
use crate::plan::{EntryKind, PlanFile, Seg, Target};
use crate::translate::MANAGED_BY;

/// API version of the Gateway API objects meshplan writes.
pub const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";
/// API version of ReferenceGrant.
pub const REFERENCE_GRANT_API: &str = "gateway.networking.k8s.io/v1beta1";

/// A resolved entry: where each side's Service is, and the object that splits between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// VirtualService on an Istio Gateway, or HTTPRoute.
    pub kind: EntryKind,
    /// The entry object's name (`<service>-entry`), in the target namespace.
    pub name: String,
    /// The Kubernetes Service both sides serve.
    pub service: String,
    /// Its port.
    pub port: u16,
    /// The old side's namespace.
    pub source: String,
    /// The new side's namespace (where the entry lives).
    pub target: String,
    /// The gateway, `namespace/name`.
    pub gateway: String,
    /// Host names served.
    pub hosts: Vec<String>,
    /// `networking.istio.io` version for the VirtualService.
    pub api_version: String,
}

impl Entry {
    /// Resolves the plan's `strategy.entry` against the inventory: the App Mesh virtual service it
    /// names must exist in the source namespace and be served by a Kubernetes Service there.
    pub fn resolve(plan: &PlanFile, inventory: &Inventory) -> Result<Entry, crate::Error> {
        let spec = &plan.spec;
        let invalid = |message: String, help: String| -> crate::Error {
            let error = plan.error_at(
                &[Seg::Key("strategy"), Seg::Key("entry"), Seg::Key("service")],
                Target::Value,
                message,
                Some(help),
            );
            plan.invalid(vec![error]).into()
        };
        let (Some(entry), Some(target), Some(source)) = (
            spec.strategy.entry.as_ref(),
            spec.strategy.target_namespace.as_ref(),
            spec.source.namespaces.first(),
        ) else {
            return Err(crate::Error::Unsupported(
                "the parallel-namespace strategy needs `strategy.target_namespace`, \
                 `strategy.entry` and one `source.namespaces` entry"
                    .to_owned(),
            ));
        };
        let source = source.to_string();
        let name = entry
            .service
            .rsplit_once('/')
            .map_or(entry.service.as_str(), |(_, n)| n);
        let Some(virtual_service) = inventory
            .virtual_services
            .iter()
            .find(|v| v.namespace() == source && v.name() == name)
        else {
            let known: Vec<&str> = inventory
                .virtual_services
                .iter()
                .filter(|v| v.namespace() == source)
                .map(|v| v.name())
                .collect();
            return Err(invalid(
                format!("no App Mesh VirtualService `{name}` in namespace `{source}`"),
                format!("name one of: {}", known.join(", ")),
            ));
        };
        // The Service behind the name clients use: `<service>.<namespace>.svc...`.
        let host = virtual_service
            .value
            .spec
            .aws_name
            .clone()
            .unwrap_or_else(|| format!("{name}.{source}"));
        let service_name = host.split('.').next().unwrap_or(name).to_owned();
        let Some(service) = inventory
            .services
            .iter()
            .find(|s| s.namespace() == source && s.name() == service_name)
        else {
            return Err(invalid(
                format!(
                    "App Mesh VirtualService `{name}` is reached as `{host}`, but namespace \
                     `{source}` has no Service `{service_name}` to route to"
                ),
                "the entry needs a Kubernetes Service on both sides; create it or name another virtual service".to_owned(),
            ));
        };
        let port = service.raw["spec"]["ports"][0]["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(80);
        Ok(Entry {
            kind: entry.kind,
            name: format!("{service_name}-entry"),
            service: service_name,
            port,
            source,
            target: target.to_string(),
            gateway: entry.gateway.clone(),
            hosts: if entry.hosts.is_empty() {
                vec!["*".to_owned()]
            } else {
                entry.hosts.clone()
            },
            api_version: ApiVersions::for_version(&spec.istio.version)
                .networking
                .to_owned(),
        })
    }

    fn fqdn(&self, namespace: &str) -> String {
        format!("{}.{namespace}.svc.cluster.local", self.service)
    }

    /// The entry object itself.
    pub fn object_ref(&self) -> ObjectRef {
        match self.kind {
            EntryKind::IstioGateway => ObjectRef::new(
                &self.api_version,
                "VirtualService",
                Some(&self.target),
                &self.name,
            ),
            EntryKind::GatewayApi => {
                ObjectRef::new(GATEWAY_API, "HTTPRoute", Some(&self.target), &self.name)
            }
        }
    }

    /// The objects that make the entry, sending `new` percent of traffic to the new side.
    pub fn objects(&self, new: u8) -> Vec<Value> {
        let old = 100 - new.min(100);
        let labels = json!({ (MANAGED_BY.0): MANAGED_BY.1 });
        match self.kind {
            EntryKind::IstioGateway => {
                let destination = |namespace: &str, weight: u8| istio::HttpRouteDestination {
                    destination: istio::Destination {
                        host: self.fqdn(namespace),
                        subset: None,
                        port: Some(istio::PortSelector {
                            number: self.port.into(),
                        }),
                    },
                    weight: weight.into(),
                };
                let spec = istio::VirtualServiceSpec {
                    hosts: self.hosts.clone(),
                    gateways: vec![self.gateway.clone()],
                    http: vec![istio::HttpRoute {
                        name: "meshplan-split".to_owned(),
                        route: vec![
                            destination(&self.source, old),
                            destination(&self.target, new),
                        ],
                        ..istio::HttpRoute::default()
                    }],
                    tcp: Vec::new(),
                };
                vec![json!({
                    "apiVersion": self.api_version,
                    "kind": "VirtualService",
                    "metadata": {"name": self.name, "namespace": self.target, "labels": labels},
                    "spec": spec,
                })]
            }
            EntryKind::GatewayApi => {
                let (gateway_namespace, gateway) =
                    self.gateway.split_once('/').unwrap_or(("", &self.gateway));
                let mut route = json!({
                    "apiVersion": GATEWAY_API,
                    "kind": "HTTPRoute",
                    "metadata": {"name": self.name, "namespace": self.target, "labels": labels},
                    "spec": {
                        "parentRefs": [{"name": gateway, "namespace": gateway_namespace}],
                        "rules": [{"backendRefs": [
                            {"name": self.service, "namespace": self.source, "port": self.port, "weight": old},
                            {"name": self.service, "port": self.port, "weight": new},
                        ]}],
                    },
                });
                if self.hosts != ["*"] {
                    route["spec"]["hostnames"] = json!(self.hosts);
                }
                // Without it the route may not reach a Service in another namespace.
                let grant = json!({
                    "apiVersion": REFERENCE_GRANT_API,
                    "kind": "ReferenceGrant",
                    "metadata": {"name": format!("{}-from-{}", self.name, self.target), "namespace": self.source, "labels": labels},
                    "spec": {
                        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": self.target}],
                        "to": [{"group": "", "kind": "Service", "name": self.service}],
                    },
                });
                vec![route, grant]
            }
        }
    }

    fn destinations<'a>(&self, live: &'a Value) -> Option<&'a Vec<Value>> {
        match self.kind {
            EntryKind::IstioGateway => live["spec"]["http"][0]["route"].as_array(),
            EntryKind::GatewayApi => live["spec"]["rules"][0]["backendRefs"].as_array(),
        }
    }

    fn is_new(&self, destination: &Value) -> bool {
        match self.kind {
            EntryKind::IstioGateway => {
                destination["destination"]["host"].as_str() == Some(&self.fqdn(&self.target))
            }
            EntryKind::GatewayApi => {
                destination["namespace"]
                    .as_str()
                    .is_none_or(|n| n == self.target)
                    && destination["name"].as_str() == Some(&self.service)
            }
        }
    }

    /// The share of traffic the live entry sends to the new side, in percent; `None` when the
    /// object no longer has the shape meshplan wrote (someone rewrote it).
    pub fn weight_of(&self, live: &Value) -> Option<u8> {
        let destinations = self.destinations(live)?;
        if destinations.len() != 2 {
            return None;
        }
        let total: u64 = destinations
            .iter()
            .map(|d| d["weight"].as_u64().unwrap_or(0))
            .sum();
        let new: u64 = destinations
            .iter()
            .filter(|d| self.is_new(d))
            .map(|d| d["weight"].as_u64().unwrap_or(0))
            .sum();
        if total == 0 {
            return None;
        }
        u8::try_from(new * 100 / total).ok()
    }

    /// The live entry with `new` percent to the new side; everything else as it is.
    pub fn with_weight(&self, live: &Value, new: u8) -> Value {
        let mut next = live.clone();
        let pointer = match self.kind {
            EntryKind::IstioGateway => "/spec/http/0/route",
            EntryKind::GatewayApi => "/spec/rules/0/backendRefs",
        };
        let flags: Vec<bool> = self
            .destinations(live)
            .map(|d| d.iter().map(|d| self.is_new(d)).collect())
            .unwrap_or_default();
        if let Some(Value::Array(destinations)) = next.pointer_mut(pointer) {
            for (destination, is_new) in destinations.iter_mut().zip(flags) {
                destination["weight"] = json!(if is_new { new } else { 100 - new });
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind) -> Entry {
        Entry {
            kind,
            name: "color-entry".into(),
            service: "color".into(),
            port: 8080,
            source: "shop".into(),
            target: "shop-istio".into(),
            gateway: "istio-system/ingressgateway".into(),
            hosts: vec!["color.example.com".into()],
            api_version: "networking.istio.io/v1".into(),
        }
    }

    #[test]
    fn weights_are_written_and_read_back_for_both_kinds() {
        for kind in [EntryKind::IstioGateway, EntryKind::GatewayApi] {
            let e = entry(kind);
            let objects = e.objects(0);
            assert_eq!(ObjectRef::of(&objects[0]), e.object_ref());
            assert_eq!(e.weight_of(&objects[0]), Some(0));
            let moved = e.with_weight(&objects[0], 25);
            assert_eq!(e.weight_of(&moved), Some(25));
            assert_eq!(moved, e.objects(25)[0]);
        }
        let grant = &entry(EntryKind::GatewayApi).objects(0)[1];
        assert_eq!(grant["metadata"]["namespace"], "shop");
        assert_eq!(grant["spec"]["from"][0]["namespace"], "shop-istio");
    }

    #[test]
    fn an_entry_someone_rewrote_has_no_weight() {
        let e = entry(EntryKind::IstioGateway);
        let mut object = e.objects(50).remove(0);
        object["spec"]["http"][0]["route"]
            .as_array_mut()
            .unwrap()
            .pop();
        assert_eq!(e.weight_of(&object), None);
    }
}
