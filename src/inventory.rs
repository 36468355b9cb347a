//! The inventory: App Mesh objects and the workloads they select, read from manifests.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use crate::appmesh::{
    self, BackendGroup, GatewayRoute, Mesh, VirtualGateway, VirtualNode, VirtualRouter,
    VirtualService,
};
use crate::object::ObjectRef;
use crate::tight::Tight;

/// The largest manifest file read, in bytes: far above any mesh's manifests, and small enough
/// that parsing one stays within memory (the parser's budget grows with the text).
pub const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;

/// Where an object was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// Line of the document's first key (1-based; 0 when unknown).
    pub line: u64,
}

impl Origin {
    /// File and line, in reading order.
    fn place(&self) -> (&Path, u64) {
        (&self.file, self.line)
    }
}

/// An object as typed, with the raw JSON it came from.
#[derive(Debug, Clone)]
pub struct Item<T> {
    /// The typed object.
    pub value: T,
    /// The object as read, shared with the changes that show it as it was.
    pub raw: Arc<Value>,
    /// Where it was read from.
    pub origin: Origin,
}

impl<T> Item<T> {
    /// The object's reference.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::of(&self.raw)
    }

    /// The object's namespace, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.raw["metadata"]["namespace"].as_str().unwrap_or("")
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.raw["metadata"]["name"].as_str().unwrap_or("")
    }
}

/// Everything read from the source, by kind, in the order read.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Namespaces.
    pub namespaces: Vec<Item<Namespace>>,
    /// Services.
    pub services: Vec<Item<ServiceView>>,
    /// Deployments.
    pub deployments: Vec<Item<Workload>>,
    /// ConfigMaps (cloned by a parallel-namespace migration).
    pub config_maps: Vec<Item<()>>,
    /// ServiceAccounts (cloned by a parallel-namespace migration).
    pub service_accounts: Vec<Item<()>>,
    /// Secrets (cloned only with `clone_secrets`; from a cluster, their metadata only).
    pub secrets: Vec<Item<()>>,
    /// App Mesh meshes.
    pub meshes: Vec<Item<Mesh>>,
    /// App Mesh virtual nodes.
    pub virtual_nodes: Vec<Item<VirtualNode>>,
    /// App Mesh virtual services.
    pub virtual_services: Vec<Item<VirtualService>>,
    /// App Mesh virtual routers.
    pub virtual_routers: Vec<Item<VirtualRouter>>,
    /// App Mesh virtual gateways.
    pub virtual_gateways: Vec<Item<VirtualGateway>>,
    /// App Mesh gateway routes.
    pub gateway_routes: Vec<Item<GatewayRoute>>,
    /// App Mesh backend groups.
    pub backend_groups: Vec<Item<BackendGroup>>,
    /// Objects of kinds meshplan does not model (reported, never changed).
    pub other: Vec<Item<()>>,
    /// Objects whose fields do not fit their kind's schema, with the reason (reported as errors).
    pub invalid: Vec<(Item<()>, String)>,
}

/// What the translation reads of a Deployment: its pod template's labels, service account and
/// containers. Each Deployment is decoded whole (k8s-openapi's `Deployment`) to check it, then
/// only this is kept: the typed Deployment is 2.4 KB before its containers' 2.1 KB each, and a
/// plan holds thousands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// The pod template's labels.
    pub template_labels: BTreeMap<String, String>,
    /// The pod template's `serviceAccountName`.
    pub service_account_name: Option<String>,
    /// The pod template's containers.
    pub containers: Vec<WorkloadContainer>,
}

/// What the translation reads of a pod template's container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadContainer {
    /// Its name.
    pub name: String,
    /// Its `containerPort`s.
    pub ports: Vec<i32>,
    /// Whether it has a readiness probe.
    pub readiness_probe: bool,
}

/// What the translation reads of a Service: its selector and ports. Each Service is decoded
/// whole (k8s-openapi's `Service`) to check it, then only this is kept, as for a [`Workload`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceView {
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// `spec.ports`.
    pub ports: Vec<PortView>,
}

/// What the translation reads of a Service port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortView {
    /// `port`.
    pub port: i32,
    /// `targetPort` when it is a number (a named one is not kept).
    pub target_port: Option<i32>,
}

