//! `apply`, `rollback`, `status` and `unlock`: the commands that touch a cluster or its journal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meshplan::cluster::{self, Cluster};
use meshplan::eks::{self, EksError};
use meshplan::engine::{self, EngineError, Options};
use meshplan::plan::EksCluster;
use meshplan::plan::{PlanFile, StateBackend};
use meshplan::report::{self, Format, text::Palette};
use meshplan::saved::SavedPlan;
use meshplan::state::{self, Journal, StepState, Store};
use meshplan::{Error, pipeline};

use super::progress::Display;
use super::{ClusterArgs, Colors, Failure, boxed, exit, print};

pub(crate) fn failure(error: impl Into<Error>) -> Failure {
    boxed(error.into())
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// The engine options of a plan.
fn options(plan: &PlanFile, concurrency: usize, store: Store) -> Options {
    Options {
        concurrency,
        rollout_timeout: plan.spec.strategy.rollout_timeout.0,
        poll: Duration::from_millis(500),
        store,
        stop: Arc::default(),
        include_addon: false,
        scope: meshplan::scope::Scope::of(&plan.spec),
    }
}

/// The EKS cluster of the Istio add-on: `--eks-cluster`/`--region`, the plan's `source.eks`, or
/// the EKS ARN the kubeconfig context names.
pub(crate) fn eks_cluster(plan: &PlanFile, args: &ClusterArgs) -> Option<EksCluster> {
    if let Some(eks) = args_or_plan_eks(plan, args) {
        return Some(eks);
    }
    if args.in_cluster {
        return None;
    }
    let (kubeconfig, context) = kube_target(plan, args);
    eks::cluster_of_kubeconfig(kubeconfig.as_deref(), context.as_deref())
}

/// The EKS cluster named by `--eks-cluster`/`--region` or `[source] eks` (not by a kubeconfig).
fn args_or_plan_eks(plan: &PlanFile, args: &ClusterArgs) -> Option<EksCluster> {
    match (&args.eks_cluster, &args.region) {
        (Some(name), Some(region)) => Some(EksCluster {
            name: name.clone(),
            region: region.clone(),
        }),
        _ => plan.spec.source.eks.clone(),
    }
}

/// Names the add-on's EKS cluster in the graph and compares the planned add-on with the one the
/// cluster has; refuses, before anything changes, a graph whose add-on has no cluster.
async fn bind_addon(
    cluster: &Cluster,
    graph: &mut meshplan::steps::StepGraph,
    eks: Option<&EksCluster>,
) -> Result<(), Failure> {
    let Some(bound) = graph.addon_cluster() else {
        return Ok(());
    };
    if bound.is_none() {
        let eks = eks.ok_or_else(|| failure(EksError::NoCluster))?;
        graph.bind_eks(eks);
    }
    let addons = cluster.eks().map_err(failure)?;
    eks::observe(graph, addons).await.map_err(failure)
}

/// Where the plan keeps its journal and lock: local files, or its ConfigMap and Lease in the
/// cluster (`[state] backend = "configmap"`, in `state.namespace`, by default the first source
/// namespace).
pub(crate) fn store(plan: &PlanFile, cluster: Option<&Cluster>) -> Store {
    match (plan.spec.state.backend, cluster) {
        (StateBackend::Configmap, Some(cluster)) => {
            let namespace = plan
                .spec
                .state_namespace()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "default".to_owned());
            Store::cluster(cluster.client.clone(), &namespace, &plan.name)
        }
        _ => {
            let (default_journal, lock) = state::default_paths(Path::new("."), &plan.name);
            Store::files(
                plan.spec.state.path.clone().unwrap_or(default_journal),
                lock,
            )
        }
    }
}

/// The store of a plan, connecting to the cluster only when the state lives there.
pub(crate) async fn store_of(plan: &PlanFile, args: &ClusterArgs) -> Result<Store, Failure> {
    Ok(match plan.spec.state.backend {
        StateBackend::Configmap => store(plan, Some(&connect(plan, args).await?)),
        StateBackend::File => store(plan, None),
    })
}

