//! One tick against the world: under the plan's lock, read the state and the live entry, ask the
//! state machine, query the gates when it says so, write the weight (with the entry's
//! resourceVersion as a precondition), finalize at the end, and save the state with every
//! measured value.

use serde_json::Value;

use super::{Command, Live, Outcome, RAMP, RampState, Step, TickRecord};
use crate::cluster::{Cluster, ClusterError};
use crate::entry::Entry;
use crate::gates::{self, GateContext, GateError, Prometheus};
use crate::object::ObjectRef;
use crate::plan::{PlanFile, StrategyKind};
use crate::state::{self, Journal, LockError, StateError, Store};

/// Errors of a tick.
#[derive(Debug, thiserror::Error)]
pub enum RampError {
    /// `apply` has not staged the migration yet.
    #[error(
        "the parallel migration is not staged yet ({0} holds no finished run): run `meshplan apply` first"
    )]
    NotStaged(String),
    /// The plan is not a parallel-namespace plan.
    #[error(
        "`meshplan ramp` moves traffic between the two sides of a parallel-namespace migration; this plan migrates in place"
    )]
    NotParallel,
    /// The plan's gates have no Prometheus to ask.
    #[error("the plan's gates need `[ramp] prometheus = {{ url = \"...\" }}`")]
    NoPrometheus,
    /// The entry is gone, so there is no weight to move.
    #[error(
        "the traffic entry {0} is gone or no longer has the two destinations meshplan wrote; run `meshplan apply` again to restore it"
    )]
    EntryMissing(ObjectRef),
    /// The lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The cluster refused a request.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A gate could not be evaluated; nothing was changed.
    #[error("{0}; the ramp did not move")]
    Gate(#[from] GateError),
}

/// What a tick may do beyond moving weights.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickOptions {
    /// Delete the source namespace when finalizing (with `cleanup.delete_source_namespace`).
    pub allow_delete: bool,
}

/// What a tick did.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// The record added to the history.
    pub record: TickRecord,
    /// The state after the tick.
    pub state: RampState,
    /// What finalizing deleted or kept, in words.
    pub cleanup: Vec<String>,
    /// A dry run: this is what the tick would do; nothing was written.
    pub dry_run: bool,
}

impl TickReport {
    /// The exit code of `meshplan ramp`.
    pub fn exit_code(&self) -> u8 {
        self.record.outcome.exit_code(self.state.phase)
    }
}

/// Reads the ramp state; `None` before the first tick.
pub async fn load(store: &Store) -> Result<Option<RampState>, StateError> {
    let Some(text) = store.read(RAMP).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StateError::Corrupt {
            location: store.location(RAMP),
            message: e.to_string(),
        })
}

async fn save(store: &Store, state: &RampState) -> Result<(), StateError> {
    let mut text = serde_json::to_string_pretty(state).expect("ramp states serialise");
    text.push('\n');
    store.write(RAMP, &text).await
}

/// Runs one tick (or an operator's command) under the plan's lock.
pub async fn tick(
    cluster: &Cluster,
    plan: &PlanFile,
    store: &Store,
    command: Command,
    options: TickOptions,
) -> Result<TickReport, RampError> {
    store
        .locked(tick_locked(cluster, plan, store, command, options, false))
        .await
}

/// What [`tick`] would do now, without doing it: reads the state, the entry and the gates, and
/// asks the server to dry-run the weight change; writes no weight, no state, deletes nothing and
/// takes no lock (a dry run that took it could refuse a real tick running at the same time).
pub async fn dry_run(
    cluster: &Cluster,
    plan: &PlanFile,
    store: &Store,
    command: Command,
    options: TickOptions,
) -> Result<TickReport, RampError> {
    tick_locked(cluster, plan, store, command, options, true).await
}

