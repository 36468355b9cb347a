//! The executor: runs a step graph against a cluster with checkpoints, resume and rollback.
//!
//! Per step: record the pre-images of what it will touch (saved before acting, so a crash
//! mid-step never loses them), act, verify, checkpoint. A resumed run skips done steps and
//! re-observes the step that was running. Independent steps run concurrently under a bound; a
//! failure stops scheduling, lets running steps finish and saves the journal.

mod actions;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;

use crate::cluster::{Cluster, ClusterError};
use crate::object::ObjectRef;
use crate::state::{Journal, LockError, Recorder, StateError, StepState, Store};
use crate::steps::{Action, StepGraph};

/// How the engine runs.
/// `--concurrency` when none is given: steps, and objects within a step, handled at once.
pub const DEFAULT_CONCURRENCY: u16 = 4;

#[derive(Debug, Clone)]
pub struct Options {
    /// Steps run at once.
    pub concurrency: usize,
    /// How long a rollout may take.
    pub rollout_timeout: Duration,
    /// How often waits poll.
    pub poll: Duration,
    /// Where the journal and the lock live.
    pub store: Store,
    /// Set (e.g. by Ctrl-C) to start no new step; running steps finish and are saved.
    pub stop: Arc<AtomicBool>,
    /// Let a rollback delete the EKS add-on meshplan created (`rollback --include-addon`).
    pub include_addon: bool,
    /// What the run may touch: a graph or journal reaching outside it is refused before any write.
    pub scope: crate::scope::Scope,
}

/// What the engine reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step started.
    Started(String),
    /// A step was already done (verified, not redone).
    Skipped(String),
    /// A step finished.
    Finished(String),
    /// A step failed.
    Failed(String, String),
    /// A step was undone by a rollback.
    Undone(String),
    /// A long-running step's progress, e.g. a rollout's replica counts.
    Progress(String, String),
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The plan is locked by another run.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The journal could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The step graph is not a DAG of known steps.
    #[error(transparent)]
    Graph(#[from] crate::steps::GraphError),
    /// The step graph reaches outside the plan's scope.
    #[error(transparent)]
    Scope(#[from] crate::scope::ScopeError),
    /// A step failed; the journal records it and `apply` again resumes.
    #[error("step `{step}` failed: {message}")]
    Step {
        /// The step.
        step: String,
        /// What went wrong.
        message: String,
    },
    /// Stopped on request before every step ran; `apply` again resumes.
    #[error(
        "interrupted: running steps finished and were saved; run `meshplan apply` again to resume"
    )]
    Interrupted,
    /// `--to` names a step the run does not have.
    #[error("the run has no step `{step}`; its steps are: {known}")]
    UnknownStep {
        /// The step asked for.
        step: String,
        /// The steps there are.
        known: String,
    },
    /// There is nothing to roll back.
    #[error(
        "no journal in {0}: nothing was applied with this plan, so there is nothing to roll back"
    )]
    NothingToRollBack(String),
}

type Report<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// Applies the graph, resuming from the journal when there is one.
pub async fn apply(
    cluster: &Cluster,
    graph: &StepGraph,
    fingerprint: &str,
    options: &Options,
    report: Report<'_>,
) -> Result<Journal, EngineError> {
    options
        .store
        .locked(apply_locked(cluster, graph, fingerprint, options, report))
        .await
}