impl From<Service> for ServiceView {
    fn from(service: Service) -> ServiceView {
        let spec = service.spec.unwrap_or_default();
        ServiceView {
            selector: spec.selector.unwrap_or_default(),
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| PortView {
                    port: p.port,
                    target_port: match p.target_port {
                        Some(IntOrString::Int(t)) => Some(t),
                        _ => None,
                    },
                })
                .collect(),
        }
    }
}

impl From<Deployment> for Workload {
    fn from(deployment: Deployment) -> Workload {
        let template = deployment
            .spec
            .map(|spec| spec.template)
            .unwrap_or_default();
        let spec = template.spec.unwrap_or_default();
        // Not collected in place: that would keep the typed containers' allocation.
        let mut containers = Vec::with_capacity(spec.containers.len());
        containers.extend(spec.containers.into_iter().map(|c| WorkloadContainer {
            ports: c.ports.iter().flatten().map(|p| p.container_port).collect(),
            readiness_probe: c.readiness_probe.is_some(),
            name: c.name,
        }));
        Workload {
            template_labels: template.metadata.and_then(|m| m.labels).unwrap_or_default(),
            service_account_name: spec.service_account_name,
            containers,
        }
    }
}

/// A manifest that cannot be read.
#[derive(Debug, Error, Diagnostic)]
pub enum ManifestError {
    /// The path does not exist or cannot be read.
    #[error("cannot read {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A folder holds no YAML files.
    #[error("{path}: no .yaml or .yml files in this folder")]
    #[diagnostic(help("point `source.manifests` at the files that hold the App Mesh objects"))]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
    },
    /// A file too large to parse safely.
    #[error("{path}: {size} bytes is too large for a manifest file (at most {} MiB)", MAX_MANIFEST_BYTES >> 20)]
    #[diagnostic(help(
        "split the manifests into several files of a folder, or leave out objects that are not \
         App Mesh objects, Namespaces, Services or Deployments"
    ))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The text is not valid YAML.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Yaml(Box<YamlError>),
    /// A document is not a Kubernetes object, or a field has the wrong type.
    #[error("{file}:{line}: {what}: {message}")]
    Object {
        /// The file.
        file: PathBuf,
        /// Line of the document.
        line: u64,
        /// The object (kind and name) or the document number.
        what: String,
        /// What is wrong, with the field path.
        message: String,
        /// What would be valid.
        #[help]
        help: Option<String>,
    },
}

/// YAML that does not parse, with the place the parser stopped.
#[derive(Debug, Error, Diagnostic)]
#[error("{file}:{line}:{column}: invalid YAML: {message}")]
pub struct YamlError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// The parser's message.
    pub message: String,
    #[source_code]
    text: NamedSource<String>,
    #[label("here")]
    span: Option<SourceSpan>,
    #[help]
    help: Option<String>,
}

