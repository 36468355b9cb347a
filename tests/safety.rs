//! The safety rules, as a user meets them: a saved plan edited to write outside the plan's scope
//! or to delete what meshplan did not create is refused with nothing applied; Secret data never
//! appears in any output, saved plan, journal or state file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{cluster, root, temp};
use meshplan::cluster::Cluster;
use meshplan::object::ObjectRef;
use meshplan::state::Journal;
use serde_json::Value;

fn meshplan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Requests that change something.
fn writes(server: &kubesim::RunningServer) -> u64 {
    server
        .faults()
        .counters()
        .iter()
        .filter(|((verb, _), _)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .map(|(_, n)| n)
        .sum()
}

/// A message as words, without the wrapping of the error report.
fn words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().filter(|w| *w != "│").collect();
    words.join(" ")
}

/// Saves the color plan, lets `edit` change its steps, and applies it: refused, nothing written.
async fn edited_saved_plan_is_refused(name: &str, edit: impl Fn(&mut Value), expected: &[&str]) {
    let dir = temp(name);
    let (server, kubeconfig) = cluster(&dir).await;
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let plan = root().join("plans/color.toml");
    let saved = dir.join("color.plan.json");
    let out = meshplan(
        &dir,
        &[
            "plan",
            plan.to_str().unwrap(),
            "--kubeconfig",
            &kubeconfig,
            "--out",
            saved.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    edit(&mut document["graph"]);
    std::fs::write(&saved, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    let before = writes(&server);

    let out = meshplan(
        &dir,
        &[
            "apply",
            saved.to_str().unwrap(),
            "--auto-approve",
            "--kubeconfig",
            &kubeconfig,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for part in expected {
        assert!(words(&err).contains(&words(part)), "{part}: {err}");
    }
    assert_eq!(writes(&server), before, "nothing was written: {err}");
    assert!(
        !dir.join(".meshplan/color.state.json").exists(),
        "no journal: nothing ran"
    );
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The change of `object_name` of kind `kind` in step `step`.
fn change<'a>(graph: &'a mut Value, step: &str, kind: &str) -> &'a mut Value {
    graph["steps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["id"] == step)
        .unwrap_or_else(|| panic!("no step {step}"))["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["object"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {step}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_edited_to_write_outside_the_scope_is_refused() {
    edited_saved_plan_is_refused(
        "safety-scope",
        |graph| {
            // The DestinationRule moved to kube-system, in the change and in its content.
            let dr = change(graph, "routing", "DestinationRule");
            dr["object"]["namespace"] = "kube-system".into();
            dr["after"]["metadata"]["namespace"] = "kube-system".into();
        },
        &[
            "step `routing` writes DestinationRule kube-system/color, which is outside the plan's scope",
            "objects in namespaces howto-k8s-http2",
            "nothing was changed",
        ],
    )
    .await;
    // Only the content moved: the change names one object and would write another.
    edited_saved_plan_is_refused(
        "safety-smuggled",
        |graph| {
            change(graph, "routing", "DestinationRule")["after"]["metadata"]["namespace"] =
                "kube-system".into();
        },
        &["changes DestinationRule howto-k8s-http2/color but carries the object DestinationRule kube-system/color"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_edited_to_delete_a_deployment_is_refused() {
    edited_saved_plan_is_refused(
        "safety-delete",
        |graph| {
            let steps = graph["steps"].as_array_mut().unwrap();
            let cleanup = steps
                .iter_mut()
                .find(|s| s["id"] == "delete-appmesh")
                .unwrap();
            cleanup["changes"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "action": "delete",
                    "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "namespace": "howto-k8s-http2", "name": "blue"},
                    "before": null,
                    "after": null,
                }));
        },
        &[
            "step `delete-appmesh` deletes Deployment howto-k8s-http2/blue",
            "meshplan deletes only App Mesh objects in scope and objects the run creates",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_deletes_only_what_the_journal_says_the_run_created() {
    let dir = temp("safety-rollback");
    let (server, kubeconfig) = cluster(&dir).await;
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let plan = root().join("plans/color.toml");
    let run = |command: &str| {
        meshplan(
            &dir,
            &[
                command,
                plan.to_str().unwrap(),
                "--auto-approve",
                "--kubeconfig",
                &kubeconfig,
            ],
        )
    };
    let applied = run("apply");
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    // The journal edited to say the Service did not exist before the step that changed it.
    let path = dir.join(".meshplan/color.state.json");
    let mut journal = Journal::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (step, image) = journal
        .steps
        .iter_mut()
        .find_map(|(id, record)| {
            let image = record
                .pre_images
                .iter_mut()
                .find(|i| i.object.kind == "Service")?;
            Some((id.clone(), image))
        })
        .expect("a step changes the Service");
    image.before = None;
    std::fs::write(&path, journal.to_text()).unwrap();
    let before = writes(&server);

    let refused = run("rollback");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        words(&err).contains(&format!(
            "step `{step}` deletes Service howto-k8s-http2/color"
        )),
        "{err}"
    );
    assert_eq!(writes(&server), before, "nothing was restored: {err}");
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

const PLAINTEXT: &str = "correct-horse-battery-staple-7731";

/// The color app's manifests plus a Secret (applied with kubectl, so its last-applied annotation
/// repeats the data) that the client Deployment reads.
fn manifests_with_a_secret(dir: &Path) -> PathBuf {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(PLAINTEXT);
    let folder = dir.join("manifests");
    std::fs::create_dir_all(&folder).unwrap();
    for entry in std::fs::read_dir(root().join("examples/howto-k8s-http2")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "            - name: COLOR_HOST\n",
            "            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: color-db\n                  key: password\n            - name: COLOR_HOST\n",
        );
        std::fs::write(folder.join(path.file_name().unwrap()), text).unwrap();
    }
    let applied = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "color-db", "namespace": "howto-k8s-http2"},
        "data": {"password": encoded},
    });
    std::fs::write(
        folder.join("40-secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n  name: color-db\n  namespace: howto-k8s-http2\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: {:?}\ndata:\n  password: {encoded}\nstringData:\n  token: {PLAINTEXT}\n",
            applied.to_string()
        ),
    )
    .unwrap();
    folder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_data_never_appears_in_outputs_plans_journals_or_state() {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(PLAINTEXT);
    let dir = temp("safety-secrets");
    let (server, kubeconfig) = cluster(&dir).await;
    let manifests = manifests_with_a_secret(&dir);
    let secret = std::fs::read_to_string(manifests.join("40-secret.yaml")).unwrap();
    server.load_yaml("40-secret.yaml", &secret).unwrap();
    let cluster = Cluster::new(
        meshplan::cluster::connect(Some(&kubeconfig), None)
            .await
            .unwrap(),
    );
    // The client reads the Secret, in the cluster as in the manifests.
    let workloads = std::fs::read_to_string(manifests.join("30-workloads.yaml")).unwrap();
    let client = kubesim::load::parse_documents("30-workloads.yaml", &workloads)
        .unwrap()
        .into_iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "client")
        .unwrap();
    cluster
        .merge(
            &ObjectRef::of(&client),
            &serde_json::json!({"spec": client["spec"]}),
        )
        .await
        .unwrap();
    // The parallel plan, cloning Secrets, with its state in files beside it.
    let text = std::fs::read_to_string(root().join("plans/color-parallel.toml"))
        .unwrap()
        .replace(
            "\"../examples/howto-k8s-http2\"",
            &format!("{:?}", manifests.display().to_string()),
        )
        .replace(
            "rollout_timeout = \"5m\"",
            "rollout_timeout = \"5m\"\nclone_secrets = true",
        )
        .replace(
            "[state]\nbackend = \"configmap\"\nnamespace = \"default\"",
            "",
        );
    let plan = dir.join("color-parallel.toml");
    std::fs::write(&plan, text).unwrap();
    let plan = plan.to_str().unwrap().to_owned();
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let saved = dir.join("saved.json").to_str().unwrap().to_owned();
    let rendered = dir.join("rendered").to_str().unwrap().to_owned();
    let cluster_args = ["--kubeconfig", kubeconfig.as_str()];
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["plan", &plan],
        vec!["plan", &plan, "--format", "json"],
        vec!["plan", &plan, "--format", "markdown"],
        vec!["render", &plan, "--out", &rendered],
    ];
    for format in ["text", "json", "markdown"] {
        let mut live = vec!["plan", plan.as_str(), "--format", format];
        live.extend(cluster_args);
        runs.push(live);
    }
    let mut out = vec!["plan", plan.as_str(), "--out", saved.as_str()];
    out.extend(cluster_args);
    runs.push(out);
    let mut apply = vec!["apply", saved.as_str(), "--auto-approve"];
    apply.extend(cluster_args);
    runs.push(apply);
    for format in ["text", "json"] {
        let mut status = vec!["status", plan.as_str(), "--format", format];
        status.extend(cluster_args);
        runs.push(status);
    }
    let mut shown = String::new();
    for args in &runs {
        let out = meshplan(&dir, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        shown.push_str(&String::from_utf8_lossy(&out.stdout));
        shown.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(shown.contains("clone-secrets"), "{shown}");

    // The Secret was cloned, data and all: the test looks for something that is there.
    let clone = cluster
        .get(&ObjectRef::new(
            "v1",
            "Secret",
            Some("howto-k8s-http2-istio"),
            "color-db",
        ))
        .await
        .unwrap()
        .expect("the Secret is cloned");
    assert_eq!(clone["data"]["password"], encoded.as_str());

    // Rolled back: the clone is deleted, and the rollback's own diff shows it masked.
    let mut rollback = vec!["rollback", plan.as_str(), "--auto-approve"];
    rollback.extend(cluster_args);
    let out = meshplan(&dir, &rollback);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rolled = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        rolled.contains("- Secret howto-k8s-http2-istio/color-db"),
        "{rolled}"
    );
    shown.push_str(&rolled);
    shown.push_str(&String::from_utf8_lossy(&out.stderr));

    // Everything meshplan wrote to disk: the saved plan, the rendered manifests, the journal.
    let mut files = Vec::new();
    let mut folders = vec![dir.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path == manifests
                || path.ends_with("kubeconfig")
                || path.ends_with("color-parallel.toml")
            {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for expected in ["saved.json", "color-parallel.state.json"] {
        assert!(
            files.iter().any(|f| f.ends_with(expected)),
            "{expected} in {files:?}"
        );
    }
    for file in &files {
        shown.push_str(&std::fs::read_to_string(file).unwrap());
    }
    for secret in [PLAINTEXT, encoded.as_str()] {
        assert!(
            !shown.contains(secret),
            "Secret data shown or stored: {secret}"
        );
    }
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
