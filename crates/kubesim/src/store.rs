//! The in-memory object store: one global resourceVersion, the write pipeline, deletion and the
//! event history that watches read from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::crd;
use crate::error::{ApiError, ApiResult, Cause};
use crate::managed::{self, Entry};
use crate::meta::{self, finalizers, meta_str, remove_meta, set_meta};
use crate::patch::{self, PatchType};
use crate::resources::{Registry, ResourceInfo};
use crate::selector::{FieldSelector, LabelSelector};
use crate::shape::Shape;
use crate::validate::{self, FieldValidation};

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored change.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// API group of the object.
    pub group: String,
    /// Resource plural of the object.
    pub plural: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (last state for deletions), shared with the store.
    pub object: Arc<Value>,
    /// The object before the change.
    pub old: Option<Arc<Value>>,
}

/// Options shared by every write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and return, store nothing.
    pub dry_run: bool,
    /// The field manager recorded in managedFields.
    pub manager: String,
    /// Whether the manager was given explicitly (`fieldManager`).
    pub manager_explicit: bool,
    /// `fieldValidation`.
    pub validation: FieldValidation,
    /// `force` (apply patches only).
    pub force: bool,
    /// Written by a simulated controller, whose objects are well-formed: not decoded for
    /// validation (the cost of every controller write otherwise).
    pub trusted: bool,
}

/// The result of a successful write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as stored (or as it would be stored, under dry run), shared with the store.
    pub object: Arc<Value>,
    /// Whether the write created the object.
    pub created: bool,
    /// Warnings for `Warning` headers.
    pub warnings: Vec<String>,
}

/// `DeleteOptions` of a delete request.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `Background`, `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// The outcome of a delete.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// Removed now; the last state (shared with the watch history).
    Gone(Arc<Value>),
    /// Marked for deletion; finalizers pending.
    Pending(Arc<Value>),
}

/// The result of starting a watch.
pub struct WatchStart {
    /// Synthetic ADDED objects (watch from "0" or unset).
    pub initial: Vec<Arc<Value>>,
    /// Stored events after the requested resourceVersion.
    pub backlog: Vec<Arc<Event>>,
    /// Live events.
    pub rx: broadcast::Receiver<Arc<Event>>,
    /// The current resourceVersion.
    pub rv: u64,
}

/// How a write takes field ownership.
enum Ownership {
    /// Create, PUT or non-apply PATCH by a manager.
    Update,
    /// Server-side apply: the entries were computed already.
    Apply(Vec<Entry>),
    /// Internal controller write that keeps entries as they are computed by `Update`.
    System,
}

type Key = (String, String);

/// The mutable state behind the store's lock.
pub struct State {
    rv: u64,
    registry: Registry,
    /// Objects are shared with the watch history, so a write copies nothing it keeps.
    objects: HashMap<Key, BTreeMap<Key, Arc<Value>>>,
    /// Where each object is, by uid: (storage key, (namespace, name)).
    by_uid: HashMap<String, (Key, Key)>,
    /// The objects each uid owns (their ownerReferences name it), so that the garbage collector
    /// and the controllers do not scan every object on every event.
    owned: HashMap<String, BTreeSet<(Key, Key)>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Events at or below this resourceVersion are no longer available.
    compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
    /// Each watched resource's own channel (by storage key), so that a watch wakes only for
    /// events of its resource, as the apiserver's watch cache is kept per resource.
    resource_tx: HashMap<Key, broadcast::Sender<Arc<Event>>>,
    /// Whether sidecars are injected at pod creation.
    injection: bool,
}

/// How many events a subscriber may fall behind before it is told it lagged.
const EVENT_CAPACITY: usize = 16384;

/// The store: state behind a mutex.
pub struct Store {
    state: Mutex<State>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// The namespace key of an object in a resource.
fn ns_key(res: &ResourceInfo, ns: &str) -> String {
    if res.namespaced {
        ns.to_string()
    } else {
        String::new()
    }
}

impl Store {
    /// An empty store serving the built-in resources.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_CAPACITY);
        Self {
            state: Mutex::new(State {
                rv: 1,
                registry: Registry::new(),
                objects: HashMap::new(),
                by_uid: HashMap::new(),
                owned: HashMap::new(),
                history: VecDeque::new(),
                history_limit: 100_000,
                compacted: 0,
                tx,
                resource_tx: HashMap::new(),
                injection: true,
            }),
        }
    }

    /// Locks the state; a poisoned lock is recovered since every write leaves it consistent.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The registry (cloned).
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// Subscribes to all future events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.lock().tx.subscribe()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Forgets the event history, so watches from older resourceVersions get 410 Expired.
    pub fn compact(&self) {
        let mut st = self.lock();
        st.compacted = st.rv;
        st.history.clear();
    }

    /// Switches sidecar injection at pod creation on or off.
    pub fn set_injection(&self, on: bool) {
        self.lock().injection = on;
    }

    /// Gets one object.
    pub fn get(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult<Value> {
        self.lock()
            .get(res, ns, name)
            .map(|o| Value::clone(o))
            .ok_or_else(|| ApiError::not_found(&res.qualified(), name))
    }

    /// Lists objects (all namespaces when `ns` is `None`), shared with the store, with the list
    /// resourceVersion: the caller serialises them without holding the lock.
    pub fn list(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Arc<Value>>, u64) {
        let st = self.lock();
        (st.list(res, ns, labels, fields), st.rv)
    }

    /// Creates an object.
    pub fn create(
        &self,
        res: &ResourceInfo,
        ns: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        self.lock().create(res, ns, body, opts)
    }

    /// Replaces an object (PUT), optionally through a subresource.
    pub fn update(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        body: Value,
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        self.lock().update(res, ns, name, body, sub, opts)
    }

    /// Patches an object; apply patches may create it. Like the apiserver, which prepares a
    /// write before its storage's transaction, the patch is prepared outside the lock and stored
    /// if the object is still as it was read; if it changed meanwhile, it is patched again under
    /// the lock.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        ptype: PatchType,
        body: &[u8],
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let key_ns = ns_key(res, ns);
        let snapshot = self.lock().snapshot(res, &key_ns, name);
        let old = snapshot.old.clone();
        let prepared = prepare_patch(snapshot, res, &key_ns, name, ptype, body, sub, opts)?;
        self.install_if_current(res, &key_ns, name, old.as_ref(), prepared)
            .unwrap_or_else(|| self.lock().patch(res, ns, name, ptype, body, sub, opts))
    }

