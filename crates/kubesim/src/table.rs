//! `meta.k8s.io/v1` Table responses for kubectl's human-readable output.

use serde_json::{Value, json};

use crate::resources::ResourceInfo;

/// A human duration like kubectl prints (`5s`, `3m`, `2d3h`).
pub fn age(created: &Value) -> String {
    let Some(ts) = created
        .as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - ts.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" }, "description": name, "priority": priority})
}

/// Evaluates a simple JSONPath (`.a.b`, `.a[0].b`) against an object.
fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        let (field, index) = match seg.split_once('[') {
            Some((f, rest)) => (f, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        cur = &cur[field];
        if let Some(i) = index {
            cur = &cur[i];
        }
    }
    cur.clone()
}

/// Column definitions and the cells of one object.
fn columns(res: &ResourceInfo, obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let name = obj["metadata"]["name"].clone();
    let created = age(&obj["metadata"]["creationTimestamp"]);
    let int = |v: &Value| json!(v.as_i64().unwrap_or(0));
    match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") => {
            let s = &obj["status"];
            let containers: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            let images: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["image"].as_str())
                .collect();
            let selector: Vec<String> = obj["spec"]["selector"]["matchLabels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            (
                vec![
                    col("Name", "string", 0),
                    col("Ready", "string", 0),
                    col("Up-to-date", "integer", 0),
                    col("Available", "integer", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    name,
                    json!(format!(
                        "{}/{}",
                        s["readyReplicas"].as_i64().unwrap_or(0),
                        obj["spec"]["replicas"].as_i64().unwrap_or(0)
                    )),
                    int(&s["updatedReplicas"]),
                    int(&s["availableReplicas"]),
                    json!(created),
                    json!(containers.join(",")),
                    json!(images.join(",")),
                    json!(selector.join(",")),
                ],
            )
        }
        ("", "Pod") => {
            let total = obj["spec"]["containers"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            let ready = obj["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count();
            let restarts: i64 = obj["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum();
            let phase = if obj["metadata"]["deletionTimestamp"].is_null() {
                obj["status"]["phase"].as_str().unwrap_or("Pending")
            } else {
                "Terminating"
            };
            (
                vec![
                    col("Name", "string", 0),
                    col("Ready", "string", 0),
                    col("Status", "string", 0),
                    col("Restarts", "string", 0),
                    col("Age", "string", 0),
                    col("IP", "string", 1),
                    col("Node", "string", 1),
                ],
                vec![
                    name,
                    json!(format!("{ready}/{total}")),
                    json!(phase),
                    json!(restarts.to_string()),
                    json!(created),
                    json!(obj["status"]["podIP"].as_str().unwrap_or("<none>")),
                    json!(obj["spec"]["nodeName"].as_str().unwrap_or("<none>")),
                ],
            )
        }
        ("", "Service") => {
            let ports: Vec<String> = obj["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            (
                vec![
                    col("Name", "string", 0),
                    col("Type", "string", 0),
                    col("Cluster-IP", "string", 0),
                    col("External-IP", "string", 0),
                    col("Port(s)", "string", 0),
                    col("Age", "string", 0),
                ],
                vec![
                    name,
                    obj["spec"]["type"].clone(),
                    obj["spec"]["clusterIP"].clone(),
                    json!("<none>"),
                    json!(if ports.is_empty() {
                        "<none>".to_string()
                    } else {
                        ports.join(",")
                    }),
                    json!(created),
                ],
            )
        }
        ("apps", "ReplicaSet") => {
            let s = &obj["status"];
            (
                vec![
                    col("Name", "string", 0),
                    col("Desired", "integer", 0),
                    col("Current", "integer", 0),
                    col("Ready", "integer", 0),
                    col("Age", "string", 0),
                ],
                vec![
                    name,
                    int(&obj["spec"]["replicas"]),
                    int(&s["replicas"]),
                    int(&s["readyReplicas"]),
                    json!(created),
                ],
            )
        }
        ("", "Namespace") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Age", "string", 0),
            ],
            vec![name, obj["status"]["phase"].clone(), json!(created)],
        ),
        _ if !res.printer_columns.is_empty() => {
            let mut defs = vec![col("Name", "string", 0)];
            let mut cells = vec![name];
            for c in &res.printer_columns {
                let ty = c["type"].as_str().unwrap_or("string");
                defs.push(json!({"name": c["name"], "type": ty, "format": c["format"].as_str().unwrap_or_default(),
                    "description": c["description"].as_str().unwrap_or_default(), "priority": c["priority"].as_i64().unwrap_or(0)}));
                let v = json_path(obj, c["jsonPath"].as_str().unwrap_or_default());
                cells.push(if ty == "date" { json!(age(&v)) } else { v });
            }
            (defs, cells)
        }
        _ => (
            vec![col("Name", "string", 0), col("Age", "string", 0)],
            vec![name, json!(created)],
        ),
    }
}

/// A Table of the objects (column definitions from the first object, or the kind's defaults).
pub fn table(res: &ResourceInfo, objs: &[Value], rv: u64) -> Value {
    let (defs, _) = columns(res, objs.first().unwrap_or(&json!({})));
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let (_, cells) = columns(res, o);
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "columnDefinitions": defs, "rows": rows})
}
