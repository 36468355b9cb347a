//! The plan as a pull-request comment: a summary table, the findings, one collapsible block per
//! step with a diff per object. No colour codes; the same plan always gives the same text.

use std::fmt::Write;

use serde_json::Value;

use crate::diff;
use crate::findings::Finding;
use crate::gates::{Evaluation, Verdict};
use crate::object::ObjectRef;
use crate::pipeline::Planned;
use crate::ramp::RampState;
use crate::ramp::tick::TickReport;
use crate::state::{Holder, Journal};

/// Escapes what would break a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Escapes what GitHub would read as HTML inside `<summary>`.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn findings(out: &mut String, findings: &[Finding]) {
    if findings.is_empty() {
        let _ = writeln!(out, "No findings.\n");
        return;
    }
    let _ = writeln!(out, "### Findings\n");
    let _ = writeln!(out, "| Severity | Code | Object | Message |");
    let _ = writeln!(out, "|---|---|---|---|");
    for f in findings {
        let at = if f.field.is_empty() {
            f.object.to_string()
        } else {
            format!("{} `{}`", f.object, f.field)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            f.severity.as_str(),
            f.code,
            cell(&at),
            cell(&f.message)
        );
    }
    out.push('\n');
}

/// The whole plan as Markdown.
pub fn plan(planned: &Planned) -> String {
    let graph = &planned.graph;
    let summary = graph.summary();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## meshplan: plan `{}` ({})\n",
        graph.plan,
        graph.strategy.as_str()
    );
    let _ = writeln!(
        out,
        "| Create | Change | Delete | Restart | Strategy | Source |\n|---:|---:|---:|---:|---|---|"
    );
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} ({} objects) |\n",
        summary.create,
        summary.update,
        summary.delete,
        summary.restart,
        graph.strategy.as_str(),
        cell(&planned.source),
        planned.inventory.len()
    );
    findings(&mut out, &planned.translation.findings);
    let _ = writeln!(out, "### Steps\n");
    let total = graph.steps.len();
    for (i, step) in graph.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "<details><summary>Step {}/{total} <code>{}</code> — {}</summary>\n",
            i + 1,
            html(&step.id),
            html(&step.description)
        );
        if !step.depends_on.is_empty() {
            let _ = writeln!(out, "After: {}\n", step.depends_on.join(", "));
        }
        if step.changes.is_empty() {
            let _ = writeln!(out, "No object changes.\n");
        }
        for change in &step.changes {
            let _ = writeln!(out, "`{}` {}\n", change.action.symbol(), change.object);
            let diff = diff::unified(change.before.as_deref(), change.after.as_ref());
            if !diff.is_empty() {
                let _ = writeln!(out, "```diff\n{}```\n", diff);
            }
        }
        let _ = writeln!(out, "</details>\n");
    }
    let _ = writeln!(out, "**{}**", crate::report::text::summary_line(summary));
    out
}

/// A string enum's serialised name, e.g. `rolled-back`.
fn name_of(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// One gate evaluation as a collapsible block: verdict and value in the summary, the query inside.
fn evaluation(out: &mut String, e: &Evaluation) {
    let mark = match e.verdict {
        Verdict::Pass => "✅ pass",
        Verdict::Fail => "❌ fail",
        Verdict::NoData => "❔ no data",
    };
    let value = e.shown_value();
    let limits = e.limits();
    let _ = writeln!(
        out,
        "<details><summary>{mark} <code>{}</code>: {value} ({})</summary>\n",
        html(&e.gate),
        html(&limits.join(", "))
    );
    if let Some(message) = &e.message {
        let _ = writeln!(out, "{message}\n");
    }
    let _ = writeln!(
        out,
        "At {}.\n\n```promql\n{}\n```\n\n</details>\n",
        e.at, e.query
    );
}

/// One ramp tick as a pull-request comment: a table of the move, the note, a block per gate.
pub fn ramp_tick(plan: &str, report: &TickReport) -> String {
    let record = &report.record;
    let mut out = String::new();
    let dry = if report.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "## meshplan: ramp `{plan}` — {}{dry}\n",
        name_of(record.outcome)
    );
    let _ = writeln!(
        out,
        "| From | To | Outcome | Phase | Failed checks | At |\n|---:|---:|---|---|---:|---|"
    );
    let _ = writeln!(
        out,
        "| {} % | {} % | {} | {} | {} | {} |\n",
        record.from,
        record.to,
        name_of(record.outcome),
        name_of(report.state.phase),
        report.state.failed_checks,
        record.at
    );
    let _ = writeln!(out, "{}\n", record.note);
    for e in &record.evaluations {
        evaluation(&mut out, e);
    }
    out
}

