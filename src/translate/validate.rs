//! App Mesh inputs checked against the rules of the App Mesh CRD schemas (bounds, allowed values,
//! list sizes, required fields), so that an object the API server would reject is reported
//! before anything is planned from it.

use std::fmt::Write;

use serde_json::Value;

/// One rule of a CRD schema at a field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// An integer within bounds.
    Int {
        /// Smallest allowed value.
        min: Option<i64>,
        /// Largest allowed value.
        max: Option<i64>,
    },
    /// A string length within bounds.
    Length {
        /// Fewest characters.
        min: Option<u64>,
        /// Most characters.
        max: Option<u64>,
    },
    /// A list size within bounds.
    Items {
        /// Fewest items.
        min: Option<u64>,
        /// Most items.
        max: Option<u64>,
    },
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// These keys must be present in the object.
    Required(&'static [&'static str]),
}

/// The rules of the App Mesh v1beta2 CRDs, generated from them (see `tests/coverage.rs`).
pub use super::constraints::RULES;

/// Every rule an object breaks: the concrete field path and what would be valid.
pub fn check(kind: &str, raw: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut at = String::new();
    for (rule_kind, path, rule) in RULES {
        if *rule_kind != kind {
            continue;
        }
        // The path is built as the walk goes and copied only for a broken rule: most hold.
        visit(raw, path, &mut at, &mut |at, value| {
            if let Some(problem) = broken(rule, value) {
                out.push((at.to_owned(), problem));
            }
        });
    }
    out
}

/// Calls `found` with each value at a dotted path (`name[]` walks every list item) and its
/// concrete path; `at` is the path so far, restored on return.
fn visit(value: &Value, path: &str, at: &mut String, found: &mut dyn FnMut(&str, &Value)) {
    if path.is_empty() {
        found(at, value);
        return;
    }
    let (first, rest) = path.split_once('.').unwrap_or((path, ""));
    let len = at.len();
    if !at.is_empty() {
        at.push('.');
    }
    match first.strip_suffix("[]") {
        Some(name) => {
            if let Some(items) = value.get(name).and_then(Value::as_array) {
                at.push_str(name);
                let base = at.len();
                for (i, item) in items.iter().enumerate() {
                    let _ = write!(at, "[{i}]");
                    visit(item, rest, at, found);
                    at.truncate(base);
                }
            }
        }
        None => {
            if let Some(child) = value.get(first).filter(|c| !c.is_null()) {
                at.push_str(first);
                visit(child, rest, at, found);
            }
        }
    }
    at.truncate(len);
}

fn broken(rule: &Rule, value: &Value) -> Option<String> {
    let outside = |n: i128, min: Option<i128>, max: Option<i128>| {
        min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m)
    };
    let bounds = |min: Option<String>, max: Option<String>| match (min, max) {
        (Some(a), Some(b)) => format!("from {a} to {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => String::new(),
    };
    match *rule {
        Rule::Int { min, max } => {
            let n = value.as_i64()?;
            outside(n.into(), min.map(Into::into), max.map(Into::into)).then(|| {
                format!(
                    "{n} is out of range: App Mesh accepts {}",
                    bounds(min.map(|m| m.to_string()), max.map(|m| m.to_string()))
                )
            })
        }
        Rule::Length { min, max } => {
            let text = value.as_str()?;
            let len = text.chars().count() as i128;
            outside(len, min.map(Into::into), max.map(Into::into)).then(|| {
                format!(
                    "{len} characters: App Mesh accepts {} characters",
                    bounds(min.map(|m| m.to_string()), max.map(|m| m.to_string()))
                )
            })
        }
        Rule::Items { min, max } => {
            let len = value.as_array()?.len() as i128;
            outside(len, min.map(Into::into), max.map(Into::into)).then(|| {
                format!(
                    "{len} items: App Mesh accepts {} items",
                    bounds(min.map(|m| m.to_string()), max.map(|m| m.to_string()))
                )
            })
        }
        Rule::Enum(allowed) => {
            let text = value.as_str()?;
            (!allowed.contains(&text))
                .then(|| format!("`{text}` is not allowed: use one of {}", allowed.join(", ")))
        }
        Rule::Required(keys) => {
            let map = value.as_object()?;
            let missing: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| !map.contains_key(*k))
                .collect();
            (!missing.is_empty())
                .then(|| format!("missing required field(s): {}", missing.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broken_rules_name_the_concrete_path() {
        let raw = json!({"spec": {"routes": [
            {"name": "a", "priority": 5, "httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": [{"weight": 101}]}}},
            {"name": "b", "priority": 2000},
            {"priority": 1}
        ]}});
        let found = check("VirtualRouter", &raw);
        assert!(
            found
                .iter()
                .any(|(p, m)| p == "spec.routes[1].priority" && m.contains("from 0 to 1000")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(p, _)| p == "spec.routes[0].httpRoute.action.weightedTargets[0].weight"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(p, m)| p == "spec.routes[2]" && m.contains("name")),
            "{found:?}"
        );
        assert!(check("VirtualRouter", &json!({"spec": {"routes": []}})).is_empty());
    }
}
