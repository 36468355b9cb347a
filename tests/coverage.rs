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
