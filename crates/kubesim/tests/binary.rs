//! The `kubesim serve` process: loading, kubeconfig, kubectl against it, the admin endpoint.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the server process when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        // The process may have exited already.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kubectl(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let bin = if std::path::Path::new("/usr/bin/kubectl").exists() {
        "/usr/bin/kubectl"
    } else {
        "kubectl"
    };
    Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| bin.to_string()))
        .args(args)
        .env("HOME", home)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .output()
        .expect("kubectl runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_loads_crds_and_manifest_and_answers_kubectl_and_admin_requests() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rollout-delay",
            "10ms",
        ])
        // The manifest comes first on purpose: CRDs are loaded before everything else anyway.
        .arg("--load")
        .arg(common::example("howto-k8s-http2/manifest.yaml"))
        .arg("--load")
        .arg(common::crds_dir().join("appmesh"))
        .arg("--load")
        .arg(common::istio_crd_file())
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Child(child);
    let url = BufReader::new(stdout).lines().next().unwrap().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(std::fs::read_to_string(&kubeconfig).unwrap().contains(&url));

    let out = kubectl(
        dir.path(),
        &["get", "virtualnodes", "-n", "howto-k8s-http2", "-o", "name"],
    );
    let names = String::from_utf8_lossy(&out.stdout);
    assert_eq!(names.lines().count(), 4, "{names}");
    let out = kubectl(
        dir.path(),
        &[
            "rollout",
            "status",
            "deploy/client",
            "-n",
            "howto-k8s-http2",
            "--timeout=60s",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let config = kube::Config::new(url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let rule = serde_json::json!({"verb": "get", "resource": "deployments", "name": "red", "times": 1,
        "action": {"type": "status", "code": 503}});
    let req = http::Request::post(format!("{url}/kubesim/faults"))
        .header("content-type", "application/json")
        .body(rule.to_string().into_bytes())
        .unwrap();
    client.request_text(req).await.unwrap();
    let out = kubectl(
        dir.path(),
        &["get", "deploy", "red", "-n", "howto-k8s-http2"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Error from server (ServiceUnavailable)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        kubectl(
            dir.path(),
            &["get", "deploy", "red", "-n", "howto-k8s-http2"]
        )
        .status
        .success()
    );

    let counters: serde_json::Value = serde_json::from_str(
        &client
            .request_text(
                http::Request::get(format!("{url}/kubesim/counters"))
                    .body(vec![])
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let gets = counters["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["verb"] == "get" && c["resource"] == "deployments")
        .map(|c| c["count"].as_u64().unwrap())
        .unwrap();
    assert!(gets >= 2, "{counters}");
    drop(child);
}
