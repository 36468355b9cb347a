//! Requests per second and memory for 10k small objects: `cargo bench -p kubesim`.
//! Not a test: it prints numbers and asserts nothing.

use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};

const OBJECTS: usize = 10_000;
const CONCURRENCY: usize = 16;

/// Resident set size of this process in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = kubesim::Server::builder().start().await.expect("server");
        let client = kube::Client::try_from(kube::Config::new(server.url().parse().expect("url"))).expect("client");
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let before = rss_kib();

        let start = Instant::now();
        futures::stream::iter(0..OBJECTS)
            .for_each_concurrent(CONCURRENCY, |i| {
                let api = api.clone();
                async move {
                    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": format!("cm-{i:05}"), "labels": {"shard": (i % 10).to_string()}},
                        "data": {"key": "value"}}))
                    .expect("literal");
                    api.create(&PostParams::default(), &cm).await.expect("create");
                }
            })
            .await;
        let create = start.elapsed();
        let after = rss_kib();

        let start = Instant::now();
        futures::stream::iter(0..OBJECTS)
            .for_each_concurrent(CONCURRENCY, |i| {
                let api = api.clone();
                async move {
                    api.get(&format!("cm-{i:05}")).await.expect("get");
                }
            })
            .await;
        let get = start.elapsed();

        let start = Instant::now();
        let all = api.list(&ListParams::default()).await.expect("list");
        let list = start.elapsed();
        let start = Instant::now();
        let shard = api.list(&ListParams::default().labels("shard=3")).await.expect("list");
        let selected = start.elapsed();

        let rate = |d: std::time::Duration| OBJECTS as f64 / d.as_secs_f64();
        println!("kubesim throughput, {OBJECTS} ConfigMaps, {CONCURRENCY} concurrent requests (client and server in one process):");
        println!("  create: {:>8.0} req/s ({:.2?})", rate(create), create);
        println!("  get:    {:>8.0} req/s ({:.2?})", rate(get), get);
        println!("  list all ({} items): {:.2?}", all.items.len(), list);
        println!("  list labelSelector=shard=3 ({} items): {:.2?}", shard.items.len(), selected);
        println!("  RSS: {} KiB before, {} KiB after creating (+{} KiB, {:.1} KiB/object incl. watch history)",
            before, after, after.saturating_sub(before), after.saturating_sub(before) as f64 / OBJECTS as f64);
        server.shutdown().await;
    });
}
