//! The canary ramp of a parallel-namespace migration, as a state machine: one idempotent tick at a
//! time moves the entry's weight along `[ramp] steps` while the health gates pass, counts failed
//! checks, rolls back to 0 % after `max_failed_checks`, pauses when the gates have no data (or when
//! someone else changed the weights: meshplan never fights), and records every decision.
//!
//! This module decides; it does no I/O. [`tick`] reads the cluster, Prometheus and the state
//! store, asks [`decide`] and carries the decision out.

pub mod tick;

use serde::{Deserialize, Serialize};

use crate::gates::{Evaluation, Verdict};
use crate::plan::{NoData, Ramp};

/// The key of the ramp state in a store.
pub const RAMP: &str = "ramp";

/// Where a ramp is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Moving along the steps.
    #[default]
    Ramping,
    /// Held until `ramp --resume`: no data, drift, or an operator's pause.
    Paused,
    /// The gates failed too often; all traffic went back to the old side.
    RolledBack,
    /// An operator sent all traffic back to the old side.
    Aborted,
    /// All traffic is on the new side, the gates passed there, and the old side was cleaned up.
    Complete,
}

/// The ramp's state, saved after every tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RampState {
    /// Plan name.
    pub plan: String,
    /// Percent of traffic on the new side, as meshplan last wrote it.
    pub weight: u8,
    /// A weight being written: saved before the write, cleared after, so a crash in between is
    /// recognised on the next tick instead of being taken for someone else's change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u8>,
    /// When `weight` was set (RFC 3339); the bake interval counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Failed checks at the current step.
    pub failed_checks: u32,
    /// Where the ramp is.
    pub phase: Phase,
    /// Why it is paused, rolled back or aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every tick, oldest first.
    #[serde(default)]
    pub history: Vec<TickRecord>,
}

/// One tick, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickRecord {
    /// When (RFC 3339).
    pub at: String,
    /// What was asked: `tick`, `pause`, `resume`, `promote`, `abort`.
    pub command: Command,
    /// What happened.
    pub outcome: Outcome,
    /// Weight before and after.
    pub from: u8,
    /// Weight after.
    pub to: u8,
    /// Gate evaluations, with every measured value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<Evaluation>,
    /// In words.
    pub note: String,
}

/// What an operator asks of a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// Evaluate and move if the ramp may.
    Tick,
    /// Hold where it is.
    Pause,
    /// Carry on after a pause, a rollback or an abort (taking the live weight as it is).
    Resume,
    /// All traffic to the new side now.
    Promote,
    /// All traffic to the old side now.
    Abort,
}

/// What a tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Moved to the next step.
    Advanced,
    /// Still baking at this step.
    Waiting,
    /// A check failed; holding at this step.
    Held,
    /// Paused (no data, drift, or asked).
    Paused,
    /// Resumed.
    Resumed,
    /// Rolled back to 0 % after too many failed checks.
    RolledBack,
    /// Sent to 0 % by an operator.
    Aborted,
    /// Sent to 100 % by an operator.
    Promoted,
    /// Finished: 100 % on the new side and healthy.
    Completed,
    /// Nothing to do (finished, rolled back or paused before).
    Unchanged,
}

impl Outcome {
    /// The exit code of `meshplan ramp`: 0 on track, 3 rolled back, 4 paused or not advancing.
    pub fn exit_code(self, phase: Phase) -> u8 {
        match (self, phase) {
            (Outcome::RolledBack, _) | (Outcome::Unchanged, Phase::RolledBack) => 3,
            (Outcome::Held | Outcome::Paused, _) | (Outcome::Unchanged, Phase::Paused) => 4,
            _ => 0,
        }
    }
}

/// What the tick should do next, before any gate is queried.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write this weight and record the outcome.
    Move {
        /// The new weight.
        to: u8,
        /// Why.
        outcome: Outcome,
        /// In words.
        note: String,
    },
    /// Change nothing but the state (phase, reason), and record.
    Record {
        /// What happened.
        outcome: Outcome,
        /// In words.
        note: String,
    },
    /// Still baking; this many seconds left.
    Wait {
        /// Seconds until the gates are evaluated.
        seconds: u64,
    },
    /// The gates decide: evaluate them and call [`judge`].
    Evaluate,
}

