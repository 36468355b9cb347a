//! Shared test support: the CRD folder and validation of objects against CRD schemas.
#![allow(dead_code)]

pub mod prometheus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// A kubesim with the App Mesh and Istio CRDs, a stand-in istiod and the color app loaded.
pub async fn color_cluster(rollout_delay: std::time::Duration) -> kubesim::RunningServer {
    let server = kubesim::Server::builder()
        .rollout_delay(rollout_delay)
        .start()
        .await
        .unwrap();
    let mut crds: Vec<PathBuf> = std::fs::read_dir(crds_dir().join("appmesh"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    crds.sort();
    crds.push(crds_dir().join("istio/customresourcedefinitions.gen.yaml"));
    for path in crds {
        let text = std::fs::read_to_string(&path).unwrap();
        server
            .load_yaml(&path.display().to_string(), &text)
            .unwrap();
    }
    let istiod = root().join("examples/kubesim/istiod.yaml");
    let text = std::fs::read_to_string(&istiod).unwrap();
    server.load_yaml("istiod", &text).unwrap();
    // One stream, so that kubesim creates the Namespace before the objects in it.
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples/howto-k8s-http2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    server
        .load_yaml("examples/howto-k8s-http2", &texts.join("\n---\n"))
        .unwrap();
    server
}