    /// Writes an object on behalf of a controller, as [`State::system_update`] does, prepared
    /// outside the lock as [`Store::patch`] is.
    pub fn system_update(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        new: Value,
        sub: Option<&str>,
        manager: &str,
    ) -> ApiResult<Written> {
        let key_ns = ns_key(res, ns);
        let snapshot = self.lock().snapshot(res, &key_ns, name);
        let old = snapshot
            .old
            .ok_or_else(|| ApiError::not_found(&res.qualified(), name))?;
        let kept = Kept::of(&new, sub);
        let prepared = prepare(
            &snapshot.registry,
            res,
            name,
            Some(old.clone()),
            new,
            sub,
            Ownership::System,
            &system_options(manager),
        )?;
        self.install_if_current(res, &key_ns, name, Some(&old), prepared)
            .unwrap_or_else(|| {
                let mut st = self.lock();
                let current = st
                    .get(res, &key_ns, name)
                    .ok_or_else(|| ApiError::not_found(&res.qualified(), name))?;
                let new = kept.over(current);
                st.system_update(res, ns, name, new, sub, manager)
            })
    }

    /// Creates an object on behalf of a controller, prepared outside the lock as
    /// [`Store::patch`] is; one created meanwhile under the same name wins.
    pub fn system_create(
        &self,
        res: &ResourceInfo,
        ns: &str,
        body: Value,
        manager: &str,
    ) -> ApiResult<Written> {
        let (registry, key_ns, name, body) = {
            let st = self.lock();
            let (key_ns, name, body) = st.admit_create(res, ns, body)?;
            (st.registry.clone(), key_ns, name, body)
        };
        let opts = system_options(manager);
        let prepared = prepare(
            &registry,
            res,
            &name,
            None,
            body,
            None,
            Ownership::Update,
            &opts,
        )?;
        self.install_if_current(res, &key_ns, &name, None, prepared)
            .unwrap_or_else(|| Err(ApiError::already_exists(&res.qualified(), &name)))
    }

    /// Stores a write prepared against `old` if the object is still `old` (`None`: still
    /// absent); `None` if it changed meanwhile.
    fn install_if_current(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        old: Option<&Arc<Value>>,
        prepared: Prepared,
    ) -> Option<ApiResult<Written>> {
        if let Prepared::Done(written) = prepared {
            return Some(Ok(written));
        }
        let mut st = self.lock();
        let current = match (st.get(res, ns, name), old) {
            (Some(now), Some(old)) => Arc::ptr_eq(now, old),
            (None, None) => true,
            _ => false,
        };
        current.then(|| st.install(res, ns, name, prepared))
    }

    /// Deletes an object.
    pub fn delete(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        self.lock().delete(res, ns, name, opts)
    }

    /// Sets a namespace's `spec.finalizers` (the `finalize` subresource).
    pub fn finalize_namespace(
        &self,
        res: &ResourceInfo,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        self.lock().finalize_namespace(res, name, body, opts)
    }

    /// Starts a watch: synthetic initial events and/or the backlog after `from`.
    pub fn watch(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, (u64, u64)> {
        let mut st = self.lock();
        let key = res.storage_key();
        let rx = st
            .resource_tx
            .entry(key.clone())
            .or_insert_with(|| broadcast::channel(EVENT_CAPACITY).0)
            .subscribe();
        match from {
            None => Ok(WatchStart {
                initial: st.list(
                    res,
                    ns,
                    &LabelSelector::default(),
                    &FieldSelector::default(),
                ),
                backlog: vec![],
                rx,
                rv: st.rv,
            }),
            Some(rv) => {
                if rv < st.compacted {
                    let oldest = st.history.front().map(|e| e.rv).unwrap_or(st.rv);
                    return Err((rv, oldest));
                }
                // The history is in resourceVersion order: skip straight to what follows `rv`.
                let after = st.history.partition_point(|e| e.rv <= rv);
                let backlog = st
                    .history
                    .range(after..)
                    .filter(|e| e.group == key.0 && e.plural == key.1)
                    .cloned()
                    .collect();
                Ok(WatchStart {
                    initial: vec![],
                    backlog,
                    rx,
                    rv: st.rv,
                })
            }
        }
    }
}

impl State {
    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn get(&self, res: &ResourceInfo, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects
            .get(&res.storage_key())?
            .get(&(ns_key(res, ns), name.to_string()))
    }

    /// The stored objects of a resource in a namespace (every namespace when `ns` is `None`).
    pub fn objects_of<'a>(
        &'a self,
        res: &ResourceInfo,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.stored(res, ns).map(Arc::as_ref)
    }

