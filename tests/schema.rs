//! The committed JSON Schema is the one the code generates, and the bundled plans satisfy it.

mod common;

use common::root;

#[test]
fn committed_schema_is_current() {
    let committed = std::fs::read_to_string(root().join("schema/meshplan.schema.json")).unwrap();
    assert!(
        committed == meshplan::plan::json_schema(),
        "schema/meshplan.schema.json is stale: run `cargo run -- schema > schema/meshplan.schema.json`"
    );
}

#[test]
fn bundled_plans_satisfy_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(&meshplan::plan::json_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("plans")).unwrap() {
        let path = entry.unwrap().path();
        let plan: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let plan = serde_json::to_value(plan).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&plan)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 1);
    // And the schema rejects what the loader rejects: an unknown key.
    let bad = serde_json::json!({"source": {"mesh": "m", "namespaces": ["a"], "manifestz": []}});
    assert!(!validator.is_valid(&bad));
}
