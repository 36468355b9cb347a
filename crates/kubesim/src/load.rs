//! Loading YAML manifests into a store: CRDs first, then namespaces, then everything else.

use serde_json::Value;

use crate::server::ServerError;
use crate::store::{Store, WriteOptions};
use crate::validate::FieldValidation;

/// Parses a multi-document YAML text into objects (empty documents and `List` wrappers handled).
pub fn parse_documents(path: &str, text: &str) -> Result<Vec<Value>, ServerError> {
    // The parser's default budget (1,024 documents, 250,000 nodes) is for small configs; a
    // cluster's worth of objects is bigger. The limits grow with the text; alias and depth
    // limits stay as they are.
    let size = text.len();
    let defaults = serde_saphyr::Budget::default();
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: defaults.max_documents.max(size / 4),
            max_nodes: defaults.max_nodes.max(size),
            max_events: defaults.max_events.max(2 * size),
            max_total_scalar_bytes: defaults.max_total_scalar_bytes.max(size),
        },
    };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            ServerError::Parse {
                path: path.to_string(),
                message: e.to_string(),
            }
        })?;
    let mut out = Vec::new();
    for d in docs {
        if d.is_null() {
            continue;
        }
        match d["kind"].as_str() {
            Some(k) if k.ends_with("List") && d["items"].is_array() => {
                out.extend(d["items"].as_array().cloned().unwrap_or_default());
            }
            _ => out.push(d),
        }
    }
    Ok(out)
}

fn rank(obj: &Value) -> u8 {
    match obj["kind"].as_str() {
        Some("CustomResourceDefinition") => 0,
        Some("Namespace") => 1,
        _ => 2,
    }
}

/// Creates (or replaces) every object of the text; returns how many were stored.
pub fn load_yaml(store: &Store, path: &str, text: &str) -> Result<usize, ServerError> {
    let mut objs = parse_documents(path, text)?;
    objs.sort_by_key(rank);
    load_objects(store, path, objs)
}

/// Creates objects in the given order, creating missing namespaces on the way.
pub fn load_objects(store: &Store, path: &str, objs: Vec<Value>) -> Result<usize, ServerError> {
    let opts = WriteOptions {
        dry_run: false,
        manager: "kubesim-load".into(),
        manager_explicit: true,
        validation: FieldValidation::Strict,
        force: false,
        trusted: false,
    };
    let mut n = 0;
    for obj in objs {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let rejected = |source| ServerError::Rejected {
            path: path.to_string(),
            kind: kind.clone(),
            name: name.clone(),
            error: Box::new(source),
        };
        let (group, version) = match obj["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .split_once('/')
        {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                obj["apiVersion"].as_str().unwrap_or_default().to_string(),
            ),
        };
        let reg = store.registry();
        let Some(res) = reg.find_kind(&group, &version, &kind).cloned() else {
            return Err(rejected(crate::error::ApiError::bad_request(format!(
                "no matches for kind \"{kind}\" in version \"{}\"",
                obj["apiVersion"].as_str().unwrap_or_default()
            ))));
        };
        let ns = if res.namespaced {
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        if res.namespaced {
            ensure_namespace(store, &ns).map_err(rejected)?;
        }
        store.create(&res, &ns, obj, &opts).map_err(rejected)?;
        n += 1;
    }
    Ok(n)
}

/// Creates a namespace if it does not exist.
pub fn ensure_namespace(store: &Store, ns: &str) -> Result<(), crate::error::ApiError> {
    let reg = store.registry();
    let res = reg
        .find("", "v1", "namespaces")
        .expect("namespaces are built in");
    if store.get(res, "", ns).is_ok() {
        return Ok(());
    }
    let opts = WriteOptions {
        manager: "kubesim-load".into(),
        manager_explicit: true,
        ..Default::default()
    };
    store
        .create(
            res,
            "",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            &opts,
        )
        .map(|_| ())
}
