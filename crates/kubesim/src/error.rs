//! API errors and their `Status` wire form.

use serde_json::{Value, json};

/// A field-level cause attached to a `Status` error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// The cause type, e.g. `FieldValueRequired`.
    pub reason: String,
    /// Human-readable text.
    pub message: String,
    /// The field path, without a leading dot.
    pub field: String,
}

impl Cause {
    /// Builds a cause.
    pub fn new(reason: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }
}

/// An error answered to the client as a `Status` object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`; empty for errors that carry no reason.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, if any.
    pub details: Option<Box<Value>>,
    /// `Retry-After` seconds to send as a header.
    pub retry_after: Option<u64>,
}

/// Identifies a resource in error messages: plural, group, kind.
#[derive(Debug, Clone)]
pub struct Qualified<'a> {
    /// Resource plural.
    pub plural: &'a str,
    /// API group ("" for core).
    pub group: &'a str,
}

impl Qualified<'_> {
    /// `plural.group`, or the bare plural for the core group.
    pub fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

impl ApiError {
    /// A generic error with code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 for a path that names no resource.
    pub fn unknown_path() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(Box::new(json!({})));
        e
    }

    /// 404 for a missing object.
    pub fn not_found(q: &Qualified<'_>, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", q.resource(), name),
        );
        e.details = Some(Box::new(
            json!({"name": name, "group": q.group, "kind": q.plural}),
        ));
        e
    }

    /// 404 for a missing namespace.
    pub fn namespace_not_found(name: &str) -> Self {
        Self::not_found(
            &Qualified {
                plural: "namespaces",
                group: "",
            },
            name,
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(q: &Qualified<'_>, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", q.resource(), name),
        );
        e.details = Some(Box::new(
            json!({"name": name, "group": q.group, "kind": q.plural}),
        ));
        e
    }

    /// 409 Conflict for a stale resourceVersion or failed precondition.
    pub fn conflict(q: &Qualified<'_>, name: &str) -> Self {
        Self::conflict_with(
            q,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a custom detail text.
    pub fn conflict_with(q: &Qualified<'_>, name: &str, detail: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                q.resource(),
                name,
                detail
            ),
        );
        e.details = Some(Box::new(
            json!({"name": name, "group": q.group, "kind": q.plural}),
        ));
        e
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    }

    /// 422 Invalid for an object: `<Kind>.<group> "<name>" is invalid: …`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let rendered: Vec<String> = causes.iter().map(render_cause).collect();
        let body = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {body}"),
        );
        e.details = Some(Box::new(json!({
            "name": name, "group": group, "kind": kind,
            "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
        })));
        e
    }

    /// 422 Invalid for request options such as `PatchOptions`.
    pub fn invalid_options(kind: &str, cause: Cause) -> Self {
        let mut e = Self::invalid(kind, "meta.k8s.io", "", vec![cause]);
        if let Some(d) = e.details.as_deref_mut().and_then(Value::as_object_mut) {
            d.remove("name");
        }
        e
    }

    /// 422 for a failed JSON patch operation (the real server drops the underlying error).
    pub fn patch_rejected() -> Self {
        let mut e = Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        );
        e.details = Some(Box::new(json!({})));
        e
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        let m: String = message.into();
        let mut e = Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {m}"),
        );
        e.details = Some(Box::new(json!({"causes": [{"message": m}]})));
        e
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message,
        });
        let o = s.as_object_mut().expect("object literal");
        if !self.reason.is_empty() {
            o.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            o.insert("details".into(), (**d).clone());
        }
        o.insert("code".into(), json!(self.code));
        s
    }
}

/// `field: message` as the apiserver renders a field error.
fn render_cause(c: &Cause) -> String {
    if c.field.is_empty() {
        c.message.clone()
    } else {
        format!("{}: {}", c.field, c.message)
    }
}

/// Shorthand result type for API operations.
pub type ApiResult<T> = Result<T, ApiError>;