/// Checks the cluster (CRDs, namespaces, read permissions), then reads the plan's inventory.
async fn read_cluster(
    cluster: &Cluster,
    plan: &PlanFile,
    strategy: Option<meshplan::plan::StrategyKind>,
    istio: bool,
) -> Result<meshplan::inventory::Inventory, Failure> {
    let namespaces = plan.namespaces();
    let secrets = plan.clones_secrets(strategy.unwrap_or(plan.spec.strategy.kind));
    cluster::preflight(cluster, &namespaces, istio, secrets)
        .await
        .map_err(failure)?;
    // The Istio group-versions the run will write are discovered while the inventory is read,
    // rather than in a round trip of their own when the run's permissions are checked.
    let api = meshplan::istio::ApiVersions::for_version(&plan.spec.istio.version);
    let writes: &[&str] = if istio {
        &[api.networking, api.security, api.telemetry]
    } else {
        &[]
    };
    let (inventory, ()) = tokio::join!(
        cluster::inventory(&cluster.client, &namespaces, secrets),
        cluster.discover(writes)
    );
    inventory.map_err(failure)
}

/// Checks that everything the run, and a rollback of it, will do is allowed, before anything is
/// done.
async fn check_run_access(
    cluster: &Cluster,
    graph: &meshplan::steps::StepGraph,
    store: &Store,
) -> Result<(), Failure> {
    let mut needed = graph.access();
    needed.extend(store_access(store));
    cluster::check_access(cluster, &needed)
        .await
        .map_err(failure)
}

/// The permissions the state store needs, for the preflight.
fn store_access(store: &Store) -> Vec<meshplan::steps::Access> {
    use meshplan::steps::Access;
    let Some(namespace) = store.namespace() else {
        return Vec::new();
    };
    let namespace = Some(namespace);
    let mut needed = Vec::new();
    for verb in ["get", "create", "update"] {
        needed.push(Access::new(verb, "v1", "ConfigMap", namespace));
        needed.push(Access::new(
            verb,
            "coordination.k8s.io/v1",
            "Lease",
            namespace,
        ));
    }
    needed
}

/// The kubeconfig file and context to use: the flags, else the plan's `[source]`.
fn kube_target(plan: &PlanFile, args: &ClusterArgs) -> (Option<PathBuf>, Option<String>) {
    let kubeconfig = args.kubeconfig.clone().or_else(|| {
        plan.spec
            .source
            .kubeconfig
            .as_ref()
            .map(|p| plan.base_dir().join(p))
    });
    let context = args
        .context
        .clone()
        .or_else(|| plan.spec.source.context.clone());
    (kubeconfig, context)
}

pub(crate) async fn connect(plan: &PlanFile, args: &ClusterArgs) -> Result<Cluster, Failure> {
    if args.in_cluster {
        let client = cluster::connect_in_cluster().await.map_err(failure)?;
        return Ok(with_addons(Cluster::new(client), plan, args).await);
    }
    let (kubeconfig, context) = kube_target(plan, args);
    // `[source] eks` or `--eks-cluster`, and no kubeconfig named: straight to the EKS API server.
    if kubeconfig.is_none()
        && context.is_none()
        && let Some(eks) = args_or_plan_eks(plan, args)
    {
        let client = eks::token::connect(&eks).await.map_err(failure)?;
        return Ok(with_addons(Cluster::new(client), plan, args).await);
    }
    let client = cluster::connect(kubeconfig.as_deref(), context.as_deref())
        .await
        .map_err(failure)?;
    Ok(with_addons(Cluster::new(client), plan, args).await)
}

/// The cluster with the EKS API of its Istio add-on, when the plan installs one and its EKS
/// cluster is known.
async fn with_addons(cluster: Cluster, plan: &PlanFile, args: &ClusterArgs) -> Cluster {
    if plan.spec.istio.install != meshplan::plan::Install::EksAddon {
        return cluster;
    }
    match eks_cluster(plan, args) {
        Some(eks) => cluster.with_eks(eks::Addons::connect(&eks).await),
        None => cluster,
    }
}