    fn stored<'a>(
        &'a self,
        res: &ResourceInfo,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let namespaced = res.namespaced;
        self.objects
            .get(&res.storage_key())
            .into_iter()
            .flatten()
            .filter(move |((n, _), _)| ns.is_none_or(|want| !namespaced || n == want))
            .map(|(_, o)| o)
    }

    fn list(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Arc<Value>> {
        self.stored(res, ns)
            .filter(|o| labels.matches_object(o) && fields.matches(o))
            .cloned()
            .collect()
    }

    /// Every stored object of every resource in a namespace, as (resource, name).
    pub fn namespace_contents(&self, ns: &str) -> Vec<(ResourceInfo, String)> {
        let mut out = Vec::new();
        for ((group, plural), objs) in &self.objects {
            let Some(res) = self.storage_resource(group, plural) else {
                continue;
            };
            if !res.namespaced {
                continue;
            }
            for (n, name) in objs.keys() {
                if n == ns {
                    out.push((res.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// Objects whose ownerReferences point at `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<(ResourceInfo, String, String)> {
        let Some(owned) = self.owned.get(uid) else {
            return Vec::new();
        };
        owned
            .iter()
            .filter_map(|((group, plural), (ns, name))| {
                let res = self.storage_resource(group, plural)?;
                Some((res.clone(), ns.clone(), name.clone()))
            })
            .collect()
    }

    /// Names of the objects of `res` in `ns` whose ownerReferences point at `uid`.
    pub fn owned_names(&self, uid: &str, res: &ResourceInfo, ns: &str) -> Vec<String> {
        self.owned
            .get(uid)
            .into_iter()
            .flatten()
            .filter(|((group, plural), (n, _))| {
                *group == res.group && *plural == res.plural && n == ns
            })
            .map(|(_, (_, name))| name.clone())
            .collect()
    }

    /// Stores an object, keeping the uid and owner indexes in step; returns the object replaced.
    fn put(&mut self, resource: Key, at: Key, object: Arc<Value>) -> Option<Arc<Value>> {
        let old = self
            .objects
            .entry(resource.clone())
            .or_default()
            .insert(at.clone(), object);
        if let Some(old) = &old {
            self.unindex(&resource, &at, old);
        }
        let object = &self.objects[&resource][&at];
        let uid = meta_str(object, "uid").to_owned();
        let owners: Vec<String> = owner_uids(object).map(str::to_owned).collect();
        if !uid.is_empty() {
            self.by_uid.insert(uid, (resource.clone(), at.clone()));
        }
        for owner in owners {
            self.owned
                .entry(owner)
                .or_default()
                .insert((resource.clone(), at.clone()));
        }
        old
    }

    /// Stores a written object at the next resourceVersion and tells the watchers.
    fn store(&mut self, res: &ResourceInfo, ns: &str, name: &str, mut new: Value) -> Arc<Value> {
        self.rv += 1;
        set_meta(&mut new, "resourceVersion", json!(self.rv.to_string()));
        let new = Arc::new(new);
        let old = self.put(
            res.storage_key(),
            (ns.to_string(), name.to_string()),
            new.clone(),
        );
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(res, ns, kind, new.clone(), old);
        new
    }

    /// Removes an object, keeping the indexes in step.
    fn take(&mut self, resource: &Key, at: &Key) -> Option<Arc<Value>> {
        let old = self.objects.get_mut(resource)?.remove(at)?;
        self.unindex(resource, at, &old);
        Some(old)
    }

    fn unindex(&mut self, resource: &Key, at: &Key, old: &Value) {
        let uid = meta_str(old, "uid");
        if self
            .by_uid
            .get(uid)
            .is_some_and(|(r, a)| r == resource && a == at)
        {
            self.by_uid.remove(uid);
        }
        for owner in owner_uids(old) {
            if let Some(set) = self.owned.get_mut(owner) {
                set.remove(&(resource.clone(), at.clone()));
                if set.is_empty() {
                    self.owned.remove(owner);
                }
            }
        }
    }

    /// A served resource for a storage key (the preferred version).
    fn storage_resource(&self, group: &str, plural: &str) -> Option<&ResourceInfo> {
        self.registry
            .all()
            .iter()
            .find(|r| r.group == group && r.plural == plural)
    }

    fn check_namespace(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult<()> {
        if !res.namespaced {
            return Ok(());
        }
        let nsres = self
            .registry
            .find("", "v1", "namespaces")
            .expect("namespaces are built in");
        match self.get(nsres, "", ns) {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                let mut e = ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        res.qualified().resource(),
                        name
                    ),
                );
                e.details = Some(Box::new(
                    json!({"name": name, "group": res.group, "kind": res.plural,
                    "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
                ));
                Err(e)
            }
            Some(_) => Ok(()),
        }
    }

    fn create(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let (key_ns, name, body) = self.admit_create(res, ns, body)?;
        self.commit(
            res,
            &key_ns,
            &name,
            None,
            body,
            None,
            Ownership::Update,
            opts,
        )
    }

    /// What a create writes, once checked against the state: its namespace key, its name (made
    /// from `generateName` if need be) and the body, with sidecars for a pod.
    fn admit_create(
        &self,
        res: &ResourceInfo,
        ns: &str,
        mut body: Value,
    ) -> ApiResult<(String, String, Value)> {
        check_object_identity(res, &body)?;
        normalize_namespace(res, ns, &mut body)?;
        if !meta_str(&body, "resourceVersion").is_empty() {
            return Err(ApiError::new(
                500,
                "",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta_str(&body, "name").to_string();
        if name.is_empty() {
            let prefix = meta_str(&body, "generateName").to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &res.kind,
                    &res.group,
                    "",
                    vec![Cause::new(
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                        "metadata.name",
                    )],
                ));
            }
            name = format!("{prefix}{}", random_suffix());
            set_meta(&mut body, "name", json!(name));
        }
        let name_ns = meta_str(&body, "namespace").to_string();
        let key_ns = if res.namespaced {
            name_ns
        } else {
            String::new()
        };
        self.check_namespace(res, &key_ns, &name)?;
        if self.get(res, &key_ns, &name).is_some() {
            return Err(ApiError::already_exists(&res.qualified(), &name));
        }
        if self.injection && res.group.is_empty() && res.kind == "Pod" {
            self.inject_sidecars(&key_ns, &mut body);
        }
        Ok((key_ns, name, body))
    }

    fn update(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        mut body: Value,
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        check_object_identity(res, &body)?;
        normalize_namespace(res, ns, &mut body)?;
        let body_name = meta_str(&body, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        set_meta(&mut body, "name", json!(name));
        let key_ns = ns_key(res, ns);
        let old = self
            .get(res, &key_ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&res.qualified(), name))?;
        let rv = meta_str(&body, "resourceVersion");
        if rv.is_empty() {
            if res.is_custom() || res.kind == "Lease" {
                let mut e = ApiError::invalid(
                    &res.plural,
                    &res.group,
                    name,
                    vec![Cause::new(
                        "FieldValueInvalid",
                        "Invalid value: 0: must be specified for an update",
                        "metadata.resourceVersion",
                    )],
                );
                e.message = format!(
                    "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update",
                    res.qualified().resource()
                );
                return Err(e);
            }
        } else if rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::conflict(&res.qualified(), name));
        }
        self.commit(
            res,
            &key_ns,
            name,
            Some(old),
            body,
            sub,
            Ownership::Update,
            opts,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn patch(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        ptype: PatchType,
        body: &[u8],
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let key_ns = ns_key(res, ns);
        let snapshot = self.snapshot(res, &key_ns, name);
        let prepared = prepare_patch(snapshot, res, &key_ns, name, ptype, body, sub, opts)?;
        self.install(res, &key_ns, name, prepared)
    }

    /// What a write to `name` is prepared against: the stored object, and for a create whether
    /// its namespace takes it.
    fn snapshot(&self, res: &ResourceInfo, ns: &str, name: &str) -> Snapshot {
        let old = self.get(res, ns, name).cloned();
        let namespace = match old {
            None => self.check_namespace(res, ns, name).err(),
            Some(_) => None,
        };
        Snapshot {
            registry: self.registry.clone(),
            old,
            namespace,
        }
    }
}

/// What a controller's write keeps, to be made again over an object that changed meanwhile.
enum Kept {
    /// The whole object written.
    Whole(Value),
    /// A status write sets only the status (and a Deployment's annotations): only those are
    /// kept, not a copy of the object.
    Status {
        status: Option<Value>,
        annotations: Option<Value>,
    },
}

impl Kept {
    /// What `new`, written through `sub`, needs kept.
    fn of(new: &Value, sub: Option<&str>) -> Self {
        match sub {
            Some("status") => Kept::Status {
                status: new.get("status").cloned(),
                annotations: new["metadata"].get("annotations").cloned(),
            },
            _ => Kept::Whole(new.clone()),
        }
    }

    /// The write again, over `current`.
    fn over(self, current: &Value) -> Value {
        match self {
            Kept::Whole(new) => new,
            Kept::Status {
                status,
                annotations,
            } => {
                let mut new = Value::clone(current);
                let object = new.as_object_mut().expect("stored objects are objects");
                match status {
                    Some(status) => object.insert("status".into(), status),
                    None => object.remove("status"),
                };
                if let Some(annotations) = annotations {
                    new["metadata"]["annotations"] = annotations;
                }
                new
            }
        }
    }
}

/// The state a write is prepared against, read under the lock.
struct Snapshot {
    registry: Registry,
    /// The stored object (`None`: absent).
    old: Option<Arc<Value>>,
    /// Why the object's namespace takes no new object, for a create.
    namespace: Option<ApiError>,
}

/// Prepares a patch (see [`prepare`]) against `snapshot`; apply patches may create.
#[allow(clippy::too_many_arguments)]
fn prepare_patch(
    snapshot: Snapshot,
    res: &ResourceInfo,
    key_ns: &str,
    name: &str,
    ptype: PatchType,
    body: &[u8],
    sub: Option<&str>,
    opts: &WriteOptions,
) -> ApiResult<Prepared> {
    if opts.force && ptype != PatchType::Apply {
        return Err(ApiError::invalid_options(
            "PatchOptions",
            Cause::new(
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
                "force",
            ),
        ));
    }
    if ptype == PatchType::Apply {
        return prepare_apply(snapshot, res, key_ns, name, body, sub, opts);
    }
    let old = snapshot
        .old
        .ok_or_else(|| ApiError::not_found(&res.qualified(), name))?;
    let mut new = Value::clone(&old);
    match ptype {
        PatchType::Merge => patch::merge(&mut new, &parse_json(body)?),
        PatchType::Json => patch::json(&mut new, body)?,
        PatchType::Strategic => {
            if res.is_custom() {
                return Err(ApiError::unsupported_media_type());
            }
            patch::strategic::apply(&mut new, &parse_json(body)?, &Shape::Builtin);
        }
        PatchType::Apply => unreachable!("handled above"),
    }
    if meta_str(&new, "resourceVersion") != meta_str(&old, "resourceVersion") {
        return Err(ApiError::conflict(&res.qualified(), name));
    }
    if meta_str(&new, "name") != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta_str(&new, "name")
        )));
    }
    prepare(
        &snapshot.registry,
        res,
        name,
        Some(old),
        new,
        sub,
        Ownership::Update,
        opts,
    )
}

/// Prepares a server-side apply (see [`prepare`]) against `snapshot`.
fn prepare_apply(
    snapshot: Snapshot,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    body: &[u8],
    sub: Option<&str>,
    opts: &WriteOptions,
) -> ApiResult<Prepared> {
    let old = snapshot.old;
    if !opts.manager_explicit {
        return Err(ApiError::invalid_options(
            "PatchOptions",
            Cause::new(
                "FieldValueRequired",
                "Required value: is required for apply patch",
                "fieldManager",
            ),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    // JSON is YAML, and clients (kubectl, kube-rs) send JSON: read it as such, and only what
    // is not JSON with the YAML parser, which is several times slower.
    let applied: Value = match serde_json::from_str(text) {
        Ok(applied) => applied,
        Err(_) => serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration must be an object",
        ));
    }
    let av = applied["apiVersion"].as_str().unwrap_or_default();
    if av != res.api_version() {
        return Err(ApiError::bad_request(format!(
            "Incorrect version specified in apply patch. Specified patch version: {av}, expected: {}",
            res.api_version()
        )));
    }
    if applied["kind"].as_str() != Some(res.kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Incorrect kind specified in apply patch. Specified patch kind: {}, expected: {}",
            applied["kind"].as_str().unwrap_or_default(),
            res.kind
        )));
    }
    if meta_str(&applied, "name") != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta_str(&applied, "name")
        )));
    }
    if !applied["metadata"]["managedFields"].is_null() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let mut applied = applied;
    normalize_namespace(res, ns, &mut applied)?;
    if res.namespaced {
        remove_meta(&mut applied, "namespace");
    }
    remove_meta(&mut applied, "name");
    if let Some(m) = applied["metadata"].as_object()
        && m.is_empty()
    {
        applied
            .as_object_mut()
            .expect("checked object")
            .remove("metadata");
    }
    let unknown = if res.is_custom() {
        crd::unknown_fields(res, &applied)
    } else {
        let mut probe = applied.clone();
        probe["metadata"]["name"] = json!(name);
        validate::builtin(
            &res.group,
            &res.version,
            &res.kind,
            probe,
            FieldValidation::Ignore,
        )?
        .1
    };
    if let Some(u) = unknown.first() {
        return Err(ApiError::new(
            500,
            "",
            format!(
                "failed to create typed patch object ({}; {}, Kind={}): .{u}: field not declared in schema",
                if ns.is_empty() {
                    name.to_string()
                } else {
                    format!("{ns}/{name}")
                },
                res.api_version(),
                res.kind
            ),
        ));
    }
    if let Some(error) = snapshot.namespace {
        return Err(error);
    }
    let entries = old.as_deref().map(managed::entries_of).unwrap_or_default();
    let shape = shape_of(res);
    let allowed = (opts.manager == "kubectl")
        .then(|| old.as_deref()?["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str())
        .flatten()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .map(|last| crate::fieldset::FieldSet::of_value(&last, &shape));
    let now = meta::now();
    let result = patch::apply::apply(
        old.as_deref(),
        &applied,
        entries,
        &opts.manager,
        &res.api_version(),
        sub,
        opts.force,
        allowed.as_ref(),
        &shape,
        &now,
    )?;
    let mut new = result.object;
    new["apiVersion"] = json!(res.api_version());
    new["kind"] = json!(res.kind);
    set_meta(&mut new, "name", json!(name));
    if res.namespaced {
        set_meta(&mut new, "namespace", json!(ns));
    }
    prepare(
        &snapshot.registry,
        res,
        name,
        old,
        new,
        sub,
        Ownership::Apply(result.entries),
        opts,
    )
}

impl State {
    /// The write pipeline shared by create, update, patch and apply: prepared, then stored.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        old: Option<Arc<Value>>,
        new: Value,
        sub: Option<&str>,
        ownership: Ownership,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let prepared = prepare(&self.registry, res, name, old, new, sub, ownership, opts)?;
        self.install(res, ns, name, prepared)
    }

    /// Stores what [`prepare`] made of a write; a create checks its namespace again, since a
    /// write prepared outside the lock may find it gone.
    fn install(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        prepared: Prepared,
    ) -> ApiResult<Written> {
        match prepared {
            Prepared::Done(written) => Ok(written),
            Prepared::Remove { object, warnings } => Ok(Written {
                object: self.remove(res, ns, name, object),
                created: false,
                warnings,
            }),
            Prepared::Store {
                object,
                created,
                warnings,
            } => {
                if created {
                    self.check_namespace(res, ns, name)?;
                }
                if res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition" {
                    self.registry
                        .set_crd(name, crate::resources::from_crd(&object));
                }
                Ok(Written {
                    object: self.store(res, ns, name, object),
                    created,
                    warnings,
                })
            }
        }
    }
}

