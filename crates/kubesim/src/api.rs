//! Resource verbs: get, list, watch, create, update, patch, delete, deletecollection.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, header};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::patch::PatchType;
use crate::resources::ResourceInfo;
use crate::route::{ResourcePath, Route};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{App, error_response, json_response};
use crate::store::{DeleteOptions, Deleted, WriteOptions, Written};
use crate::validate::FieldValidation;
use crate::watch;

/// The Kubernetes verb of a request, for counters and fault matching.
pub fn verb_of(method: &Method, route: &Route, q: &HashMap<String, String>) -> String {
    let Route::Resource(r) = route else {
        return method.as_str().to_lowercase();
    };
    let collection = r.name.is_none();
    match *method {
        Method::GET if collection && is_true(q.get("watch")) => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
    .to_string()
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| v == "true" || v == "1")
}

/// Serves a resource request.
pub async fn serve(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    rp: ResourcePath,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Response<Body> {
    let reg = app.store.registry();
    let Some(res) = reg.find(&rp.group, &rp.version, &rp.plural).cloned() else {
        return error_response(&ApiError::unknown_path());
    };
    // A namespaced path for a cluster-scoped kind (or the reverse for objects) names nothing.
    if (!res.namespaced && rp.namespace.is_some())
        || (res.namespaced && rp.name.is_some() && rp.namespace.is_none())
    {
        return error_response(&ApiError::unknown_path());
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // kubectl's generators send protobuf; simple kinds are decoded, others get 415.
    let decoded;
    let body = if content_type.contains("protobuf") && !body.is_empty() {
        match crate::protobuf::decode(body) {
            Ok(v) => {
                decoded = v.to_string().into_bytes();
                &decoded[..]
            }
            Err(e) => return error_response(&e),
        }
    } else {
        body
    };
    let ns = rp.namespace.clone().unwrap_or_default();
    let result = match (method.clone(), rp.name.as_deref()) {
        (Method::GET, None) if is_true(q.get("watch")) => {
            return match watch::serve(app, &res, rp.namespace.as_deref(), q, &accept) {
                Ok(r) => r,
                Err(e) => error_response(&e),
            };
        }
        (Method::GET, None) => list(app, &res, rp.namespace.as_deref(), q, &accept),
        (Method::POST, None) => create(app, &res, &ns, q, headers, body),
        (Method::DELETE, None) => delete_collection(app, &res, rp.namespace.as_deref(), q, body),
        (Method::GET, Some(name)) => get(app, &res, &ns, name, rp.subresource.as_deref(), &accept),
        (Method::PUT, Some(name)) => update(
            app,
            &res,
            &ns,
            name,
            rp.subresource.as_deref(),
            q,
            headers,
            body,
        ),
        (Method::PATCH, Some(name)) => patch(
            app,
            &res,
            &ns,
            name,
            rp.subresource.as_deref(),
            q,
            headers,
            body,
        ),
        (Method::DELETE, Some(name)) if rp.subresource.is_none() => {
            delete(app, &res, &ns, name, q, body)
        }
        _ => Err(ApiError::method_not_allowed()),
    };
    let mut response = match result {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if let Some(text) = &res.deprecation
        && let Ok(v) = HeaderValue::from_str(&format!("299 - {}", Value::String(text.clone())))
    {
        response.headers_mut().append(header::WARNING, v);
    }
    response
}

/// Presents a stored object in the requested version.
pub fn present(res: &ResourceInfo, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(res.api_version());
    obj["kind"] = json!(res.kind);
    obj
}

/// [`present`] for a stored object: borrowed when it is already in `res`'s version.
pub fn presented<'a>(res: &ResourceInfo, obj: &'a Value) -> Cow<'a, Value> {
    if obj["apiVersion"] == res.api_version().as_str() && obj["kind"] == res.kind.as_str() {
        Cow::Borrowed(obj)
    } else {
        Cow::Owned(present(res, obj.clone()))
    }
}

/// Metadata-only form for `as=PartialObjectMetadata` requests.
fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"].clone()})
}