/// What `meshplan status` shows.
pub struct Status<'a> {
    /// Plan name.
    pub plan: &'a str,
    /// Where the journal lives.
    pub journal_location: &'a str,
    /// The current run, if any.
    pub journal: Option<&'a Journal>,
    /// Where the lock lives.
    pub lock_location: &'a str,
    /// Who holds the lock.
    pub holder: Option<&'a Holder>,
    /// The ramp, if one started.
    pub ramp: Option<&'a RampState>,
}

/// `meshplan status` as a pull-request comment: a table of steps, the lock, the ramp's history
/// with a collapsible block per tick that evaluated gates.
pub fn status(status: &Status<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## meshplan: status of `{}`\n\nJournal: `{}`\n",
        status.plan, status.journal_location
    );
    match status.journal {
        None => {
            let _ = writeln!(out, "No run yet: `meshplan apply` starts one.\n");
        }
        Some(journal) => {
            let _ = writeln!(
                out,
                "| Step | State | Started | Finished | Error |\n|---|---|---|---|---|"
            );
            for step in &journal.graph.steps {
                let Some(record) = journal.steps.get(&step.id) else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} |",
                    step.id,
                    name_of(record.state),
                    record.started_at.as_deref().unwrap_or(""),
                    record.finished_at.as_deref().unwrap_or(""),
                    cell(record.error.as_deref().unwrap_or(""))
                );
            }
            out.push('\n');
        }
    }
    match status.holder {
        Some(h) => {
            let _ = writeln!(
                out,
                "Lock (`{}`): held by run `{}` (pid {} on {}, since {}).\n",
                status.lock_location, h.id, h.pid, h.host, h.since
            );
        }
        None => {
            let _ = writeln!(out, "Lock (`{}`): free.\n", status.lock_location);
        }
    }
    if let Some(ramp) = status.ramp {
        let _ = writeln!(
            out,
            "### Ramp: {} % new, {}{}\n",
            ramp.weight,
            name_of(ramp.phase),
            ramp.reason
                .as_ref()
                .map(|r| format!(" ({})", cell(r)))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "| At | Outcome | From | To | Note |\n|---|---|---:|---:|---|"
        );
        for record in &ramp.history {
            let _ = writeln!(
                out,
                "| {} | {} | {} % | {} % | {} |",
                record.at,
                name_of(record.outcome),
                record.from,
                record.to,
                cell(&record.note)
            );
        }
        out.push('\n');
        for record in ramp.history.iter().filter(|r| !r.evaluations.is_empty()) {
            let _ = writeln!(out, "Gates at {}:\n", record.at);
            for e in &record.evaluations {
                evaluation(&mut out, e);
            }
        }
    }
    out
}

/// A translation as a pull-request comment: the findings, then one collapsible YAML block per
/// Istio object.
pub fn translation(objects: &[Value], findings_list: &[Finding]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## meshplan: translation ({} Istio objects)\n",
        objects.len()
    );
    findings(&mut out, findings_list);
    for object in objects {
        let name = ObjectRef::of(object).to_string();
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code></summary>\n\n```yaml\n{}```\n\n</details>\n",
            html(&name),
            diff::to_yaml(object)
        );
    }
    out
}
