//! The bad-input corpus: every case under `tests/fixtures/bad/<case>/` is run through the real
//! `meshplan` binary — `meshplan plan <case>/plan.toml` when the case has a plan, else
//! `meshplan translate -f <case>` — and must fail with a clear error: the documented exit code,
//! no panic, a message naming the file (or the object and field of a finding), and exactly the
//! stderr pinned in `<case>/expected.txt`. `MESHPLAN_BLESS=1 cargo test --test bad_input`
//! rewrites the expected files; review the diff before committing it.
//!
//! Inputs too big to commit (a 50 MB document, nesting thousands deep) are generated here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::root;

const CORPUS: &str = "tests/fixtures/bad";

fn meshplan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshplan"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The command a case runs, relative to the repository root so that messages are the same on
/// every machine.
fn case_args(case: &Path) -> Vec<String> {
    let relative = case.strip_prefix(root()).unwrap().display().to_string();
    if case.join("plan.toml").exists() {
        vec!["plan".into(), format!("{relative}/plan.toml")]
    } else {
        vec!["translate".into(), "-f".into(), relative]
    }
}

/// What every refusal must look like; returns the problems found.
fn check_refusal(name: &str, args: &[String], output: &Output, names: &str) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    let mut problems = Vec::new();
    // 1: invalid input, or a finding of severity error in `plan`; 3: a finding of severity
    // error in `translate` (README, "Exit codes").
    let allowed: &[i32] = if args[0] == "translate" {
        &[1, 3]
    } else {
        &[1]
    };
    if !code.is_some_and(|c| allowed.contains(&c)) {
        problems.push(format!(
            "{name}: exit {code:?}, expected one of {allowed:?}"
        ));
    }
    if stderr.contains("panicked") {
        problems.push(format!("{name}: panicked:\n{stderr}"));
    }
    if stderr.trim().is_empty() {
        problems.push(format!("{name}: nothing on stderr"));
    }
    // Where: the file, or (for a finding) its code with the object it is about.
    let finding = regex::Regex::new(r"(?m)^  error   MP\d{3} \S+ \S+").unwrap();
    if !stderr.contains(names) && !finding.is_match(&stderr) {
        problems.push(format!(
            "{name}: stderr names neither `{names}` nor a finding:\n{stderr}"
        ));
    }
    problems
}

fn run_case(case: &Path) -> Vec<String> {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let args = case_args(case);
    let output = meshplan(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let relative = case.strip_prefix(root()).unwrap().display().to_string();
    let mut problems = check_refusal(&name, &args, &output, &relative);
    let actual = format!(
        "$ meshplan {}\nexit: {}\n{}",
        args.join(" "),
        output
            .status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stderr)
    );
    let path = case.join("expected.txt");
    if std::env::var_os("MESHPLAN_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .header("expected", "actual")
            .to_string();
        problems.push(format!("{name}/expected.txt differs:\n{diff}"));
    }
    problems
}

#[test]
fn every_bad_input_is_refused_with_a_clear_error() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join(CORPUS))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let problems: Vec<String> = cases.iter().flat_map(|c| run_case(c)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// A generated input, written under the test's scratch folder.
fn generated(name: &str, file: &str, text: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bad_input")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn refused(name: &str, path: &Path, command: &str, expect: &str) {
    let shown = path.display().to_string();
    let args: Vec<String> = match command {
        "plan" => vec!["plan".into(), shown.clone()],
        _ => vec!["translate".into(), "-f".into(), shown.clone()],
    };
    let output = meshplan(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let problems = check_refusal(name, &args, &output, &shown);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(expect),
        "{name}: `{expect}` not in\n{stderr}"
    );
}

#[test]
fn huge_and_deep_inputs_are_refused_within_bounds() {
    // 50 MB of ConfigMap data in one document.
    let mut huge = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\ndata:\n".to_vec();
    while huge.len() < 50 * 1024 * 1024 {
        huge.extend_from_slice(format!("  key{}: value\n", huge.len()).as_bytes());
    }
    let path = generated("yaml-50mb", "huge.yaml", &huge);
    refused("yaml-50mb", &path, "translate", "too large");

    // The same size as a plan file.
    let mut plan = b"[source]\nmesh = \"demo\"\nnamespaces = [\"demo\"]\n".to_vec();
    plan.resize(50 * 1024 * 1024, b'#');
    let path = generated("plan-50mb", "plan.toml", &plan);
    refused("plan-50mb", &path, "plan", "too large");

    // Block mappings nested 3,000 deep (flow nesting is in the committed corpus).
    let mut deep = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n".to_vec();
    for depth in 1..=3000 {
        deep.extend_from_slice(format!("{}k:\n", " ".repeat(depth)).as_bytes());
    }
    deep.extend_from_slice(format!("{}v\n", " ".repeat(3001)).as_bytes());
    let path = generated("yaml-deep-blocks", "deep.yaml", &deep);
    refused("yaml-deep-blocks", &path, "translate", "deep.yaml");

    // 100,000 aliases of one anchor: wider than the committed billion-laughs case.
    let mut wide =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wide\ndata:\n  a: &a [x]\n  b: ["
            .to_vec();
    for i in 0..100_000 {
        if i > 0 {
            wide.push(b',');
        }
        wide.extend_from_slice(b"*a");
    }
    wide.extend_from_slice(b"]\n");
    let path = generated("yaml-alias-fan-out", "wide.yaml", &wide);
    refused("yaml-alias-fan-out", &path, "translate", "wide.yaml");

    // An error 300,000 columns into a plan's line (found by the line above: miette panicked
    // drawing a label that far right).
    let mut plan = b"[source]\nmesh = \"demo\"\nnamespaces = [\"demo\"]\nname = \"".to_vec();
    plan.extend(std::iter::repeat_n(b'x', 300_000));
    plan.extend_from_slice(b"\" oops\n");
    let path = generated("plan-long-line", "plan.toml", &plan);
    refused("plan-long-line", &path, "plan", "plan.toml");
}

/// `apply` of an invalid plan refuses before it writes anything to the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refuses_invalid_plans_without_writing() {
    let server = common::color_cluster(std::time::Duration::from_millis(30)).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input/apply");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    // An override the live cluster cannot satisfy: only planning against it finds that out.
    let live = generated(
        "apply-unknown-target",
        "plan.toml",
        b"[source]\nmesh = \"howto-k8s-http2\"\nnamespaces = [\"howto-k8s-http2\"]\n\n\
          [routing.color]\nweights = { green = 50, purple = 50 }\n",
    );
    let plans = [
        root().join(CORPUS).join("plan-weights-sum-99/plan.toml"),
        root().join(CORPUS).join("plan-duration-overflow/plan.toml"),
        root()
            .join(CORPUS)
            .join("plan-toml-duplicate-key/plan.toml"),
        live,
    ];
    for plan in &plans {
        let output = Command::new(env!("CARGO_BIN_EXE_meshplan"))
            .arg("apply")
            .arg(plan)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--auto-approve")
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {stderr}",
            plan.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("plan.toml"), "{}: {stderr}", plan.display());
    }
    let writes: Vec<_> = server
        .faults()
        .counters()
        .into_iter()
        .filter(|((verb, _), _)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .collect();
    assert!(writes.is_empty(), "apply wrote: {writes:?}");
    // The live plan did reach the cluster: it was refused after reading, not before.
    assert!(
        server.faults().count("list", "virtualrouters") > 0
            || server.faults().count("get", "virtualrouters") > 0
    );
    server.shutdown().await;
}
