//! `meshplan apply` end to end against kubesim with latency injected on every request: the
//! wall time, the requests by verb and resource (kubesim's counters), and the ideal bound
//! `requests × latency / concurrency`.
//!
//! ```sh
//! cargo run --release --example gen-mesh -- --services 83 --versions 3 --routes 3 --out /tmp/mesh-1k
//! cargo build --release
//! cargo run --release --example apply-bench -- /tmp/mesh-1k/plan.toml --latency-ms 5 --concurrency 16
//! ```
//! The cluster is the one `apply --rehearse` uses (the plan's manifests, a simulated istiod,
//! the CRDs), served over HTTP; the `meshplan` binary (`--meshplan`, default
//! `target/release/meshplan`) runs against it as a user runs it. A second apply follows, which
//! must find every step done and write nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use meshplan::plan::PlanFile;

#[derive(Parser)]
struct Args {
    /// The plan (e.g. written by `gen-mesh --out`).
    plan: PathBuf,
    /// Latency added to every request kubesim serves.
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
    /// `meshplan apply --concurrency`.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// How long a Deployment takes to roll out in kubesim (waiting is not request latency).
    #[arg(long, default_value_t = 0)]
    rollout_delay_ms: u64,
    /// The meshplan binary to run.
    #[arg(long, default_value = "target/release/meshplan")]
    meshplan: PathBuf,
    /// Where to keep meshplan's stderr of the first apply (e.g. with `RUST_LOG=meshplan=info`).
    #[arg(long)]
    log: Option<PathBuf>,
}

/// The simulated cluster allocates as meshplan does: its store copies objects on every write.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Counters = BTreeMap<(String, String), u64>;

/// Verbs that change the cluster (dry runs included: kubesim counts them by verb).
const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("apply-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let plan = PlanFile::load(&args.plan).map_err(|e| e.to_string())?;
    let delay = Duration::from_millis(args.rollout_delay_ms);
    let (server, _) = meshplan::rehearse::start_with(&plan, delay)
        .await
        .map_err(|e| e.to_string())?;
    // The loaded Deployments roll out first; the timed runs start on a settled cluster.
    let settling = Instant::now();
    while kubesim::controllers::deployment::rolling_out(server.store()) > 0 {
        if settling.elapsed() > Duration::from_secs(120) {
            return Err("the simulated cluster's Deployments did not roll out in 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = std::env::temp_dir().join(format!("meshplan-apply-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).map_err(|e| e.to_string())?;
    server.faults().add(kubesim::Rule {
        action: Some(kubesim::Action::Latency {
            millis: args.latency_ms,
        }),
        ..Default::default()
    });

    println!(
        "{}: cluster settled in {:.2} s; every request delayed {} ms; rollouts take {} ms; \
         --concurrency {}",
        args.plan.display(),
        settling.elapsed().as_secs_f64(),
        args.latency_ms,
        args.rollout_delay_ms,
        args.concurrency
    );
    let first = apply(args, &dir, &kubeconfig, &server).await?;
    if let Some(log) = &args.log {
        std::fs::write(log, &first.stderr).map_err(|e| format!("{}: {e}", log.display()))?;
    }
    report("apply", args, &first);
    let second = apply(args, &dir, &kubeconfig, &server).await?;
    if second.requests.values().any(|n| *n > 0) {
        report("apply again (nothing left to do)", args, &second);
    } else {
        println!(
            "\napply again: {:.2} s, {}, 0 requests",
            second.wall.as_secs_f64(),
            second.summary
        );
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// What one run cost.
struct Run {
    wall: Duration,
    requests: Counters,
    /// meshplan's own summary of the changes (its "… to create, … to change" line).
    summary: String,
    /// meshplan's stderr.
    stderr: String,
}

async fn apply(
    args: &Args,
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    server: &kubesim::RunningServer,
) -> Result<Run, String> {
    let before = server.faults().counters();
    let start = Instant::now();
    let meshplan = std::path::absolute(&args.meshplan).map_err(|e| e.to_string())?;
    let mut command = Command::new(&meshplan);
    command
        .arg("apply")
        .arg(std::path::absolute(&args.plan).map_err(|e| e.to_string())?)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--auto-approve",
            "--concurrency",
            &args.concurrency.to_string(),
        ])
        .current_dir(dir)
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", meshplan.display()))?;
    let wall = start.elapsed();
    if !output.status.success() {
        return Err(format!(
            "meshplan apply failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut requests = server.faults().counters();
    for (key, count) in &before {
        if let Some(now) = requests.get_mut(key) {
            *now -= count;
        }
    }
    requests.retain(|_, n| *n > 0);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .chain(stderr.lines())
        .find(|l| l.starts_with("Plan: ") || l.contains("already done"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    Ok(Run {
        wall,
        requests,
        summary,
        stderr,
    })
}

fn report(title: &str, args: &Args, run: &Run) {
    let total: u64 = run.requests.values().sum();
    let writes: u64 = run
        .requests
        .iter()
        .filter(|((verb, _), _)| WRITES.contains(&verb.as_str()))
        .map(|(_, n)| n)
        .sum();
    let ideal = Duration::from_millis(total * args.latency_ms) / u32::from(args.concurrency);
    println!(
        "\n{title}: {:.2} s  {}",
        run.wall.as_secs_f64(),
        run.summary
    );
    println!("  {:<8} {:<40} {:>7}", "verb", "resource", "count");
    for ((verb, resource), count) in &run.requests {
        println!("  {verb:<8} {resource:<40} {count:>7}");
    }
    // Without latency there is no bound to compare with.
    let ratio = if ideal.is_zero() {
        "none (no latency)".to_owned()
    } else {
        format!("{:.2}", run.wall.as_secs_f64() / ideal.as_secs_f64())
    };
    println!(
        "  {total} requests ({writes} writes, dry runs included); ideal bound {total} × {} ms / {} \
         = {:.2} s; measured / ideal = {ratio}",
        args.latency_ms,
        args.concurrency,
        ideal.as_secs_f64(),
    );
}