impl Inventory {
    /// Reads every manifest under `paths` (files, or folders of `.yaml`/`.yml` files).
    pub fn from_paths(paths: &[PathBuf]) -> Result<Inventory, ManifestError> {
        let mut inventory = Inventory::default();
        for path in paths {
            for file in yaml_files(path)? {
                // Refused before reading, so that a huge file costs no memory.
                if let Ok(meta) = std::fs::metadata(&file) {
                    too_large(&file, meta.len())?;
                }
                let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Io {
                    path: file.clone(),
                    source,
                })?;
                inventory.add_yaml(&file, &text)?;
            }
        }
        inventory.check_unique()?;
        Ok(inventory)
    }

    /// Refuses a second definition of one object: the cluster holds one per group, kind,
    /// namespace and name, and which of two gets migrated would depend on reading order.
    /// The error names the repeat read first (by file and line) and the definition before it.
    fn check_unique(&self) -> Result<(), ManifestError> {
        let mut all: Vec<(&Value, &Origin)> = Vec::with_capacity(self.len());
        all.extend(origins(&self.namespaces));
        all.extend(origins(&self.services));
        all.extend(origins(&self.deployments));
        all.extend(origins(&self.config_maps));
        all.extend(origins(&self.service_accounts));
        all.extend(origins(&self.secrets));
        all.extend(origins(&self.meshes));
        all.extend(origins(&self.virtual_nodes));
        all.extend(origins(&self.virtual_services));
        all.extend(origins(&self.virtual_routers));
        all.extend(origins(&self.virtual_gateways));
        all.extend(origins(&self.gateway_routes));
        all.extend(origins(&self.backend_groups));
        all.extend(origins(&self.other));
        all.extend(
            self.invalid
                .iter()
                .map(|(item, _)| (&*item.raw, &item.origin)),
        );
        // Keys borrowed from the objects: a large mesh has tens of thousands.
        let mut first: HashMap<Identity<'_>, &Origin> = HashMap::with_capacity(all.len());
        let mut repeated = false;
        for &(raw, origin) in &all {
            first
                .entry(identity(raw))
                .and_modify(|earlier| {
                    repeated = true;
                    if origin.place() < earlier.place() {
                        *earlier = origin;
                    }
                })
                .or_insert(origin);
        }
        if !repeated {
            return Ok(());
        }
        let (raw, origin, earlier) = all
            .iter()
            .filter_map(|&(raw, origin)| {
                let earlier = first[&identity(raw)];
                (!std::ptr::eq(earlier, origin)).then_some((raw, origin, earlier))
            })
            .min_by(|a, b| a.1.place().cmp(&b.1.place()))
            .expect("a repeated object has a later definition");
        Err(ManifestError::Object {
            file: origin.file.clone(),
            line: origin.line,
            what: ObjectRef::of(raw).to_string(),
            message: format!(
                "defined a second time (first at {}:{})",
                earlier.file.display(),
                earlier.line
            ),
            help: Some("keep one definition of each object".to_owned()),
        })
    }

    /// Adds every document of one YAML stream.
    pub fn add_yaml(&mut self, file: &Path, text: &str) -> Result<(), ManifestError> {
        let documents = parse_documents(file, text)?;
        self.reserve(documents.iter().map(|d| &d.value));
        for (index, document) in documents.into_iter().enumerate() {
            let origin = Origin {
                file: file.to_owned(),
                line: document.referenced.line(),
            };
            match document.value {
                Value::Null => continue,
                Value::Object(_) => self.add(document.value, origin, index)?,
                other => {
                    return Err(ManifestError::Object {
                        file: origin.file,
                        line: origin.line,
                        what: format!("document {}", index + 1),
                        message: format!(
                            "expected a Kubernetes object (a mapping), found {}",
                            json_type(&other)
                        ),
                        help: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Adds one object given as JSON.
    pub fn add(&mut self, raw: Value, origin: Origin, index: usize) -> Result<(), ManifestError> {
        let object = ObjectRef::of(&raw);
        let problems: Vec<String> = [&["apiVersion"][..], &["kind"], &["metadata", "name"]]
            .into_iter()
            .filter_map(|path| string_problem(&raw, path))
            .collect();
        if !problems.is_empty() {
            return Err(ManifestError::Object {
                file: origin.file,
                line: origin.line,
                what: if object.kind.is_empty() {
                    format!("document {}", index + 1)
                } else {
                    format!("{} (document {})", object.kind, index + 1)
                },
                message: problems.join("; "),
                help: Some(
                    "every document must be a Kubernetes object whose apiVersion, kind and \
                     metadata.name are strings"
                        .to_owned(),
                ),
            });
        }
        let item = Item {
            value: (),
            raw: Arc::new(raw),
            origin,
        };
        let invalid = &mut self.invalid;
        match Slot::of(&object.api_version, &object.kind) {
            Slot::Namespaces => typed(item, &mut self.namespaces, invalid),
            Slot::Services => typed::<Service, _>(item, &mut self.services, invalid),
            Slot::Deployments => typed::<Deployment, _>(item, &mut self.deployments, invalid),
            Slot::Meshes => typed(item, &mut self.meshes, invalid),
            Slot::VirtualNodes => typed(item, &mut self.virtual_nodes, invalid),
            Slot::VirtualServices => typed(item, &mut self.virtual_services, invalid),
            Slot::VirtualRouters => typed(item, &mut self.virtual_routers, invalid),
            Slot::VirtualGateways => typed(item, &mut self.virtual_gateways, invalid),
            Slot::GatewayRoutes => typed(item, &mut self.gateway_routes, invalid),
            Slot::BackendGroups => typed(item, &mut self.backend_groups, invalid),
            Slot::ConfigMaps => self.config_maps.push(item),
            Slot::ServiceAccounts => self.service_accounts.push(item),
            Slot::Secrets => self.secrets.push(item),
            Slot::Other => self.other.push(item),
        }
        Ok(())
    }

    /// Makes room for `objects` in their kinds' lists up front: a typed VirtualNode is 0.6 KB,
    /// and growing a list of thousands of them one doubling at a time copies it all again.
    fn reserve<'v>(&mut self, objects: impl Iterator<Item = &'v Value>) {
        let mut counts = [0usize; Slot::COUNT];
        for object in objects {
            let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("");
            counts[Slot::of(text("apiVersion"), text("kind")) as usize] += 1;
        }
        let count = |slot: Slot| counts[slot as usize];
        self.namespaces.reserve(count(Slot::Namespaces));
        self.services.reserve(count(Slot::Services));
        self.deployments.reserve(count(Slot::Deployments));
        self.meshes.reserve(count(Slot::Meshes));
        self.virtual_nodes.reserve(count(Slot::VirtualNodes));
        self.virtual_services.reserve(count(Slot::VirtualServices));
        self.virtual_routers.reserve(count(Slot::VirtualRouters));
        self.virtual_gateways.reserve(count(Slot::VirtualGateways));
        self.gateway_routes.reserve(count(Slot::GatewayRoutes));
        self.backend_groups.reserve(count(Slot::BackendGroups));
        self.config_maps.reserve(count(Slot::ConfigMaps));
        self.service_accounts.reserve(count(Slot::ServiceAccounts));
        self.secrets.reserve(count(Slot::Secrets));
        self.other.reserve(count(Slot::Other));
    }

    /// Number of objects read.
    pub fn len(&self) -> usize {
        self.namespaces.len()
            + self.services.len()
            + self.deployments.len()
            + self.config_maps.len()
            + self.service_accounts.len()
            + self.secrets.len()
            + self.meshes.len()
            + self.virtual_nodes.len()
            + self.virtual_services.len()
            + self.virtual_routers.len()
            + self.virtual_gateways.len()
            + self.gateway_routes.len()
            + self.backend_groups.len()
            + self.other.len()
            + self.invalid.len()
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The namespaced App Mesh objects as read (every App Mesh kind but Mesh).
    pub fn appmesh_raw(&self) -> impl Iterator<Item = &Arc<Value>> {
        fn raw<T>(items: &[Item<T>]) -> impl Iterator<Item = &Arc<Value>> {
            items.iter().map(|i| &i.raw)
        }
        raw(&self.virtual_nodes)
            .chain(raw(&self.virtual_services))
            .chain(raw(&self.virtual_routers))
            .chain(raw(&self.virtual_gateways))
            .chain(raw(&self.gateway_routes))
            .chain(raw(&self.backend_groups))
    }
}

/// The list of the inventory an object of a given apiVersion and kind goes into.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Namespaces,
    Services,
    Deployments,
    Meshes,
    VirtualNodes,
    VirtualServices,
    VirtualRouters,
    VirtualGateways,
    GatewayRoutes,
    BackendGroups,
    ConfigMaps,
    ServiceAccounts,
    Secrets,
    Other,
}

impl Slot {
    const COUNT: usize = Slot::Other as usize + 1;

    fn of(api_version: &str, kind: &str) -> Slot {
        match (api_version, kind) {
            ("v1", "Namespace") => Slot::Namespaces,
            ("v1", "Service") => Slot::Services,
            ("apps/v1", "Deployment") => Slot::Deployments,
            (appmesh::API_VERSION, "Mesh") => Slot::Meshes,
            (appmesh::API_VERSION, "VirtualNode") => Slot::VirtualNodes,
            (appmesh::API_VERSION, "VirtualService") => Slot::VirtualServices,
            (appmesh::API_VERSION, "VirtualRouter") => Slot::VirtualRouters,
            (appmesh::API_VERSION, "VirtualGateway") => Slot::VirtualGateways,
            (appmesh::API_VERSION, "GatewayRoute") => Slot::GatewayRoutes,
            (appmesh::API_VERSION, "BackendGroup") => Slot::BackendGroups,
            ("v1", "ConfigMap") => Slot::ConfigMaps,
            ("v1", "ServiceAccount") => Slot::ServiceAccounts,
            ("v1", "Secret") => Slot::Secrets,
            _ => Slot::Other,
        }
    }
}

/// What makes an object one of its own: group, kind, namespace and name.
type Identity<'a> = (&'a str, &'a str, Option<&'a str>, &'a str);

fn identity(raw: &Value) -> Identity<'_> {
    let (api_version, kind, namespace, name) = crate::object::parts(raw);
    (crate::object::group_of(api_version), kind, namespace, name)
}

/// Each item's object and where it was read.
fn origins<T>(items: &[Item<T>]) -> impl Iterator<Item = (&Value, &Origin)> {
    items.iter().map(|item| (&*item.raw, &item.origin))
}

/// Decodes an object into its type `T`, kept as `K`, or files it as invalid with the field path
/// at fault.
fn typed<T: DeserializeOwned, K: From<T>>(
    item: Item<()>,
    into: &mut Vec<Item<K>>,
    invalid: &mut Vec<(Item<()>, String)>,
) {
    // Decoded plainly first: tracking the path of every field costs a third more, and only an
    // object that does not fit needs it (decoded again, to name the field).
    match T::deserialize(&*item.raw) {
        Ok(value) => into.push(Item {
            value: K::from(value),
            raw: item.raw,
            origin: item.origin,
        }),
        Err(plain) => {
            let reason = match serde_path_to_error::deserialize::<_, T>(&*item.raw) {
                Err(err) => format!("field `{}`: {}", err.path(), err.inner()),
                Ok(_) => plain.to_string(),
            };
            invalid.push((item, reason));
        }
    }
}

fn too_large(file: &Path, size: u64) -> Result<(), ManifestError> {
    if size > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            path: file.to_owned(),
            size,
        });
    }
    Ok(())
}

