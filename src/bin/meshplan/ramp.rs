//! `ramp` and `cronjob`: moving traffic between the two sides of a parallel-namespace migration.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meshplan::gates::{Evaluation, Verdict};
use meshplan::plan::PlanFile;
use meshplan::ramp::tick::{self, TickOptions, TickReport};
use meshplan::ramp::{Command, Outcome, Phase, RampState};
use meshplan::report::Format;

use super::run::{connect, failure, runtime, store};
use super::{ClusterArgs, Failure, boxed, exit, print};

/// How `ramp` runs: one tick, ticks until the ramp ends, or what one tick would do.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Tick until the ramp completes, rolls back or pauses.
    pub watch: bool,
    /// Show what the tick would do; write nothing.
    pub dry_run: bool,
}

/// `meshplan ramp`.
pub fn ramp(
    path: &Path,
    args: &ClusterArgs,
    command: Command,
    mode: Mode,
    allow_delete: bool,
    format: Format,
) -> Result<u8, Failure> {
    let plan = PlanFile::load(path).map_err(boxed)?;
    let interval = plan.spec.ramp.clone().unwrap_or_default().interval.0;
    runtime().block_on(async {
        let cluster = connect(&plan, args).await?;
        let store = store(&plan, Some(&cluster));
        let stop = Arc::new(AtomicBool::new(false));
        let options = TickOptions { allow_delete };
        loop {
            let report = if mode.dry_run {
                tick::dry_run(&cluster, &plan, &store, command, options).await
            } else {
                tick::tick(&cluster, &plan, &store, command, options).await
            }
            .map_err(failure)?;
            print(&render(&plan.name, &report, format));
            if mode.dry_run {
                eprintln!(
                    "Dry run: no weight, no state written ({} unchanged), no lock taken.",
                    store.location(meshplan::ramp::RAMP)
                );
            }
            if !mode.watch || report.state.phase != Phase::Ramping {
                return Ok(report.exit_code());
            }
            let wait = match report.record.outcome {
                Outcome::Waiting => Duration::from_secs(
                    report
                        .state
                        .since
                        .as_deref()
                        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                        .map(|since| {
                            let ready = since
                                + jiff::SignedDuration::try_from(interval).unwrap_or_default();
                            ready
                                .duration_since(jiff::Timestamp::now())
                                .as_secs()
                                .max(1)
                                .unsigned_abs()
                        })
                        .unwrap_or(1),
                ),
                _ => interval,
            };
            let what = format!("baking at {} %: next tick", report.state.weight);
            let countdown = super::progress::countdown(wait, &what);
            tokio::select! {
                _ = countdown => {}
                _ = tokio::signal::ctrl_c() => {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            if stop.load(Ordering::SeqCst) {
                eprintln!("Interrupted between ticks; the ramp state is saved.");
                return Ok(exit::INTERRUPTED);
            }
        }
    })
}

fn verdict_mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✓",
        Verdict::Fail => "✗",
        Verdict::NoData => "?",
    }
}

/// One evaluation in a line or two: verdict, value against threshold, time, and the query.
pub fn evaluation_lines(e: &Evaluation) -> String {
    let value = e.shown_value();
    let limits = e.limits();
    let mut out = format!(
        "    {} {}: {value} ({}) at {}\n",
        verdict_mark(e.verdict),
        e.gate,
        limits.join(", "),
        e.at
    );
    if let Some(message) = &e.message {
        out.push_str(&format!("        {message}\n"));
    }
    for line in e.query.lines() {
        out.push_str(&format!("        query: {line}\n"));
    }
    out
}

fn phase_name(phase: Phase) -> String {
    serde_json::to_value(phase)
        .expect("phases serialise")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn render(plan: &str, report: &TickReport, format: Format) -> String {
    let record = &report.record;
    let outcome = serde_json::to_value(record.outcome).expect("outcomes serialise");
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "plan": plan,
                "at": record.at,
                "command": record.command,
                "outcome": outcome,
                "from": record.from,
                "to": record.to,
                "phase": report.state.phase,
                "failed_checks": report.state.failed_checks,
                "note": record.note,
                "evaluations": record.evaluations,
                "cleanup": report.cleanup,
                "dry_run": report.dry_run,
            });
            format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).expect("reports serialise")
            )
        }
        Format::Markdown => meshplan::report::markdown::ramp_tick(plan, report),
        Format::Text => {
            let mut out = format!(
                "{}Ramp {plan}: {} % → {} % new ({}; phase {})\n  {}\n",
                if report.dry_run {
                    "Dry run (nothing written): "
                } else {
                    ""
                },
                record.from,
                record.to,
                outcome.as_str().unwrap_or_default(),
                phase_name(report.state.phase),
                record.note
            );
            for evaluation in &record.evaluations {
                out.push_str(&evaluation_lines(evaluation));
            }
            out
        }
    }
}

/// The ramp section of `meshplan status`.
pub fn status_lines(state: &RampState) -> String {
    let mut out = format!(
        "Ramp: {} % new, {}{}, {} failed check(s){}\n",
        state.weight,
        phase_name(state.phase),
        state
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        state.failed_checks,
        state
            .since
            .as_ref()
            .map(|s| format!(", at this weight since {s}"))
            .unwrap_or_default()
    );
    for record in &state.history {
        out.push_str(&format!(
            "  {} {:<11} {:>3} % → {:>3} %  {}\n",
            record.at,
            serde_json::to_value(record.outcome)
                .expect("outcomes serialise")
                .as_str()
                .unwrap_or_default(),
            record.from,
            record.to,
            record.note
        ));
        for evaluation in &record.evaluations {
            out.push_str(&evaluation_lines(evaluation));
        }
    }
    out
}

/// `meshplan cronjob`.
pub fn cronjob(
    path: &Path,
    image: &str,
    schedule: &str,
    namespace: Option<&str>,
) -> Result<u8, Failure> {
    let plan = PlanFile::load(path).map_err(boxed)?;
    let text = meshplan::cronjob::manifests(&plan, image, schedule, namespace).map_err(boxed)?;
    print(&text);
    Ok(exit::OK)
}
