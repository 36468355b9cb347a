//! What happens to every App Mesh field: the declared disposition of each CRD field path.
//!
//! The table is the contract "nothing is dropped silently": a test checks it against the App Mesh
//! CRD schemas, `docs/coverage.md` is generated from it, and at run time every field present in an
//! object is looked up here: approximated and unsupported fields raise their finding, fields
//! that are not in App Mesh v1beta2 at all raise `MP005`.

use serde_json::Value;

use crate::findings::Code;

/// What the translator does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Carried over with the same behaviour.
    Exact,
    /// Carried over with a difference the finding explains.
    Approx(Code),
    /// Cannot be carried over; the finding says what to do.
    Unsupported(Code),
    /// App Mesh bookkeeping with no runtime meaning in Istio.
    Drop,
}

impl Disposition {
    /// The name used in `docs/coverage.md`.
    pub fn label(self) -> &'static str {
        match self {
            Disposition::Exact => "exact",
            Disposition::Approx(_) => "approximated",
            Disposition::Unsupported(_) => "unsupported",
            Disposition::Drop => "dropped (bookkeeping)",
        }
    }

    /// The finding raised when the field is present.
    pub fn code(self) -> Option<Code> {
        match self {
            Disposition::Approx(code) | Disposition::Unsupported(code) => Some(code),
            Disposition::Exact | Disposition::Drop => None,
        }
    }
}

/// One field path of a kind, e.g. `spec.routes[].httpRoute.match.prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Dotted path; `[]` stands for every list item.
    pub path: String,
    /// What happens to it.
    pub disposition: Disposition,
    /// Where it goes in Istio (or why nowhere).
    pub istio: &'static str,
}

/// The fields of one kind.
#[derive(Debug, Clone)]
pub struct KindCoverage {
    /// App Mesh kind.
    pub kind: &'static str,
    /// Every leaf field path of the kind's spec.
    pub fields: Vec<Field>,
}

/// Builds a field entry.
pub fn field(path: impl Into<String>, disposition: Disposition, istio: &'static str) -> Field {
    Field {
        path: path.into(),
        disposition,
        istio,
    }
}

/// The two leaves of an App Mesh duration at `prefix`.
pub fn duration(prefix: &str, disposition: Disposition, istio: &'static str) -> Vec<Field> {
    ["unit", "value"]
        .into_iter()
        .map(|leaf| field(format!("{prefix}.{leaf}"), disposition, istio))
        .collect()
}

/// A label selector at `prefix`: equality labels map, expressions do not.
pub fn selector(prefix: &str, labels: Disposition, istio: &'static str) -> Vec<Field> {
    let mut out = vec![field(format!("{prefix}.matchLabels"), labels, istio)];
    for leaf in ["key", "operator", "values[]"] {
        out.push(field(
            format!("{prefix}.matchExpressions[].{leaf}"),
            Disposition::Unsupported(Code::SelectorExpressions),
            "none: Istio selectors take equality labels only",
        ));
    }
    out
}

/// `meshRef` (set by the App Mesh webhook).
pub fn mesh_ref() -> Vec<Field> {
    ["spec.meshRef.name", "spec.meshRef.uid"]
        .into_iter()
        .map(|p| field(p, Disposition::Drop, "none"))
        .collect()
}

/// The whole table, one entry per App Mesh kind.
pub fn table() -> Vec<KindCoverage> {
    vec![
        KindCoverage {
            kind: "Mesh",
            fields: super::mesh::coverage(),
        },
        KindCoverage {
            kind: "VirtualNode",
            fields: super::node::coverage(),
        },
        KindCoverage {
            kind: "VirtualService",
            fields: super::service::coverage(),
        },
        KindCoverage {
            kind: "VirtualRouter",
            fields: super::router::coverage(),
        },
        KindCoverage {
            kind: "VirtualGateway",
            fields: super::gateway::gateway_coverage(),
        },
        KindCoverage {
            kind: "GatewayRoute",
            fields: super::gateway::route_coverage(),
        },
        KindCoverage {
            kind: "BackendGroup",
            fields: super::backend_group::coverage(),
        },
    ]
}