/// What makes the string at `path` unusable as an object's identity, if anything.
fn string_problem(raw: &Value, path: &[&str]) -> Option<String> {
    let mut value = raw;
    for (depth, key) in path.iter().enumerate() {
        let shown = path[..=depth].join(".");
        value = match value.get(key) {
            None | Some(Value::Null) => return Some(format!("missing `{shown}`")),
            Some(value) => value,
        };
        let last = depth + 1 == path.len();
        match (last, value) {
            (true, Value::String(text)) if text.is_empty() => {
                return Some(format!("`{shown}` is empty"));
            }
            (true, Value::String(_)) | (false, Value::Object(_)) => {}
            (true, other) => {
                return Some(format!("`{shown}` is {}, not a string", json_type(other)));
            }
            (false, other) => {
                return Some(format!("`{shown}` is {}, not a mapping", json_type(other)));
            }
        }
    }
    None
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses every document of a multi-document YAML text, as the Kubernetes API reads YAML.
pub fn parse_documents(
    file: &Path,
    text: &str,
) -> Result<Vec<serde_saphyr::Spanned<Value>>, ManifestError> {
    // As the Kubernetes API reads YAML: `0644` is octal; only true/false are booleans, so
    // a namespace called `n` or a value `yes` stays a string.
    // The parser's default budget (1,024 documents, 250,000 nodes) protects small configs;
    // a cluster's worth of manifests in one file is bigger. The limits grow with the text, so
    // memory stays proportional to the input; alias and depth limits stay as they are
    // (billion-laughs and deep nesting are still refused).
    too_large(file, text.len() as u64)?;
    let size = text.len();
    let defaults = serde_saphyr::Budget::default();
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_documents: defaults.max_documents.max(size / 4),
            max_nodes: defaults.max_nodes.max(size),
            max_events: defaults.max_events.max(2 * size),
            max_total_scalar_bytes: defaults.max_total_scalar_bytes.max(size),
        },
    };
    let documents: Vec<serde_saphyr::Spanned<Tight>> =
        serde_saphyr::from_multiple_with_options(text, options)
            .map_err(|err| yaml_error(file, text, &err))?;
    Ok(documents
        .into_iter()
        .map(|d| serde_saphyr::Spanned::new(d.value.0, d.referenced, d.defined))
        .collect())
}

