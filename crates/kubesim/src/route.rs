//! Parsing request paths and query strings into what the API server should serve.

use std::collections::HashMap;

/// What a request path names.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/api`.
    ApiRoot,
    /// `/apis`.
    ApisRoot,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    GroupVersion(String, String),
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
    OpenApiDoc(String, String),
    /// `/openapi/v2` (not served).
    OpenApiV2,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// A resource collection or object.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// A path into a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePath {
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub subresource: Option<String>,
}

/// Parses a request path.
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::ApiRoot,
        ["apis"] => Route::ApisRoot,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::GroupVersion(String::new(), v.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", v] => Route::OpenApiDoc(String::new(), v.to_string()),
        ["openapi", "v3", "apis", g, v] => Route::OpenApiDoc(g.to_string(), v.to_string()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["api", v, rest @ ..] => resource(String::new(), v, rest),
        ["apis", g, v, rest @ ..] => resource(g.to_string(), v, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: String, version: &str, rest: &[&str]) -> Route {
    let s = |x: &str| Some(x.to_string());
    let (namespace, plural, name, subresource) = match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            (None, "namespaces", s(ns), s(sub))
        }
        ["namespaces", ns, plural] => (s(ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (s(ns), *plural, s(name), None),
        ["namespaces", ns, plural, name, sub] => (s(ns), *plural, s(name), s(sub)),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, s(name), None),
        [plural, name, sub] => (None, *plural, s(name), s(sub)),
        _ => return Route::Unknown,
    };
    Route::Resource(ResourcePath {
        group,
        version: version.to_string(),
        plural: plural.to_string(),
        namespace,
        name,
        subresource,
    })
}

/// Parses a query string with form decoding (`+` is a space); empty components are ignored.
pub fn query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_like_the_apiserver() {
        assert_eq!(
            parse("/apis/apps/v1"),
            Route::GroupVersion("apps".into(), "v1".into())
        );
        let Route::Resource(r) = parse("/api/v1/namespaces/default/pods/p/status") else {
            panic!()
        };
        assert_eq!(
            (
                r.namespace.as_deref(),
                r.plural.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            (Some("default"), "pods", Some("p"), Some("status"))
        );
        let Route::Resource(r) = parse("/api/v1/namespaces/x/finalize") else {
            panic!()
        };
        assert_eq!(
            (
                r.plural.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("x"), Some("finalize"))
        );
        let Route::Resource(r) = parse("/api/v1/namespaces/x") else {
            panic!()
        };
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("x"), None)
        );
    }

    #[test]
    fn queries_use_form_decoding() {
        let q = query(Some("&labelSelector=app+in+%28web%2Capi%29&&watch=true"));
        assert_eq!(q["labelSelector"], "app in (web,api)");
        assert_eq!(q["watch"], "true");
    }
}