/// What the live entry says, read just before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    /// The new side's weight in the entry; `None` when the entry is gone or rewritten.
    pub weight: Option<u8>,
}

fn describe(weight: Option<u8>) -> String {
    weight.map_or_else(
        || "missing or no longer in the shape meshplan wrote".to_owned(),
        |w| format!("{w} % new"),
    )
}

/// Reconciles a write a crash interrupted: the live entry tells whether it happened.
pub fn reconcile(state: &mut RampState, live: Live, now: &str) {
    if let Some(pending) = state.pending.take()
        && live.weight == Some(pending)
    {
        state.weight = pending;
        state.since = Some(now.to_owned());
    }
}

/// Decides the first part of a tick: commands, drift, the phases that end a ramp, the bake time.
pub fn decide(
    state: &RampState,
    ramp: &Ramp,
    command: Command,
    live: Live,
    now: jiff::Timestamp,
) -> Step {
    let steps: Vec<u8> = ramp.steps.iter().map(|s| s.get()).collect();
    let drifted = live.weight != Some(state.weight);
    match command {
        Command::Pause => {
            return Step::Record {
                outcome: Outcome::Paused,
                note: "paused by an operator; `meshplan ramp --resume` carries on".to_owned(),
            };
        }
        Command::Resume => {
            let Some(weight) = live.weight else {
                return Step::Record {
                    outcome: Outcome::Paused,
                    note: "cannot resume: the entry is missing or rewritten; run `meshplan apply` \
                           again to restore it"
                        .to_owned(),
                };
            };
            let note = match (state.phase, drifted) {
                (_, true) => format!("resumed, taking the live weight as it is ({weight} % new)"),
                (Phase::RolledBack | Phase::Aborted, false) => {
                    "resumed: the ramp starts again from 0 %".to_owned()
                }
                _ => "resumed".to_owned(),
            };
            return Step::Move {
                to: weight,
                outcome: Outcome::Resumed,
                note,
            };
        }
        Command::Promote => {
            return Step::Move {
                to: 100,
                outcome: Outcome::Promoted,
                note: "promoted by an operator: all traffic to the new side now".to_owned(),
            };
        }
        Command::Abort => {
            return Step::Move {
                to: 0,
                outcome: Outcome::Aborted,
                note: "aborted by an operator: all traffic back to the old side".to_owned(),
            };
        }
        Command::Tick => {}
    }
    if state.phase != Phase::Ramping {
        let note = match state.phase {
            Phase::Complete => "the ramp is complete".to_owned(),
            phase => format!(
                "the ramp is {} ({}); `meshplan ramp --resume` carries on",
                serde_json::to_value(phase)
                    .expect("phases serialise")
                    .as_str()
                    .unwrap_or_default(),
                state.reason.as_deref().unwrap_or("no reason recorded")
            ),
        };
        return Step::Record {
            outcome: Outcome::Unchanged,
            note,
        };
    }
    if drifted {
        return Step::Record {
            outcome: Outcome::Paused,
            note: format!(
                "the entry reads {}, but meshplan last set {} % new: someone else changed it. \
                 meshplan does not fight; put it back, or accept it with `meshplan ramp --resume`",
                describe(live.weight),
                state.weight
            ),
        };
    }
    // At 0 % nothing reaches the new side to measure: the first step needs no gate.
    if state.weight == 0 {
        return Step::Move {
            to: steps[0],
            outcome: Outcome::Advanced,
            note: format!("ramp started: {} % of traffic to the new side", steps[0]),
        };
    }
    let since = state
        .since
        .as_deref()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .unwrap_or(now);
    let ready = since + jiff::SignedDuration::try_from(ramp.interval.0).unwrap_or_default();
    if now < ready {
        let left = ready.duration_since(now).as_secs().max(1);
        return Step::Wait {
            seconds: u64::try_from(left).unwrap_or(1),
        };
    }
    Step::Evaluate
}

