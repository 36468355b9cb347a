//! `meshplan render`: golden folders for both strategies (`MESHPLAN_BLESS=1 cargo test --test
//! render` rewrites them; review the diff), byte-identical re-renders, every stage building with
//! the real `kubectl kustomize`, and the Argo CD and Flux flavours.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::root;
use meshplan::pipeline::{self, Planned};
use meshplan::plan::PlanFile;
use meshplan::render::{self, MARKER, RenderFormat, Rendered};
use serde_json::Value;

fn planned(plan: &str) -> Planned {
    // Relative, as a user types it: the source path shows in the README.
    let path = Path::new(plan);
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    pipeline::plan_offline(PlanFile::parse(path, text).unwrap(), None).unwrap()
}

/// A fresh, not yet existing folder under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "meshplan-render-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every file under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let name = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn kubectl() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned())
}

fn golden(case: &str, plan: &str) {
    let rendered = render::render(&planned(plan), RenderFormat::Plain);
    let fixture = root().join("tests/fixtures/render").join(case);
    if std::env::var_os("MESHPLAN_BLESS").is_some() {
        render::write(&rendered, &fixture).unwrap();
    }
    let dir = scratch(case);
    render::write(&rendered, &dir).unwrap();
    let (got, want) = (read_tree(&dir), read_tree(&fixture));
    let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "files of {case}");
    for (name, content) in &want {
        assert!(
            got[name] == *content,
            "{case}/{name} differs from the golden file:\n{}",
            String::from_utf8_lossy(&got[name])
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn in_place_matches_its_golden_folder() {
    golden("color-in-place", "plans/color.toml");
}

#[test]
fn parallel_matches_its_golden_folder() {
    golden("color-parallel", "plans/color-parallel.toml");
}

#[test]
fn stages_come_in_execution_order_with_commands_for_the_rest() {
    let in_place = render::render(&planned("plans/color.toml"), RenderFormat::Plain);
    assert_eq!(
        in_place.stages,
        [
            "00-istio-config",
            "10-routing",
            "20-namespace",
            "30-cleanup"
        ]
    );
    let readme = &in_place.files["README.md"];
    for command in [
        "kubectl delete virtualnodes.appmesh.k8s.aws red -n howto-k8s-http2",
        "kubectl rollout restart deployment/red -n howto-k8s-http2",
    ] {
        assert!(readme.contains(command), "{command} missing from\n{readme}");
    }
    let parallel = render::render(&planned("plans/color-parallel.toml"), RenderFormat::Plain);
    assert_eq!(
        parallel.stages,
        [
            "00-istio-config",
            "10-namespace",
            "20-workloads",
            "30-routing",
            "40-entry",
            "50-ramp-010",
            "51-ramp-050",
            "52-ramp-100",
            "60-cleanup"
        ]
    );
    let weights = |stage: &str| -> Vec<u64> {
        let file = format!("{stage}/virtualservice-howto-k8s-http2-istio-color-entry.yaml");
        let entry: Value = serde_saphyr::from_str(&parallel.files[&file]).unwrap();
        entry["spec"]["http"][0]["route"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["weight"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(weights("40-entry"), [100, 0]);
    assert_eq!(weights("51-ramp-050"), [50, 50]);
    assert_eq!(weights("52-ramp-100"), [0, 100]);
}

#[test]
fn re_rendering_is_byte_identical_and_leaves_no_stale_files() {
    let dir = scratch("again");
    let rendered = render::render(&planned("plans/color.toml"), RenderFormat::Plain);
    render::write(&rendered, &dir).unwrap();
    let first = read_tree(&dir);
    std::fs::write(dir.join("10-routing/stale.yaml"), "kind: Stale\n").unwrap();
    std::fs::create_dir(dir.join("99-old")).unwrap();
    let again = render::render(&planned("plans/color.toml"), RenderFormat::Plain);
    render::write(&again, &dir).unwrap();
    assert_eq!(read_tree(&dir), first);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_render_did_not_write_is_refused() {
    let dir = scratch("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mine.txt"), "keep me\n").unwrap();
    let rendered = render::render(&planned("plans/color.toml"), RenderFormat::Plain);
    let err = render::write(&rendered, &dir).unwrap_err();
    assert!(err.to_string().contains(MARKER), "{err}");
    assert_eq!(std::fs::read(dir.join("mine.txt")).unwrap(), b"keep me\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each stage folder builds with `kubectl kustomize` into as many documents as it has objects.
fn builds_with_kustomize(rendered: &Rendered, name: &str) {
    let dir = scratch(name);
    render::write(rendered, &dir).unwrap();
    for stage in &rendered.stages {
        let objects = rendered
            .files
            .keys()
            .filter(|f| f.starts_with(&format!("{stage}/")) && !f.ends_with("/kustomization.yaml"))
            .count();
        let out = Command::new(kubectl())
            .arg("kustomize")
            .arg(dir.join(stage))
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl kustomize {stage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let documents = text
            .split("\n---\n")
            .filter(|d| !d.trim().is_empty())
            .count();
        assert_eq!(documents, objects, "{stage}:\n{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_stage_builds_with_kubectl_kustomize() {
    for (plan, format) in [
        ("plans/color.toml", RenderFormat::Plain),
        ("plans/color-parallel.toml", RenderFormat::Plain),
        ("plans/color-parallel.toml", RenderFormat::Argocd),
        ("plans/color-parallel.toml", RenderFormat::Flux),
    ] {
        builds_with_kustomize(&render::render(&planned(plan), format), "kustomize");
    }
}

#[test]
fn argocd_objects_carry_their_stage_wave_and_the_entry_is_ignored() {
    let rendered = render::render(&planned("plans/color-parallel.toml"), RenderFormat::Argocd);
    let mut objects = 0;
    for (name, text) in &rendered.files {
        let Some((stage, _)) = name.split_once('/') else {
            continue;
        };
        if name.ends_with("/kustomization.yaml") {
            continue;
        }
        let object: Value = serde_saphyr::from_str(text).unwrap();
        let wave = stage.split('-').next().unwrap().parse::<u32>().unwrap();
        assert_eq!(
            object["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"],
            wave.to_string(),
            "{name}"
        );
        objects += 1;
    }
    assert_eq!(objects, 23);
    // The top kustomization builds every stage but the ramp folders (3 entry copies).
    let dir = scratch("argocd");
    render::write(&rendered, &dir).unwrap();
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.split("\n---\n").count(), 20, "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
    let readme = &rendered.files["README.md"];
    for needle in [
        "ignoreDifferences",
        "managedFieldsManagers",
        "/spec/http/0/route",
        "RespectIgnoreDifferences=true",
    ] {
        assert!(readme.contains(needle), "{needle} missing from\n{readme}");
    }
}

#[test]
fn flux_kustomizations_form_a_depends_on_chain() {
    let rendered = render::render(&planned("plans/color-parallel.toml"), RenderFormat::Flux);
    let mut previous: Option<String> = None;
    for stage in &rendered.stages {
        let doc: Value =
            serde_saphyr::from_str(&rendered.files[&format!("flux/{stage}.yaml")]).unwrap();
        assert_eq!(doc["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
        assert_eq!(doc["spec"]["path"], format!("./{stage}"));
        match &previous {
            Some(p) => assert_eq!(doc["spec"]["dependsOn"][0]["name"], *p),
            None => assert!(doc["spec"].get("dependsOn").is_none()),
        }
        if stage == "40-entry" {
            let patch = doc["spec"]["patches"][0]["patch"].as_str().unwrap();
            assert!(patch.contains("kustomize.toolkit.fluxcd.io/ssa: IfNotPresent"));
        }
        assert_eq!(doc["spec"]["suspend"] == true, stage.contains("-ramp-"));
        previous = Some(doc["metadata"]["name"].as_str().unwrap().to_owned());
    }
    assert!(rendered.files["README.md"].contains("field manager `meshplan`"));
}

#[test]
fn the_cli_renders_re_renders_and_refuses_a_foreign_folder() {
    let dir = scratch("cli");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meshplan"))
            .args(args)
            .current_dir(root())
            .output()
            .unwrap()
    };
    let out_dir = dir.to_str().unwrap();
    for _ in 0..2 {
        let out = run(&[
            "render",
            "plans/color.toml",
            "--out",
            out_dir,
            "--format",
            "argocd",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.join("kustomization.yaml").is_file());
    let foreign = scratch("cli-foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine\n").unwrap();
    let out = run(&[
        "render",
        "plans/color.toml",
        "--out",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(MARKER));
    let markdown = run(&["plan", "plans/color.toml", "--format", "markdown"]);
    assert!(markdown.status.success());
    assert!(String::from_utf8_lossy(&markdown.stdout).starts_with("## meshplan: plan `color`"));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&foreign).unwrap();
}