/// What a prepared write leaves to do under the store's lock.
enum Prepared {
    /// Nothing to store: the write changes nothing, or is a dry run.
    Done(Written),
    /// The write removes the object's last finalizer: it is deleted.
    Remove {
        object: Value,
        warnings: Vec<String>,
    },
    /// The object to store.
    Store {
        object: Value,
        created: bool,
        warnings: Vec<String>,
    },
}

/// Prepares a write of `new` over `old`: status handling, server-owned metadata, validation,
/// defaults, generation and managedFields. It reads nothing of the state but the registry (for a
/// CustomResourceDefinition), so it may run outside the lock; [`State::install`] stores it.
#[allow(clippy::too_many_arguments)]
fn prepare(
    registry: &Registry,
    res: &ResourceInfo,
    name: &str,
    old: Option<Arc<Value>>,
    mut new: Value,
    sub: Option<&str>,
    ownership: Ownership,
    opts: &WriteOptions,
) -> ApiResult<Prepared> {
    new["apiVersion"] = json!(res.api_version());
    new["kind"] = json!(res.kind);
    // Whether `new` is the stored object but for its status, so that only the status needs
    // comparing from here on.
    let mut status_only = false;
    if sub == Some("status") {
        let Some(o) = &old else {
            return Err(ApiError::not_found(&res.qualified(), name));
        };
        // Most status writes (a controller's, a client's read-modify-write) change only the
        // status: such a write is the stored object already, with no copy of it to make.
        status_only = same_but_status(&new, o);
        let mut merged = if status_only {
            new
        } else {
            let mut merged = Value::clone(o);
            merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if !crate::equal::same_opt(
                new["metadata"].get("managedFields"),
                o["metadata"].get("managedFields"),
            ) {
                merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
            }
            // The Deployment status strategy keeps only spec and labels from storage, so
            // status writes may change annotations (the controller records revisions so).
            if res.group == "apps"
                && res.kind == "Deployment"
                && new["metadata"]["annotations"].is_object()
            {
                merged["metadata"]["annotations"] = new["metadata"]["annotations"].clone();
            }
            merged
        };
        if merged.get("status").is_some_and(Value::is_null) {
            merged
                .as_object_mut()
                .expect("stored objects are objects")
                .remove("status");
        }
        new = merged;
    } else if sub.is_some() {
        return Err(ApiError::unknown_path());
    } else if res.status {
        match &old {
            Some(o) => match o.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            },
            None => {
                let obj = new.as_object_mut().expect("object");
                obj.remove("status");
                if !res.is_custom() {
                    obj.insert("status".into(), json!({}));
                }
            }
        }
    }

    // Server-owned metadata.
    match &old {
        Some(o) => {
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match o["metadata"].get(f) {
                    Some(v) => set_meta(&mut new, f, v.clone()),
                    None => remove_meta(&mut new, f),
                }
            }
            set_meta(
                &mut new,
                "resourceVersion",
                o["metadata"]["resourceVersion"].clone(),
            );
        }
        None => {
            set_meta(&mut new, "uid", json!(meta::new_uid()));
            set_meta(&mut new, "creationTimestamp", json!(meta::now()));
            for f in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
            ] {
                remove_meta(&mut new, f);
            }
            if meta::has_generation(res) {
                set_meta(&mut new, "generation", json!(1));
            } else {
                remove_meta(&mut new, "generation");
            }
        }
    }

    let mut warnings = Vec::new();
    let mode = if matches!(ownership, Ownership::Apply(_)) {
        FieldValidation::Ignore
    } else {
        opts.validation
    };
    if opts.trusted {
        // A controller's own write: nothing to prune or report.
    } else if !res.is_custom() {
        let (pruned, unknown) = validate::builtin(&res.group, &res.version, &res.kind, new, mode)?;
        new = pruned;
        if mode == FieldValidation::Warn {
            warnings.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")));
        }
    } else {
        crd::validate_custom(res, &mut new, old.as_deref(), mode, &mut warnings)?;
    }
    crate::defaults::apply(res, &mut new, old.as_deref());

    if old.is_none()
        && let Some(cause) = validate::name(&res.kind, name)
    {
        return Err(ApiError::invalid(&res.kind, &res.group, name, vec![cause]));
    }
    if let Some(cause) = validate::annotations_size(&new) {
        return Err(ApiError::invalid(&res.kind, &res.group, name, vec![cause]));
    }
    if res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition" {
        crd::prepare(registry, &mut new)?;
    }
    if let Some(o) = &old {
        let was = finalizers(o);
        let deleting = !o["metadata"]["deletionTimestamp"].is_null();
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !was.contains(f))
            .collect();
        if deleting && !added.is_empty() {
            return Err(ApiError::invalid(
                &res.kind,
                &res.group,
                name,
                vec![Cause::new(
                    "FieldValueForbidden",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                    "metadata.finalizers",
                )],
            ));
        }
        if sub != Some("status")
            && meta::has_generation(res)
            && meta::generation_changes(res, o, &new)
        {
            let g = o["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            set_meta(&mut new, "generation", json!(g));
        }
    }

    // managedFields.
    let shape = shape_of(res);
    let now = meta::now();
    let api_version = res.api_version();
    match ownership {
        Ownership::Apply(entries) => managed::set_entries(&mut new, entries),
        Ownership::Update | Ownership::System => managed::record_write(
            &mut new,
            old.as_deref(),
            status_only,
            (sub.is_none() && res.status).then_some("status"),
            &managed::Writer {
                manager: &opts.manager,
                api_version: &api_version,
                subresource: sub,
                time: &now,
            },
            &shape,
        ),
    }

    let deleting_done = old.is_some()
        && !new["metadata"]["deletionTimestamp"].is_null()
        && finalizers(&new).is_empty()
        && !(res.group.is_empty()
            && res.kind == "Namespace"
            && !new["spec"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty));
    if deleting_done {
        if opts.dry_run {
            return Ok(Prepared::Done(Written {
                object: Arc::new(new),
                created: false,
                warnings,
            }));
        }
        return Ok(Prepared::Remove {
            object: new,
            warnings,
        });
    }
    let unchanged = old.as_ref().is_some_and(|o| {
        if status_only {
            // The rest is the stored object's, defaulted again to the same.
            crate::equal::same_opt(o.get("status"), new.get("status"))
                && crate::equal::same(&o["metadata"], &new["metadata"])
        } else {
            crate::equal::same(o, &new)
        }
    });
    if unchanged || opts.dry_run {
        return Ok(Prepared::Done(Written {
            object: Arc::new(new),
            created: !unchanged && old.is_none(),
            warnings,
        }));
    }
    Ok(Prepared::Store {
        object: new,
        created: old.is_none(),
        warnings,
    })
}