async fn apply_locked(
    cluster: &Cluster,
    graph: &StepGraph,
    fingerprint: &str,
    options: &Options,
    report: Report<'_>,
) -> Result<Journal, EngineError> {
    // A resumed run carries on with the steps it began with, not with a new plan of a cluster
    // the first attempt already changed; a new journal's steps are `graph`'s, used as they are
    // rather than copied a second time.
    let (journal, resumed) = match Journal::load(&options.store, fingerprint).await? {
        Some(journal) => {
            let steps = journal.graph.clone();
            (journal, Some(steps))
        }
        None => (Journal::new(graph, fingerprint), None),
    };
    let graph = resumed.as_ref().unwrap_or(graph);
    // Candidates are considered in topological order; a graph that is not a DAG never starts.
    let order = graph.order()?;
    // Nor does one that writes outside the plan's scope (a saved plan edited by hand).
    options.scope.check(graph)?;
    // Written whole once; the steps' progress is then appended to it.
    journal.save(&options.store).await?;
    let journal = Arc::new(Recorder::new(journal, options.store.clone()));
    // Running steps report progress through a channel: they outlive this borrow of `report`.
    let (progress, mut progressed) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let mut running: JoinSet<(String, Result<(), ClusterError>)> = JoinSet::new();
    let mut started: BTreeSet<String> = BTreeSet::new();
    let mut failure: Option<(String, String)> = None;
    // Steps start only when one ends (or at first), not on every progress report.
    let mut settled = true;
    loop {
        if settled && failure.is_none() && !options.stop.load(Ordering::SeqCst) {
            settled = false;
            let ready: Vec<&crate::steps::Step> = {
                let j = journal.lock().await;
                order
                    .iter()
                    .map(|&i| &graph.steps[i])
                    .filter(|s| !started.contains(&s.id))
                    .filter(|s| {
                        s.depends_on
                            .iter()
                            .all(|d| j.steps.get(d).is_some_and(|r| r.state == StepState::Done))
                    })
                    .collect()
            };
            for step in ready {
                if running.len() >= options.concurrency.max(1) {
                    break;
                }
                let step = step.clone();
                started.insert(step.id.clone());
                let previous = journal.lock().await.step(&step.id).clone();
                if previous.state == StepState::Done {
                    report(Event::Skipped(step.id.clone()));
                    continue;
                }
                tracing::info!(step = %step.id, "step started");
                report(Event::Started(step.id.clone()));
                let (cluster, journal, options, progress) = (
                    cluster.clone(),
                    journal.clone(),
                    options.clone(),
                    progress.clone(),
                );
                running.spawn(async move {
                    let id = step.id.clone();
                    let report = move |message: String| {
                        let _ = progress.send(Event::Progress(id.clone(), message));
                    };
                    let result = run_step(&cluster, &step, &journal, &options, &report).await;
                    (step.id, result)
                });
            }
        }
        let joined = tokio::select! {
            Some(event) = progressed.recv() => {
                report(event);
                continue;
            }
            joined = running.join_next() => joined,
        };
        let Some(joined) = joined else {
            break;
        };
        settled = true;
        // The steps that have ended by now are recorded together, in one write.
        let mut ended = vec![joined];
        while let Some(more) = running.try_join_next() {
            ended.push(more);
        }
        let mut events = Vec::with_capacity(ended.len());
        let ticket = {
            let mut j = journal.lock().await;
            let mut ticket = None;
            for joined in ended {
                let (id, result) = joined.expect("step tasks do not panic");
                let record = j.step(&id);
                record.finished_at = Some(jiff::Timestamp::now().to_string());
                events.push(match result {
                    Ok(()) => {
                        tracing::info!(step = %id, "step finished");
                        record.state = StepState::Done;
                        record.error = None;
                        Event::Finished(id.clone())
                    }
                    Err(error) => {
                        tracing::info!(step = %id, %error, "step failed");
                        let message = error.to_string();
                        record.state = StepState::Failed;
                        record.error = Some(message.clone());
                        failure.get_or_insert((id.clone(), message.clone()));
                        Event::Failed(id.clone(), message)
                    }
                });
                ticket = Some(journal.queue(&j, &id));
            }
            ticket.expect("a step ended")
        };
        // Reported once they are recorded.
        journal.store(ticket).await?;
        for event in events {
            report(event);
        }
    }
    let journal = journal.snapshot().await;
    match failure {
        Some((step, message)) => Err(EngineError::Step { step, message }),
        None if !journal.complete() => Err(EngineError::Interrupted),
        None => Ok(journal),
    }
}

async fn run_step(
    cluster: &Cluster,
    step: &crate::steps::Step,
    journal: &Recorder,
    options: &Options,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), ClusterError> {
    // What the step acts on is read afresh, also when resumed; pre-images are taken once: a
    // resumed step keeps those of its first attempt.
    let observed = actions::observe(cluster, step, options.concurrency).await?;
    let known = journal.lock().await.step(&step.id).pre_images.clone();
    let pre_images = if known.is_empty() {
        actions::pre_images(cluster, step, &observed).await?
    } else {
        known
    };
    let ticket = {
        let mut j = journal.lock().await;
        let record = j.step(&step.id);
        record.state = StepState::Running;
        record
            .started_at
            .get_or_insert_with(|| jiff::Timestamp::now().to_string());
        record.pre_images = pre_images;
        journal.queue(&j, &step.id)
    };
    journal
        .store(ticket)
        .await
        .map_err(|e| ClusterError::Check(format!("saving the journal: {e}")))?;
    actions::act(cluster, step, &observed, options, progress).await
}

