//! The bundled color demo matches the upstream rendering and the App Mesh CRD schemas.

mod common;

use std::collections::BTreeMap;

use common::{CrdSchemas, crds_dir, root, yaml_documents};
use meshplan::diff::normalise;
use serde_json::Value;

fn by_ref(docs: Vec<Value>) -> BTreeMap<String, Value> {
    docs.into_iter()
        .map(|d| {
            let key = format!(
                "{} {}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["namespace"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap()
            );
            (key, normalise(&d))
        })
        .collect()
}

#[test]
fn the_example_is_the_upstream_color_demo() {
    let upstream = by_ref(yaml_documents(
        &root().join("../shared/examples/howto-k8s-http2/manifest.yaml"),
    ));
    let mut ours = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples/howto-k8s-http2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        ours.extend(yaml_documents(&file));
    }
    let ours = by_ref(ours);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        upstream.keys().collect::<Vec<_>>()
    );
    for (key, object) in &ours {
        assert_eq!(object, &upstream[key], "{key} differs from upstream");
    }
}

#[test]
fn the_example_satisfies_the_app_mesh_crds() {
    let schemas = CrdSchemas::load(&crds_dir().join("appmesh"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("examples/howto-k8s-http2")).unwrap() {
        for doc in yaml_documents(&entry.unwrap().path()) {
            if doc["apiVersion"]
                .as_str()
                .unwrap()
                .starts_with("appmesh.k8s.aws/")
            {
                if let Err(errors) = schemas.validate(&doc) {
                    panic!("{}: {errors:?}", doc["metadata"]["name"]);
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 7);
}