impl State {
    fn emit(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        kind: EventType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let ev = Arc::new(Event {
            rv: self.rv,
            group: res.group.clone(),
            plural: res.plural.clone(),
            namespace: ns.to_string(),
            kind,
            object,
            old,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted = e.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        if let Some(tx) = self.resource_tx.get(&res.storage_key()) {
            let _ = tx.send(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// Removes an object now: DELETED event with the deletion's resourceVersion.
    fn remove(&mut self, res: &ResourceInfo, ns: &str, name: &str, mut last: Value) -> Arc<Value> {
        self.rv += 1;
        set_meta(&mut last, "resourceVersion", json!(self.rv.to_string()));
        let old = self.take(&res.storage_key(), &(ns.to_string(), name.to_string()));
        if res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition" {
            self.remove_crd_contents(&last);
            self.registry.set_crd(name, vec![]);
        }
        let last = Arc::new(last);
        self.emit(res, ns, EventType::Deleted, last.clone(), old);
        last
    }

    fn remove_crd_contents(&mut self, crd: &Value) {
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(res) = self.storage_resource(&group, &plural).cloned() else {
            return;
        };
        let keys: Vec<Key> = self
            .objects
            .get(&res.storage_key())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            if let Some(obj) = self.get(&res, &ns, &name).cloned() {
                self.remove(&res, &ns, &name, Value::clone(&obj));
            }
        }
    }

    fn delete(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        let key_ns = ns_key(res, ns);
        let obj = self
            .get(res, &key_ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&res.qualified(), name))?;
        if let Some(uid) = &opts.uid
            && uid != meta_str(&obj, "uid")
        {
            return Err(ApiError::conflict_with(
                &res.qualified(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&obj, "uid")
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && rv != meta_str(&obj, "resourceVersion")
        {
            return Err(ApiError::conflict_with(
                &res.qualified(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&obj, "resourceVersion")
                ),
            ));
        }
        if !obj["metadata"]["deletionTimestamp"].is_null() {
            return Ok(Deleted::Pending(obj));
        }
        let propagation = opts.propagation.as_deref().unwrap_or("Background");
        let is_namespace = res.group.is_empty() && res.kind == "Namespace";
        let mut fins = finalizers(&obj);
        if propagation == "Foreground"
            && !fins.iter().any(|f| f == "foregroundDeletion")
            && !is_namespace
        {
            fins.push("foregroundDeletion".into());
        }
        if propagation == "Orphan" && !opts.dry_run {
            self.orphan_dependents(meta_str(&obj, "uid"));
        }
        if fins.is_empty() && !is_namespace {
            if opts.dry_run {
                return Ok(Deleted::Gone(obj));
            }
            return Ok(Deleted::Gone(self.remove(
                res,
                &key_ns,
                name,
                Value::clone(&obj),
            )));
        }
        let mut marked = Value::clone(&obj);
        set_meta(&mut marked, "deletionTimestamp", json!(meta::now()));
        set_meta(&mut marked, "deletionGracePeriodSeconds", json!(0));
        if !fins.is_empty() {
            set_meta(&mut marked, "finalizers", json!(fins));
        }
        if is_namespace {
            marked["status"]["phase"] = json!("Terminating");
        }
        if meta::has_generation(res) {
            let g = obj["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            set_meta(&mut marked, "generation", json!(g));
        }
        if opts.dry_run {
            return Ok(Deleted::Pending(Arc::new(marked)));
        }
        Ok(Deleted::Pending(self.store(res, &key_ns, name, marked)))
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for (res, ns, name) in self.dependents(uid) {
            let Some(old) = self.get(&res, &ns, &name).cloned() else {
                continue;
            };
            let mut new = Value::clone(&old);
            if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"].as_str() != Some(uid));
                if refs.is_empty() {
                    remove_meta(&mut new, "ownerReferences");
                }
            }
            let opts = system_options("garbage-collector");
            // Failures here only leave a stale reference behind, as a real GC retry would fix later.
            let _ = self.commit(
                &res,
                &ns,
                &name,
                Some(old),
                new,
                None,
                Ownership::System,
                &opts,
            );
        }
    }

    /// Writes an object on behalf of a controller (no preconditions, fieldManager `manager`).
    pub fn system_update(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        new: Value,
        sub: Option<&str>,
        manager: &str,
    ) -> ApiResult<Written> {
        let key_ns = ns_key(res, ns);
        let old = self
            .get(res, &key_ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&res.qualified(), name))?;
        self.commit(
            res,
            &key_ns,
            name,
            Some(old),
            new,
            sub,
            Ownership::System,
            &system_options(manager),
        )
    }

    /// Deletes an object on behalf of a controller.
    pub fn system_delete(
        &mut self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> ApiResult<Deleted> {
        self.delete(res, ns, name, &DeleteOptions::default())
    }

    /// Removes a namespace whose contents are gone: clears `spec.finalizers` and deletes it.
    pub fn finish_namespace(&mut self, name: &str) {
        let res = self
            .registry
            .find("", "v1", "namespaces")
            .expect("namespaces are built in")
            .clone();
        let Some(obj) = self.get(&res, "", name).cloned() else {
            return;
        };
        if obj["metadata"]["deletionTimestamp"].is_null() || !finalizers(&obj).is_empty() {
            return;
        }
        self.remove(&res, "", name, Value::clone(&obj));
    }

    /// Applies the sidecar injectors to a pod being created.
    fn inject_sidecars(&self, ns: &str, pod: &mut Value) {
        let nsres = self
            .registry
            .find("", "v1", "namespaces")
            .expect("namespaces are built in");
        let Some(namespace) = self.get(nsres, "", ns) else {
            return;
        };
        let key = ("appmesh.k8s.aws".to_string(), "virtualnodes".to_string());
        let vns: Vec<&Value> = self
            .objects
            .get(&key)
            .map(|objs| {
                objs.iter()
                    .filter(|((n, _), _)| n == ns)
                    .map(|(_, o)| o.as_ref())
                    .collect()
            })
            .unwrap_or_default();
        crate::controllers::injection::inject(pod, namespace, &vns);
    }

    /// The object with `uid`: its resource (the preferred version), namespace, name and object.
    pub fn find_by_uid(&self, uid: &str) -> Option<(&ResourceInfo, &str, &str, &Arc<Value>)> {
        let (resource, at) = self.by_uid.get(uid)?;
        let res = self.storage_resource(&resource.0, &resource.1)?;
        let object = self.objects.get(resource)?.get(at)?;
        Some((res, &at.0, &at.1, object))
    }

    /// `PUT /api/v1/namespaces/{name}/finalize`: sets `spec.finalizers`; an emptied terminating
    /// namespace is removed.
    fn finalize_namespace(
        &mut self,
        res: &ResourceInfo,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let old = self
            .get(res, "", name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&res.qualified(), name))?;
        let mut new = Value::clone(&old);
        new["spec"]["finalizers"] = body["spec"]["finalizers"]
            .as_array()
            .cloned()
            .map(Value::Array)
            .unwrap_or(json!([]));
        let done = !new["metadata"]["deletionTimestamp"].is_null()
            && new["spec"]["finalizers"]
                .as_array()
                .is_some_and(Vec::is_empty)
            && finalizers(&new).is_empty();
        if opts.dry_run || new == *old {
            return Ok(Written {
                object: Arc::new(new),
                created: false,
                warnings: vec![],
            });
        }
        if done {
            return Ok(Written {
                object: self.remove(res, "", name, new),
                created: false,
                warnings: vec![],
            });
        }
        Ok(Written {
            object: self.store(res, "", name, new),
            created: false,
            warnings: vec![],
        })
    }

    /// Finds a stored object by resource, namespace and name.
    pub fn find(&self, res: &ResourceInfo, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.get(res, &ns_key(res, ns), name)
    }
}

/// Options for controller writes.
fn system_options(manager: &str) -> WriteOptions {
    WriteOptions {
        dry_run: false,
        manager: manager.to_string(),
        manager_explicit: true,
        validation: FieldValidation::Ignore,
        force: false,
        trusted: true,
    }
}

/// The merge shape of a resource.
pub fn shape_of(res: &ResourceInfo) -> Shape<'_> {
    if res.is_custom() {
        Shape::Schema(res.schema.as_deref())
    } else {
        Shape::Builtin
    }
}

fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// Rejects bodies whose apiVersion/kind do not match the endpoint.
fn check_object_identity(res: &ResourceInfo, body: &Value) -> ApiResult<()> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    let kind = body["kind"].as_str().unwrap_or_default();
    let av = body["apiVersion"].as_str().unwrap_or_default();
    if (!kind.is_empty() && kind != res.kind) || (!av.is_empty() && av != res.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    Ok(())
}

/// Fills in or checks `metadata.namespace` against the URL.
fn normalize_namespace(res: &ResourceInfo, ns: &str, body: &mut Value) -> ApiResult<()> {
    if !res.namespaced {
        remove_meta(body, "namespace");
        return Ok(());
    }
    let have = meta_str(body, "namespace");
    if !have.is_empty() && have != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    set_meta(body, "namespace", json!(ns));
    Ok(())
}

/// Five random lowercase alphanumerics, as generateName uses.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The uids an object's ownerReferences name.
fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

/// Whether `new` and `old` are the same object but for their status: the same fields in the
/// same order, each equal (compared in place, without copying either).
fn same_but_status(new: &Value, old: &Value) -> bool {
    let (Some(new), Some(old)) = (new.as_object(), old.as_object()) else {
        return false;
    };
    fn rest(m: &serde_json::Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
        m.iter().filter(|(k, _)| *k != "status")
    }
    let (mut new, mut old) = (rest(new), rest(old));
    loop {
        match (new.next(), old.next()) {
            (None, None) => return true,
            (Some((kn, vn)), Some((ko, vo))) if kn == ko && crate::equal::same(vn, vo) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_and_the_watch_history_share_each_written_object() {
        let store = Store::new();
        let mut rx = store.subscribe();
        let ns = store
            .registry()
            .find("", "v1", "namespaces")
            .unwrap()
            .clone();
        let maps = store
            .registry()
            .find("", "v1", "configmaps")
            .unwrap()
            .clone();
        store
            .system_create(&ns, "", json!({"metadata": {"name": "shop"}}), "test")
            .unwrap();
        let first = store
            .system_create(
                &maps,
                "shop",
                json!({"metadata": {"name": "m"}, "data": {"a": "1"}}),
                "test",
            )
            .unwrap();
        let second = store
            .system_update(
                &maps,
                "shop",
                "m",
                json!({"metadata": {"name": "m"}, "data": {"a": "2"}}),
                None,
                "test",
            )
            .unwrap();
        let _namespace = rx.try_recv().unwrap();
        let added = rx.try_recv().unwrap();
        let modified = rx.try_recv().unwrap();
        // One copy of each version: what the writer got back, the event, and the store's.
        assert!(Arc::ptr_eq(&added.object, &first.object));
        assert!(Arc::ptr_eq(&modified.object, &second.object));
        assert!(Arc::ptr_eq(modified.old.as_ref().unwrap(), &first.object));
        let (listed, _) = store.list(
            &maps,
            Some("shop"),
            &Default::default(),
            &Default::default(),
        );
        assert!(Arc::ptr_eq(&listed[0], &second.object));
        assert_eq!(listed[0]["data"]["a"], "2");
    }

    /// A store with the namespace `shop`, and the core resources by plural.
    fn shop() -> (Store, impl Fn(&str) -> ResourceInfo) {
        let store = Store::new();
        let registry = store.registry();
        let find = move |plural: &str| registry.find("", "v1", plural).unwrap().clone();
        store
            .system_create(
                &find("namespaces"),
                "",
                json!({"metadata": {"name": "shop"}}),
                "test",
            )
            .unwrap();
        (store, find)
    }

    #[test]
    fn a_patch_prepared_against_an_object_changed_since_is_not_stored_over_the_change() {
        let (store, find) = shop();
        let maps = find("configmaps");
        store
            .system_create(
                &maps,
                "shop",
                json!({"metadata": {"name": "m"}, "data": {"a": "1"}}),
                "test",
            )
            .unwrap();
        let opts = WriteOptions {
            trusted: false,
            ..system_options("client")
        };
        let patch_a = br#"{"data": {"a": "2"}}"#;
        let snapshot = store.lock().snapshot(&maps, "shop", "m");
        let read = snapshot.old.clone();
        let prepared = prepare_patch(
            snapshot,
            &maps,
            "shop",
            "m",
            PatchType::Merge,
            patch_a,
            None,
            &opts,
        )
        .unwrap();
        // Another write lands between the read and the store.
        store
            .system_update(
                &maps,
                "shop",
                "m",
                json!({"metadata": {"name": "m"}, "data": {"a": "1", "b": "3"}}),
                None,
                "other",
            )
            .unwrap();
        assert!(
            store
                .install_if_current(&maps, "shop", "m", read.as_ref(), prepared)
                .is_none()
        );
        assert_eq!(store.get(&maps, "shop", "m").unwrap()["data"]["b"], "3");
        // Through the store, the patch goes over what is stored now.
        let written = store
            .patch(&maps, "shop", "m", PatchType::Merge, patch_a, None, &opts)
            .unwrap();
        assert_eq!(written.object["data"], json!({"a": "2", "b": "3"}));
        assert!(Arc::ptr_eq(
            &written.object,
            store.lock().find(&maps, "shop", "m").unwrap()
        ));
    }

    #[test]
    fn a_status_write_made_again_keeps_what_changed_meanwhile_and_sets_its_status() {
        let (store, find) = shop();
        let pods = find("pods");
        let read = store
            .system_create(
                &pods,
                "shop",
                json!({"metadata": {"name": "p"},
                    "spec": {"containers": [{"name": "app", "image": "i"}]}}),
                "test",
            )
            .unwrap()
            .object;
        let mut new = Value::clone(&read);
        new["status"] = json!({"phase": "Running"});
        let kept = Kept::of(&new, Some("status"));
        // A label lands before the status write is stored.
        let mut labelled = Value::clone(&read);
        labelled["metadata"]["labels"] = json!({"tier": "web"});
        store
            .system_update(&pods, "shop", "p", labelled, None, "other")
            .unwrap();
        let current = store.lock().find(&pods, "shop", "p").cloned().unwrap();
        let written = store
            .system_update(
                &pods,
                "shop",
                "p",
                kept.over(&current),
                Some("status"),
                "kubelet",
            )
            .unwrap();
        assert_eq!(written.object["status"], json!({"phase": "Running"}));
        assert_eq!(written.object["metadata"]["labels"]["tier"], "web");
        // The label's ownership stays: the write is made over the object as it is now.
        let managers: Vec<&str> = written.object["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert!(managers.contains(&"other"), "{managers:?}");
        assert!(managers.contains(&"kubelet"), "{managers:?}");
    }

    #[test]
    fn the_status_belongs_to_whoever_writes_it_through_the_status_subresource() {
        let (store, find) = shop();
        let pod = json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "image": "i"}]}});
        let created = store
            .system_create(&find("pods"), "shop", pod, "kube-controller-manager")
            .unwrap()
            .object;
        // The creator owns what it sent, not the status the server reset.
        let fields = &created["metadata"]["managedFields"];
        assert_eq!(fields.as_array().map(Vec::len), Some(1), "{fields}");
        assert!(fields[0]["fieldsV1"].get("f:status").is_none(), "{fields}");
        assert!(fields[0]["fieldsV1"].get("f:spec").is_some(), "{fields}");
        let mut running = Value::clone(&created);
        running["status"] = json!({"phase": "Running"});
        let started = store
            .system_update(
                &find("pods"),
                "shop",
                "p",
                running,
                Some("status"),
                "kubelet",
            )
            .unwrap()
            .object;
        let fields = &started["metadata"]["managedFields"];
        assert_eq!(fields[0], created["metadata"]["managedFields"][0]);
        assert_eq!(fields[1]["manager"], "kubelet");
        assert_eq!(fields[1]["subresource"], "status");
        assert_eq!(fields[1]["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
    }
}