/// Shows `prompt` (the summary, the steps and the question; see
/// [`report::text::confirmation`]) and asks for "yes" on a terminal; refuses to guess when there
/// is none.
fn confirm(prompt: &str, auto_approve: bool) -> Result<bool, Failure> {
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(failure(Error::NotConfirmed(
            "stdin is not a terminal, so nobody can confirm: review `meshplan plan` and pass \
             --auto-approve"
                .to_owned(),
        )));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| failure(Error::NotConfirmed(e.to_string())))?;
    Ok(answer.trim() == "yes")
}

/// Stops scheduling on Ctrl-C; running steps finish and are saved.
pub(crate) fn stop_on_interrupt(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Interrupted: finishing the running steps and saving the journal…");
            stop.store(true, Ordering::SeqCst);
        }
    });
}

/// `meshplan apply`.
pub fn apply(
    path: &Path,
    args: &ClusterArgs,
    approval: Approval,
    concurrency: usize,
    rehearse: bool,
    colors: &Colors,
) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        boxed(Error::Io {
            path: path.to_owned(),
            source,
        })
    })?;
    let saved = SavedPlan::read(path, &text).map_err(failure)?;
    let plan = match &saved {
        Some(saved) => PlanFile::parse(Path::new(&saved.plan_path), saved.plan_text.clone())
            .map_err(|e| boxed(e.into()))?,
        None => PlanFile::parse(path, text).map_err(|e| boxed(e.into()))?,
    };
    let fingerprint = state::fingerprint(plan.text());
    runtime().block_on(async {
        let eks = eks_cluster(&plan, args);
        if !rehearse {
            let cluster = connect(&plan, args).await?;
            let options = options(&plan, concurrency, store(&plan, Some(&cluster)));
            return apply_on(
                &cluster,
                &plan,
                saved.as_ref(),
                &fingerprint,
                &options,
                approval,
                colors,
                eks.as_ref(),
            )
            .await;
        }
        let (server, cluster) = meshplan::rehearse::start(&plan).await.map_err(boxed)?;
        // An add-on install is rehearsed against a simulated EKS endpoint.
        let (simulator, cluster, eks) = if plan.spec.istio.install
            == meshplan::plan::Install::EksAddon
        {
            let eks = eks.unwrap_or_else(|| EksCluster {
                name: "rehearsal".to_owned(),
                region: "us-east-1".to_owned(),
            });
            let simulator = eks::sim::Simulator::start().await.map_err(failure)?;
            eprintln!(
                "Rehearsal: a simulated EKS add-on API at {} stands in for EKS cluster {} in {}.",
                simulator.url(),
                eks.name,
                eks.region
            );
            let cluster = cluster.with_eks(simulator.addons(&eks.name, &eks.region));
            (Some(simulator), cluster, Some(eks))
        } else {
            (None, cluster, None)
        };
        // The rehearsal keeps its journal and lock to itself.
        let scratch =
            std::env::temp_dir().join(format!("meshplan-rehearsal-{}", std::process::id()));
        let options = options(
            &plan,
            concurrency,
            Store::files(scratch.join("journal.json"), scratch.join("lock")),
        );
        eprintln!(
            "Rehearsal: an in-process Kubernetes API (kubesim) at {} holds the plan's source \
             manifests, a simulated istiod and the App Mesh and Istio CRDs.",
            server.url()
        );
        let approval = Approval {
            auto_approve: true,
            ..approval
        };
        let code = apply_on(
            &cluster,
            &plan,
            None,
            &fingerprint,
            &options,
            approval,
            colors,
            eks.as_ref(),
        )
        .await;
        if matches!(code, Ok(exit::OK)) {
            print(&final_state(&cluster, &plan).await?);
        }
        let _ = std::fs::remove_dir_all(&scratch);
        server.shutdown().await;
        if let Some(simulator) = simulator {
            simulator.shutdown().await;
        }
        code
    })
}

