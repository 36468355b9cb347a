//! Label selectors (equality and set-based) and field selectors.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// A tokenizer over the selector grammar.
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }
    /// Reads an identifier: label key or value characters.
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/') {
                self.i += 1;
            } else {
                break;
            }
        }
        self.src[start..self.i].to_string()
    }
    fn eat(&mut self, t: &str) -> bool {
        self.skip_ws();
        if self.src[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn err(&self, msg: &str) -> ApiError {
        ApiError::bad_request(format!("unable to parse requirement: {msg}"))
    }
}

/// Validates a label value: at most 63 chars, alphanumeric at both ends, `-_.` inside.
fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric())
}

impl LabelSelector {
    /// Parses the `labelSelector` query syntax.
    pub fn parse(s: &str) -> ApiResult<Self> {
        let mut lx = Lexer {
            s: s.as_bytes(),
            i: 0,
            src: s,
        };
        let mut reqs = Vec::new();
        if lx.peek().is_none() {
            return Ok(Self(reqs));
        }
        loop {
            let neg = lx.eat("!");
            let key = lx.word();
            if key.is_empty() {
                return Err(lx.err(&format!("found '{}', expected: identifier", rest(&lx))));
            }
            if neg {
                reqs.push(Requirement::NotExists(key));
            } else if lx.eat("==") || lx.eat("=") {
                let v = value(&mut lx)?;
                reqs.push(Requirement::Eq(key, v));
            } else if lx.eat("!=") {
                let v = value(&mut lx)?;
                reqs.push(Requirement::NotEq(key, v));
            } else if lx.eat(">") {
                let v = lx.word();
                let n = v.parse().map_err(|_| {
                    lx.err(&format!(
                        "for 'Gt', 'Lt' operators, the value must be an integer: {v}"
                    ))
                })?;
                reqs.push(Requirement::Gt(key, n));
            } else if lx.eat("<") {
                let v = lx.word();
                let n = v.parse().map_err(|_| {
                    lx.err(&format!(
                        "for 'Gt', 'Lt' operators, the value must be an integer: {v}"
                    ))
                })?;
                reqs.push(Requirement::Lt(key, n));
            } else if lx.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                let op = lx.word();
                let set = set(&mut lx)?;
                match op.as_str() {
                    "in" => reqs.push(Requirement::In(key, set)),
                    "notin" => reqs.push(Requirement::NotIn(key, set)),
                    other => {
                        return Err(lx.err(&format!(
                            "found '{other}', expected: in, notin, =, ==, !=, gt, lt"
                        )));
                    }
                }
            } else {
                reqs.push(Requirement::Exists(key));
            }
            match lx.peek() {
                None => break,
                Some(b',') => {
                    lx.i += 1;
                }
                Some(_) => {
                    return Err(lx.err(&format!(
                        "found '{}', expected: ',' or 'end of string'",
                        rest(&lx)
                    )));
                }
            }
        }
        Ok(Self(reqs))
    }

    /// Builds a selector from a `metav1.LabelSelector` JSON object.
    pub fn from_json(sel: &Value) -> ApiResult<Self> {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Requirement::Eq(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        for e in sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            reqs.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::NotExists(key),
                op => {
                    return Err(ApiError::bad_request(format!(
                        "{op:?} is not a valid label selector operator"
                    )));
                }
            });
        }
        Ok(Self(reqs))
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => labels.get(k) == Some(v),
            Requirement::NotEq(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::Gt(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            Requirement::Lt(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }

    /// Whether the object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(&labels_of(obj))
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The object's labels as a map.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn rest(lx: &Lexer<'_>) -> String {
    lx.src[lx.i..].chars().take(1).collect()
}

fn value(lx: &mut Lexer<'_>) -> ApiResult<String> {
    let v = lx.word();
    if !valid_value(&v) {
        return Err(lx.err(&format!("invalid label value: \"{v}\"")));
    }
    Ok(v)
}

fn set(lx: &mut Lexer<'_>) -> ApiResult<Vec<String>> {
    if !lx.eat("(") {
        return Err(lx.err(&format!("found '{}', expected: '('", rest(lx))));
    }
    let mut out = Vec::new();
    loop {
        out.push(value(lx)?);
        if lx.eat(",") {
            continue;
        }
        if lx.eat(")") {
            return Ok(out);
        }
        return Err(lx.err(&format!(
            "found '{}', expected: ',', ')' or identifier",
            rest(lx)
        )));
    }
}

/// A parsed field selector: `field=value` / `field!=value` terms, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Fields selectable beyond `metadata.name` and `metadata.namespace`, per group and plural.
fn extra_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses a `fieldSelector` for the given resource, rejecting unsupported fields.
    pub fn parse(s: &str, group: &str, plural: &str, namespaced: bool) -> ApiResult<Self> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, neg, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let supported = field == "metadata.name"
                || (namespaced && field == "metadata.namespace")
                || extra_fields(group, plural).contains(&field);
            if !supported {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_string(), neg, value.trim().to_string()));
        }
        Ok(Self(terms))
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, neg, want)| {
            let mut cur = obj;
            for seg in field.split('.') {
                cur = &cur[seg];
            }
            let have = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.get("ip").and_then(Value::as_str).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            (have == *want) != *neg
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_based_selector_matches_like_apimachinery() {
        let sel = LabelSelector::parse("app in (web,api),!canary,tier notin (db),env").unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("env", "prod"), ("canary", "x")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "db")])));
        assert!(!sel.matches(&labels(&[("app", "db"), ("env", "prod")])));
        assert!(!sel.matches(&labels(&[("app", "api")])));
    }

    #[test]
    fn equality_and_comparison_selectors() {
        let sel = LabelSelector::parse("a=1, b==2,c!=3,n>4").unwrap();
        assert!(sel.matches(&labels(&[("a", "1"), ("b", "2"), ("n", "5")])));
        assert!(!sel.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3"), ("n", "5")])));
        assert!(!sel.matches(&labels(&[("a", "1"), ("b", "2"), ("n", "4")])));
        assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn malformed_selectors_are_bad_requests() {
        for bad in ["app in web", "app=(x", "=x", "a b"] {
            let err = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(err.code, 400, "{bad}");
        }
    }

    #[test]
    fn field_selector_rejects_unknown_fields() {
        let err = FieldSelector::parse("spec.foo=x", "apps", "deployments", true).unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.foo");
        let sel = FieldSelector::parse("status.phase=Running,metadata.name!=x", "", "pods", true)
            .unwrap();
        assert!(sel.matches(
            &serde_json::json!({"metadata": {"name": "y"}, "status": {"phase": "Running"}})
        ));
        assert!(!sel.matches(
            &serde_json::json!({"metadata": {"name": "x"}, "status": {"phase": "Running"}})
        ));
    }
}