/// A field present in an object, with what the table says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present<'a> {
    /// The concrete path, e.g. `spec.listeners[0].tls.mode`.
    pub path: String,
    /// Its entry in the kind's table; `None` when the path is not in App Mesh v1beta2.
    pub field: Option<&'a Field>,
}

/// Every field present in `raw`'s spec, looked up in the kind's table.
pub fn present<'a>(fields: &'a [Field], raw: &Value) -> Vec<Present<'a>> {
    let mut out = Vec::new();
    if let Some(spec) = raw.get("spec") {
        let mut at = Paths {
            pattern: "spec".to_owned(),
            concrete: "spec".to_owned(),
        };
        walk(fields, spec, &mut at, &mut out);
    }
    out
}

/// The table pattern (`a[].b`) and the concrete path (`a[0].b`) of the walk's position, grown
/// and cut back as it goes, so that only the fields reported are copied.
struct Paths {
    pattern: String,
    concrete: String,
}

impl Paths {
    /// Descends one step, runs `f`, and comes back.
    fn within(
        &mut self,
        pattern: [&str; 2],
        concrete: std::fmt::Arguments,
        f: impl FnOnce(&mut Self),
    ) {
        use std::fmt::Write;
        let (p, c) = (self.pattern.len(), self.concrete.len());
        self.pattern.extend(pattern);
        let _ = self.concrete.write_fmt(concrete);
        f(self);
        self.pattern.truncate(p);
        self.concrete.truncate(c);
    }
}

fn walk<'a>(fields: &'a [Field], value: &Value, at: &mut Paths, out: &mut Vec<Present<'a>>) {
    if let Some(f) = fields.iter().find(|f| f.path == at.pattern) {
        out.push(Present {
            path: at.concrete.clone(),
            field: Some(f),
        });
        return;
    }
    let below = |pattern: &str, sep: &str| {
        fields.iter().any(|f| {
            f.path
                .strip_prefix(pattern)
                .is_some_and(|rest| rest.starts_with(sep))
        })
    };
    match value {
        Value::Object(map) if below(&at.pattern, ".") => {
            for (key, child) in map {
                at.within([".", key], format_args!(".{key}"), |at| {
                    walk(fields, child, at, out)
                });
            }
        }
        Value::Array(items) if below(&at.pattern, "[]") => {
            for (i, child) in items.iter().enumerate() {
                at.within(["[]", ""], format_args!("[{i}]"), |at| {
                    walk(fields, child, at, out)
                });
            }
        }
        // `null` is what YAML gives for an empty key; it carries nothing.
        Value::Null => {}
        _ => out.push(Present {
            path: at.concrete.clone(),
            field: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn present_fields_are_found_with_their_disposition() {
        let fields = vec![
            field("spec.a[].b", Disposition::Exact, ""),
            field("spec.c", Disposition::Unsupported(Code::IpPreference), ""),
            field("spec.m.matchLabels", Disposition::Exact, ""),
        ];
        let raw = json!({"spec": {"a": [{"b": 1}, {"b": 2, "x": 3}], "c": "v", "m": {"matchLabels": {"k": "v"}}, "typo": 1}});
        let found = present(&fields, &raw);
        let shown: Vec<(String, Option<Disposition>)> = found
            .into_iter()
            .map(|p| (p.path, p.field.map(|f| f.disposition)))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("spec.a[0].b".to_owned(), Some(Disposition::Exact)),
                ("spec.a[1].b".to_owned(), Some(Disposition::Exact)),
                ("spec.a[1].x".to_owned(), None),
                (
                    "spec.c".to_owned(),
                    Some(Disposition::Unsupported(Code::IpPreference))
                ),
                ("spec.m.matchLabels".to_owned(), Some(Disposition::Exact)),
                ("spec.typo".to_owned(), None),
            ]
        );
    }
}