/// How `apply` and `rollback` may proceed without asking, what `apply` does on failure, and
/// whether they only show what they would do.
#[derive(Debug, Clone, Copy)]
pub struct Approval {
    /// Do not ask.
    pub auto_approve: bool,
    /// Roll back when a step fails.
    pub rollback_on_failure: bool,
    /// Show what would happen; take no lock, write no journal, change nothing.
    pub dry_run: bool,
}

/// The closing lines of a dry run: who holds the lock (read, not taken: taking it would be a
/// write, and could refuse a real run started meanwhile), and that nothing changed.
async fn dry_run_end(store: &Store, what: &str) -> Result<u8, Failure> {
    match store.holder().await.map_err(failure)? {
        Some(h) => eprintln!(
            "Lock ({}): held by run {} (pid {} on {}, since {}); a real {what} would be refused \
             until it ends (or `meshplan unlock --force {}`).",
            store.lock_location(),
            h.id,
            h.pid,
            h.host,
            h.since,
            h.id
        ),
        None => eprintln!("Lock ({}): free.", store.lock_location()),
    }
    eprintln!(
        "Dry run: nothing was changed; no lock was taken and {} was not written.",
        store.location(state::JOURNAL)
    );
    Ok(exit::OK)
}

#[allow(clippy::too_many_arguments)]
async fn apply_on(
    cluster: &Cluster,
    plan: &PlanFile,
    saved: Option<&SavedPlan>,
    fingerprint: &str,
    options: &Options,
    approval: Approval,
    colors: &Colors,
    eks: Option<&EksCluster>,
) -> Result<u8, Failure> {
    let mut checked = false;
    let graph = match Journal::load(&options.store, fingerprint)
        .await
        .map_err(failure)?
    {
        Some(journal) => {
            let done = journal
                .steps
                .values()
                .filter(|s| s.state == StepState::Done)
                .count();
            let verb = if approval.dry_run {
                "Dry run: would resume"
            } else {
                "Resuming"
            };
            eprintln!(
                "{verb} the run recorded in {}: {done} of {} steps done.",
                options.store.location(state::JOURNAL),
                journal.steps.len()
            );
            if approval.dry_run {
                let mut out = String::new();
                for step in &journal.graph.steps {
                    let record = &journal.steps[&step.id];
                    if record.state != StepState::Done {
                        if out.is_empty() {
                            out.push_str("Steps left to run:\n");
                        }
                        let state = serde_json::to_value(record.state).expect("states serialise");
                        out.push_str(&format!(
                            "  {:<10} {} — {}\n",
                            state.as_str().unwrap_or_default(),
                            step.id,
                            step.description
                        ));
                    }
                }
                if out.is_empty() {
                    out.push_str("Nothing left to run: every step is done.\n");
                }
                print(&out);
            }
            journal.graph
        }
        None => {
            let inventory = read_cluster(cluster, plan, None, true).await?;
            if let Some(saved) = saved {
                // Exactly the steps that were reviewed, or nothing.
                saved.check_fresh(&inventory).map_err(failure)?;
                eprintln!(
                    "{} the saved plan of {} ({} steps). {}",
                    if approval.dry_run {
                        "Dry run: would apply"
                    } else {
                        "Applying"
                    },
                    saved.plan_path,
                    saved.graph.steps.len(),
                    report::text::summary_line(saved.graph.summary())
                );
                if approval.dry_run {
                    print(&report::text::steps(
                        &saved.graph,
                        Palette::new(colors.stdout),
                    ));
                }
                saved.graph.clone()
            } else {
                let mut planned =
                    pipeline::plan_with(plan.clone(), inventory, "the cluster".to_owned(), None)
                        .map_err(boxed)?;
                bind_addon(cluster, &mut planned.graph, eks).await?;
                // Before the dry runs, which need the same permissions as the real thing.
                check_run_access(cluster, &planned.graph, &options.store).await?;
                checked = true;
                let rendered = engine::preview(cluster, &mut planned.graph, options.concurrency)
                    .await
                    .map_err(failure)?;
                print(&report::text::plan_with(
                    &planned,
                    Palette::new(colors.stdout),
                    &rendered,
                ));
                if planned.translation.has_errors() {
                    eprintln!(
                        "error: findings of severity error: nothing is applied until they are resolved"
                    );
                    return Ok(exit::ERROR);
                }
                if planned.graph.summary().is_empty() {
                    return Ok(exit::OK);
                }
                planned.graph
            }
        }
    };
    if !checked {
        check_run_access(cluster, &graph, &options.store).await?;
    }
    if graph.addon_cluster() == Some(None) {
        return Err(failure(EksError::NoCluster));
    }
    if approval.dry_run {
        return dry_run_end(&options.store, "apply").await;
    }
    let prompt = report::text::apply_confirmation(&graph, "Do you want to apply these changes?");
    if !confirm(&prompt, approval.auto_approve)? {
        eprintln!("Apply cancelled.");
        return Ok(exit::OK);
    }
    stop_on_interrupt(options.stop.clone());
    let display = Display::new();
    let progress = |event| display.show(event);
    match engine::apply(cluster, &graph, fingerprint, options, &progress).await {
        Ok(journal) => {
            eprintln!(
                "Apply complete: {} steps done. `meshplan rollback` undoes them.",
                journal.steps.len()
            );
            Ok(exit::OK)
        }
        Err(EngineError::Interrupted) => {
            eprintln!("Stopped; the journal is saved. Run `meshplan apply` again to resume.");
            Ok(exit::INTERRUPTED)
        }
        Err(error @ EngineError::Step { .. }) if approval.rollback_on_failure => {
            eprintln!("error: {error}\nRolling back (--rollback-on-failure)…");
            engine::rollback(cluster, fingerprint, None, options, &progress)
                .await
                .map_err(failure)?;
            Ok(exit::ERROR)
        }
        Err(error) => Err(failure(error)),
    }
}

