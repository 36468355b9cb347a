//! Conformance: the real kubectl (1.32) driven as a subprocess against kubesim.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A kubectl bound to one server, with its own HOME (kubectl caches discovery per host:port and
/// the version dispatcher caches its choice under HOME).
struct Kubectl {
    dir: tempfile::TempDir,
}

/// The outcome of one kubectl run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "kubectl failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

fn kubectl_binary() -> PathBuf {
    match std::env::var_os("KUBECTL") {
        Some(k) => PathBuf::from(k),
        None if Path::new("/usr/bin/kubectl").exists() => PathBuf::from("/usr/bin/kubectl"),
        None => PathBuf::from("kubectl"),
    }
}

impl Kubectl {
    fn new(server: &kubesim::RunningServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), server.kubeconfig_yaml()).unwrap();
        Self { dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(kubectl_binary());
        c.args(args)
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("TZ", "UTC")
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("kubectl runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
      - name: side
        image: busybox:1.36
";

#[tokio::test(flavor = "multi_thread")]
async fn version_reports_a_1_32_server() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    let out = k.run(&["version", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "32");
    // The machine's kubectl is a version dispatcher that picks the client matching the server's
    // minor version; a plain kubectl given through $KUBECTL keeps its own version.
    if std::env::var_os("KUBECTL").is_none() {
        let client = v["clientVersion"]["gitVersion"].as_str().unwrap();
        assert!(client.starts_with("v1.32"), "{client}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crds_and_color_app_apply_then_get_with_selectors() {
    // `kubectl delete -f` deletes the namespace first; give the namespace controller a margin
    // over the time kubectl takes to delete the rest, as a real one has.
    let server = kubesim::Server::builder()
        .namespace_deletion_delay(std::time::Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let k = Kubectl::new(&server);
    for f in common::appmesh_crd_files()
        .into_iter()
        .chain([common::istio_crd_file()])
    {
        k.run(&["apply", "--server-side", "-f", &f.display().to_string()])
            .ok();
    }
    let wait = k
        .run(&[
            "wait",
            "--for=condition=Established",
            "crd/virtualnodes.appmesh.k8s.aws",
            "--timeout=60s",
        ])
        .ok();
    assert!(wait.stdout.contains("condition met"), "{}", wait.stdout);
    let res = k
        .run(&["api-resources", "--api-group=appmesh.k8s.aws", "-o", "name"])
        .ok();
    assert!(
        res.stdout
            .lines()
            .any(|l| l == "virtualnodes.appmesh.k8s.aws"),
        "{}",
        res.stdout
    );

    let manifest = common::example("howto-k8s-http2/manifest.yaml")
        .display()
        .to_string();
    let first = k.run(&["apply", "-f", &manifest]).ok();
    assert!(
        first
            .stdout
            .contains("virtualnode.appmesh.k8s.aws/red created"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("deployment.apps/red created"),
        "{}",
        first.stdout
    );
    let second = k.run(&["apply", "-f", &manifest]).ok();
    assert!(
        second.stdout.lines().all(|l| l.ends_with(" unchanged")),
        "{}",
        second.stdout
    );

    // The example's Deployments carry no labels of their own: label them, then select.
    k.run(&[
        "label",
        "deploy",
        "-n",
        "howto-k8s-http2",
        "red",
        "blue",
        "tier=backend",
    ])
    .ok();
    k.run(&[
        "label",
        "deploy",
        "-n",
        "howto-k8s-http2",
        "client",
        "tier=frontend",
    ])
    .ok();
    let names = k
        .run(&[
            "get",
            "deploy",
            "-n",
            "howto-k8s-http2",
            "-l",
            "tier in (backend,db)",
            "-o",
            "name",
        ])
        .ok();
    let mut got: Vec<&str> = names.stdout.lines().collect();
    got.sort();
    assert_eq!(got, ["deployment.apps/blue", "deployment.apps/red"]);
    let front = k
        .run(&[
            "get",
            "deploy",
            "-n",
            "howto-k8s-http2",
            "-l",
            "tier notin (backend),tier",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(front.stdout.trim(), "deployment.apps/client");
    let unlabeled = k
        .run(&[
            "get",
            "deploy",
            "-n",
            "howto-k8s-http2",
            "-l",
            "!tier",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(unlabeled.stdout.trim(), "deployment.apps/green");
    let vn = k
        .run(&[
            "get",
            "virtualnodes",
            "-n",
            "howto-k8s-http2",
            "--field-selector",
            "metadata.name=red",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(vn.stdout.trim(), "virtualnode.appmesh.k8s.aws/red");
    let table = k.run(&["get", "deploy", "-n", "howto-k8s-http2"]).ok();
    assert!(table.stdout.starts_with("NAME"), "{}", table.stdout);
    assert!(
        table.stdout.lines().next().unwrap().contains("UP-TO-DATE"),
        "{}",
        table.stdout
    );

    let invalid = k.write(
        "bad.yaml",
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: bad, namespace: howto-k8s-http2}\nspec:\n  listeners: [{portMapping: {port: 8080, protocol: carrier-pigeon}}]\n",
    );
    let rejected = k.run(&["apply", "-f", &invalid]);
    assert_eq!(rejected.code, 1);
    assert!(rejected.stderr.contains("The VirtualNode \"bad\" is invalid: spec.listeners[0].portMapping.protocol: Unsupported value: \"carrier-pigeon\""), "{}", rejected.stderr);

    let wide = k
        .run(&[
            "get",
            "deploy",
            "red",
            "-n",
            "howto-k8s-http2",
            "-o",
            "wide",
        ])
        .ok();
    let header: Vec<&str> = wide
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let columns = k
        .run(&["get", "virtualnodes", "-n", "howto-k8s-http2"])
        .ok();
    assert!(
        columns.stdout.lines().next().unwrap().contains("ARN"),
        "{}",
        columns.stdout
    );

    let explain = k.run(&["explain", "virtualnode.spec.listeners"]).ok();
    assert!(
        explain.stdout.contains("FIELD: listeners <[]Object>"),
        "{}",
        explain.stdout
    );

    // Custom resources are checked against their schema: unknown fields, then pruning.
    let vn = k.write("vn.yaml", "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: x, namespace: howto-k8s-http2}\nspec: {foo: 1, podSelector: {matchLabels: {app: x}}}\n");
    let strict = k.run(&["apply", "-f", &vn]);
    assert_eq!(strict.code, 1);
    assert!(
        strict
            .stderr
            .contains("strict decoding error: unknown field \"spec.foo\""),
        "{}",
        strict.stderr
    );
    k.run(&["apply", "--validate=false", "-f", &vn]).ok();
    let spec = k
        .run(&[
            "get",
            "virtualnode",
            "x",
            "-n",
            "howto-k8s-http2",
            "-o",
            "jsonpath={.spec}",
        ])
        .ok();
    assert!(
        !spec.stdout.contains("foo") && spec.stdout.contains("podSelector"),
        "{}",
        spec.stdout
    );

    // Deleting the whole manifest (namespace first) deletes every object and waits for them.
    let deleted = k.run(&["delete", "-f", &manifest]).ok();
    assert!(
        deleted
            .stdout
            .contains("namespace \"howto-k8s-http2\" deleted"),
        "{}",
        deleted.stdout
    );
    assert!(
        deleted
            .stdout
            .contains("virtualnode.appmesh.k8s.aws \"red\" deleted"),
        "{}",
        deleted.stdout
    );
    assert!(
        k.run(&["get", "ns", "howto-k8s-http2"])
            .stderr
            .contains("NotFound")
    );

    let bad = k.run(&["get", "pods", "--field-selector", "spec.foo=x"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.starts_with("Error from server (BadRequest): "),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("field label not supported: spec.foo"),
        "{}",
        bad.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crd_and_its_resource_in_one_file_fail_like_a_real_cluster() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    let crd =
        std::fs::read_to_string(common::crds_dir().join("appmesh/appmesh.k8s.aws_meshes.yaml"))
            .unwrap();
    let both = format!(
        "{crd}\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata:\n  name: m\nspec: {{}}\n"
    );
    let f = k.write("both.yaml", &both);
    let first = k.run(&["apply", "-f", &f]);
    assert_eq!(first.code, 1);
    assert!(
        first.stderr.contains("ensure CRDs are installed first"),
        "{}",
        first.stderr
    );
    let second = k.run(&["apply", "-f", &f]).ok();
    assert!(
        second.stdout.contains("mesh.appmesh.k8s.aws/m created"),
        "{}",
        second.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_twice_conflict_then_force() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    let f = k.write("d.yaml", DEPLOY);
    assert!(
        k.run(&["apply", "--server-side", "-f", &f])
            .ok()
            .stdout
            .contains("deployment.apps/web serverside-applied")
    );
    k.run(&["apply", "--server-side", "-f", &f]).ok();

    let f5 = k.write("d5.yaml", &DEPLOY.replace("replicas: 2", "replicas: 5"));
    let conflict = k.run(&["apply", "--server-side", "--field-manager=other", "-f", &f5]);
    assert_eq!(conflict.code, 1);
    assert!(
        conflict
            .stderr
            .contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{}",
        conflict.stderr
    );
    k.run(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &f5,
    ])
    .ok();
    let replicas = k
        .run(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
        .ok();
    assert_eq!(replicas.stdout, "5");
    let managed = k
        .run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&managed.stdout).unwrap();
    let entries = v["metadata"]["managedFields"].as_array().unwrap();
    let kubectl = entries.iter().find(|e| e["manager"] == "kubectl").unwrap();
    let other = entries.iter().find(|e| e["manager"] == "other").unwrap();
    assert_eq!(kubectl["operation"], "Apply");
    assert!(kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert!(other["fieldsV1"]["f:spec"].get("f:replicas").is_some());
    assert!(
        kubectl["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            .get("k:{\"name\":\"web\"}")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_side_apply_keeps_other_containers_and_diff_reports_changes() {
    // No controller: resourceVersions must only move with this test's own writes.
    let server = kubesim::Server::builder()
        .deployment_controller(false)
        .start()
        .await
        .unwrap();
    let k = Kubectl::new(&server);
    let f = k.write("d.yaml", DEPLOY);
    assert!(
        k.run(&["apply", "-f", &f])
            .ok()
            .stdout
            .contains("deployment.apps/web created")
    );
    let rv_before = k
        .run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .ok()
        .stdout;

    let unchanged = k.run(&["diff", "-f", &f]);
    assert_eq!(
        (unchanged.code, unchanged.stdout.as_str()),
        (0, ""),
        "{}",
        unchanged.stderr
    );

    let f2 = k.write("d2.yaml", &DEPLOY.replace("nginx:1.25", "nginx:1.26"));
    let diff = k.run(&["diff", "-f", &f2]);
    assert_eq!(diff.code, 1, "{}", diff.stderr);
    assert!(
        diff.stdout.contains("-        image: nginx:1.25")
            || diff.stdout.contains("-      - image: nginx:1.25"),
        "{}",
        diff.stdout
    );
    assert!(diff.stdout.contains("+  generation: 2"), "{}", diff.stdout);
    // Server-side diff as `kubectl` takes over fields applied client-side without a conflict.
    let server_diff = k.run(&["diff", "--server-side", "-f", &f2]);
    assert_eq!(server_diff.code, 1, "{}", server_diff.stderr);
    assert!(
        server_diff.stdout.contains("+        image: nginx:1.26")
            || server_diff.stdout.contains("+      - image: nginx:1.26"),
        "{}",
        server_diff.stdout
    );

    k.run(&["apply", "--dry-run=server", "-f", &f2]).ok();
    let rv_after = k
        .run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .ok()
        .stdout;
    assert_eq!(rv_before, rv_after);

    // A server error during the dry run makes diff exit with 2 (not 1, which means "differences").
    server.faults().add(kubesim::Rule {
        verb: Some("patch".into()),
        times: Some(1),
        action: Some(kubesim::Action::Status {
            code: 500,
            retry_after: None,
        }),
        ..Default::default()
    });
    assert_eq!(k.run(&["diff", "-f", &f2]).code, 2);

    assert!(
        k.run(&["apply", "-f", &f2])
            .ok()
            .stdout
            .contains("deployment.apps/web configured")
    );
    let images = k
        .run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].image}",
        ])
        .ok();
    assert_eq!(images.stdout, "nginx:1.26 busybox:1.36");
    assert_eq!(k.run(&["diff", "-f", &f2]).code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn label_annotate_create_errors_and_validation() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    let f = k.write("d.yaml", DEPLOY);
    k.run(&["create", "-f", &f]).ok();
    let again = k.run(&["create", "-f", &f]);
    assert_eq!(again.code, 1);
    assert!(
        again
            .stderr
            .contains("Error from server (AlreadyExists): error when creating"),
        "{}",
        again.stderr
    );
    assert!(
        again
            .stderr
            .contains("deployments.apps \"web\" already exists"),
        "{}",
        again.stderr
    );
    let missing = k.run(&["get", "deploy", "nope"]);
    assert!(
        missing
            .stderr
            .contains("Error from server (NotFound): deployments.apps \"nope\" not found"),
        "{}",
        missing.stderr
    );

    assert!(
        k.run(&["label", "deploy", "web", "tier=fe"])
            .ok()
            .stdout
            .contains("deployment.apps/web labeled")
    );
    assert_eq!(
        k.run(&["get", "deploy", "-l", "tier=fe", "-o", "name"])
            .ok()
            .stdout
            .trim(),
        "deployment.apps/web"
    );
    assert_eq!(
        k.run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}"
        ])
        .ok()
        .stdout,
        "1"
    );
    assert!(
        k.run(&["label", "deploy", "web", "tier-"])
            .ok()
            .stdout
            .contains("unlabeled")
    );
    assert_eq!(
        k.run(&["get", "deploy", "-l", "tier", "-o", "name"])
            .ok()
            .stdout,
        ""
    );
    assert!(
        k.run(&["annotate", "deploy", "web", "note=hi"])
            .ok()
            .stdout
            .contains("annotated")
    );
    // Deployments bump generation on annotation changes.
    assert_eq!(
        k.run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}"
        ])
        .ok()
        .stdout,
        "2"
    );

    let unknown = k.write(
        "u.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: u}\ndata: {a: b}\nfoo: 1\n",
    );
    let strict = k.run(&["apply", "-f", &unknown]);
    assert_eq!(strict.code, 1);
    assert!(
        strict
            .stderr
            .contains("strict decoding error: unknown field \"foo\""),
        "{}",
        strict.stderr
    );
    let warn = k.run(&["apply", "--validate=warn", "-f", &unknown]).ok();
    assert!(
        warn.stderr.contains("Warning: unknown field \"foo\""),
        "{}",
        warn.stderr
    );
    let cm = k.run(&["get", "cm", "u", "-o", "json"]).ok();
    assert!(!cm.stdout.contains("\"foo\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_waits_for_finalizers_and_dry_run_keeps_objects() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    let f = k.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n");
    k.run(&["apply", "-f", &f]).ok();
    k.run(&["delete", "cm", "held", "--dry-run=server"]).ok();
    assert!(
        k.run(&[
            "get",
            "cm",
            "held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .ok()
        .stdout
        .is_empty()
    );

    let del = k.run(&["delete", "cm", "held", "--wait=false"]).ok();
    assert!(
        del.stdout.contains("configmap \"held\" deleted"),
        "{}",
        del.stdout
    );
    assert!(
        !k.run(&[
            "get",
            "cm",
            "held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .ok()
        .stdout
        .is_empty()
    );

    // A waiting delete returns once the finalizer is cleared.
    let mut waiting = k
        .command(&["delete", "cm", "held"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Clear the finalizer only once kubectl watches for the deletion.
    while server.faults().count("watch", "configmaps") == 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    k.run(&[
        "patch",
        "cm",
        "held",
        "--type=merge",
        "-p",
        "{\"metadata\":{\"finalizers\":null}}",
    ])
    .ok();
    assert!(waiting.wait().unwrap().success());
    let gone = k.run(&["get", "cm", "held"]);
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);

    let ns = k.write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: doomed}\n");
    k.run(&["apply", "-f", &ns]).ok();
    k.run(&["delete", "namespace", "doomed"]).ok();
    let gone = k.run(&["get", "ns", "doomed"]);
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn get_watch_prints_each_change_once() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    let cm = |name: &str| {
        k.write(
            &format!("{name}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"),
        )
    };
    k.run(&["apply", "-f", &cm("first")]).ok();
    let mut child = k
        .command(&[
            "get",
            "cm",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || {
        lines
            .next()
            .unwrap()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(next(), "EVENT NAME");
    assert_eq!(next(), "ADDED first");
    k.run(&["apply", "-f", &cm("second")]).ok();
    assert_eq!(next(), "ADDED second");
    k.run(&["label", "configmap", "second", "x=y"]).ok();
    assert_eq!(next(), "MODIFIED second");
    k.run(&["delete", "configmap", "first"]).ok();
    assert_eq!(next(), "DELETED first");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_restart_and_status_follow_the_simulated_controller() {
    let server = kubesim::Server::builder()
        .rollout_delay(std::time::Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let k = Kubectl::new(&server);
    let f = k.write("d.yaml", DEPLOY);
    k.run(&["apply", "-f", &f]).ok();
    let first = k
        .run(&["rollout", "status", "deploy/web", "--timeout=60s"])
        .ok();
    assert!(
        first
            .stdout
            .ends_with("deployment \"web\" successfully rolled out\n"),
        "{}",
        first.stdout
    );
    let pods = k
        .run(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ])
        .ok();
    assert_eq!(pods.stdout, "Running Running");

    // The controller records the revision without bumping the generation.
    let revision = k
        .run(&["get", "deploy", "web", "-o", "jsonpath={.metadata.generation} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}"])
        .ok()
        .stdout;
    assert_eq!(revision, "1 1");
    let generation = k
        .run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .ok()
        .stdout;
    assert!(
        k.run(&["rollout", "restart", "deploy/web"])
            .ok()
            .stdout
            .contains("deployment.apps/web restarted")
    );
    let restarted = k
        .run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation} {.spec.template.metadata.annotations}",
        ])
        .ok();
    assert!(
        restarted
            .stdout
            .contains("kubectl.kubernetes.io/restartedAt"),
        "{}",
        restarted.stdout
    );
    assert_ne!(restarted.stdout.split(' ').next().unwrap(), generation);
    let status = k
        .run(&["rollout", "status", "deploy/web", "--timeout=60s"])
        .ok();
    assert!(
        status
            .stdout
            .ends_with("deployment \"web\" successfully rolled out\n"),
        "{}",
        status.stdout
    );
    k.run(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=60s",
    ])
    .ok();

    // Two ReplicaSets (old scaled to zero), pods only from the new one.
    let rs = k
        .run(&[
            "get",
            "rs",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.replicas}",
        ])
        .ok();
    let mut counts: Vec<&str> = rs.stdout.split(' ').collect();
    counts.sort();
    assert_eq!(counts, ["0", "2"]);
    let hashes = k
        .run(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.labels.pod-template-hash}",
        ])
        .ok();
    let hs: Vec<&str> = hashes.stdout.split(' ').collect();
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[0], hs[1]);

    let history = k.run(&["rollout", "history", "deploy/web"]).ok();
    assert!(
        history.stdout.contains("1         <none>") && history.stdout.contains("2         <none>"),
        "{}",
        history.stdout
    );
    assert!(
        k.run(&["rollout", "undo", "deploy/web"])
            .ok()
            .stdout
            .contains("rolled back")
    );
    k.run(&["rollout", "status", "deploy/web", "--timeout=60s"])
        .ok();
    let after_undo = k
        .run(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ])
        .ok();
    assert_eq!(after_undo.stdout, "3");

    k.run(&["delete", "deploy", "web"]).ok();
    let rs_left = k.run(&["get", "rs", "-l", "app=web", "-o", "name"]).ok();
    let pods_left = k
        .run(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "name",
            "--watch=false",
        ])
        .ok();
    // Dependents go in the background; wait for them the way a user would.
    if !rs_left.stdout.is_empty() || !pods_left.stdout.is_empty() {
        k.run(&[
            "wait",
            "--for=delete",
            "pods",
            "-l",
            "app=web",
            "--timeout=60s",
        ])
        .ok();
    }
    assert_eq!(
        k.run(&["get", "pods", "-l", "app=web", "-o", "name"])
            .ok()
            .stdout,
        ""
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn color_app_pods_get_the_app_mesh_envoy_and_istio_sidecars() {
    let server = common::server_with_crds().await;
    let k = Kubectl::new(&server);
    let manifest = common::example("howto-k8s-http2/manifest.yaml")
        .display()
        .to_string();
    k.run(&["apply", "-f", &manifest]).ok();
    k.run(&[
        "rollout",
        "status",
        "deploy/red",
        "-n",
        "howto-k8s-http2",
        "--timeout=60s",
    ])
    .ok();
    let containers = k
        .run(&[
            "get",
            "pods",
            "-n",
            "howto-k8s-http2",
            "-l",
            "version=red",
            "-o",
            "jsonpath={.items[0].spec.containers[*].name}",
        ])
        .ok();
    assert_eq!(containers.stdout, "app envoy");

    let ns = k.write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh2\n  labels: {istio-injection: enabled}\n");
    k.run(&["apply", "-f", &ns]).ok();
    let f = k.write(
        "d.yaml",
        &DEPLOY.replace("  name: web\n", "  name: web\n  namespace: mesh2\n"),
    );
    k.run(&["apply", "-f", &f]).ok();
    k.run(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "mesh2",
        "--timeout=60s",
    ])
    .ok();
    let c = k
        .run(&[
            "get",
            "pods",
            "-n",
            "mesh2",
            "-o",
            "jsonpath={.items[0].spec.containers[*].name}",
        ])
        .ok();
    assert_eq!(c.stdout, "web side istio-proxy");
    let logs = k
        .run(&["logs", "deploy/web", "-n", "mesh2", "-c", "web"])
        .ok();
    assert_eq!(logs.stdout, "");
    let table = k.run(&["get", "pods", "-n", "mesh2"]).ok();
    assert!(
        table.stdout.contains("3/3") && table.stdout.contains("Running"),
        "{}",
        table.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_discovery_and_deprecation_warnings() {
    let server = kubesim::Server::builder()
        .aggregated_discovery(false)
        .start()
        .await
        .unwrap();
    let k = Kubectl::new(&server);
    let crd = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    deprecated: true
    deprecationWarning: example.com/v1 Widget is going away
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";
    k.run(&["apply", "-f", &k.write("crd.yaml", crd)]).ok();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
    ])
    .ok();
    let w = k
        .run(&[
            "apply",
            "-f",
            &k.write(
                "w.yaml",
                "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {x: 1}\n",
            ),
        ])
        .ok();
    assert!(
        w.stderr
            .contains("Warning: example.com/v1 Widget is going away"),
        "{}",
        w.stderr
    );
    let all = k.run(&["get", "all", "-o", "name"]).ok();
    assert!(
        all.stdout.contains("widget.example.com/w"),
        "{}",
        all.stdout
    );
    assert_eq!(
        k.run(&["get", "wd", "w", "-o", "jsonpath={.spec.x}"])
            .ok()
            .stdout,
        "1"
    );
    assert!(
        k.run(&["get", "deploy"])
            .ok()
            .stderr
            .contains("No resources found")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_rollout_exceeds_its_progress_deadline() {
    let server = kubesim::Server::builder()
        .rollout_delay(std::time::Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    let k = Kubectl::new(&server);
    let stalled = DEPLOY
        .replace("  replicas: 2\n", "  replicas: 2\n  progressDeadlineSeconds: 1\n")
        .replace("    metadata: {labels: {app: web}}\n", "    metadata:\n      labels: {app: web}\n      annotations: {kubesim.io/stall-rollout: \"true\"}\n");
    k.run(&["apply", "-f", &k.write("d.yaml", &stalled)]).ok();
    let status = k.run(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert_eq!(status.code, 1, "{}", status.stdout);
    assert!(
        status
            .stderr
            .contains("error: deployment \"web\" exceeded its progress deadline"),
        "{}",
        status.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_generators_send_protobuf_for_simple_kinds() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    assert!(
        k.run(&["create", "namespace", "gen"])
            .ok()
            .stdout
            .contains("namespace/gen created")
    );
    k.run(&[
        "create",
        "configmap",
        "c",
        "-n",
        "gen",
        "--from-literal=a=b",
    ])
    .ok();
    k.run(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "gen",
        "--from-literal=p=q",
    ])
    .ok();
    k.run(&["create", "serviceaccount", "bot", "-n", "gen"])
        .ok();
    assert_eq!(
        k.run(&["get", "cm", "c", "-n", "gen", "-o", "jsonpath={.data.a}"])
            .ok()
            .stdout,
        "b"
    );
    assert_eq!(
        k.run(&[
            "get",
            "secret",
            "s",
            "-n",
            "gen",
            "-o",
            "jsonpath={.data.p}"
        ])
        .ok()
        .stdout,
        "cQ=="
    );
    assert_eq!(
        k.run(&["get", "ns", "gen", "-o", "jsonpath={.status.phase}"])
            .ok()
            .stdout,
        "Active"
    );
    // Kinds without a protobuf decoder are refused the way a server refuses an unknown format.
    let deploy = k.run(&["create", "deployment", "d", "--image=nginx"]);
    assert_eq!(deploy.code, 1);
    assert!(
        deploy.stderr.contains("unknown format"),
        "{}",
        deploy.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_requests_are_retried_after_retry_after() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    server.faults().add(kubesim::Rule {
        verb: Some("list".into()),
        resource: Some("configmaps".into()),
        times: Some(1),
        action: Some(kubesim::Action::Throttle { retry_after: 1 }),
        ..Default::default()
    });
    let out = k.run(&["get", "configmaps", "-o", "name"]).ok();
    assert_eq!(out.stdout, "");
    assert_eq!(server.faults().count("list", "configmaps"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_can_i_and_denied_requests_follow_the_deny_rules() {
    let server = kubesim::Server::builder().start().await.unwrap();
    let k = Kubectl::new(&server);
    let yes = k.run(&["auth", "can-i", "create", "configmaps", "-n", "shop"]);
    assert_eq!((yes.code, yes.stdout.trim()), (0, "yes"), "{}", yes.stderr);
    server.authz().deny(kubesim::authz::Deny {
        verb: Some("create".into()),
        resource: Some("configmaps".into()),
        namespace: Some("shop".into()),
        ..Default::default()
    });
    let no = k.run(&["auth", "can-i", "create", "configmaps", "-n", "shop"]);
    assert_eq!((no.code, no.stdout.trim()), (1, "no"), "{}", no.stderr);
    // Another namespace, another verb: still allowed.
    let other = k.run(&["auth", "can-i", "create", "configmaps", "-n", "default"]);
    assert_eq!(other.stdout.trim(), "yes");
    k.run(&["create", "namespace", "shop"]).ok();
    let denied = k.run(&[
        "create",
        "configmap",
        "c",
        "-n",
        "shop",
        "--from-literal=a=b",
    ]);
    assert_eq!(denied.code, 1);
    assert!(
        denied.stderr.contains(
            "configmaps is forbidden: User \"kubesim\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"shop\""
        ),
        "{}",
        denied.stderr
    );
    server.authz().clear();
    k.run(&[
        "create",
        "configmap",
        "c",
        "-n",
        "shop",
        "--from-literal=a=b",
    ])
    .ok();
}