async fn tick_locked(
    cluster: &Cluster,
    plan: &PlanFile,
    store: &Store,
    command: Command,
    options: TickOptions,
    dry_run: bool,
) -> Result<TickReport, RampError> {
    if plan.spec.strategy.kind != StrategyKind::ParallelNamespace {
        return Err(RampError::NotParallel);
    }
    let fingerprint = state::fingerprint(plan.text());
    let journal = Journal::load(store, &fingerprint)
        .await?
        .filter(Journal::complete)
        .ok_or_else(|| RampError::NotStaged(store.location(state::JOURNAL)))?;
    let entry = journal.graph.entry.ok_or(RampError::NotParallel)?;
    let ramp = plan.spec.ramp.clone().unwrap_or_default();
    let mut state = load(store).await?.unwrap_or_else(|| RampState {
        plan: plan.name.clone(),
        ..RampState::default()
    });
    let object = entry.object_ref();
    let live_object = cluster.get(&object).await?;
    let live = Live {
        weight: live_object.as_ref().and_then(|o| entry.weight_of(o)),
    };
    let now = jiff::Timestamp::now();
    let stamp = now.to_string();
    super::reconcile(&mut state, live, &stamp);

    let mut evaluations = Vec::new();
    let mut step = super::decide(&state, &ramp, command, live, now);
    tracing::info!(weight = state.weight, live = ?live.weight, ?step, "ramp decided");
    if step == Step::Evaluate {
        if !ramp.gates.is_empty() {
            let url = ramp.prometheus.as_ref().ok_or(RampError::NoPrometheus)?;
            let prometheus = Prometheus::new(&url.url)?;
            let context = GateContext {
                namespace: entry.target.clone(),
                source_namespace: entry.source.clone(),
                service: entry.service.clone(),
                at: None,
            };
            evaluations = gates::evaluate_all(&prometheus, &ramp.gates, &context).await?;
            for e in &evaluations {
                tracing::info!(gate = %e.gate, value = ?e.value, verdict = ?e.verdict, "gate evaluated");
            }
        }
        step = super::judge(&state, &ramp, &evaluations);
    }
    if let Step::Move { to, .. } = &step
        && live.weight != Some(*to)
    {
        let Some(live_object) = live_object.as_ref().filter(|_| live.weight.is_some()) else {
            return Err(RampError::EntryMissing(object));
        };
        if dry_run {
            // The server validates the change; nothing is stored.
            cluster
                .dry_run_merge(&object, &weight_patch(&entry, live_object, *to))
                .await?;
        } else {
            // Write-ahead: a crash between the write and the save is recognised by `reconcile`.
            state.pending = Some(*to);
            save(store, &state).await?;
            if let Err(conflict) = write_weight(cluster, &entry, live_object, *to).await {
                state.pending = None;
                step = Step::Record {
                    outcome: Outcome::Paused,
                    note: format!(
                        "the entry changed while meshplan moved it ({conflict}); meshplan does \
                         not fight: check it, then `meshplan ramp --resume`"
                    ),
                };
            }
            state.pending = None;
        }
    }
    let mut record = super::record(&mut state, command, &step, evaluations, &stamp);
    let mut cleanup = Vec::new();
    if matches!(record.outcome, Outcome::Completed | Outcome::Promoted) {
        cleanup = finalize(cluster, plan, &entry, options, dry_run).await?;
        if let Some(last) = state.history.last_mut() {
            last.note = format!("{}; {}", last.note, cleanup.join("; "));
            record = last.clone();
        }
    }
    if !dry_run {
        save(store, &state).await?;
    }
    Ok(TickReport {
        record,
        state,
        cleanup,
        dry_run,
    })
}

/// The merge patch that moves the entry to `new` percent.
fn weight_patch(entry: &Entry, live: &Value, new: u8) -> Value {
    let next = entry.with_weight(live, new);
    crate::diff::merge_patch(
        &crate::diff::strip_server_fields(live),
        &crate::diff::strip_server_fields(&next),
    )
}

/// Moves the entry to `new` percent, only if nobody changed it since it was read.
async fn write_weight(
    cluster: &Cluster,
    entry: &Entry,
    live: &Value,
    new: u8,
) -> Result<(), ClusterError> {
    let patch = weight_patch(entry, live, new);
    let version = live["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    cluster
        .merge_unchanged(&entry.object_ref(), &patch, version)
        .await
        .map(|_| ())
}

/// At 100 %: deletes the old side's App Mesh objects (`cleanup.delete_appmesh`, the Mesh with
/// `cleanup.delete_mesh`) and the source namespace (`cleanup.delete_source_namespace` and
/// `--allow-delete`). Idempotent: what is already gone is skipped. A dry run lists and deletes
/// nothing.
async fn finalize(
    cluster: &Cluster,
    plan: &PlanFile,
    entry: &Entry,
    options: TickOptions,
    dry_run: bool,
) -> Result<Vec<String>, RampError> {
    let cleanup = &plan.spec.cleanup;
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut done = Vec::new();
    if cleanup.delete_appmesh {
        let mut objects = Vec::new();
        for (kind, _) in crate::appmesh::NAMESPACED_KINDS {
            let probe = ObjectRef::new(crate::appmesh::API_VERSION, kind, Some(&entry.source), "-");
            objects.extend(cluster.list(&probe).await?);
        }
        if cleanup.delete_mesh {
            let probe = ObjectRef::new(crate::appmesh::API_VERSION, "Mesh", None, "-");
            objects.extend(
                cluster
                    .list(&probe)
                    .await?
                    .into_iter()
                    .filter(|m| m.name == plan.spec.source.mesh),
            );
        }
        if !dry_run {
            for object in &objects {
                cluster.delete(object).await?;
            }
        }
        done.push(format!(
            "{verb} {} App Mesh object(s) of the old side",
            objects.len()
        ));
    }
    if cleanup.delete_source_namespace {
        if options.allow_delete {
            if !dry_run {
                let namespace = ObjectRef::new("v1", "Namespace", None, &entry.source);
                cluster.delete(&namespace).await?;
            }
            done.push(format!("{verb} namespace {}", entry.source));
        } else {
            done.push(format!(
                "kept namespace {}: deleting it also needs `--allow-delete`",
                entry.source
            ));
        }
    }
    if done.is_empty() {
        done.push("the old side was left as it is (`[cleanup]`)".to_owned());
    }
    Ok(done)
}
