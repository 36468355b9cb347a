//! Validation of built-in kinds (decoding into the k8s-openapi types) and of object names.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Cause};

/// How unknown fields in a request body are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Reject with 400.
    Strict,
    /// Drop and report in `Warning` headers (the server default).
    #[default]
    Warn,
    /// Drop silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the query parameter value.
    pub fn parse(s: Option<&str>) -> ApiResult<Self> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::invalid_options(
                "PatchOptions",
                Cause::new(
                    "FieldValueNotSupported",
                    format!(
                        "Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
                    ),
                    "fieldValidation",
                ),
            )),
        }
    }
}

/// Round-trips `obj` through the typed struct `T`, returning the decoded form.
fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(
    obj: &Value,
) -> Result<Value, String> {
    let typed = T::deserialize(obj).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Decodes a built-in object; returns the typed round-trip, or `None` for kinds without a type here.
fn decode(group: &str, kind: &str, obj: &Value) -> Option<Result<Value, String>> {
    Some(match (group, kind) {
        ("", "Namespace") => roundtrip::<core::Namespace>(obj),
        ("", "Service") => roundtrip::<core::Service>(obj),
        ("", "Pod") => roundtrip::<core::Pod>(obj),
        ("", "ConfigMap") => roundtrip::<core::ConfigMap>(obj),
        ("", "Secret") => roundtrip::<core::Secret>(obj),
        ("", "ServiceAccount") => roundtrip::<core::ServiceAccount>(obj),
        ("", "Event") => roundtrip::<core::Event>(obj),
        ("events.k8s.io", "Event") => roundtrip::<k8s_openapi::api::events::v1::Event>(obj),
        ("apps", "Deployment") => roundtrip::<apps::Deployment>(obj),
        ("apps", "ReplicaSet") => roundtrip::<apps::ReplicaSet>(obj),
        ("batch", "Job") => roundtrip::<batch::Job>(obj),
        ("batch", "CronJob") => roundtrip::<batch::CronJob>(obj),
        ("coordination.k8s.io", "Lease") => roundtrip::<coordination::Lease>(obj),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<rbac::Role>(obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<rbac::RoleBinding>(obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<rbac::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip::<rbac::ClusterRoleBinding>(obj)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            roundtrip::<apiext::CustomResourceDefinition>(obj)
        }
        _ => return None,
    })
}

/// Decodes a built-in object strictly enough to catch type errors and unknown fields.
///
/// Returns the object with unknown fields removed and the unknown field paths (for warnings),
/// or a 400 under `Strict`.
pub fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    mut obj: Value,
    mode: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    let Some(decoded) = decode(group, kind, &obj) else {
        return Ok((obj, vec![]));
    };
    let typed = decoded.map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"
        ))
    })?;
    let mut unknown = Vec::new();
    find_unknown(&mut obj, &typed, &mut String::new(), &mut unknown);
    if mode == FieldValidation::Strict && !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|u| format!("unknown field \"{u}\""))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", ")
        )));
    }
    Ok((obj, unknown))
}

/// Removes fields of `input` that the typed round-trip dropped, recording their paths.
/// `path` is the field path so far, extended in place: it is copied only for an unknown field.
fn find_unknown(input: &mut Value, typed: &Value, path: &mut String, out: &mut Vec<String>) {
    let len = path.len();
    match (input, typed) {
        (Value::Object(m), Value::Object(t)) => {
            let mut drop = Vec::new();
            for (k, v) in m.iter_mut() {
                if len > 0 {
                    path.push('.');
                }
                path.push_str(k);
                match t.get(k) {
                    Some(tv) => find_unknown(v, tv, path, out),
                    None if v.is_null() => {}
                    None => {
                        out.push(path.clone());
                        drop.push(k.clone());
                    }
                }
                path.truncate(len);
            }
            for k in drop {
                m.remove(&k);
            }
        }
        (Value::Array(a), Value::Array(t)) => {
            for (i, (v, tv)) in a.iter_mut().zip(t).enumerate() {
                use std::fmt::Write;
                let _ = write!(path, "[{i}]");
                find_unknown(v, tv, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The total size limit of an object's annotations (keys plus values).
pub const ANNOTATIONS_LIMIT: usize = 262_144;

/// Rejects annotations whose keys and values total more than [`ANNOTATIONS_LIMIT`] bytes.
pub fn annotations_size(obj: &Value) -> Option<Cause> {
    let total: usize = obj["metadata"]["annotations"]
        .as_object()?
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    (total > ANNOTATIONS_LIMIT).then(|| {
        Cause::new(
            "FieldValueTooLong",
            format!("Too long: must have at most {ANNOTATIONS_LIMIT} bytes"),
            "metadata.annotations",
        )
    })
}

/// Whether `s` is a lowercase RFC 1123 subdomain.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Whether `s` is a lowercase RFC 1123 label.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Validates `metadata.name` the way the apiserver does for the kind.
pub fn name(kind: &str, name: &str) -> Option<Cause> {
    let label = matches!(kind, "Namespace" | "Service");
    if label {
        if is_dns_label(name) {
            return None;
        }
        return Some(Cause::new(
            "FieldValueInvalid",
            format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ),
            "metadata.name",
        ));
    }
    if is_dns_subdomain(name) {
        return None;
    }
    Some(Cause::new(
        "FieldValueInvalid",
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ),
        "metadata.name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_and_pruned() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"foo": 1, "selector": {"matchLabels": {"a": "b"}},
              "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": [{"name": "c", "bar": true}]}}}});
        let (pruned, unknown) =
            builtin("apps", "v1", "Deployment", d.clone(), FieldValidation::Warn).unwrap();
        assert_eq!(
            unknown,
            ["spec.foo", "spec.template.spec.containers[0].bar"]
        );
        assert!(pruned["spec"].get("foo").is_none());
        let err = builtin("apps", "v1", "Deployment", d, FieldValidation::Strict).unwrap_err();
        assert_eq!(
            err.message,
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.foo\", unknown field \"spec.template.spec.containers[0].bar\""
        );
    }

    #[test]
    fn type_errors_are_bad_requests() {
        let d = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1}});
        assert_eq!(
            builtin("", "v1", "ConfigMap", d, FieldValidation::Ignore)
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn names_follow_rfc1123() {
        assert!(name("ConfigMap", "a.b-c").is_none());
        assert!(name("ConfigMap", "Bad_Name").is_some());
        assert!(name("Namespace", "a.b").is_some());
    }
}