/// What the namespaces in scope look like after a rehearsal.
async fn final_state(cluster: &Cluster, plan: &PlanFile) -> Result<String, Failure> {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, ListParams};
    let mut out =
        String::from("\nFinal state of the rehearsal cluster (no real cluster was touched):\n");
    let inventory = cluster::inventory(&cluster.client, &plan.namespaces(), false)
        .await
        .map_err(failure)?;
    let mut namespaces = plan.namespaces();
    // A parallel migration's new side lives beside the old.
    if plan.spec.strategy.kind == meshplan::plan::StrategyKind::ParallelNamespace {
        namespaces.extend(
            plan.spec
                .strategy
                .target_namespace
                .as_ref()
                .map(|n| n.to_string()),
        );
    }
    let appmesh = inventory.virtual_nodes.len()
        + inventory.virtual_services.len()
        + inventory.virtual_routers.len()
        + inventory.virtual_gateways.len()
        + inventory.gateway_routes.len()
        + inventory.backend_groups.len();
    for namespace in &namespaces {
        let api: Api<Namespace> = Api::all(cluster.client.clone());
        let labels = api
            .get(namespace)
            .await
            .map_err(|e| {
                failure(meshplan::cluster::ClusterError::Api {
                    what: format!("reading namespace {namespace}"),
                    source: e,
                })
            })?
            .metadata
            .labels
            .unwrap_or_default();
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("  namespace {namespace}: {}\n", shown.join(", ")));
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
        let list = pods.list(&ListParams::default()).await.map_err(|e| {
            failure(meshplan::cluster::ClusterError::Api {
                what: format!("listing pods in {namespace}"),
                source: e,
            })
        })?;
        for pod in list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let containers: Vec<&str> = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
                .collect();
            out.push_str(&format!(
                "    pod {}: {}\n",
                pod.metadata.name.as_deref().unwrap_or_default(),
                containers.join(", ")
            ));
        }
    }
    out.push_str(&format!("  App Mesh objects left in scope: {appmesh}\n"));
    Ok(out)
}

