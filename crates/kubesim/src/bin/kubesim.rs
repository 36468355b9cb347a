//! `kubesim serve`: run the in-memory Kubernetes API server as a process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// An in-memory Kubernetes API server for tests and rehearsals.
#[derive(Parser)]
#[command(name = "kubesim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Kubernetes API on loopback until interrupted.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Manifest file or directory to load at start (CRDs are loaded first). Repeatable.
        #[arg(long)]
        load: Vec<PathBuf>,
        /// Where to write a kubeconfig for this server.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// Delay between the steps of a simulated Deployment rollout (e.g. `100ms`, `2s`).
        #[arg(long, default_value = "100ms", value_parser = parse_duration)]
        rollout_delay: std::time::Duration,
        /// Require this bearer token on every request.
        #[arg(long)]
        token: Option<String>,
    },
}

/// Parses a duration such as `250ms`, `2s` or `1m`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("invalid duration {s:?}: {e}"))?;
    std::time::Duration::try_from(d).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Manifest files under a path: the file itself, or a directory's YAML/JSON files in name order.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    Ok(files)
}

#[tokio::main]
async fn main() -> Result<()> {
    let Command::Serve {
        listen,
        load,
        kubeconfig_out,
        rollout_delay,
        token,
    } = Cli::parse().command;
    let mut builder = kubesim::Server::builder()
        .listen(listen)
        .rollout_delay(rollout_delay);
    if let Some(t) = token {
        builder = builder.token(t);
    }
    let server = builder.start().await?;
    let mut docs = Vec::new();
    for path in &load {
        for file in manifest_files(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let label = file.display().to_string();
            docs.extend(
                kubesim::load::parse_documents(&label, &text)?
                    .into_iter()
                    .map(|d| (label.clone(), d)),
            );
        }
    }
    // CRDs from every file first, then namespaces, then the rest, so one --load order never matters.
    docs.sort_by_key(|(_, d)| match d["kind"].as_str() {
        Some("CustomResourceDefinition") => 0,
        Some("Namespace") => 1,
        _ => 2,
    });
    for (label, doc) in docs {
        kubesim::load::load_objects(server.store(), &label, vec![doc])?;
    }
    if let Some(path) = kubeconfig_out {
        std::fs::write(&path, server.kubeconfig_yaml())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{}", server.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for interrupt")?;
    server.shutdown().await;
    Ok(())
}
