//! Server-side defaulting of built-in kinds (the fields a real apiserver fills in).

use serde_json::{Value, json};

use crate::resources::ResourceInfo;

/// Applies the kind's defaults to `obj` (`old` is the stored state for updates).
pub fn apply(res: &ResourceInfo, obj: &mut Value, old: Option<&Value>) {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Namespace") => namespace(obj, old),
        ("apps", "Deployment") => deployment(obj),
        ("apps", "ReplicaSet") => {
            default(&mut obj["spec"], "replicas", json!(1));
            pod_template(&mut obj["spec"]["template"]);
        }
        ("", "Pod") => {
            pod_spec(&mut obj["spec"]);
            if old.is_none() && obj["status"].get("phase").is_none() {
                obj["status"]["phase"] = json!("Pending");
            }
        }
        ("", "Service") => service(obj, old),
        ("", "Secret") => secret(obj),
        _ => {}
    }
}

fn default(parent: &mut Value, key: &str, value: Value) {
    if let Some(m) = parent.as_object_mut()
        && m.get(key).is_none_or(Value::is_null)
    {
        m.insert(key.to_string(), value);
    }
}

fn namespace(obj: &mut Value, old: Option<&Value>) {
    let name = obj["metadata"]["name"].clone();
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    match old {
        Some(o) => obj["spec"]["finalizers"] = o["spec"]["finalizers"].clone(),
        None => default(&mut obj["spec"], "finalizers", json!(["kubernetes"])),
    }
    if obj["spec"]["finalizers"].is_null() {
        obj["spec"]
            .as_object_mut()
            .expect("spec object")
            .remove("finalizers");
    }
    if obj["metadata"]["deletionTimestamp"].is_null() {
        obj["status"]["phase"] = json!("Active");
    }
}

fn deployment(obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    default(spec, "strategy", json!({"type": "RollingUpdate"}));
    if spec["strategy"]["type"] == "RollingUpdate" {
        default(&mut spec["strategy"], "rollingUpdate", json!({}));
        default(
            &mut spec["strategy"]["rollingUpdate"],
            "maxSurge",
            json!("25%"),
        );
        default(
            &mut spec["strategy"]["rollingUpdate"],
            "maxUnavailable",
            json!("25%"),
        );
    }
    pod_template(&mut spec["template"]);
}

fn pod_template(t: &mut Value) {
    if !t.is_object() {
        return;
    }
    if !t["metadata"].is_object() {
        t["metadata"] = json!({});
    }
    if t["metadata"].get("creationTimestamp").is_none() {
        t["metadata"]["creationTimestamp"] = Value::Null;
    }
    pod_spec(&mut t["spec"]);
}

fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec[list].as_array_mut() {
            cs.iter_mut().for_each(container);
        }
    }
}

fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default();
    let tag = image.rsplit('/').next().unwrap_or_default();
    let policy = if !tag.contains(':') && !tag.contains('@') || tag.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    default(c, "imagePullPolicy", json!(policy));
    default(c, "resources", json!({}));
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    if let Some(ports) = c["ports"].as_array_mut() {
        for p in ports {
            default(p, "protocol", json!("TCP"));
        }
    }
}

fn service(obj: &mut Value, old: Option<&Value>) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    if spec["type"] != "ExternalName" {
        let ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str().map(str::to_string))
            .unwrap_or_else(|| allocate_ip(&obj["metadata"]["uid"]));
        let spec = &mut obj["spec"];
        default(spec, "clusterIP", json!(ip));
        let ip = spec["clusterIP"].clone();
        default(spec, "clusterIPs", json!([ip]));
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    let spec = &mut obj["spec"];
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports {
            default(p, "protocol", json!("TCP"));
            let port = p["port"].clone();
            default(p, "targetPort", port);
        }
    }
    if obj["status"].as_object().is_some_and(|s| s.is_empty()) {
        obj["status"] = json!({"loadBalancer": {}});
    }
}

/// A deterministic-per-object cluster IP in 10.96.0.0/12.
fn allocate_ip(uid: &Value) -> String {
    let h = uid
        .as_str()
        .unwrap_or_default()
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    format!(
        "10.{}.{}.{}",
        96 + (h >> 16 & 0x0f),
        h >> 8 & 0xff,
        (h & 0xfd) + 1
    )
}

/// Moves `stringData` into `data` (base64), as the apiserver does; `type` defaults to Opaque.
fn secret(obj: &mut Value) {
    default(obj, "type", json!("Opaque"));
    let Some(Value::Object(string_data)) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    for (k, v) in string_data {
        obj["data"][k] = json!(base64(v.as_str().unwrap_or_default().as_bytes()));
    }
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_becomes_base64_data() {
        let mut s = json!({"stringData": {"a": "hello", "b": "hi"}, "data": {"c": "eA=="}});
        secret(&mut s);
        assert_eq!(
            s,
            json!({"data": {"c": "eA==", "a": "aGVsbG8=", "b": "aGk="}, "type": "Opaque"})
        );
    }

    #[test]
    fn deployment_defaults_match_the_apiserver() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "x:1", "ports": [{"containerPort": 80}]}]}}}});
        deployment(&mut d);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][1]["ports"][0]["protocol"],
            "TCP"
        );
        assert_eq!(
            d["spec"]["template"]["metadata"]["creationTimestamp"],
            Value::Null
        );
    }
}
