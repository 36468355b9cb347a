//! Shared test support: the CRD folder and validation of objects against CRD schemas.
#![allow(dead_code)]

pub mod prometheus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::time::Duration;

use meshplan::cluster::Cluster;
use meshplan::diff::normalise;
use meshplan::object::ObjectRef;
use serde_json::Value;

/// The upstream CRDs: `$MESHPLAN_CRDS_DIR`, or `../shared/crds` beside the repository.
pub fn crds_dir() -> PathBuf {
    std::env::var_os("MESHPLAN_CRDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/crds"))
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Reads every document of a YAML file.
pub fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The `openAPIV3Schema` of every served version of every CRD in a folder, made strict.
pub struct CrdSchemas {
    schemas: BTreeMap<(String, String), jsonschema::Validator>,
}

impl CrdSchemas {
    /// Loads every CRD of the `.yaml` files in `dir`.
    pub fn load(dir: &Path) -> CrdSchemas {
        let mut schemas = BTreeMap::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e} (set MESHPLAN_CRDS_DIR)", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            for crd in yaml_documents(&file) {
                if crd["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let group = crd["spec"]["group"].as_str().unwrap().to_owned();
                let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
                for version in crd["spec"]["versions"].as_array().unwrap() {
                    let name = version["name"].as_str().unwrap();
                    let mut schema = version["schema"]["openAPIV3Schema"].clone();
                    // Istio's CRDs leave the object's own envelope out of the schema.
                    let properties = schema["properties"].as_object_mut().unwrap();
                    for (key, kind) in [
                        ("apiVersion", "string"),
                        ("kind", "string"),
                        ("metadata", "object"),
                    ] {
                        properties
                            .entry(key)
                            .or_insert(serde_json::json!({"type": kind}));
                    }
                    strict(&mut schema);
                    let validator = jsonschema::validator_for(&schema)
                        .unwrap_or_else(|e| panic!("{group}/{name} {kind}: {e}"));
                    schemas.insert((format!("{group}/{name}"), kind.clone()), validator);
                }
            }
        }
        assert!(!schemas.is_empty(), "no CRDs in {}", dir.display());
        CrdSchemas { schemas }
    }

    /// Validates an object against its CRD's schema; lists every violation with its path.
    pub fn validate(&self, object: &Value) -> Result<(), Vec<String>> {
        let key = (
            object["apiVersion"].as_str().unwrap_or_default().to_owned(),
            object["kind"].as_str().unwrap_or_default().to_owned(),
        );
        let Some(validator) = self.schemas.get(&key) else {
            return Err(vec![format!("no CRD serves {} {}", key.0, key.1)]);
        };
        let errors: Vec<String> = validator
            .iter_errors(object)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The API server prunes unknown fields; a test must reject them instead, so every object schema
/// with properties closes unless it preserves unknown fields.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let preserve = map
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if map.contains_key("properties")
                && !preserve
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, child) in map.iter_mut() {
                // CEL rules are not JSON Schema; the API server evaluates them.
                if key != "x-kubernetes-validations" {
                    strict(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The documents every color cluster starts with, parsed once per test process (parsing the
/// Istio CRDs takes most of a second): CRDs, then istiod, then the color app in one stream, so
/// that kubesim creates the Namespace before the objects in it.
fn color_documents() -> &'static [(String, Vec<Value>)] {
    static DOCUMENTS: std::sync::OnceLock<Vec<(String, Vec<Value>)>> = std::sync::OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let parse = |label: String, text: &str| {
            let mut documents = kubesim::load::parse_documents(&label, text).unwrap();
            // The order `Server::load_yaml` loads in: CRDs, Namespaces, the rest.
            documents.sort_by_key(|o| match o["kind"].as_str() {
                Some("CustomResourceDefinition") => 0,
                Some("Namespace") => 1,
                _ => 2,
            });
            (label, documents)
        };
        let mut crds: Vec<PathBuf> = std::fs::read_dir(crds_dir().join("appmesh"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        crds.sort();
        crds.push(crds_dir().join("istio/customresourcedefinitions.gen.yaml"));
        let mut out: Vec<(String, Vec<Value>)> = crds
            .iter()
            .map(|path| {
                parse(
                    path.display().to_string(),
                    &std::fs::read_to_string(path).unwrap(),
                )
            })
            .collect();
        let istiod = root().join("examples/kubesim/istiod.yaml");
        out.push(parse(
            "istiod".to_owned(),
            &std::fs::read_to_string(&istiod).unwrap(),
        ));
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples/howto-k8s-http2"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let texts: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        out.push(parse(
            "examples/howto-k8s-http2".to_owned(),
            &texts.join("\n---\n"),
        ));
        out
    })
}

/// A kubesim with the App Mesh and Istio CRDs, a stand-in istiod and the color app loaded.
pub async fn color_cluster(rollout_delay: std::time::Duration) -> kubesim::RunningServer {
    let server = kubesim::Server::builder()
        .rollout_delay(rollout_delay)
        .start()
        .await
        .unwrap();
    for (label, documents) in color_documents() {
        kubesim::load::load_objects(server.store(), label, documents.clone()).unwrap();
    }
    server
}

/// The color cluster (rollouts of 30 ms) with its kubeconfig written to `dir`.
pub async fn cluster(dir: &Path) -> (kubesim::RunningServer, PathBuf) {
    let server = color_cluster(Duration::from_millis(30)).await;
    std::fs::create_dir_all(dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    (server, kubeconfig)
}

/// The container names of each live pod of the color demo, sorted.
pub async fn containers(cluster: &Cluster) -> Vec<Vec<String>> {
    use kube::api::{Api, ListParams};
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(cluster.client.clone(), "howto-k8s-http2");
    let mut out: Vec<Vec<String>> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            p.spec
                .unwrap()
                .containers
                .into_iter()
                .map(|c| c.name)
                .collect()
        })
        .collect();
    out.sort();
    out
}

