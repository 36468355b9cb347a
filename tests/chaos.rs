//! Chaos: seeded, repeatable runs of `apply`, `rollback` and `ramp` against kubesim with random
//! faults (429, 500, 503, 409, latency, connections dropped before or after the server acted) and
//! kills at random points. Each run is then resumed without faults and must end exactly where an
//! uninterrupted run ends, with nothing orphaned, a journal that tells the truth and a lock that
//! is free.
//!
//! `MESHPLAN_CHAOS_RUNS=N` runs seeds 0..N (default 200); `MESHPLAN_CHAOS_SEED=N` reruns one seed.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{outcome, root, temp};
use kubesim::{Action, Rule};
use meshplan::cluster::Cluster;
use meshplan::engine::{self, EngineError, Options};
use meshplan::plan::PlanFile;
use meshplan::ramp::tick::{self, TickOptions};
use meshplan::scope::Scope;
use meshplan::state::{self, Journal, Store};
use meshplan::steps::StepGraph;
use serde_json::Value;

/// Runs of the default suite.
const DEFAULT_RUNS: u64 = 200;
/// Runs at once, each against its own kubesim.
const PARALLEL: usize = 8;
/// kubesim's rollout delay: short, so that a run is quick, yet long enough to be killed in.
const ROLLOUT: Duration = Duration::from_millis(5);
/// Kill points are drawn up to one and a half times these: about how long an uninterrupted
/// in-process apply (or rollback), ramp tick and binary apply take here. Fixed, so that a seed
/// always draws the same delays (where a delay lands still depends on the machine's speed).
const APPLY: Duration = Duration::from_millis(1200);
const RAMP: Duration = Duration::from_millis(300);
const BINARY: Duration = Duration::from_millis(2000);

/// xorshift64*: the whole run follows from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }
}

/// One to three fault rules on random verbs and resources.
fn faults(rng: &mut Rng) -> Vec<Rule> {
    let resources = [
        None,
        None,
        None,
        Some("services"),
        Some("deployments"),
        Some("namespaces"),
        Some("virtualservices"),
        Some("destinationrules"),
        Some("virtualnodes"),
        Some("virtualrouters"),
        Some("pods"),
    ];
    let verbs = [
        None,
        None,
        Some("get"),
        Some("list"),
        Some("patch"),
        Some("create"),
        Some("delete"),
    ];
    (0..1 + rng.below(3))
        .map(|_| {
            let action = match rng.below(9) {
                0 => Action::Status {
                    code: 429,
                    retry_after: Some(0),
                },
                1 => Action::Throttle { retry_after: 0 },
                2 => Action::Status {
                    code: 500,
                    retry_after: None,
                },
                3 => Action::Status {
                    code: 503,
                    retry_after: Some(0),
                },
                4 => Action::Status {
                    code: 409,
                    retry_after: None,
                },
                5 => Action::Latency {
                    millis: 5 + rng.below(40),
                },
                6 => Action::Drop,
                _ => Action::DropAfter,
            };
            Rule {
                verb: rng.pick(&verbs).map(str::to_owned),
                resource: rng.pick(&resources).map(str::to_owned),
                probability: Some(0.02 + rng.below(18) as f64 / 100.0),
                seed: Some(rng.next()),
                action: Some(action),
                ..Rule::default()
            }
        })
        .collect()
}

/// What a run leaves behind: the objects the migration is about (normalised), and the name of
/// every object in the cluster but pods and ReplicaSets (whose names differ from run to run).
#[derive(Debug, Clone, PartialEq)]
struct End {
    outcome: Vec<Value>,
    objects: BTreeSet<String>,
    ramp: Option<Value>,
}

async fn end(server: &kubesim::RunningServer, dir: &Path, ramp: bool) -> End {
    let kubeconfig = dir.join("kubeconfig");
    let mut outcome = outcome(&kubeconfig).await;
    let client = meshplan::cluster::connect(Some(&kubeconfig), None)
        .await
        .unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    let names: Vec<String> = namespaces
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let mut objects = BTreeSet::new();
    {
        let state = server.store().lock();
        for namespace in &names {
            objects.insert(format!("Namespace {namespace}"));
            for (resource, name) in state.namespace_contents(namespace) {
                if !matches!(resource.kind.as_str(), "Pod" | "ReplicaSet" | "Event") {
                    objects.insert(format!("{} {namespace}/{name}", resource.kind));
                }
            }
        }
    }
    let ramp = if ramp {
        let cluster = Cluster::new(
            meshplan::cluster::connect(Some(&kubeconfig), None)
                .await
                .unwrap(),
        );
        let entry = cluster
            .get(&meshplan::object::ObjectRef::new(
                "networking.istio.io/v1",
                "VirtualService",
                Some("howto-k8s-http2-istio"),
                "color-entry",
            ))
            .await
            .unwrap()
            .map(|e| e["spec"]["http"][0]["route"].clone());
        outcome.push(entry.unwrap_or(Value::Null));
        let state: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("state.ramp.json")).unwrap_or_default(),
        )
        .unwrap_or(Value::Null);
        Some(serde_json::json!({
            "weight": state["weight"],
            "pending": state["pending"],
            "phase": state["phase"],
        }))
    } else {
        None
    };
    End {
        outcome,
        objects,
        ramp,
    }
}

