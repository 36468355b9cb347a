//! The plan as a pull-request comment: a summary table, the findings, one collapsible block per
//! step with a diff per object. No colour codes; the same plan always gives the same text.

use std::fmt::Write;

use crate::diff;
use crate::findings::Finding;
use crate::pipeline::Planned;

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

/// Text shown elsewhere as a Markdown code block, for commands without a Markdown layout.
pub fn code_block(text: &str) -> String {
    let mut out = String::from("```text\n");
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("```\n");
    out
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
            let diff = diff::unified(change.before.as_ref(), change.after.as_ref());
            if !diff.is_empty() {
                let _ = writeln!(out, "```diff\n{}```\n", diff);
            }
        }
        let _ = writeln!(out, "</details>\n");
    }
    let _ = writeln!(out, "**{}**", crate::report::text::summary_line(summary));
    out
}