/// What the migration leaves behind, normalised (pod names and timestamps aside).
pub async fn outcome(kubeconfig: &Path) -> Vec<Value> {
    let client = meshplan::cluster::connect(Some(kubeconfig), None)
        .await
        .unwrap();
    let cluster = Cluster::new(client);
    let ns = Some("howto-k8s-http2");
    let mut out = Vec::new();
    for (api, kind, namespace, name) in [
        ("v1", "Namespace", None, "howto-k8s-http2"),
        ("v1", "Service", ns, "color"),
        ("networking.istio.io/v1", "VirtualService", ns, "color"),
        ("networking.istio.io/v1", "DestinationRule", ns, "color"),
        ("networking.istio.io/v1", "Sidecar", ns, "client"),
        ("security.istio.io/v1", "PeerAuthentication", ns, "default"),
        (
            "telemetry.istio.io/v1",
            "Telemetry",
            Some("istio-system"),
            "mesh-default",
        ),
        ("appmesh.k8s.aws/v1beta2", "VirtualRouter", ns, "color"),
        ("appmesh.k8s.aws/v1beta2", "VirtualNode", ns, "red"),
    ] {
        let object = cluster
            .get(&ObjectRef::new(api, kind, namespace, name))
            .await
            .unwrap();
        out.push(
            object
                .map(|o| {
                    let mut o = normalise(&o);
                    if let Some(meta) = o["metadata"].as_object_mut() {
                        meta.remove("annotations");
                    }
                    if let Some(spec) = o["spec"].as_object_mut() {
                        // Allocated by the server, different in every cluster.
                        spec.remove("clusterIP");
                        spec.remove("clusterIPs");
                    }
                    o
                })
                .unwrap_or(Value::Null),
        );
    }
    out.push(serde_json::to_value(containers(&cluster).await).unwrap());
    out
}

/// A fresh temporary folder (not created) for this test process.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshplan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