fn check_subresource(res: &ResourceInfo, sub: Option<&str>) -> ApiResult<()> {
    match sub {
        None => Ok(()),
        Some("status") if res.status => Ok(()),
        Some("scale") if res.scale.is_some() => Ok(()),
        Some("finalize") if res.kind == "Namespace" && res.group.is_empty() => Ok(()),
        Some("log") if res.kind == "Pod" && res.group.is_empty() => Ok(()),
        Some(_) => Err(ApiError::unknown_path()),
    }
}

fn get(
    app: &App,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    accept: &str,
) -> ApiResult<Response<Body>> {
    check_subresource(res, sub)?;
    let obj = app.store.get(res, ns, name)?;
    if sub == Some("log") {
        // Simulated containers write nothing.
        let mut r = Response::new(Body::empty());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(r);
    }
    if sub == Some("scale") {
        return Ok(json_response(200, &scale_of(res, &obj)));
    }
    if accept.contains("as=PartialObjectMetadata") {
        return Ok(json_response(200, &partial(&obj)));
    }
    if accept.contains("as=Table") {
        return Ok(json_response(
            200,
            &crate::table::table(res, &[obj], app.store.resource_version()),
        ));
    }
    Ok(json_response(200, &present(res, obj)))
}

/// The `autoscaling/v1` Scale view of an object.
fn scale_of(res: &ResourceInfo, obj: &Value) -> Value {
    let paths = res
        .scale
        .clone()
        .unwrap_or_else(|| crate::resources::ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
        });
    let at = |p: &str| {
        p.trim_start_matches('.')
            .split('.')
            .fold(obj, |v, s| &v[s])
            .clone()
    };
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": at(&paths.spec_replicas)},
        "status": {"replicas": at(&paths.status_replicas).as_i64().unwrap_or(0),
            "selector": obj["status"]["selector"].as_str().map(str::to_string).unwrap_or_else(|| selector_string(&obj["spec"]["selector"]))},
    })
}

/// A label selector object rendered as a selector string.
fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let vals: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let key = e["key"].as_str().unwrap_or_default();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// Parses `labelSelector` and `fieldSelector`.
pub fn selectors(
    res: &ResourceInfo,
    q: &HashMap<String, String>,
) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        &res.group,
        &res.plural,
        res.namespaced,
    )?;
    Ok((labels, fields))
}

fn list_options_invalid(detail: &str, field: &str) -> ApiError {
    ApiError::invalid_options(
        "ListOptions",
        Cause::new("FieldValueForbidden", format!("Forbidden: {detail}"), field),
    )
}

fn list(
    app: &App,
    res: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let (labels, fields) = selectors(res, q)?;
    let rv = q.get("resourceVersion").filter(|s| !s.is_empty());
    if let Some(m) = q.get("resourceVersionMatch").filter(|s| !s.is_empty()) {
        if rv.is_none() {
            return Err(list_options_invalid(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
                "resourceVersionMatch",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            return Err(ApiError::invalid_options(
                "ListOptions",
                Cause::new(
                    "FieldValueNotSupported",
                    format!(
                        "Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
                    ),
                    "resourceVersionMatch",
                ),
            ));
        }
    }
    if q.get("sendInitialEvents").is_some() {
        return Err(list_options_invalid(
            "sendInitialEvents is forbidden for list",
            "sendInitialEvents",
        ));
    }
    let (items, current) = app.store.list(res, ns, &labels, &fields);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let (start, list_rv) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => decode_continue(token)?,
        None => (String::new(), current),
    };
    let key = |o: &Value| {
        format!(
            "{}/{}",
            o["metadata"]["namespace"].as_str().unwrap_or_default(),
            o["metadata"]["name"].as_str().unwrap_or_default()
        )
    };
    let remaining: Vec<Arc<Value>> = items
        .into_iter()
        .filter(|o| start.is_empty() || key(o) > start)
        .collect();
    let total = remaining.len();
    let page: Vec<Arc<Value>> = remaining.into_iter().take(limit).collect();
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if total > page.len() {
        let last = page.last().map(|o| key(o)).unwrap_or_default();
        meta["continue"] = json!(encode_continue(&last, list_rv));
        meta["remainingItemCount"] = json!(total - page.len());
    }
    if accept.contains("as=Table") {
        let page: Vec<Value> = page.into_iter().map(Arc::unwrap_or_clone).collect();
        let mut t = crate::table::table(res, &page, list_rv);
        t["metadata"] = meta;
        return Ok(json_response(200, &t));
    }
    if accept.contains("as=PartialObjectMetadataList") {
        let items: Vec<Value> = page.iter().map(|o| partial(o)).collect();
        return Ok(json_response(
            200,
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
        ));
    }
    /// A list serialised from the stored objects, without copying them.
    #[derive(serde::Serialize)]
    struct List<'a> {
        kind: String,
        #[serde(rename = "apiVersion")]
        api_version: String,
        metadata: Value,
        items: Vec<Cow<'a, Value>>,
    }
    Ok(json_response(
        200,
        &List {
            kind: format!("{}List", res.kind),
            api_version: res.api_version(),
            metadata: meta,
            items: page.iter().map(|o| presented(res, o)).collect(),
        },
    ))
}