/// Rolls back every step the journal records, newest first, restoring pre-images.
pub async fn rollback(
    cluster: &Cluster,
    fingerprint: &str,
    to: Option<&str>,
    options: &Options,
    report: Report<'_>,
) -> Result<Journal, EngineError> {
    options
        .store
        .locked(rollback_locked(cluster, fingerprint, to, options, report))
        .await
}

async fn rollback_locked(
    cluster: &Cluster,
    fingerprint: &str,
    to: Option<&str>,
    options: &Options,
    report: Report<'_>,
) -> Result<Journal, EngineError> {
    let Some(mut journal) = Journal::load(&options.store, fingerprint).await? else {
        return Err(EngineError::NothingToRollBack(
            options.store.location(crate::state::JOURNAL),
        ));
    };
    let graph = &journal.graph.clone();
    // Refused whole before anything is restored: a graph out of scope, or a pre-image that would
    // delete what its step did not create.
    options.scope.check(graph)?;
    for step in &graph.steps {
        for image in journal
            .steps
            .get(&step.id)
            .into_iter()
            .flat_map(|r| &r.pre_images)
        {
            options.scope.check_restore(step, image)?;
        }
    }
    if let Some(to) = to
        && !graph.steps.iter().any(|s| s.id == to)
    {
        let ids: Vec<&str> = graph.steps.iter().map(|s| s.id.as_str()).collect();
        return Err(EngineError::UnknownStep {
            step: to.to_owned(),
            known: ids.join(", "),
        });
    }
    // Written whole once (dropping a torn update a crash left); progress is then appended.
    journal.save(&options.store).await?;
    let mut restart = Vec::new();
    for step in graph.steps.iter().rev() {
        // `--to STEP` keeps STEP and everything before it.
        if Some(step.id.as_str()) == to {
            break;
        }
        let record = journal.step(&step.id).clone();
        if matches!(record.state, StepState::Pending | StepState::RolledBack) {
            continue;
        }
        let is_restart = if let Action::Restart {
            namespace,
            deployment,
        } = &step.action
        {
            // Restarts are redone after the namespace labels are back, so pods are re-injected.
            restart.push((step.id.clone(), namespace.clone(), deployment.clone()));
            true
        } else {
            false
        };
        let failed = |e: ClusterError| EngineError::Step {
            step: step.id.clone(),
            message: e.to_string(),
        };
        // What the step's objects are now: one LIST per kind and namespace, not a GET each.
        let objects = record.pre_images.iter().map(|i| i.object.clone()).collect();
        let mut observed = actions::observe_objects(cluster, objects, options.concurrency)
            .await
            .map_err(failed)?;
        for image in record.pre_images.iter().rev() {
            if image.object.is_eks_addon() {
                let message = undo_addon(cluster, image, options.include_addon)
                    .await
                    .map_err(failed)?;
                report(Event::Progress(step.id.clone(), message));
                continue;
            }
            let current = observed.remove(&image.object).flatten();
            actions::restore(cluster, image, current)
                .await
                .map_err(failed)?;
        }
        // A restart step is undone only once its Deployment has restarted again (below): a
        // rollback stopped in between redoes the restart when resumed.
        if !is_restart {
            journal.step(&step.id).state = StepState::RolledBack;
            journal.save_step(&options.store, &step.id).await?;
            tracing::info!(step = %step.id, "step rolled back");
            report(Event::Undone(step.id.clone()));
        }
    }
    for (id, namespace, deployment) in restart {
        let progress = |message: String| report(Event::Progress(id.clone(), message));
        actions::restart(cluster, &namespace, &deployment, options, &progress)
            .await
            .map_err(|e| EngineError::Step {
                step: id.clone(),
                message: e.to_string(),
            })?;
        journal.step(&id).state = StepState::RolledBack;
        journal.save_step(&options.store, &id).await?;
        tracing::info!(step = %id, "step rolled back");
        report(Event::Undone(id));
    }
    Ok(journal)
}

