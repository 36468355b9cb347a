//! Golden translation cases: `tests/fixtures/translate/<case>/input.yaml` translates to
//! `output.yaml` with `findings.txt`. `MESHPLAN_BLESS=1 cargo test --test translate_golden`
//! rewrites the expected files; review the diff before committing it.
//!
//! Every input (unless the case name starts with `invalid-`) satisfies the App Mesh CRDs, and
//! every output object satisfies the Istio CRDs. A case may hold `istio-version` (e.g. `1.21`).

mod common;

use std::path::Path;

use common::{CrdSchemas, crds_dir, root, yaml_documents};
use meshplan::findings::Finding;
use meshplan::inventory::Inventory;
use meshplan::translate::{self, Options, Translation};

/// The output stream: Istio objects, then the Services and Deployments the migration changes.
pub fn render_output(translation: &Translation) -> String {
    let mut objects = translation.objects.clone();
    objects.extend(translation.services.iter().map(|s| s.after.clone()));
    objects.extend(translation.workloads.iter().map(|w| w.after.clone()));
    objects
        .iter()
        .map(|o| format!("---\n{}", meshplan::diff::to_yaml(o)))
        .collect()
}

/// One line per finding.
pub fn render_findings(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}: {}\n",
                f.severity, f.code, f.object, f.field, f.message
            )
        })
        .collect()
}

fn run_case(dir: &Path, appmesh: &CrdSchemas, istio: &CrdSchemas) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    // Relative, so that file names in findings are the same on every machine.
    let input = dir.strip_prefix(root()).unwrap().join("input.yaml");
    let mut problems = Vec::new();
    if !name.starts_with("invalid-") {
        for doc in yaml_documents(&input) {
            if doc["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .starts_with("appmesh.k8s.aws/")
                && let Err(errors) = appmesh.validate(&doc)
            {
                problems.push(format!(
                    "{name}: input {} breaks the App Mesh CRD: {errors:?}",
                    doc["metadata"]["name"]
                ));
            }
        }
    }
    let version = std::fs::read_to_string(dir.join("istio-version"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_default();
    let options = Options {
        version,
        ..Options::default()
    };
    let inventory = Inventory::from_paths(&[input]).unwrap();
    let translation = translate::translate(&inventory, &options);
    let output = render_output(&translation);
    let findings = render_findings(&translation.findings);
    for object in &translation.objects {
        if object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .contains("istio.io")
            && let Err(errors) = istio.validate(object)
        {
            problems.push(format!(
                "{name}: emitted {} breaks the Istio CRD: {errors:?}",
                object["metadata"]["name"]
            ));
        }
    }
    for (file, actual) in [("output.yaml", &output), ("findings.txt", &findings)] {
        let path = dir.join(file);
        if std::env::var_os("MESHPLAN_BLESS").is_some() {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if &expected != actual {
            let diff = similar::TextDiff::from_lines(&expected, actual)
                .unified_diff()
                .header("expected", "actual")
                .to_string();
            problems.push(format!("{name}/{file} differs:\n{diff}"));
        }
    }
    // Same input, same output, byte for byte.
    let again = translate::translate(&inventory, &options);
    if render_output(&again) != output || render_findings(&again.findings) != findings {
        problems.push(format!("{name}: output is not deterministic"));
    }
    problems
}

#[test]
fn golden_cases() {
    let appmesh = CrdSchemas::load(&crds_dir().join("appmesh"));
    let istio = CrdSchemas::load(&crds_dir().join("istio"));
    let mut cases: Vec<_> = std::fs::read_dir(root().join("tests/fixtures/translate"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.yaml").exists())
        .collect();
    cases.sort();
    let problems: Vec<String> = cases
        .iter()
        .flat_map(|c| run_case(c, &appmesh, &istio))
        .collect();
    assert!(!cases.is_empty());
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
