//! A minimal OpenAPI v3 document per group-version: enough for kubectl to see that the server
//! validates fields itself (a PATCH operation with a `fieldValidation` parameter per kind).

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Value, json};

use crate::resources::Registry;

/// The `/openapi/v3/<gv path>` document for a group-version, if served.
pub fn group_version_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let rs = reg.group_version(group, version);
    if rs.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in &rs {
        // CRD schemas are published so that `kubectl explain` works for custom resources.
        if let Some(schema) = &r.schema {
            let mut s = (**schema).clone();
            s["x-kubernetes-group-version-kind"] =
                json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
            let reversed: Vec<&str> = r.group.split('.').rev().collect();
            schemas.insert(
                format!("{}.{}.{}", reversed.join("."), r.version, r.kind),
                s,
            );
        }
    }
    for r in rs {
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let mut params = vec![
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        ];
        if r.namespaced {
            params.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        let q = |n: &str, t: &str| json!({"name": n, "in": "query", "schema": {"type": t}});
        paths.insert(
            path,
            json!({
                "parameters": params,
                "patch": {
                    "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                    "parameters": [q("dryRun", "string"), q("fieldManager", "string"), q("fieldValidation", "string"), q("force", "boolean")],
                    "responses": {"200": {"description": "OK"}},
                },
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The `/openapi/v3` root: one entry per group-version with a content hash.
pub fn root(reg: &Registry) -> Value {
    let mut gvs: Vec<(String, String)> = vec![(String::new(), "v1".to_string())];
    for (g, vs) in reg.groups() {
        gvs.extend(vs.into_iter().map(|v| (g.clone(), v)));
    }
    let mut paths = serde_json::Map::new();
    for (g, v) in gvs {
        let Some(doc) = group_version_doc(reg, &g, &v) else {
            continue;
        };
        let key = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        let mut h = DefaultHasher::new();
        doc.to_string().hash(&mut h);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={:016X}", h.finish())}),
        );
    }
    json!({"paths": paths})
}
