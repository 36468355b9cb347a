//! Every transition of the ramp state machine, without I/O.

use super::*;
use crate::gates::Verdict;
use crate::plan::{GateKind, NoData, Ramp};

fn ramp(no_data: NoData) -> Ramp {
    Ramp {
        steps: serde_json::from_str("[10, 50, 100]").unwrap(),
        interval: crate::plan::Duration(std::time::Duration::from_secs(60)),
        max_failed_checks: 2,
        no_data,
        ..Ramp::default()
    }
}

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn state(weight: u8, since: i64) -> RampState {
    RampState {
        plan: "color".into(),
        weight,
        since: Some(at(since).to_string()),
        ..RampState::default()
    }
}

fn evaluation(verdict: Verdict) -> Evaluation {
    Evaluation {
        gate: "success-rate".into(),
        kind: GateKind::SuccessRate,
        query: "q".into(),
        value: Some(0.5),
        baseline: None,
        min: Some(0.99),
        max: None,
        tolerance: None,
        verdict,
        message: None,
        at: at(0).to_string(),
    }
}

fn live(weight: u8) -> Live {
    Live {
        weight: Some(weight),
    }
}

/// Decides, judges with `verdict` when asked, and records.
fn run(
    state: &mut RampState,
    ramp: &Ramp,
    command: Command,
    live: Live,
    now: i64,
    verdict: Verdict,
) -> TickRecord {
    let mut step = decide(state, ramp, command, live, at(now));
    let mut evaluations = Vec::new();
    if step == Step::Evaluate {
        evaluations = vec![evaluation(verdict)];
        step = judge(state, ramp, &evaluations);
    }
    record(state, command, &step, evaluations, &at(now).to_string())
}

#[test]
fn a_healthy_ramp_starts_without_gates_bakes_advances_and_completes() {
    let ramp = ramp(NoData::Pause);
    let mut s = RampState::default();
    let r = run(&mut s, &ramp, Command::Tick, live(0), 0, Verdict::Pass);
    assert_eq!((r.outcome, r.from, r.to), (Outcome::Advanced, 0, 10));
    assert!(r.evaluations.is_empty(), "nothing to measure at 0 %");
    // Within the bake interval: waiting, no gate queried.
    assert_eq!(
        decide(&s, &ramp, Command::Tick, live(10), at(30)),
        Step::Wait { seconds: 30 }
    );
    let r = run(&mut s, &ramp, Command::Tick, live(10), 30, Verdict::Pass);
    assert_eq!((r.outcome, s.weight), (Outcome::Waiting, 10));
    let r = run(&mut s, &ramp, Command::Tick, live(10), 60, Verdict::Pass);
    assert_eq!((r.outcome, r.to), (Outcome::Advanced, 50));
    assert_eq!(r.evaluations.len(), 1, "the measured values are kept");
    let r = run(&mut s, &ramp, Command::Tick, live(50), 120, Verdict::Pass);
    assert_eq!(r.to, 100);
    let r = run(&mut s, &ramp, Command::Tick, live(100), 180, Verdict::Pass);
    assert_eq!((r.outcome, s.phase), (Outcome::Completed, Phase::Complete));
    assert_eq!(r.outcome.exit_code(s.phase), 0);
    let r = run(&mut s, &ramp, Command::Tick, live(100), 240, Verdict::Pass);
    assert_eq!(r.outcome, Outcome::Unchanged);
    assert_eq!(s.history.len(), 6);
}

#[test]
fn failed_checks_hold_then_roll_back_to_zero() {
    let ramp = ramp(NoData::Pause);
    let mut s = state(50, 0);
    let r = run(&mut s, &ramp, Command::Tick, live(50), 60, Verdict::Fail);
    assert_eq!(
        (r.outcome, s.weight, s.failed_checks),
        (Outcome::Held, 50, 1)
    );
    assert_eq!(r.outcome.exit_code(s.phase), 4);
    let r = run(&mut s, &ramp, Command::Tick, live(50), 120, Verdict::Fail);
    assert_eq!(
        (r.outcome, r.to, s.phase),
        (Outcome::RolledBack, 0, Phase::RolledBack)
    );
    assert_eq!(r.outcome.exit_code(s.phase), 3);
    assert!(r.note.contains("max_failed_checks"), "{}", r.note);
    // Rolled back stays rolled back: a CronJob tick does not start it again.
    let r = run(&mut s, &ramp, Command::Tick, live(0), 180, Verdict::Pass);
    assert_eq!(
        (r.outcome, r.outcome.exit_code(s.phase)),
        (Outcome::Unchanged, 3)
    );
    // A pass between failures starts the count again.
    let mut s = state(50, 0);
    run(&mut s, &ramp, Command::Tick, live(50), 60, Verdict::Fail);
    run(&mut s, &ramp, Command::Tick, live(50), 120, Verdict::Pass);
    assert_eq!((s.weight, s.failed_checks), (100, 0));
}

