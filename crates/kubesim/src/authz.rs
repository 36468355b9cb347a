//! Authorization, as RBAC answers it: every request is allowed unless a deny rule matches. A
//! denied request gets `403 Forbidden` with the apiserver's message, and a
//! `SelfSubjectAccessReview` (`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`)
//! answers from the same rules, so a client's permission preflight and its real requests agree.
//!
//! A rule as JSON (all fields optional; an absent field matches anything):
//! `{"verb": "create", "group": "networking.istio.io", "resource": "destinationrules",
//! "namespace": "shop"}`; admin endpoints `POST /kubesim/deny` (add a rule) and
//! `DELETE /kubesim/deny` (clear them).

use std::sync::Mutex;

use axum::body::Body;
use axum::http::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::server::{error_response, json_response};

/// The user every request is made as.
pub const USER: &str = "kubesim";

/// A permission taken away; absent fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deny {
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...).
    #[serde(default)]
    pub verb: Option<String>,
    /// API group, "" for core.
    #[serde(default)]
    pub group: Option<String>,
    /// Resource plural.
    #[serde(default)]
    pub resource: Option<String>,
    /// Namespace; cluster-scoped requests have none.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Kubernetes verb.
    pub verb: &'a str,
    /// API group.
    pub group: &'a str,
    /// Resource plural.
    pub resource: &'a str,
    /// Namespace, "" when cluster-scoped.
    pub namespace: &'a str,
}

impl Deny {
    fn matches(&self, r: &Request<'_>) -> bool {
        let field = |rule: &Option<String>, value: &str| rule.as_deref().is_none_or(|v| v == value);
        field(&self.verb, r.verb)
            && field(&self.group, r.group)
            && field(&self.resource, r.resource)
            && field(&self.namespace, r.namespace)
    }
}

/// The deny rules of a server.
#[derive(Debug, Default)]
pub struct Authz {
    rules: Mutex<Vec<Deny>>,
}

impl Authz {
    /// Takes a permission away.
    pub fn deny(&self, rule: Deny) {
        self.rules.lock().expect("authz lock").push(rule);
    }

    /// Gives every permission back.
    pub fn clear(&self) {
        self.rules.lock().expect("authz lock").clear();
    }

    /// Whether the request is allowed.
    pub fn allowed(&self, request: &Request<'_>) -> bool {
        !self
            .rules
            .lock()
            .expect("authz lock")
            .iter()
            .any(|d| d.matches(request))
    }

    /// `Err(403)` with the apiserver's wording when the request is denied.
    pub fn check(&self, request: &Request<'_>, name: &str) -> Result<(), ApiError> {
        if self.allowed(request) {
            return Ok(());
        }
        let object = match (request.group, name) {
            ("", "") => request.resource.to_owned(),
            ("", name) => format!("{} \"{name}\"", request.resource),
            (group, "") => format!("{}.{group}", request.resource),
            (group, name) => format!("{}.{group} \"{name}\"", request.resource),
        };
        let scope = if request.namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{}\"", request.namespace)
        };
        Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "{object} is forbidden: User \"{USER}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
                request.verb, request.resource, request.group
            ),
        ))
    }
}

/// Answers a `SelfSubjectAccessReview`: the review back, with `status.allowed` set.
pub fn review(authz: &Authz, body: &[u8]) -> Response<Body> {
    let mut review: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "invalid SelfSubjectAccessReview: {e}"
            )));
        }
    };
    let attributes = &review["spec"]["resourceAttributes"];
    if !attributes.is_object() {
        return error_response(&ApiError::new(
            422,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: \
             Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes \
             must be specified (kubesim answers resourceAttributes only)",
        ));
    }
    let text = |key: &str| attributes[key].as_str().unwrap_or_default();
    let request = Request {
        verb: text("verb"),
        group: text("group"),
        resource: text("resource"),
        namespace: text("namespace"),
    };
    let allowed = authz.allowed(&request);
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "kubesim allows every request no deny rule matches"})
    } else {
        json!({"allowed": false})
    };
    json_response(201, &review)
}

/// Handles `POST` and `DELETE /kubesim/deny`.
pub fn admin(authz: &Authz, delete: bool, body: &[u8]) -> Response<Body> {
    if delete {
        authz.clear();
        return json_response(200, &json!({}));
    }
    match serde_json::from_slice::<Deny>(body) {
        Ok(rule) => {
            authz.deny(rule);
            json_response(201, &json!({}))
        }
        Err(e) => error_response(&ApiError::bad_request(format!("invalid deny rule: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_match_anything_and_the_message_is_the_apiservers() {
        let authz = Authz::default();
        let create_dr = Request {
            verb: "create",
            group: "networking.istio.io",
            resource: "destinationrules",
            namespace: "shop",
        };
        assert!(authz.allowed(&create_dr));
        authz.deny(Deny {
            verb: Some("create".into()),
            group: Some("networking.istio.io".into()),
            ..Deny::default()
        });
        assert!(!authz.allowed(&create_dr));
        assert!(authz.allowed(&Request {
            verb: "get",
            ..create_dr
        }));
        let e = authz.check(&create_dr, "color").unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "destinationrules.networking.istio.io \"color\" is forbidden: User \"kubesim\" cannot \
             create resource \"destinationrules\" in API group \"networking.istio.io\" in the \
             namespace \"shop\""
        );
        authz.clear();
        assert!(authz.allowed(&create_dr));
    }
}
