//! Decoding of Kubernetes protobuf request bodies for the simple kinds kubectl's generators send
//! that way (`kubectl create namespace|configmap|secret|serviceaccount`).
//!
//! Wire format: the magic `k8s\0`, then a `runtime.Unknown` message whose `raw` field holds the
//! object message (field numbers from the Kubernetes `generated.proto` files).

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// One decoded protobuf field value.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Splits a message into (field number, value) pairs.
fn fields(mut buf: &[u8]) -> ApiResult<Vec<(u64, Wire<'_>)>> {
    let bad = || ApiError::bad_request("error decoding protobuf request body");
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (key, rest) = varint(buf).ok_or_else(bad)?;
        buf = rest;
        match key & 7 {
            0 => {
                let (v, rest) = varint(buf).ok_or_else(bad)?;
                out.push((key >> 3, Wire::Varint(v)));
                buf = rest;
            }
            2 => {
                let (len, rest) = varint(buf).ok_or_else(bad)?;
                let len = usize::try_from(len).map_err(|_| bad())?;
                if rest.len() < len {
                    return Err(bad());
                }
                out.push((key >> 3, Wire::Bytes(&rest[..len])));
                buf = &rest[len..];
            }
            1 => buf = buf.get(8..).ok_or_else(bad)?,
            5 => buf = buf.get(4..).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &buf[i + 1..]));
        }
    }
    None
}

fn string(w: &Wire<'_>) -> String {
    match w {
        Wire::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Wire::Varint(_) => String::new(),
    }
}

/// A `map<string, string>` entry, or with `bytes_value` a `map<string, bytes>` entry (base64).
fn map_entry(w: &Wire<'_>, bytes_value: bool) -> ApiResult<(String, Value)> {
    let Wire::Bytes(b) = w else {
        return Err(ApiError::bad_request("error decoding protobuf map entry"));
    };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(b)? {
        match (n, &f) {
            (1, _) => k = string(&f),
            (2, Wire::Bytes(raw)) if bytes_value => v = json!(crate::defaults::base64(raw)),
            (2, _) => v = json!(string(&f)),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_entry(obj: &mut Value, key: &str, w: &Wire<'_>, bytes_value: bool) -> ApiResult<()> {
    let (k, v) = map_entry(w, bytes_value)?;
    if !obj[key].is_object() {
        obj[key] = Value::Object(Map::new());
    }
    obj[key][k] = v;
    Ok(())
}

fn push(obj: &mut Value, key: &str, v: Value) {
    if !obj[key].is_array() {
        obj[key] = json!([]);
    }
    if let Some(a) = obj[key].as_array_mut() {
        a.push(v);
    }
}

fn object_meta(b: &[u8]) -> ApiResult<Value> {
    let mut m = json!({});
    for (n, f) in fields(b)? {
        match n {
            1 => m["name"] = json!(string(&f)),
            2 => m["generateName"] = json!(string(&f)),
            3 => m["namespace"] = json!(string(&f)),
            6 => m["resourceVersion"] = json!(string(&f)),
            11 => insert_entry(&mut m, "labels", &f, false)?,
            12 => insert_entry(&mut m, "annotations", &f, false)?,
            14 => push(&mut m, "finalizers", json!(string(&f))),
            _ => {}
        }
    }
    if let Some(o) = m.as_object_mut() {
        o.retain(|_, v| v.as_str() != Some(""));
    }
    Ok(m)
}

/// `SelfSubjectAccessReviewSpec` (what `kubectl auth can-i` sends): its resource attributes.
fn access_review_spec(b: &[u8]) -> ApiResult<Value> {
    const NAMES: [&str; 7] = [
        "namespace",
        "verb",
        "group",
        "version",
        "resource",
        "subresource",
        "name",
    ];
    let mut spec = json!({});
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Bytes(attributes)) => {
                let mut out = json!({});
                for (an, af) in fields(attributes)? {
                    if let Some(name) = usize::try_from(an).ok().and_then(|i| NAMES.get(i - 1)) {
                        out[*name] = json!(string(&af));
                    }
                }
                spec["resourceAttributes"] = out;
            }
            (2, Wire::Bytes(_)) => spec["nonResourceAttributes"] = json!({}),
            _ => {}
        }
    }
    Ok(spec)
}

/// Decodes a protobuf-encoded object body into its JSON form.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let unsupported = || {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        )
    };
    let inner = body.strip_prefix(b"k8s\0").ok_or_else(unsupported)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Wire::Bytes(tm)) => {
                for (tn, tf) in fields(tm)? {
                    match tn {
                        1 => api_version = string(&tf),
                        2 => kind = string(&tf),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let mut obj = json!({"apiVersion": api_version, "kind": kind});
    for (n, f) in fields(raw)? {
        if n == 1 {
            if let Wire::Bytes(b) = f {
                obj["metadata"] = object_meta(b)?;
            }
            continue;
        }
        match (api_version.as_str(), kind.as_str(), n) {
            ("v1", "ConfigMap", 2) => insert_entry(&mut obj, "data", &f, false)?,
            ("v1", "ConfigMap", 3) => insert_entry(&mut obj, "binaryData", &f, true)?,
            ("v1", "ConfigMap", 4) | ("v1", "Secret", 5) => {
                obj["immutable"] = json!(matches!(f, Wire::Varint(1)))
            }
            ("v1", "Secret", 2) => insert_entry(&mut obj, "data", &f, true)?,
            ("v1", "Secret", 3) => obj["type"] = json!(string(&f)),
            ("v1", "Secret", 4) => insert_entry(&mut obj, "stringData", &f, false)?,
            ("v1", "Namespace", 2) => {
                if let Wire::Bytes(b) = f {
                    let mut spec = json!({});
                    for (sn, sf) in fields(b)? {
                        if sn == 1 {
                            push(&mut spec, "finalizers", json!(string(&sf)));
                        }
                    }
                    obj["spec"] = spec;
                }
            }
            ("v1", "ServiceAccount", 3) => {
                if let Wire::Bytes(b) = f {
                    let name = fields(b)?
                        .iter()
                        .find(|(n, _)| *n == 1)
                        .map(|(_, v)| string(v))
                        .unwrap_or_default();
                    push(&mut obj, "imagePullSecrets", json!({"name": name}));
                }
            }
            ("v1", "ServiceAccount", 4) => {
                obj["automountServiceAccountToken"] = json!(matches!(f, Wire::Varint(1)))
            }
            ("authorization.k8s.io/v1", "SelfSubjectAccessReview", 2) => {
                if let Wire::Bytes(b) = f {
                    obj["spec"] = access_review_spec(b)?;
                }
            }
            ("v1", "Namespace" | "ConfigMap" | "Secret" | "ServiceAccount", _)
            | ("authorization.k8s.io/v1", "SelfSubjectAccessReview", _) => {}
            _ => return Err(unsupported()),
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let meta = [
            field(1, b"c"),
            field(11, &[field(1, b"app"), field(2, b"web")].concat()),
        ]
        .concat();
        let cm = [
            field(1, &meta),
            field(2, &[field(1, b"k"), field(2, b"v")].concat()),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &cm)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"app": "web"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn other_kinds_are_unsupported_media_types() {
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [
            b"k8s\0".to_vec(),
            field(1, &type_meta),
            field(2, &field(2, b"x")),
        ]
        .concat();
        assert_eq!(decode(&body).unwrap_err().code, 415);
    }
}