/// The plans the suite runs, offline-planned once.
struct Plans {
    color: PlanFile,
    color_graph: StepGraph,
    parallel: PlanFile,
    parallel_graph: StepGraph,
}

impl Plans {
    fn load() -> Self {
        let load = |name: &str| {
            let plan = PlanFile::load(&root().join(name)).unwrap();
            let graph = meshplan::pipeline::plan_offline(plan.clone(), None)
                .unwrap()
                .graph;
            (plan, graph)
        };
        let (color, color_graph) = load("plans/color.toml");
        let (parallel, parallel_graph) = load("plans/color-parallel.toml");
        Plans {
            color,
            color_graph,
            parallel,
            parallel_graph,
        }
    }
}

/// Engine options with the journal (`state.json`) and the lock in `dir`.
fn options(dir: &Path, plan: &PlanFile) -> Options {
    Options {
        concurrency: 4,
        rollout_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        store: store(dir),
        stop: Default::default(),
        include_addon: false,
        scope: Scope::of(&plan.spec),
    }
}

fn store(dir: &Path) -> Store {
    Store::files(dir.join("state.json"), dir.join("lock"))
}

fn fingerprint(plan: &PlanFile) -> String {
    state::fingerprint(plan.text())
}

/// A fresh color cluster with its kubeconfig in `dir`.
async fn cluster(dir: &Path) -> kubesim::RunningServer {
    let server = common::color_cluster(ROLLOUT).await;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("kubeconfig"), server.kubeconfig_yaml()).unwrap();
    server
}

/// Runs `work` on a runtime of its own and, when `kill` says so, kills it that long after it
/// started: the runtime is dropped with every task it runs, each stopped at whatever await it had
/// reached, as a process killed between two requests.
async fn killable<T, F, Fut>(kubeconfig: String, kill: Option<Duration>, work: F) -> Option<T>
where
    F: FnOnce(Cluster) -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(async move {
            let client = meshplan::cluster::connect_yaml(&kubeconfig).await.unwrap();
            let work = work(Cluster::new(client));
            match kill {
                Some(after) => tokio::select! {
                    result = work => Some(result),
                    _ = tokio::time::sleep(after) => None,
                },
                None => Some(work.await),
            }
        });
        drop(runtime);
        result
    })
    .await
    .unwrap()
}

