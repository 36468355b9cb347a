//! Shared helpers for kubesim's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

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
