//! A real Prometheus for tests: Debian's `prometheus` on a free loopback port with its own
//! storage, optionally backfilled with deterministic OpenMetrics data by `promtool`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const INSTALL: &str = "install it with `apt-get update && apt-get install -y --no-install-recommends prometheus` \
     (Debian's package ships both `prometheus` and `promtool`; `.ci/run` does this)";

/// A running Prometheus; stopped with SIGTERM and its folder removed on drop.
pub struct PrometheusServer {
    child: Child,
    dir: PathBuf,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
}

/// One series of OpenMetrics samples: labels and `(unix seconds, value)` points.
pub struct Series {
    labels: Vec<(String, String)>,
    points: Vec<(i64, f64)>,
}

impl Series {
    /// A series with these labels and points.
    pub fn new(labels: &[(&str, &str)], points: Vec<(i64, f64)>) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points,
        }
    }
}

/// A metric family: name, type, and its series under their sample names.
struct Family {
    name: String,
    kind: String,
    samples: Vec<(String, Series)>,
}

/// OpenMetrics text with explicit timestamps, for `promtool tsdb create-blocks-from openmetrics`.
#[derive(Default)]
pub struct OpenMetrics {
    families: Vec<Family>,
}

impl OpenMetrics {
    /// Adds a metric family of a type (`counter`, `gauge`, `histogram`) and its samples, each
    /// under a sample name (e.g. `foo_bucket` in family `foo`).
    pub fn family(&mut self, name: &str, kind: &str, samples: Vec<(&str, Series)>) -> &mut Self {
        self.families.push(Family {
            name: name.to_owned(),
            kind: kind.to_owned(),
            samples: samples
                .into_iter()
                .map(|(sample, series)| (sample.to_owned(), series))
                .collect(),
        });
        self
    }

    /// The exposition text, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for Family {
            name,
            kind,
            samples,
        } in &self.families
        {
            writeln!(out, "# TYPE {name} {kind}").unwrap();
            for (sample, series) in samples {
                let labels: Vec<String> = series
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                for (t, v) in &series.points {
                    writeln!(out, "{sample}{{{}}} {v} {t}", labels.join(",")).unwrap();
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Finds `tool` on `PATH`, or fails the test saying how to install it.
fn require(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not on PATH: {INSTALL}"))
}

/// A fresh folder under the system's temporary folder.
fn temp_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "meshplan-prometheus-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrometheusServer {
    /// Prometheus serving `data` (backfilled before start), scraping nothing.
    pub fn backfilled(data: &OpenMetrics) -> PrometheusServer {
        let promtool = require("promtool");
        let dir = temp_dir();
        let input = dir.join("data.om");
        std::fs::write(&input, data.render()).unwrap();
        let output = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(dir.join("data"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Self::start(dir, "global: {}\n")
    }

    /// Prometheus scraping `target` (`host:port`, path `/metrics`) every second.
    pub fn scraping(target: SocketAddr) -> PrometheusServer {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
        );
        Self::start(temp_dir(), &config)
    }

    fn start(dir: PathBuf, config: &str) -> PrometheusServer {
        let prometheus = require("prometheus");
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        // The port can be taken between choosing and binding it: try a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = dir.join("prometheus.log");
            let mut child = Command::new(&prometheus)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Backfilled blocks lie hours in the past; a short retention would delete them
                // at the first compaction.
                .arg("--storage.tsdb.retention.time=10y")
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start prometheus ({e}): {INSTALL}"));
            match wait_ready(&mut child, port, &log) {
                Ok(()) => {
                    return PrometheusServer {
                        child,
                        dir,
                        url: format!("http://127.0.0.1:{port}"),
                    };
                }
                Err(text) => {
                    stop(&mut child);
                    last_log = text;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("prometheus did not become ready:\n{last_log}");
    }
}

/// Waits for `/-/ready`; on failure returns the server's log.
fn wait_ready(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("exited with {status}:\n{}", read_log()));
        }
        if http_status(port, "/-/ready") == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("not ready after 30 s:\n{}", read_log()))
}

/// SIGTERM, then SIGKILL if it has not exited within 10 s.
fn stop(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status code of a GET on loopback, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