/// Continue tokens: `<rv>:<last key>`, hex-encoded so they are opaque and URL-safe.
fn encode_continue(last: &str, rv: u64) -> String {
    format!("{rv}:{last}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> ApiResult<(String, u64)> {
    let bad = || ApiError::bad_request(format!("invalid continue token: {token}"));
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect();
    let text = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (rv, last) = text.split_once(':').ok_or_else(bad)?;
    Ok((last.to_string(), rv.parse().map_err(|_| bad())?))
}

/// Reads `dryRun`, `fieldManager`, `fieldValidation` and `force`.
fn write_options(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    kind: &str,
) -> ApiResult<WriteOptions> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::invalid_options(
                kind,
                Cause::new(
                    "FieldValueNotSupported",
                    format!("Unsupported value: \"{other}\": supported values: \"All\""),
                    "dryRun",
                ),
            ));
        }
    };
    let explicit = q.get("fieldManager").filter(|m| !m.is_empty()).cloned();
    if let Some(m) = &explicit
        && m.len() > 128
    {
        return Err(ApiError::invalid_options(
            kind,
            Cause::new(
                "FieldValueTooLong",
                "Too long: may not be more than 128 bytes",
                "fieldManager",
            ),
        ));
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let fallback = ua
        .split('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string();
    Ok(WriteOptions {
        dry_run,
        manager_explicit: explicit.is_some(),
        manager: explicit.unwrap_or(fallback),
        validation: FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?,
        force: is_true(q.get("force")),
        trusted: false,
    })
}

fn parse_body(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

fn written(res: &ResourceInfo, w: Written, code: u16) -> Response<Body> {
    let mut r = json_response(code, &presented(res, &w.object));
    for warning in w.warnings {
        let text = format!("299 - {}", Value::String(warning));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

fn create(
    app: &App,
    res: &ResourceInfo,
    ns: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let opts = write_options(q, headers, "CreateOptions")?;
    let obj = parse_body(body)?;
    let w = app.store.create(res, ns, obj, &opts)?;
    Ok(written(res, w, 201))
}

#[allow(clippy::too_many_arguments)]
fn update(
    app: &App,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    check_subresource(res, sub)?;
    let opts = write_options(q, headers, "UpdateOptions")?;
    let obj = parse_body(body)?;
    match sub {
        Some("scale") => {
            let replicas = obj["spec"]["replicas"].clone();
            let patch = scale_patch(res, replicas);
            let w = app.store.patch(
                res,
                ns,
                name,
                PatchType::Merge,
                patch.to_string().as_bytes(),
                None,
                &opts,
            )?;
            Ok(json_response(200, &scale_of(res, &w.object)))
        }
        Some("finalize") => {
            let w = app.store.finalize_namespace(res, name, obj, &opts)?;
            Ok(written(res, w, 200))
        }
        _ => {
            let w = app.store.update(res, ns, name, obj, sub, &opts)?;
            let code = if w.created { 201 } else { 200 };
            Ok(written(res, w, code))
        }
    }
}

/// A merge patch setting the scale subresource's replicas path.
fn scale_patch(res: &ResourceInfo, replicas: Value) -> Value {
    let path = res
        .scale
        .as_ref()
        .map(|s| s.spec_replicas.clone())
        .unwrap_or_else(|| ".spec.replicas".into());
    path.trim_start_matches('.')
        .rsplit('.')
        .fold(replicas, |acc, seg| json!({seg: acc}))
}

#[allow(clippy::too_many_arguments)]
fn patch(
    app: &App,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    check_subresource(res, sub)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ptype = PatchType::from_content_type(ct)?;
    let opts = write_options(q, headers, "PatchOptions")?;
    if sub == Some("scale") {
        let mut scale = scale_of(res, &app.store.get(res, ns, name)?);
        match ptype {
            PatchType::Merge | PatchType::Strategic => {
                crate::patch::merge(&mut scale, &parse_body(body)?)
            }
            PatchType::Json => crate::patch::json(&mut scale, body)?,
            PatchType::Apply => return Err(ApiError::unsupported_media_type()),
        }
        let patch = scale_patch(res, scale["spec"]["replicas"].clone());
        let w = app.store.patch(
            res,
            ns,
            name,
            PatchType::Merge,
            patch.to_string().as_bytes(),
            None,
            &opts,
        )?;
        return Ok(json_response(200, &scale_of(res, &w.object)));
    }
    let w = app.store.patch(res, ns, name, ptype, body, sub, &opts)?;
    let code = if w.created { 201 } else { 200 };
    Ok(written(res, w, code))
}

/// Reads `DeleteOptions` from query parameters and the body (the body wins).
fn delete_options(q: &HashMap<String, String>, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut opts = DeleteOptions {
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
        propagation: q.get("propagationPolicy").cloned(),
        ..Default::default()
    };
    if let Some(d) = q.get("dryRun").filter(|d| !d.is_empty() && *d != "All") {
        return Err(ApiError::invalid_options(
            "DeleteOptions",
            Cause::new(
                "FieldValueNotSupported",
                format!("Unsupported value: \"{d}\": supported values: \"All\""),
                "dryRun",
            ),
        ));
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        let b = parse_body(body)?;
        if let Some(d) = b["dryRun"].as_array() {
            opts.dry_run = d.iter().any(|x| x == "All");
        }
        if let Some(p) = b["propagationPolicy"].as_str() {
            opts.propagation = Some(p.to_string());
        } else if b["orphanDependents"].as_bool() == Some(true) {
            opts.propagation = Some("Orphan".into());
        }
        opts.uid = b["preconditions"]["uid"].as_str().map(str::to_string);
        opts.resource_version = b["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
    }
    if let Some(p) = &opts.propagation
        && !matches!(p.as_str(), "Background" | "Foreground" | "Orphan")
    {
        return Err(ApiError::invalid_options(
            "DeleteOptions",
            Cause::new(
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
                "propagationPolicy",
            ),
        ));
    }
    Ok(opts)
}

fn delete(
    app: &App,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let opts = delete_options(q, body)?;
    match app.store.delete(res, ns, name, &opts)? {
        Deleted::Pending(obj) => Ok(json_response(200, &presented(res, &obj))),
        Deleted::Gone(obj) if res.group.is_empty() && res.kind == "Pod" => {
            Ok(json_response(200, &presented(res, &obj)))
        }
        Deleted::Gone(obj) => Ok(json_response(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": res.group, "kind": res.plural, "uid": obj["metadata"]["uid"]}}),
        )),
    }
}

fn delete_collection(
    app: &App,
    res: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let opts = delete_options(q, body)?;
    let (labels, fields) = selectors(res, q)?;
    let (items, rv) = app.store.list(res, ns, &labels, &fields);
    let mut out = Vec::new();
    for item in items {
        let ns = item["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = item["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match app.store.delete(res, &ns, &name, &opts) {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => {
                out.push(present(res, Arc::unwrap_or_clone(o)))
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": out}),
    ))
}
