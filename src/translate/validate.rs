//! App Mesh inputs checked against the rules of the App Mesh CRD schemas (bounds, allowed values,
//! list sizes, required fields), so that an object the API server would reject is reported
//! before anything is planned from it.

use std::fmt::Write;
use std::sync::OnceLock;

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
    if let Some((_, root)) = tries().iter().find(|(k, _)| *k == kind) {
        root.walk(raw, &mut String::new(), &mut out);
    }
    out
}

/// The rules of one kind as a tree of their field paths: an object is walked once, each field
/// looked up once whatever the number of rules beneath it, and an absent field ends the walk
/// of every rule beneath it.
#[derive(Debug, Default)]
struct Field {
    /// The key in the parent mapping.
    name: &'static str,
    /// True for `name[]`: the rules beneath apply to every item of the list.
    list: bool,
    /// The rules of the value here.
    rules: Vec<&'static Rule>,
    /// The fields beneath, in rule order.
    fields: Vec<Field>,
}

impl Field {
    fn insert(&mut self, path: &'static str, rule: &'static Rule) {
        if path.is_empty() {
            self.rules.push(rule);
            return;
        }
        let (first, rest) = path.split_once('.').unwrap_or((path, ""));
        let (name, list) = first
            .strip_suffix("[]")
            .map_or((first, false), |name| (name, true));
        let at = match self
            .fields
            .iter()
            .position(|f| f.name == name && f.list == list)
        {
            Some(at) => at,
            None => {
                self.fields.push(Field {
                    name,
                    list,
                    ..Field::default()
                });
                self.fields.len() - 1
            }
        };
        self.fields[at].insert(rest, rule);
    }

    /// Checks `value` against the rules here and beneath; `at` is its concrete path, restored
    /// on return and copied only for a broken rule (most hold).
    fn walk(&self, value: &Value, at: &mut String, out: &mut Vec<(String, String)>) {
        for rule in &self.rules {
            if let Some(problem) = broken(rule, value) {
                out.push((at.clone(), problem));
            }
        }
        let Some(map) = value.as_object() else {
            return;
        };
        for field in &self.fields {
            let Some(child) = map.get(field.name).filter(|c| !c.is_null()) else {
                continue;
            };
            let len = at.len();
            if !at.is_empty() {
                at.push('.');
            }
            at.push_str(field.name);
            if !field.list {
                field.walk(child, at, out);
            } else if let Some(items) = child.as_array() {
                let base = at.len();
                for (i, item) in items.iter().enumerate() {
                    let _ = write!(at, "[{i}]");
                    field.walk(item, at, out);
                    at.truncate(base);
                }
            }
            at.truncate(len);
        }
    }
}

/// The rule tree of each kind, built once.
fn tries() -> &'static [(&'static str, Field)] {
    static TRIES: OnceLock<Vec<(&'static str, Field)>> = OnceLock::new();
    TRIES.get_or_init(|| {
        let mut tries: Vec<(&'static str, Field)> = Vec::new();
        for (kind, path, rule) in RULES {
            let at = match tries.iter().position(|(k, _)| k == kind) {
                Some(at) => at,
                None => {
                    tries.push((kind, Field::default()));
                    tries.len() - 1
                }
            };
            tries[at].1.insert(path, rule);
        }
        tries
    })
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

    #[test]
    fn rules_beneath_lists_and_absent_fields() {
        // `spec.grpcRoute` is absent: none of its rules apply; those of `spec.httpRoute` do.
        let raw = json!({"spec": {"httpRoute": {"match": {"prefix": "/"}}}});
        let found = check("GatewayRoute", &raw);
        assert_eq!(
            found,
            [(
                "spec.httpRoute".to_owned(),
                "missing required field(s): action".to_owned()
            )]
        );
        // A rule on a list itself and rules on its items both apply.
        let raw = json!({"spec": {"meshRef": {"name": "m", "uid": "u"}, "virtualservices": [{}, {"name": "a"}]}});
        assert_eq!(
            check("BackendGroup", &raw),
            [(
                "spec.virtualservices[0]".to_owned(),
                "missing required field(s): name".to_owned()
            )]
        );
        assert!(check("NoSuchKind", &raw).is_empty());
    }
}
