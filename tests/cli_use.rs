//! Using the CLI safely: `--dry-run` of apply, rollback and ramp change nothing (kubesim counts
//! every request; dry runs are counted apart), the confirmation shows the summary, `-v` logs, and
//! the Markdown of status, ramp and translate is fit for a pull-request comment.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::root;
use meshplan::cluster::Cluster;
use meshplan::object::ObjectRef;

type Counters = BTreeMap<(String, String), u64>;

/// kubesim's request counters at one moment: all requests, and those sent with `dryRun=All`.
struct Counted(Counters, Counters);

fn counted(server: &kubesim::RunningServer) -> Counted {
    Counted(
        server.faults().counters(),
        server.faults().dry_run_counters(),
    )
}

/// Requests since `since` that would change something, less those sent with `dryRun=All`
/// (which store nothing).
fn real_writes(server: &kubesim::RunningServer, since: &Counted) -> Vec<((String, String), u64)> {
    let now = counted(server);
    let get = |map: &Counters, key: &(String, String)| map.get(key).copied().unwrap_or(0);
    now.0
        .iter()
        .filter(|((verb, _), _)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .map(|(key, n)| {
            let dry = get(&now.1, key) - get(&since.1, key);
            (key.clone(), n - get(&since.0, key) - dry)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Requests sent with `dryRun=All` since `since`.
fn dry_runs(server: &kubesim::RunningServer, since: &Counted) -> u64 {
    server.faults().dry_run_counters().values().sum::<u64>() - since.1.values().sum::<u64>()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshplan-use-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn cluster(dir: &Path) -> (kubesim::RunningServer, PathBuf) {
    let server = common::color_cluster(Duration::from_millis(20)).await;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    (server, kubeconfig)
}

/// `meshplan ARGS --kubeconfig K` in `dir`, stdin closed.
fn meshplan(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_rollback_dry_runs_change_nothing() {
    let dir = temp("dry-apply");
    let (server, kubeconfig) = cluster(&dir).await;
    let plan = root().join("plans/color.toml");
    let plan = plan.to_str().unwrap();
    let journal = dir.join(".meshplan/color.state.json");
    let start = counted(&server);

    let dry = meshplan(&dir, &kubeconfig, &["-vv", "apply", plan, "--dry-run"]);
    let (out, err) = (text(&dry.stdout), text(&dry.stderr));
    assert_eq!(dry.status.code(), Some(0), "{err}");
    assert!(
        out.contains("Plan: 9 to create, 2 to change, 6 to delete, 4 restarts."),
        "{out}"
    );
    assert!(out.contains("Step 1/"), "{out}");
    assert!(err.contains("Lock (") && err.contains("free."), "{err}");
    assert!(err.contains("Dry run: nothing was changed"), "{err}");
    // -vv: meshplan's own events and kube's requests.
    assert!(err.contains("server-side dry run"), "{err}");
    assert!(err.contains("http.method=GET"), "{err}");
    assert_eq!(real_writes(&server, &start), [], "{err}");
    assert!(
        dry_runs(&server, &start) > 0,
        "the server dry-ran the changes"
    );
    assert!(!journal.exists(), "a dry run writes no journal");
    assert!(!dir.join(".meshplan/color.lock").exists());

    // Without -v, no log lines.
    let quiet = meshplan(&dir, &kubeconfig, &["apply", plan, "--dry-run"]);
    let err = text(&quiet.stderr);
    assert!(quiet.status.success(), "{err}");
    for level in [" WARN ", " INFO ", " DEBUG ", " TRACE "] {
        assert!(!err.contains(level), "{err}");
    }

    // A retried request is said, with its reason, even without -v.
    server.faults().add(kubesim::Rule {
        verb: Some("list".into()),
        resource: Some("virtualnodes".into()),
        times: Some(1),
        action: Some(kubesim::faults::Action::Status {
            code: 500,
            retry_after: None,
        }),
        ..kubesim::Rule::default()
    });
    let retried = meshplan(&dir, &kubeconfig, &["apply", plan, "--dry-run"]);
    let err = text(&retried.stderr);
    assert!(retried.status.success(), "{err}");
    assert!(
        err.contains(" WARN ") && err.contains("retrying a request attempt=1 of=8"),
        "{err}"
    );
    assert!(err.contains("500"), "{err}");

    // A saved plan: checked fresh, its steps shown, nothing written.
    let saved = dir.join("color.plan.json");
    let planned = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(["plan", plan, "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--out")
        .arg(&saved)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(planned.status.success(), "{}", text(&planned.stderr));
    let dry = meshplan(
        &dir,
        &kubeconfig,
        &["apply", saved.to_str().unwrap(), "--dry-run"],
    );
    let (out, err) = (text(&dry.stdout), text(&dry.stderr));
    assert!(dry.status.success(), "{err}");
    assert!(err.contains("Dry run: would apply the saved plan"), "{err}");
    assert!(out.contains("Step 1/13 preflight"), "{out}");
    assert_eq!(real_writes(&server, &start), []);
    assert!(!journal.exists());

    // Without a terminal and without --auto-approve, apply refuses before changing anything.
    let refused = meshplan(&dir, &kubeconfig, &["apply", plan]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("--auto-approve"));
    assert_eq!(real_writes(&server, &start), []);

    // A real run, then a rollback dry run: the journal stays as it was, nothing is written.
    let applied = meshplan(&dir, &kubeconfig, &["-v", "apply", plan, "--auto-approve"]);
    let err = text(&applied.stderr);
    assert!(applied.status.success(), "{err}");
    assert!(
        err.contains("step started") && err.contains("step=routing"),
        "{err}"
    );
    assert!(
        err.contains("lock taken") && err.contains("lock released"),
        "{err}"
    );
    let recorded = std::fs::read(&journal).unwrap();
    let applied = counted(&server);

    let dry = meshplan(&dir, &kubeconfig, &["rollback", plan, "--dry-run"]);
    let (out, err) = (text(&dry.stdout), text(&dry.stderr));
    assert_eq!(dry.status.code(), Some(0), "{err}");
    assert!(
        out.contains("Rollback will undo, newest step first:"),
        "{out}"
    );
    assert!(out.contains("routing — "), "{out}");
    assert!(err.contains("Dry run: nothing was changed"), "{err}");
    assert_eq!(real_writes(&server, &applied), []);
    assert_eq!(std::fs::read(&journal).unwrap(), recorded);

    // An unknown --to is named with the steps there are, before anything is asked or done.
    let unknown = meshplan(
        &dir,
        &kubeconfig,
        &["rollback", plan, "--dry-run", "--to", "nope"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    let err = text(&unknown.stderr);
    assert!(
        err.contains("no step `nope`") && err.contains("routing"),
        "{err}"
    );

    // Resuming: a dry run names the steps left and writes nothing.
    let dry = meshplan(&dir, &kubeconfig, &["apply", plan, "--dry-run"]);
    let err = text(&dry.stderr);
    assert!(dry.status.success(), "{err}");
    assert!(
        err.contains("Dry run: would resume the run recorded in"),
        "{err}"
    );
    assert!(
        text(&dry.stdout).contains("Nothing left to run: every step is done."),
        "{}",
        text(&dry.stdout)
    );
    assert_eq!(real_writes(&server, &applied), []);
    assert_eq!(std::fs::read(&journal).unwrap(), recorded);

    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_dry_run_decides_without_moving_or_recording() {
    let dir = temp("dry-ramp");
    let (server, kubeconfig) = cluster(&dir).await;
    let plan = dir.join("color-parallel.toml");
    let text_of_plan = std::fs::read_to_string(root().join("plans/color-parallel.toml"))
        .unwrap()
        .replace(
            "\"../examples/howto-k8s-http2\"",
            &format!("{:?}", root().join("examples/howto-k8s-http2")),
        );
    std::fs::write(&plan, text_of_plan).unwrap();
    let plan = plan.to_str().unwrap();
    let applied = meshplan(&dir, &kubeconfig, &["apply", plan, "--auto-approve"]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let start = counted(&server);

    let client = meshplan::cluster::connect(Some(&kubeconfig), None)
        .await
        .unwrap();
    let cluster = Cluster::new(client);
    let entry = ObjectRef::new(
        "networking.istio.io/v1",
        "VirtualService",
        Some("howto-k8s-http2-istio"),
        "color-entry",
    );
    let before = cluster.get(&entry).await.unwrap().unwrap();

    // At 0 % the first step needs no gate: the tick would advance.
    let dry = meshplan(&dir, &kubeconfig, &["ramp", plan, "--dry-run"]);
    let (out, err) = (text(&dry.stdout), text(&dry.stderr));
    assert_eq!(dry.status.code(), Some(0), "{err}");
    assert!(out.starts_with("Dry run (nothing written): "), "{out}");
    assert!(out.contains("0 % → 10 % new (advanced"), "{out}");
    assert!(
        err.contains("Dry run: no weight, no state written"),
        "{err}"
    );

    // Promoting would finalize: what would be deleted is counted, nothing is deleted.
    let dry = meshplan(&dir, &kubeconfig, &["ramp", plan, "--dry-run", "--promote"]);
    let out = text(&dry.stdout);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    assert!(
        out.contains("would delete 6 App Mesh object(s) of the old side"),
        "{out}"
    );

    // Markdown and JSON say it is a dry run too.
    let dry = meshplan(
        &dir,
        &kubeconfig,
        &["ramp", plan, "--dry-run", "--format", "json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["to"], 10);

    assert_eq!(real_writes(&server, &start), []);
    assert!(
        dry_runs(&server, &start) > 0,
        "the server dry-ran the weight change"
    );
    let after = cluster.get(&entry).await.unwrap().unwrap();
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    let router = ObjectRef::new(
        "appmesh.k8s.aws/v1beta2",
        "VirtualRouter",
        Some("howto-k8s-http2"),
        "color",
    );
    assert!(cluster.get(&router).await.unwrap().is_some());
    // No ramp state was recorded: `status` shows no ramp.
    let status = meshplan(&dir, &kubeconfig, &["status", plan]);
    assert!(
        !text(&status.stdout).contains("Ramp:"),
        "{}",
        text(&status.stdout)
    );

    // `--dry-run` and `--watch` do not go together.
    let both = meshplan(&dir, &kubeconfig, &["ramp", plan, "--dry-run", "--watch"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(text(&both.stderr).contains("cannot be used with"));

    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn color_graph() -> meshplan::pipeline::Planned {
    // Relative, as a user types it (tests run in the package root).
    meshplan::pipeline::plan_offline(
        meshplan::plan::PlanFile::load(Path::new("plans/color.toml")).unwrap(),
        None,
    )
    .unwrap()
}

#[test]
fn the_confirmation_shows_the_summary_and_every_step_before_the_question() {
    let planned = color_graph();
    let prompt = meshplan::report::text::apply_confirmation(
        &planned.graph,
        "Do you want to apply these changes?",
    );
    let summary = prompt
        .find("Plan: 9 to create, 2 to change, 6 to delete, 4 restarts.")
        .expect("the summary");
    let question = prompt.find("Do you want to apply").expect("the question");
    assert!(summary < question);
    for step in &planned.graph.steps {
        let at = prompt
            .find(&format!(" {} ", step.id))
            .unwrap_or_else(|| panic!("step {} missing from the prompt:\n{prompt}", step.id));
        assert!(summary < at && at < question);
    }
    assert!(prompt.ends_with("Only 'yes' will be accepted: "));
    insta::assert_snapshot!(prompt);
}

/// A gate evaluation as a tick records it.
fn evaluation(
    gate: &str,
    value: f64,
    verdict: meshplan::gates::Verdict,
) -> meshplan::gates::Evaluation {
    meshplan::gates::Evaluation {
        gate: gate.to_owned(),
        kind: meshplan::plan::GateKind::SuccessRate,
        query: "sum(rate(istio_requests_total{response_code!~\"5..\"}[1m]))\n  / sum(rate(istio_requests_total[1m]))".to_owned(),
        value: Some(value),
        baseline: None,
        min: Some(0.99),
        max: None,
        tolerance: None,
        verdict,
        message: None,
        at: "2026-01-02T03:04:05Z".to_owned(),
    }
}

fn ramp_state() -> meshplan::ramp::RampState {
    use meshplan::gates::Verdict;
    use meshplan::ramp::{Command, Outcome, Phase, RampState, TickRecord};
    RampState {
        plan: "color-parallel".to_owned(),
        weight: 50,
        pending: None,
        since: Some("2026-01-02T03:04:05Z".to_owned()),
        failed_checks: 0,
        phase: Phase::Ramping,
        reason: None,
        history: vec![
            TickRecord {
                at: "2026-01-02T03:00:00Z".to_owned(),
                command: Command::Tick,
                outcome: Outcome::Advanced,
                from: 0,
                to: 10,
                evaluations: Vec::new(),
                note: "ramp started: 10 % of traffic to the new side".to_owned(),
            },
            TickRecord {
                at: "2026-01-02T03:04:05Z".to_owned(),
                command: Command::Tick,
                outcome: Outcome::Advanced,
                from: 10,
                to: 50,
                evaluations: vec![evaluation("success-rate", 0.998, Verdict::Pass)],
                note: "gates passed at 10 %: moving to 50 %".to_owned(),
            },
        ],
    }
}

#[test]
fn ramp_markdown_puts_each_gate_in_a_collapsible_block() {
    use meshplan::gates::Verdict;
    use meshplan::ramp::{Command, Outcome, TickRecord};
    let mut state = ramp_state();
    state.failed_checks = 1;
    let record = TickRecord {
        at: "2026-01-02T03:10:00Z".to_owned(),
        command: Command::Tick,
        outcome: Outcome::Held,
        from: 50,
        to: 50,
        evaluations: vec![
            evaluation("success-rate", 0.91, Verdict::Fail),
            evaluation("availability", 0.999, Verdict::Pass),
        ],
        note: "gate(s) failed: success-rate; failed check 1 of 2 allowed, holding at 50 %"
            .to_owned(),
    };
    let report = meshplan::ramp::tick::TickReport {
        record,
        state,
        cleanup: Vec::new(),
        dry_run: true,
    };
    let markdown = meshplan::report::markdown::ramp_tick("color-parallel", &report);
    assert_eq!(markdown.matches("<details>").count(), 2);
    assert_eq!(markdown.matches("</details>").count(), 2);
    assert!(markdown.contains("(dry run: nothing written)"));
    insta::assert_snapshot!(markdown);
}

#[test]
fn status_markdown_is_a_table_of_steps_lock_and_ramp() {
    use meshplan::state::{Holder, Journal, StepState};
    let planned = color_graph();
    let mut journal = Journal::new(&planned.graph, "fingerprint");
    let ids: Vec<String> = planned.graph.steps.iter().map(|s| s.id.clone()).collect();
    for (i, id) in ids.iter().enumerate() {
        let record = journal.step(id);
        match i {
            0 | 1 => {
                record.state = StepState::Done;
                record.started_at = Some("2026-01-02T03:00:00Z".to_owned());
                record.finished_at = Some("2026-01-02T03:00:01Z".to_owned());
            }
            2 => {
                record.state = StepState::Failed;
                record.started_at = Some("2026-01-02T03:00:01Z".to_owned());
                record.error = Some("the server said | no".to_owned());
            }
            _ => {}
        }
    }
    let holder = Holder {
        id: "1a2b3c4d00001234".to_owned(),
        host: "laptop".to_owned(),
        pid: 4242,
        since: "2026-01-02T03:00:00Z".to_owned(),
    };
    let ramp = ramp_state();
    let markdown = meshplan::report::markdown::status(&meshplan::report::markdown::Status {
        plan: "color",
        journal_location: ".meshplan/color.state.json",
        journal: Some(&journal),
        lock_location: ".meshplan/color.lock",
        holder: Some(&holder),
        ramp: Some(&ramp),
    });
    assert_eq!(
        markdown.matches("\n| `").count(),
        planned.graph.steps.len(),
        "a row per step:\n{markdown}"
    );
    assert!(markdown.contains("the server said \\| no"), "{markdown}");
    insta::assert_snapshot!(markdown);
}

#[test]
fn translate_markdown_collapses_each_object() {
    let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args([
            "translate",
            "-f",
            "examples/howto-k8s-http2",
            "--format",
            "markdown",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let markdown = text(&output.stdout);
    let json = Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(["translate", "-f", "examples/howto-k8s-http2", "-o", "json"])
        .current_dir(root())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let objects = doc["objects"].as_array().unwrap().len();
    assert_eq!(markdown.matches("<details><summary>").count(), objects);
    assert!(markdown.starts_with(&format!(
        "## meshplan: translation ({objects} Istio objects)"
    )));
    insta::assert_snapshot!(markdown);
}