/// `meshplan rollback`.
pub fn rollback(
    path: &Path,
    args: &ClusterArgs,
    to: Option<&str>,
    approval: Approval,
    include_addon: bool,
) -> Result<u8, Failure> {
    let plan = PlanFile::load(path).map_err(boxed)?;
    let fingerprint = state::fingerprint(plan.text());
    runtime().block_on(async {
        let cluster = connect(&plan, args).await?;
        let options = Options {
            include_addon,
            ..options(&plan, 1, store(&plan, Some(&cluster)))
        };
        let Some(journal) = Journal::load(&options.store, &fingerprint)
            .await
            .map_err(failure)?
        else {
            return Err(failure(EngineError::NothingToRollBack(
                options.store.location(state::JOURNAL),
            )));
        };
        if let Some(to) = to
            && !journal.graph.steps.iter().any(|s| s.id == to)
        {
            let ids: Vec<&str> = journal.graph.steps.iter().map(|s| s.id.as_str()).collect();
            return Err(failure(EngineError::UnknownStep {
                step: to.to_owned(),
                known: ids.join(", "),
            }));
        }
        // The plan of the rollback: each object from how it is now back to its pre-image.
        let mut out = String::from("Rollback will undo, newest step first:\n");
        let mut undone = Vec::new();
        let (mut deleted, mut recreated, mut restored, mut restarts) = (0, 0, 0, 0);
        for step in journal.graph.steps.iter().rev() {
            if Some(step.id.as_str()) == to {
                break;
            }
            let record = &journal.steps[&step.id];
            if matches!(record.state, StepState::Pending | StepState::RolledBack) {
                continue;
            }
            out.push_str(&format!("\n{} — {}\n", step.id, step.description));
            if matches!(step.action, meshplan::steps::Action::Restart { .. }) {
                // Redone once the namespace labels are back, so pods lose the Istio sidecar.
                restarts += 1;
            }
            undone.push((
                step.id.clone(),
                step.description.clone(),
                record.pre_images.len(),
            ));
            for image in record.pre_images.iter().rev() {
                if image.object.is_eks_addon() {
                    let fate = match (&image.before, include_addon) {
                        (None, true) => "deleted (meshplan created it; --include-addon)",
                        (None, false) => {
                            "left in place (meshplan created it; --include-addon deletes it)"
                        }
                        (Some(_), _) => "left in place (it existed before the migration)",
                    };
                    out.push_str(&format!("  {}: {fate}\n", image.object));
                    continue;
                }
                let now = cluster.get(&image.object).await.map_err(failure)?;
                let symbol = match (&image.before, &now) {
                    (None, Some(_)) => {
                        deleted += 1;
                        "-"
                    }
                    (Some(_), None) => {
                        recreated += 1;
                        "+"
                    }
                    _ => {
                        restored += 1;
                        "~"
                    }
                };
                out.push_str(&format!("  {symbol} {}\n", image.object));
                for line in meshplan::diff::unified(now.as_ref(), image.before.as_ref()).lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
        print(&out);
        if approval.dry_run {
            return dry_run_end(&options.store, "rollback").await;
        }
        let summary = format!(
            "Rollback: {} step(s) to undo: {deleted} object(s) to delete, {recreated} to \
             recreate, {restored} to restore, {restarts} restart(s).",
            undone.len()
        );
        let prompt =
            report::text::confirmation(&summary, &undone, "Do you want to roll these steps back?");
        if !confirm(&prompt, approval.auto_approve)? {
            eprintln!("Rollback cancelled.");
            return Ok(exit::OK);
        }
        let display = Display::new();
        engine::rollback(&cluster, &fingerprint, to, &options, &|event| {
            display.show(event)
        })
        .await
        .map_err(failure)?;
        eprintln!("Rollback complete.");
        Ok(exit::OK)
    })
}

/// `meshplan status`.
pub fn status(path: &Path, args: &ClusterArgs, format: Format) -> Result<u8, Failure> {
    let plan = PlanFile::load(path).map_err(boxed)?;
    let fingerprint = state::fingerprint(plan.text());
    let (store, journal, holder, ramp) = runtime().block_on(async {
        let store = store_of(&plan, args).await?;
        let journal = Journal::load(&store, &fingerprint).await.map_err(failure)?;
        let holder = store.holder().await.map_err(failure)?;
        let ramp = meshplan::ramp::tick::load(&store).await.map_err(failure)?;
        Ok::<_, Failure>((store, journal, holder, ramp))
    })?;
    let location = store.location(state::JOURNAL);
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "plan": plan.name,
                "journal": location,
                "lock": holder,
                "steps": journal.as_ref().map(|j| &j.steps),
                "ramp": ramp,
            });
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).expect("status serialises")
            ));
        }
        Format::Markdown => print(&report::markdown::status(&report::markdown::Status {
            plan: &plan.name,
            journal_location: &location,
            journal: journal.as_ref(),
            lock_location: &store.lock_location(),
            holder: holder.as_ref(),
            ramp: ramp.as_ref(),
        })),
        Format::Text => {
            let mut out = format!("Plan {} — journal {location}\n", plan.name);
            match &journal {
                None => out.push_str("  no run yet: `meshplan apply` starts one\n"),
                Some(journal) => {
                    for step in &journal.graph.steps {
                        let record = &journal.steps[&step.id];
                        let state = serde_json::to_value(record.state).expect("states serialise");
                        out.push_str(&format!(
                            "  {:<12} {:<40} {}{}\n",
                            state.as_str().unwrap_or_default(),
                            step.id,
                            record
                                .finished_at
                                .as_deref()
                                .or(record.started_at.as_deref())
                                .unwrap_or(""),
                            record
                                .error
                                .as_ref()
                                .map(|e| format!("\n      error: {e}"))
                                .unwrap_or_default()
                        ));
                    }
                }
            }
            match holder {
                Some(h) => out.push_str(&format!(
                    "Lock ({}): held by run {} (pid {} on {}, since {})\n",
                    store.lock_location(),
                    h.id,
                    h.pid,
                    h.host,
                    h.since
                )),
                None => out.push_str(&format!("Lock ({}): free\n", store.lock_location())),
            }
            if let Some(ramp) = &ramp {
                out.push_str(&super::ramp::status_lines(ramp));
            }
            print(&out);
        }
    }
    Ok(exit::OK)
}