async fn apply(
    server: &kubesim::RunningServer,
    plan: &PlanFile,
    graph: &StepGraph,
    dir: &Path,
    kill: Option<Duration>,
) -> Option<Result<(), String>> {
    let (plan, graph, dir) = (plan.clone(), graph.clone(), dir.to_owned());
    killable(server.kubeconfig_yaml(), kill, move |cluster| async move {
        engine::apply(
            &cluster,
            &graph,
            &fingerprint(&plan),
            &options(&dir, &plan),
            &|_| {},
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
    .await
}

async fn rollback(
    server: &kubesim::RunningServer,
    plan: &PlanFile,
    dir: &Path,
    kill: Option<Duration>,
) -> Option<Result<(), EngineError>> {
    let (plan, dir) = (plan.clone(), dir.to_owned());
    killable(server.kubeconfig_yaml(), kill, move |cluster| async move {
        engine::rollback(
            &cluster,
            &fingerprint(&plan),
            None,
            &options(&dir, &plan),
            &|_| {},
        )
        .await
        .map(|_| ())
    })
    .await
}

async fn ramp(
    server: &kubesim::RunningServer,
    plan: &PlanFile,
    dir: &Path,
    command: meshplan::ramp::Command,
    kill: Option<Duration>,
) -> Option<Result<(), String>> {
    let (plan, dir) = (plan.clone(), dir.to_owned());
    killable(server.kubeconfig_yaml(), kill, move |cluster| async move {
        tick::tick(
            &cluster,
            &plan,
            &store(&dir),
            command,
            TickOptions::default(),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
    .await
}

/// The states of the journal's steps.
fn journal_states(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join("state.json")) else {
        return Vec::new();
    };
    let journal = Journal::parse(&text).expect("the journal is readable");
    journal
        .steps
        .iter()
        .map(|(id, s)| {
            let state = serde_json::to_value(s.state).unwrap();
            (id.clone(), state.as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// What an uninterrupted run of each kind ends with.
struct Expected {
    apply: End,
    rollback: End,
    tick: End,
    promote: End,
    binary: End,
}

/// The kinds of run.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `apply` in-process, faulty and killed, resumed.
    Apply,
    /// `apply` (whole or killed), then `rollback` faulty and killed, resumed.
    Rollback,
    /// The parallel plan applied, then a ramp tick (0 → 10 %) faulty and killed, resumed.
    Tick,
    /// The parallel plan applied, then `ramp --promote` (100 % and cleanup), faulty and killed.
    Promote,
    /// The `meshplan apply` binary, faulty and SIGKILLed, resumed by the binary.
    Binary,
}

fn kind(rng: &mut Rng) -> Kind {
    match rng.below(100) {
        0..45 => Kind::Apply,
        45..73 => Kind::Rollback,
        73..84 => Kind::Tick,
        84..95 => Kind::Promote,
        _ => Kind::Binary,
    }
}

/// A kill point within one and a half times `scale` (and a quarter of the time, none).
fn kill(rng: &mut Rng, scale: Duration) -> Option<Duration> {
    (rng.below(4) > 0).then(|| Duration::from_millis(rng.below(scale.as_millis() as u64 * 3 / 2)))
}

fn binary(dir: &Path, command: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshplan"));
    cmd.args([
        command,
        root().join("plans/color.toml").to_str().unwrap(),
        "--auto-approve",
        "--kubeconfig",
    ])
    .arg(dir.join("kubeconfig"))
    .current_dir(dir)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// Runs `work` off the runtime's threads, which serve the kubesims the binary talks to.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

async fn output(mut command: Command) -> std::process::Output {
    blocking(move || command.output().unwrap()).await
}

/// Applies the parallel plan without faults: the stage a ramp starts from.
async fn staged(server: &kubesim::RunningServer, plans: &Plans, dir: &Path) -> Result<(), String> {
    apply(server, &plans.parallel, &plans.parallel_graph, dir, None)
        .await
        .unwrap()
        .map_err(|e| format!("staging the parallel plan: {e}"))
}

/// How the faulty, killable first run of a seed went: killed, completed, or failed (and why).
fn fate<T, E: std::fmt::Display>(first: &Option<Result<T, E>>) -> String {
    match first {
        None => "killed".to_owned(),
        Some(Ok(_)) => "completed".to_owned(),
        Some(Err(e)) => format!("failed: {e}"),
    }
}

/// One seeded run: how its faulty first run went, or what broke.
async fn run(seed: u64, plans: Arc<Plans>, expected: Arc<Expected>) -> Result<String, String> {
    let mut rng = Rng::new(seed);
    let kind = kind(&mut rng);
    let faults = faults(&mut rng);
    let dir = temp(&format!("chaos-{seed}"));
    let server = cluster(&dir).await;
    let arm = |server: &kubesim::RunningServer| {
        for rule in &faults {
            server.faults().add(rule.clone());
        }
    };
    let what;
    let want;
    let first;
    match kind {
        Kind::Apply => {
            let kill = kill(&mut rng, APPLY);
            what = format!("{kind:?}, killed after {kill:?}, faults {faults:?}");
            arm(&server);
            let result = apply(&server, &plans.color, &plans.color_graph, &dir, kill).await;
            first = fate(&result);
            server.faults().clear();
            lock_free(&dir, &what).await?;
            apply(&server, &plans.color, &plans.color_graph, &dir, None)
                .await
                .unwrap()
                .map_err(|e| format!("{what}: resumed apply failed: {e} (first run {first})"))?;
            all_done(&dir, &what)?;
            want = &expected.apply;
        }
        Kind::Rollback => {
            let applied = kill(&mut rng, APPLY);
            let kill = kill(&mut rng, APPLY);
            what = format!(
                "{kind:?} after an apply killed after {applied:?}, killed after {kill:?}, faults {faults:?}"
            );
            apply(&server, &plans.color, &plans.color_graph, &dir, applied).await;
            lock_free(&dir, &what).await?;
            arm(&server);
            let result = rollback(&server, &plans.color, &dir, kill).await;
            first = fate(&result);
            server.faults().clear();
            lock_free(&dir, &what).await?;
            match rollback(&server, &plans.color, &dir, None).await.unwrap() {
                Ok(()) => {}
                // Killed before its journal was first written, the apply changed nothing.
                Err(EngineError::NothingToRollBack(_)) if journal_states(&dir).is_empty() => {}
                Err(e) => {
                    return Err(format!(
                        "{what}: resumed rollback failed: {e} (first run {first})"
                    ));
                }
            }
            let left: Vec<_> = journal_states(&dir)
                .into_iter()
                .filter(|(_, s)| s != "pending" && s != "rolled-back")
                .collect();
            if !left.is_empty() {
                return Err(format!(
                    "{what}: after the rollback the journal still says {left:?}"
                ));
            }
            want = &expected.rollback;
        }
        Kind::Tick | Kind::Promote => {
            let command = match kind {
                Kind::Tick => meshplan::ramp::Command::Tick,
                _ => meshplan::ramp::Command::Promote,
            };
            let kill = kill(&mut rng, RAMP);
            what = format!("{kind:?}, killed after {kill:?}, faults {faults:?}");
            staged(&server, &plans, &dir).await?;
            arm(&server);
            let result = ramp(&server, &plans.parallel, &dir, command, kill).await;
            first = fate(&result);
            server.faults().clear();
            lock_free(&dir, &what).await?;
            ramp(&server, &plans.parallel, &dir, command, None)
                .await
                .unwrap()
                .map_err(|e| format!("{what}: resumed ramp failed: {e} (first run {first})"))?;
            all_done(&dir, &what)?;
            want = match kind {
                Kind::Tick => &expected.tick,
                _ => &expected.promote,
            };
        }
        Kind::Binary => {
            let kill = Duration::from_millis(rng.below(BINARY.as_millis() as u64));
            what = format!("{kind:?}, SIGKILLed after {kill:?}, faults {faults:?}");
            arm(&server);
            let mut child = binary(&dir, "apply").spawn().unwrap();
            tokio::time::sleep(kill).await;
            let _ = child.kill(); // SIGKILL: no chance to clean up.
            let status = blocking(move || child.wait()).await.unwrap();
            first = match status.code() {
                None => "killed".to_owned(),
                Some(0) => "completed".to_owned(),
                Some(code) => format!("failed: exit code {code}"),
            };
            server.faults().clear();
            let lock = dir.join(".meshplan/color.lock");
            let files = Store::files(dir.join(".meshplan/color.state.json"), lock.clone());
            if let Some(holder) = files.holder().await.unwrap()
                && !holder.died_on_host_of(&meshplan::state::Holder::current())
            {
                return Err(format!(
                    "{what}: the lock is held by a live run: {holder:?}"
                ));
            }
            let resumed = output(binary(&dir, "apply")).await;
            if !resumed.status.success() {
                return Err(format!(
                    "{what}: resumed apply failed: {}",
                    String::from_utf8_lossy(&resumed.stderr)
                ));
            }
            if lock.exists() {
                return Err(format!("{what}: the lock is left behind"));
            }
            let journal = dir.join(".meshplan/color.state.json");
            std::fs::copy(journal, dir.join("state.json")).unwrap();
            all_done(&dir, &what)?;
            want = &expected.binary;
        }
    }
    let got = end(&server, &dir, matches!(kind, Kind::Tick | Kind::Promote)).await;
    server.shutdown().await;
    compare(&got, want).map_err(|e| format!("{what}: {e}"))?;
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(first)
}

async fn lock_free(dir: &Path, what: &str) -> Result<(), String> {
    match store(dir).holder().await.unwrap() {
        None => Ok(()),
        Some(holder) => Err(format!("{what}: the lock is still held: {holder:?}")),
    }
}

fn all_done(dir: &Path, what: &str) -> Result<(), String> {
    let states = journal_states(dir);
    let undone: Vec<_> = states.iter().filter(|(_, s)| s != "done").collect();
    if states.is_empty() || !undone.is_empty() {
        return Err(format!(
            "{what}: the journal says {undone:?} after the resumed run"
        ));
    }
    Ok(())
}

fn compare(got: &End, want: &End) -> Result<(), String> {
    let orphans: Vec<_> = got.objects.difference(&want.objects).collect();
    let lost: Vec<_> = want.objects.difference(&got.objects).collect();
    if !orphans.is_empty() || !lost.is_empty() {
        return Err(format!(
            "objects left over: {orphans:?}; objects missing: {lost:?}"
        ));
    }
    if got.outcome != want.outcome || got.ramp != want.ramp {
        let pairs: Vec<String> = got
            .outcome
            .iter()
            .zip(&want.outcome)
            .filter(|(g, w)| g != w)
            .map(|(g, w)| format!("got {g}\nwant {w}"))
            .collect();
        return Err(format!(
            "the end state differs from the uninterrupted run's:\n{}\nramp: got {:?}, want {:?}",
            pairs.join("\n"),
            got.ramp,
            want.ramp
        ));
    }
    Ok(())
}

/// Runs each kind once without faults or kills (concurrently, each on its own kubesim).
async fn expected(plans: &Plans) -> Expected {
    let dir = temp("chaos-reference");
    let color = async {
        let d = dir.join("apply");
        let server = cluster(&d).await;
        apply(&server, &plans.color, &plans.color_graph, &d, None)
            .await
            .unwrap()
            .unwrap();
        let applied = end(&server, &d, false).await;
        rollback(&server, &plans.color, &d, None)
            .await
            .unwrap()
            .unwrap();
        let rolled_back = end(&server, &d, false).await;
        server.shutdown().await;
        (applied, rolled_back)
    };
    let ramp = |command: meshplan::ramp::Command| {
        let d = dir.join(format!("{command:?}"));
        async move {
            let server = cluster(&d).await;
            staged(&server, plans, &d).await.unwrap();
            ramp(&server, &plans.parallel, &d, command, None)
                .await
                .unwrap()
                .unwrap();
            let ended = end(&server, &d, true).await;
            server.shutdown().await;
            ended
        }
    };
    let binary = async {
        let d = dir.join("binary");
        let server = cluster(&d).await;
        let out = output(binary(&d, "apply")).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ended = end(&server, &d, false).await;
        server.shutdown().await;
        ended
    };
    let ((apply, rollback), tick, promote, binary) = tokio::join!(
        color,
        ramp(meshplan::ramp::Command::Tick),
        ramp(meshplan::ramp::Command::Promote),
        binary
    );
    std::fs::remove_dir_all(&dir).unwrap();
    Expected {
        apply,
        rollback,
        tick,
        promote,
        binary,
    }
}

/// Seeds that found bugs, run whatever `MESHPLAN_CHAOS_RUNS` says. A rollback killed while it
/// restarted the Deployments left pods with the Istio sidecar, its journal saying the restarts
/// were undone: these seven of the 200 default seeds failed so.
const REGRESSIONS: &[u64] = &[16, 21, 62, 64, 73, 142, 159];

fn seeds() -> Vec<u64> {
    let var = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        })
    };
    match var("MESHPLAN_CHAOS_SEED") {
        Some(seed) => vec![seed],
        None => {
            let runs = var("MESHPLAN_CHAOS_RUNS").unwrap_or(DEFAULT_RUNS);
            let mut seeds: BTreeSet<u64> = (0..runs).collect();
            seeds.extend(REGRESSIONS);
            seeds.into_iter().collect()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faulty_killed_runs_resume_to_the_uninterrupted_outcome() {
    let started = Instant::now();
    let plans = Arc::new(Plans::load());
    let expected = Arc::new(expected(&plans).await);
    let seeds = seeds();
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut runs = Vec::new();
    for seed in seeds.clone() {
        let (plans, expected, permits) = (plans.clone(), expected.clone(), permits.clone());
        runs.push((
            seed,
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                run(seed, plans, expected).await
            }),
        ));
    }
    let mut failures = Vec::new();
    let mut fates: std::collections::BTreeMap<String, usize> = Default::default();
    for (seed, handle) in runs {
        match handle.await {
            Ok(Ok(fate)) => {
                // Grouped by how the message starts.
                let key: String = fate.chars().take(90).collect();
                *fates.entry(key).or_default() += 1;
            }
            Ok(Err(message)) => failures.push(format!("seed {seed}: {message}")),
            Err(panic) => failures.push(format!("seed {seed}: panicked: {panic}")),
        }
    }
    eprintln!("chaos: {} runs in {:.1?}", seeds.len(), started.elapsed());
    eprintln!("first runs (faulty, killable), by fate:");
    for (fate, count) in &fates {
        eprintln!("  {count:>4}  {fate}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed (rerun one with MESHPLAN_CHAOS_SEED=N):\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n\n")
    );
}
