//! A real Prometheus server (the `prometheus` binary on PATH) scraping test targets.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::plain_request;

/// What to do when the binary is missing; CI's `.ci/run` installs it this way.
pub const INSTALL_HINT: &str = "the `prometheus` binary is not on PATH: install it with \
     `apt-get update && apt-get install -y --no-install-recommends prometheus` (.ci/run does this)";

/// A Prometheus process with its own loopback port and storage; dropping it stops the process.
pub struct Prometheus {
    child: Child,
    url: String,
    // Dropped after the process is stopped (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `metrics_path` on each target every second and waits until it is
    /// ready. Panics with [`INSTALL_HINT`] when the binary is missing.
    pub async fn start(targets: &[SocketAddr], metrics_path: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: kubesim\n    metrics_path: {metrics_path}\n    \
             static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        // A port the OS just handed out is free unless another process races for it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = match Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(["--storage.tsdb.retention.time=1h", "--log.level=warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("cannot start prometheus: {e}"),
        };
        let mut prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            if let Ok(r) = plain_request("GET", &format!("{}/-/ready", self.url), "").await
                && r.status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query (`/api/v1/query`): the response's JSON document.
    pub async fn query(&self, promql: &str) -> Value {
        let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        self.get_json(&format!("/api/v1/query?query={q}")).await
    }

    /// The scrape targets and their health (`/api/v1/targets`).
    pub async fn targets(&self) -> Value {
        self.get_json("/api/v1/targets").await
    }

    async fn get_json(&self, path: &str) -> Value {
        let r = plain_request("GET", &format!("{}{path}", self.url), "")
            .await
            .unwrap_or_else(|e| panic!("prometheus {path}: {e}"));
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("prometheus {path} answered {}: {e}: {}", r.status, r.body))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SIGTERM lets Prometheus close its storage; SIGKILL follows if it does not exit in time.
        // SAFETY: kill(2) only sends a signal to the process this guard started.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The process may have exited between the last check and now.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