#[test]
fn no_data_pauses_or_counts_as_a_failure_as_the_plan_says() {
    let mut s = state(10, 0);
    let r = run(
        &mut s,
        &ramp(NoData::Pause),
        Command::Tick,
        live(10),
        60,
        Verdict::NoData,
    );
    assert_eq!(
        (r.outcome, s.phase, s.weight),
        (Outcome::Paused, Phase::Paused, 10)
    );
    assert_eq!(r.outcome.exit_code(s.phase), 4);
    let r = run(
        &mut s,
        &ramp(NoData::Pause),
        Command::Tick,
        live(10),
        120,
        Verdict::Pass,
    );
    assert_eq!(
        (r.outcome, r.outcome.exit_code(s.phase)),
        (Outcome::Unchanged, 4)
    );
    let mut s = state(10, 0);
    let r = run(
        &mut s,
        &ramp(NoData::Fail),
        Command::Tick,
        live(10),
        60,
        Verdict::NoData,
    );
    assert_eq!((r.outcome, s.failed_checks), (Outcome::Held, 1));
}

#[test]
fn weights_someone_else_changed_pause_the_ramp_and_resume_takes_them() {
    let ramp = ramp(NoData::Pause);
    let mut s = state(10, 0);
    let r = run(&mut s, &ramp, Command::Tick, live(30), 60, Verdict::Pass);
    assert_eq!(
        (r.outcome, s.phase, s.weight),
        (Outcome::Paused, Phase::Paused, 10)
    );
    assert!(r.note.contains("someone else changed it"), "{}", r.note);
    let missing = Live { weight: None };
    let r = run(&mut s, &ramp, Command::Resume, missing, 90, Verdict::Pass);
    assert_eq!((r.outcome, s.phase), (Outcome::Paused, Phase::Paused));
    let r = run(&mut s, &ramp, Command::Resume, live(30), 120, Verdict::Pass);
    assert_eq!(
        (r.outcome, s.phase, s.weight),
        (Outcome::Resumed, Phase::Ramping, 30)
    );
    // The bake starts again at the adopted weight; then the next step above it.
    assert_eq!(
        decide(&s, &ramp, Command::Tick, live(30), at(150)),
        Step::Wait { seconds: 30 }
    );
    let r = run(&mut s, &ramp, Command::Tick, live(30), 180, Verdict::Pass);
    assert_eq!(r.to, 50);
}

#[test]
fn operators_pause_resume_promote_and_abort() {
    let ramp = ramp(NoData::Pause);
    let mut s = state(10, 0);
    let r = run(&mut s, &ramp, Command::Pause, live(10), 10, Verdict::Pass);
    assert_eq!((r.outcome, s.phase), (Outcome::Paused, Phase::Paused));
    let r = run(&mut s, &ramp, Command::Resume, live(10), 20, Verdict::Pass);
    assert_eq!(
        (r.outcome, s.phase, s.weight),
        (Outcome::Resumed, Phase::Ramping, 10)
    );
    let r = run(&mut s, &ramp, Command::Abort, live(10), 30, Verdict::Pass);
    assert_eq!(
        (r.outcome, r.to, s.phase),
        (Outcome::Aborted, 0, Phase::Aborted)
    );
    assert_eq!(
        r.outcome.exit_code(s.phase),
        0,
        "an abort that was asked for succeeded"
    );
    let r = run(&mut s, &ramp, Command::Resume, live(0), 40, Verdict::Pass);
    assert!(r.note.contains("starts again from 0 %"), "{}", r.note);
    let r = run(&mut s, &ramp, Command::Tick, live(0), 50, Verdict::Pass);
    assert_eq!(r.to, 10);
    let r = run(&mut s, &ramp, Command::Promote, live(10), 60, Verdict::Pass);
    assert_eq!(
        (r.outcome, r.to, s.phase),
        (Outcome::Promoted, 100, Phase::Complete)
    );
}

#[test]
fn a_crash_between_writing_the_weight_and_saving_the_state_is_recognised() {
    let ramp = ramp(NoData::Pause);
    // The weight was written; the state still says 10 with 50 pending.
    let mut s = state(10, 0);
    s.pending = Some(50);
    reconcile(&mut s, live(50), &at(70).to_string());
    assert_eq!((s.weight, s.pending), (50, None));
    assert_eq!(
        decide(&s, &ramp, Command::Tick, live(50), at(80)),
        Step::Wait { seconds: 50 },
        "the bake starts from the recovery, not from the lost save"
    );
    // The write never happened: the entry still says 10, and that is no drift.
    let mut s = state(10, 0);
    s.pending = Some(50);
    reconcile(&mut s, live(10), &at(70).to_string());
    assert_eq!((s.weight, s.pending), (10, None));
    assert_eq!(
        decide(&s, &ramp, Command::Tick, live(10), at(70)),
        Step::Evaluate
    );
}
