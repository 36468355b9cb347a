//! Lookups built once per translation: objects by namespace and name, and per namespace, so that
//! references resolve in constant time instead of by scanning the inventory (which made large
//! meshes quadratic). The first object of a name wins, as a scan would have found it.

use std::collections::HashMap;

use crate::appmesh::{BackendGroup, VirtualNode, VirtualRouter, VirtualService};
use crate::inventory::{Inventory, Item, ServiceView, Workload};

type ByName<'a, T> = HashMap<(&'a str, &'a str), &'a Item<T>>;

/// The inventory's objects by (namespace, name), and by namespace.
pub struct Index<'a> {
    nodes: ByName<'a, VirtualNode>,
    virtual_services: ByName<'a, VirtualService>,
    routers: ByName<'a, VirtualRouter>,
    backend_groups: ByName<'a, BackendGroup>,
    services: ByName<'a, ServiceView>,
    services_in: HashMap<&'a str, Vec<&'a Item<ServiceView>>>,
    deployments_in: HashMap<&'a str, Vec<&'a Item<Workload>>>,
}

fn by_name<T>(items: &[Item<T>]) -> ByName<'_, T> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        map.entry((item.namespace(), item.name())).or_insert(item);
    }
    map
}

fn by_namespace<T>(items: &[Item<T>]) -> HashMap<&str, Vec<&Item<T>>> {
    let mut map: HashMap<&str, Vec<&Item<T>>> = HashMap::new();
    for item in items {
        map.entry(item.namespace()).or_default().push(item);
    }
    map
}

impl<'a> Index<'a> {
    /// Indexes an inventory.
    pub fn new(inventory: &'a Inventory) -> Self {
        Index {
            nodes: by_name(&inventory.virtual_nodes),
            virtual_services: by_name(&inventory.virtual_services),
            routers: by_name(&inventory.virtual_routers),
            backend_groups: by_name(&inventory.backend_groups),
            services: by_name(&inventory.services),
            services_in: by_namespace(&inventory.services),
            deployments_in: by_namespace(&inventory.deployments),
        }
    }

    /// A virtual node.
    pub fn node(&self, namespace: &str, name: &str) -> Option<&'a Item<VirtualNode>> {
        self.nodes.get(&(namespace, name)).copied()
    }

    /// A virtual service.
    pub fn virtual_service(&self, namespace: &str, name: &str) -> Option<&'a Item<VirtualService>> {
        self.virtual_services.get(&(namespace, name)).copied()
    }

    /// A virtual router.
    pub fn router(&self, namespace: &str, name: &str) -> Option<&'a Item<VirtualRouter>> {
        self.routers.get(&(namespace, name)).copied()
    }

    /// A backend group.
    pub fn backend_group(&self, namespace: &str, name: &str) -> Option<&'a Item<BackendGroup>> {
        self.backend_groups.get(&(namespace, name)).copied()
    }

    /// A Service.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&'a Item<ServiceView>> {
        self.services.get(&(namespace, name)).copied()
    }

    /// The Services of a namespace, in inventory order.
    pub fn services_in(&self, namespace: &str) -> &[&'a Item<ServiceView>] {
        self.services_in.get(namespace).map_or(&[], Vec::as_slice)
    }

    /// The Deployments of a namespace, in inventory order.
    pub fn deployments_in(&self, namespace: &str) -> &[&'a Item<Workload>] {
        self.deployments_in
            .get(namespace)
            .map_or(&[], Vec::as_slice)
    }
}
