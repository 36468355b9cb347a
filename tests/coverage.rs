//! No silent drops, provably: every field of every App Mesh CRD has a declared disposition, the
//! table names no field the CRDs lack, and `docs/coverage.md` is generated from the table.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{crds_dir, root, yaml_documents};
use meshplan::findings::Code;
use meshplan::translate::coverage;
use serde_json::Value;

/// Leaf field paths of a CRD schema, `[]` for list items.
fn leaves(schema: &Value, path: &str, out: &mut BTreeSet<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, child) in properties {
            leaves(child, &format!("{path}.{key}"), out);
        }
    } else if schema["type"] == "array" && schema.get("items").is_some() {
        leaves(&schema["items"], &format!("{path}[]"), out);
    } else {
        out.insert(path.to_owned());
    }
}

fn crd_fields() -> BTreeMap<String, BTreeSet<String>> {
    let mut kinds = BTreeMap::new();
    for entry in std::fs::read_dir(crds_dir().join("appmesh")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for crd in yaml_documents(&path) {
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
            for version in crd["spec"]["versions"].as_array().unwrap() {
                if version["name"] != "v1beta2" {
                    continue;
                }
                let mut out = BTreeSet::new();
                leaves(
                    &version["schema"]["openAPIV3Schema"]["properties"]["spec"],
                    "spec",
                    &mut out,
                );
                kinds.insert(kind.clone(), out);
            }
        }
    }
    assert_eq!(
        kinds.len(),
        7,
        "seven App Mesh kinds in {}",
        crds_dir().display()
    );
    kinds
}

#[test]
fn every_crd_field_has_a_disposition_and_no_other_is_declared() {
    let crds = crd_fields();
    let table = coverage::table();
    let mut problems = Vec::new();
    for kind in &table {
        let declared: Vec<&str> = kind.fields.iter().map(|f| f.path.as_str()).collect();
        let unique: BTreeSet<&str> = declared.iter().copied().collect();
        if unique.len() != declared.len() {
            problems.push(format!("{}: a path is declared twice", kind.kind));
        }
        let Some(schema) = crds.get(kind.kind) else {
            problems.push(format!("{}: no such CRD", kind.kind));
            continue;
        };
        for path in schema.iter().filter(|p| !unique.contains(p.as_str())) {
            problems.push(format!("{} {path}: no disposition declared", kind.kind));
        }
        for path in unique.iter().filter(|p| !schema.contains(**p)) {
            problems.push(format!("{} {path}: declared but not in the CRD", kind.kind));
        }
    }
    assert_eq!(table.len(), crds.len());
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Compares a generated document with the committed one; `MESHPLAN_BLESS=1` rewrites it.
fn check_doc(name: &str, generated: &str) {
    let path = root().join("docs").join(name);
    if std::env::var_os("MESHPLAN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/{name} is stale: run `MESHPLAN_BLESS=1 cargo test --test coverage`"
    );
}

#[test]
fn coverage_doc_is_current() {
    check_doc("coverage.md", &meshplan::docs::coverage());
}

/// The golden cases that show each code, from their `findings.txt`.
fn examples() -> BTreeMap<Code, Vec<String>> {
    let mut out: BTreeMap<Code, Vec<String>> = BTreeMap::new();
    let dir = root().join("tests/fixtures/translate");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    cases.sort();
    for case in cases {
        let findings = std::fs::read_to_string(case.join("findings.txt")).unwrap_or_default();
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        for code in Code::ALL {
            let shown = out.entry(*code).or_default();
            if findings.contains(code.as_str()) && shown.len() < 3 && !shown.contains(&name) {
                shown.push(name.clone());
            }
        }
    }
    out
}

#[test]
fn findings_doc_is_current() {
    check_doc("findings.md", &meshplan::docs::findings_with(&examples()));
}

/// The CRD rules as Rust source for `src/translate/constraints.rs`.
fn constraints_source() -> String {
    fn walk(kind: &str, schema: &Value, path: &str, out: &mut Vec<String>) {
        let opt = |v: &Value| {
            v.as_i64()
                .map_or("None".to_owned(), |n| format!("Some({n})"))
        };
        let optu = |v: &Value| {
            v.as_u64()
                .map_or("None".to_owned(), |n| format!("Some({n})"))
        };
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            let keys: Vec<String> = required
                .iter()
                .map(|k| format!("{:?}", k.as_str().unwrap()))
                .collect();
            out.push(format!(
                "    ({kind:?}, {path:?}, Rule::Required(&[{}])),",
                keys.join(", ")
            ));
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (key, child) in properties {
                walk(kind, child, &format!("{path}.{key}"), out);
            }
            return;
        }
        if schema["type"] == "array" {
            if schema.get("minItems").is_some() || schema.get("maxItems").is_some() {
                out.push(format!(
                    "    ({kind:?}, {path:?}, Rule::Items {{ min: {}, max: {} }}),",
                    optu(&schema["minItems"]),
                    optu(&schema["maxItems"])
                ));
            }
            if let Some(items) = schema.get("items") {
                walk(kind, items, &format!("{path}[]"), out);
            }
            return;
        }
        if schema.get("minimum").is_some() || schema.get("maximum").is_some() {
            out.push(format!(
                "    ({kind:?}, {path:?}, Rule::Int {{ min: {}, max: {} }}),",
                opt(&schema["minimum"]),
                opt(&schema["maximum"])
            ));
        }
        if schema.get("minLength").is_some() || schema.get("maxLength").is_some() {
            out.push(format!(
                "    ({kind:?}, {path:?}, Rule::Length {{ min: {}, max: {} }}),",
                optu(&schema["minLength"]),
                optu(&schema["maxLength"])
            ));
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Vec<String> = values
                .iter()
                .map(|v| format!("{:?}", v.as_str().unwrap()))
                .collect();
            out.push(format!(
                "    ({kind:?}, {path:?}, Rule::Enum(&[{}])),",
                values.join(", ")
            ));
        }
    }
    let mut crds: Vec<(String, Value)> = Vec::new();
    for entry in std::fs::read_dir(crds_dir().join("appmesh")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for crd in yaml_documents(&path) {
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
            for version in crd["spec"]["versions"].as_array().unwrap() {
                if version["name"] == "v1beta2" {
                    crds.push((
                        kind.clone(),
                        version["schema"]["openAPIV3Schema"]["properties"]["spec"].clone(),
                    ));
                }
            }
        }
    }
    crds.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = Vec::new();
    for (kind, spec) in &crds {
        walk(kind, spec, "spec", &mut lines);
    }
    format!(
        "//! The rules of the App Mesh v1beta2 CRD schemas. Generated from `$MESHPLAN_CRDS_DIR/appmesh` by\n\
         //! `MESHPLAN_BLESS=1 cargo test --test coverage`; a test fails when it no longer matches them.\n\n\
         use super::validate::Rule;\n\n\
         /// (kind, field path, rule), in CRD order.\n\
         #[rustfmt::skip]\n\
         pub const RULES: &[(&str, &str, Rule)] = &[\n{}\n];\n",
        lines.join("\n")
    )
}

#[test]
fn validation_rules_match_the_crds() {
    let generated = constraints_source();
    let path = root().join("src/translate/constraints.rs");
    if std::env::var_os("MESHPLAN_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "src/translate/constraints.rs is stale: run `MESHPLAN_BLESS=1 cargo test --test coverage`"
    );
}