/// Decides from the gates' verdicts: advance (or complete at 100 %), hold on a failed check, roll
/// back after too many, pause (or count a failure) without data.
pub fn judge(state: &RampState, ramp: &Ramp, evaluations: &[Evaluation]) -> Step {
    let failed: Vec<&str> = evaluations
        .iter()
        .filter(|e| e.verdict == Verdict::Fail)
        .map(|e| e.gate.as_str())
        .collect();
    let no_data: Vec<&str> = evaluations
        .iter()
        .filter(|e| e.verdict == Verdict::NoData)
        .map(|e| e.gate.as_str())
        .collect();
    let count_failure = |why: String| {
        let failed_checks = state.failed_checks + 1;
        if failed_checks >= ramp.max_failed_checks {
            Step::Move {
                to: 0,
                outcome: Outcome::RolledBack,
                note: format!(
                    "{why}; {failed_checks} failed checks reach `max_failed_checks` = {}: all \
                     traffic back to the old side",
                    ramp.max_failed_checks
                ),
            }
        } else {
            Step::Record {
                outcome: Outcome::Held,
                note: format!(
                    "{why}; failed check {failed_checks} of {} allowed, holding at {} %",
                    ramp.max_failed_checks, state.weight
                ),
            }
        }
    };
    if !failed.is_empty() {
        return count_failure(format!("gate(s) failed: {}", failed.join(", ")));
    }
    if !no_data.is_empty() {
        let why = format!("no data for gate(s): {}", no_data.join(", "));
        return match ramp.no_data {
            NoData::Pause => Step::Record {
                outcome: Outcome::Paused,
                note: format!(
                    "{why}; paused (`no_data = \"pause\"`): check that the new side gets traffic and Prometheus scrapes it, then `meshplan ramp --resume`"
                ),
            },
            NoData::Fail => count_failure(why),
        };
    }
    let passed = if evaluations.is_empty() {
        "no gates".to_owned()
    } else {
        "gates passed".to_owned()
    };
    if state.weight >= 100 {
        return Step::Record {
            outcome: Outcome::Completed,
            note: format!("{passed} at 100 %: the migration is complete"),
        };
    }
    let next = ramp
        .steps
        .iter()
        .map(|s| s.get())
        .find(|&s| s > state.weight)
        .unwrap_or(100);
    Step::Move {
        to: next,
        outcome: Outcome::Advanced,
        note: format!("{passed} at {} %: moving to {next} %", state.weight),
    }
}

/// Applies a decided step to the state (after its weight, if any, was written) and records it.
pub fn record(
    state: &mut RampState,
    command: Command,
    step: &Step,
    evaluations: Vec<Evaluation>,
    now: &str,
) -> TickRecord {
    let from = state.weight;
    let (outcome, note) = match step {
        Step::Move { to, outcome, note } => {
            state.weight = *to;
            state.since = Some(now.to_owned());
            (*outcome, note.clone())
        }
        Step::Record { outcome, note } => (*outcome, note.clone()),
        Step::Wait { seconds } => (
            Outcome::Waiting,
            format!(
                "baking at {} %: gates are evaluated in {seconds}s",
                state.weight
            ),
        ),
        Step::Evaluate => unreachable!("Evaluate is resolved by judge() before recording"),
    };
    match outcome {
        Outcome::Advanced => {
            state.failed_checks = 0;
        }
        Outcome::Held => state.failed_checks += 1,
        Outcome::Paused => {
            state.phase = Phase::Paused;
            state.reason = Some(note.clone());
        }
        Outcome::RolledBack => {
            state.phase = Phase::RolledBack;
            state.reason = Some(note.clone());
            state.failed_checks = 0;
        }
        Outcome::Aborted => {
            state.phase = Phase::Aborted;
            state.reason = Some(note.clone());
        }
        Outcome::Promoted | Outcome::Completed => {
            state.phase = Phase::Complete;
            state.reason = None;
        }
        Outcome::Resumed => {
            state.phase = Phase::Ramping;
            state.reason = None;
            state.failed_checks = 0;
            // The bake starts again: whatever happened meanwhile is not measured yet.
            state.since = Some(now.to_owned());
        }
        Outcome::Waiting | Outcome::Unchanged => {}
    }
    let record = TickRecord {
        at: now.to_owned(),
        command,
        outcome,
        from,
        to: state.weight,
        evaluations,
        note,
    };
    state.history.push(record.clone());
    record
}

#[cfg(test)]
mod tests;