/// `meshplan unlock --force ID`.
pub fn unlock(path: &Path, args: &ClusterArgs, id: &str) -> Result<u8, Failure> {
    let plan = PlanFile::load(path).map_err(boxed)?;
    let cleared = runtime().block_on(async {
        let store = store_of(&plan, args).await?;
        store.force_unlock(id).await.map_err(failure)
    })?;
    match cleared {
        Some(holder) => eprintln!(
            "Cleared the lock of run {} (pid {} on {}).",
            holder.id, holder.pid, holder.host
        ),
        None => eprintln!("The plan is not locked."),
    }
    Ok(exit::OK)
}

/// `meshplan plan` against the live cluster, with the diffs its preview rendered (see
/// [`report::text::plan_with`]).
pub fn plan_live(
    plan: PlanFile,
    args: &ClusterArgs,
    strategy: Option<meshplan::plan::StrategyKind>,
) -> Result<(pipeline::Planned, Vec<Option<String>>), Failure> {
    runtime().block_on(async {
        let cluster = connect(&plan, args).await?;
        let inventory = read_cluster(&cluster, &plan, strategy, false).await?;
        let eks = eks_cluster(&plan, args);
        let source = match &eks {
            Some(eks) => format!("the cluster (EKS cluster {} in {})", eks.name, eks.region),
            None => "the cluster".to_owned(),
        };
        let mut planned = pipeline::plan_with(plan, inventory, source, strategy).map_err(boxed)?;
        bind_addon(&cluster, &mut planned.graph, eks.as_ref()).await?;
        let limit = engine::DEFAULT_CONCURRENCY.into();
        let rendered = engine::preview(&cluster, &mut planned.graph, limit)
            .await
            .map_err(failure)?;
        Ok((planned, rendered))
    })
}
