//! Shared helpers for kubesim's integration tests.
#![allow(dead_code)]

pub mod prometheus;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// The CRD directory: `$MESHPLAN_CRDS_DIR` or the shared checkout next to the repository.
pub fn crds_dir() -> PathBuf {
    match std::env::var_os("MESHPLAN_CRDS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crds")),
    }
}

/// A file under the shared examples directory.
pub fn example(rel: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/examples"
    ))
    .join(rel)
}

/// The App Mesh CRD files, in name order.
pub fn appmesh_crd_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(crds_dir().join("appmesh"))
        .expect("appmesh CRD directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// The Istio CRD file.
pub fn istio_crd_file() -> PathBuf {
    crds_dir().join("istio/customresourcedefinitions.gen.yaml")
}

/// Starts a server with the App Mesh and Istio CRDs loaded.
pub async fn server_with_crds() -> kubesim::RunningServer {
    let server = kubesim::Server::builder()
        .start()
        .await
        .expect("server starts");
    for f in appmesh_crd_files().into_iter().chain([istio_crd_file()]) {
        let text = std::fs::read_to_string(&f).expect("CRD file");
        server
            .load_yaml(&f.display().to_string(), &text)
            .expect("CRDs load");
    }
    server
}

/// A kube-rs client for a server.
pub fn client(server: &kubesim::RunningServer) -> kube::Client {
    let config = kube::Config::new(server.url().parse().expect("url"));
    kube::Client::try_from(config).expect("client")
}

/// A kube-rs client without retries (for fault injection tests).
pub fn client_without_retry(server: &kubesim::RunningServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().expect("url"));
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

/// A response to [`plain_request`].
#[derive(Debug)]
pub struct PlainResponse {
    /// Status code.
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl PlainResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.0 request to an `http://host:port/path` URL with a JSON body (or none), for servers
/// other than the API (Prometheus) and for kubesim's endpoints outside the API. HTTP/1.0 keeps
/// the reply simple: no chunked encoding, and the server closes the connection after it.
pub async fn plain_request(method: &str, url: &str, body: &str) -> std::io::Result<PlainResponse> {
    let (method, url, body) = (method.to_string(), url.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || blocking_request(&method, &url, &body))
        .await
        .expect("request task")
}

fn blocking_request(method: &str, url: &str, body: &str) -> std::io::Result<PlainResponse> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not HTTP: {text}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(PlainResponse {
        status,
        headers,
        body: body.to_string(),
    })
}