/// Undoes the add-on part of the `istio` step: deletes the add-on only when meshplan created it
/// (its pre-image is empty) and the user asked for it; says what it did either way.
async fn undo_addon(
    cluster: &Cluster,
    image: &crate::state::PreImage,
    include_addon: bool,
) -> Result<String, ClusterError> {
    let addon = &image.object;
    Ok(match (&image.before, include_addon) {
        (None, true) => {
            cluster.eks()?.delete(&addon.name).await?;
            format!("deleted {addon}, which meshplan had created (--include-addon)")
        }
        (None, false) => format!(
            "left {addon} in place: meshplan created it, and deleting it removes Istio; pass \
             --include-addon to delete it"
        ),
        (Some(_), _) => format!(
            "left {addon} in place: it existed before the migration, and meshplan does not \
             revert an add-on's version or configuration"
        ),
    })
}

/// Replaces each planned object with what the server would store (server-side dry run, as
/// `kubectl diff` does), so the plan shows server defaults and the server's validation errors
/// surface before anything is applied. At most `limit` dry runs are in flight at once.
///
/// Returns the diffs it could render while waiting on the server (see
/// [`crate::report::text::plan_with`]): each dry-run object's, once its answer is in, and each
/// deleted object's. They are most of a large plan's text, which is then written at once.
pub async fn preview(
    cluster: &Cluster,
    graph: &mut StepGraph,
    limit: usize,
) -> Result<Vec<Option<String>>, ClusterError> {
    use crate::steps::ChangeAction;
    // The server cannot dry-run into a namespace an earlier step creates: shown as planned.
    let new_namespaces = graph.created_namespaces();
    let mut requests = Vec::new();
    let mut deleted = Vec::new();
    let mut index = 0;
    for (s, step) in graph.steps.iter().enumerate() {
        for (c, change) in step.changes.iter().enumerate() {
            let i = index;
            index += 1;
            if let (ChangeAction::Delete, Some(before), None) =
                (change.action, &change.before, &change.after)
            {
                deleted.push((i, before.clone()));
                continue;
            }
            // A restart's template change is applied with the restart; shown as planned.
            // Secrets are copied at run time; their plan entries carry metadata only.
            // The EKS add-on is no Kubernetes object: `eks::observe` previews it instead.
            if matches!(
                step.action,
                Action::Restart { .. } | Action::CloneSecrets { .. }
            ) || change.object.is_eks_addon()
                || change
                    .object
                    .namespace
                    .as_ref()
                    .is_some_and(|n| new_namespaces.contains(n))
            {
                continue;
            }
            let dry_run = match (change.action, &change.before, &change.after) {
                (ChangeAction::Create, _, Some(after)) => DryRun::Apply(after.clone()),
                (ChangeAction::Update, Some(before), Some(after)) => DryRun::Merge(
                    change.object.clone(),
                    crate::diff::merge_patch(
                        &crate::diff::strip_server_fields(before),
                        &crate::diff::strip_server_fields(after),
                    ),
                ),
                _ => continue,
            };
            tracing::debug!(object = %change.object, "server-side dry run");
            requests.push(((s, c, i), change.before.clone(), dry_run));
        }
    }
    let mut diffs = vec![None; index];
    // Deleted objects are shown whole, as read: rendered while the dry runs wait on the server.
    let deletions = tokio::task::spawn_blocking(move || {
        deleted
            .into_iter()
            .map(|(i, before)| (i, crate::diff::unified(Some(&before), None)))
            .collect::<Vec<_>>()
    });
    // Every dry run is independent (none writes), so they need not follow the step order.
    let previewed = actions::bounded(requests, limit, |((s, c, i), before, dry_run)| {
        let cluster = cluster.clone();
        async move {
            let server = match dry_run {
                DryRun::Apply(after) => cluster.dry_run_apply(&after).await?,
                DryRun::Merge(object, patch) => cluster.dry_run_merge(&object, &patch).await?,
            };
            let after = crate::diff::strip_server_fields(&server);
            let diff = crate::diff::unified(before.as_deref(), Some(&after));
            Ok(((s, c, i), after, diff))
        }
    })
    .await?;
    for ((s, c, i), after, diff) in previewed {
        graph.steps[s].changes[c].after = Some(after);
        diffs[i] = Some(diff);
    }
    for (i, diff) in deletions.await.expect("rendering a diff does not panic") {
        diffs[i] = Some(diff);
    }
    Ok(diffs)
}

/// One server-side dry run of `preview`.
enum DryRun {
    /// Create (server-side apply) this object.
    Apply(Value),
    /// Merge-patch this object.
    Merge(ObjectRef, Value),
}