fn yaml_error(file: &Path, text: &str, err: &serde_saphyr::Error) -> ManifestError {
    let location = err.location();
    let (line, column) = location.map_or((0, 0), |l| (l.line(), l.column()));
    let span = location.and_then(|l| {
        let start = l.span().byte_offset()?;
        Some(SourceSpan::from(
            usize::try_from(start).ok()?..usize::try_from(start).ok()?,
        ))
    });
    let mut cause = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = cause
    {
        cause = error;
    }
    let help = matches!(cause, serde_saphyr::Error::Budget { .. }).then(|| {
        "meshplan bounds what one file may expand to (nodes, events, aliases, nesting), as a \
         guard against alias bombs; write repeated values out, or split the file"
            .to_owned()
    });
    ManifestError::Yaml(Box::new(YamlError {
        file: file.to_owned(),
        line,
        column,
        // The user-facing wording: the default one advises on parser options.
        message: err.render_with_options(serde_saphyr::render_options! {
            formatter: &serde_saphyr::UserMessageFormatter,
            snippets: serde_saphyr::SnippetMode::Off,
        }),
        text: NamedSource::new(file.display().to_string(), text.to_owned()),
        span,
        help,
    }))
}

/// The YAML files a source path stands for (a file, or a folder's `.yaml`/`.yml` files), sorted.
pub fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let file = entry.path();
        let is_yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && entry.file_type().map_err(io)?.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ManifestError::EmptyFolder {
            path: path.to_owned(),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_object_is_reported_at_its_first_repeat_in_file_order() {
        let service = |namespace: &str| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  namespace: {namespace}\n---\n"
            )
        };
        let mut inventory = Inventory::default();
        // Read b.yaml first: the error still follows file and line order, not reading order.
        let b = service("x") + &service("y");
        inventory.add_yaml(Path::new("b.yaml"), &b).unwrap();
        let a = service("z") + &service("y") + &service("x");
        inventory.add_yaml(Path::new("a.yaml"), &a).unwrap();
        assert_eq!(
            inventory.check_unique().unwrap_err().to_string(),
            "b.yaml:1: Service x/a: defined a second time (first at a.yaml:13)"
        );
        let mut unique = Inventory::default();
        unique.add_yaml(Path::new("a.yaml"), &a).unwrap();
        assert!(unique.check_unique().is_ok());
    }

    /// The inventory filed exactly one object as invalid: `name`, for a reason starting `reason`.
    fn assert_invalid(inventory: &Inventory, name: &str, reason: &str) {
        let [(item, why)] = inventory.invalid.as_slice() else {
            panic!("one invalid object: {:?}", inventory.invalid);
        };
        assert_eq!(item.name(), name);
        assert!(why.starts_with(reason), "{why}");
    }

    #[test]
    fn a_deployment_is_checked_whole_and_kept_as_the_translation_reads_it() {
        let text = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec:
      serviceAccountName: web-sa
      containers:
      - name: app
        image: web:1
        ports: [{containerPort: 8080}, {containerPort: 9090}]
        readinessProbe: {httpGet: {path: /, port: 8080}}
      - {name: envoy, image: envoy:1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: shop}
spec:
  replicas: three
  selector: {matchLabels: {app: broken}}
  template: {spec: {containers: [{name: app, image: app:1}]}}
";
        let mut inventory = Inventory::default();
        inventory.add_yaml(Path::new("d.yaml"), text).unwrap();
        let container = |name: &str, ports: Vec<i32>, readiness_probe| WorkloadContainer {
            name: name.to_owned(),
            ports,
            readiness_probe,
        };
        assert_eq!(inventory.deployments.len(), 1);
        assert_eq!(
            inventory.deployments[0].value,
            Workload {
                template_labels: [("app", "web"), ("version", "v1")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                service_account_name: Some("web-sa".to_owned()),
                containers: vec![
                    container("app", vec![8080, 9090], true),
                    container("envoy", vec![], false),
                ],
            }
        );
        assert_invalid(&inventory, "broken", "field `spec.replicas`: invalid type");
    }

    #[test]
    fn a_service_is_checked_whole_and_kept_as_the_translation_reads_it() {
        let text = "\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {team: a}}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: admin, port: 9000, targetPort: admin}
  - {name: grpc, port: 9090}
---
apiVersion: v1
kind: Service
metadata: {name: broken, namespace: shop}
spec:
  ports: [{port: eighty}]
";
        let mut inventory = Inventory::default();
        inventory.add_yaml(Path::new("s.yaml"), text).unwrap();
        let port = |port, target_port| PortView { port, target_port };
        assert_eq!(inventory.services.len(), 1);
        assert_eq!(
            inventory.services[0].value,
            ServiceView {
                selector: [("app".to_owned(), "web".to_owned())].into(),
                ports: vec![port(80, Some(8080)), port(9000, None), port(9090, None)],
            }
        );
        assert_invalid(
            &inventory,
            "broken",
            "field `spec.ports[0].port`: invalid type",
        );
    }
}
