//! The plan for people: one block per step, one entry per object, a unified diff each.

use std::borrow::Cow;
use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use crate::diff;
use crate::findings::{Finding, Severity};
use crate::pipeline::Planned;
use crate::steps::{Change, ChangeAction, StepGraph, Summary};

/// Colours, or none when the output is not a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    /// A palette that colours when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Palette { enabled }
    }

    // Borrowed when plain: a large plan has hundreds of thousands of diff lines.
    fn paint<'t>(&self, style: Style, text: &'t str) -> Cow<'t, str> {
        if self.enabled {
            Cow::Owned(format!("{}{text}{}", style.render(), style.render_reset()))
        } else {
            Cow::Borrowed(text)
        }
    }

    fn color<'t>(&self, color: AnsiColor, text: &'t str) -> Cow<'t, str> {
        self.paint(Style::new().fg_color(Some(color.into())), text)
    }

    fn bold<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.paint(Style::new().bold(), text)
    }
}

fn action_color(action: ChangeAction) -> AnsiColor {
    match action {
        ChangeAction::Create => AnsiColor::Green,
        ChangeAction::Update => AnsiColor::Yellow,
        ChangeAction::Delete => AnsiColor::Red,
        ChangeAction::Restart => AnsiColor::Cyan,
    }
}

/// Renders findings, one block each, most severe first within the stable order.
pub fn findings(out: &mut impl Write, findings: &[Finding], palette: Palette) {
    if findings.is_empty() {
        return;
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} ({} error, {} warning, {} info)",
        palette.bold("Findings"),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    for f in findings {
        let color = match f.severity {
            Severity::Error => AnsiColor::Red,
            Severity::Warning => AnsiColor::Yellow,
            Severity::Info => AnsiColor::Blue,
        };
        let at = if f.field.is_empty() {
            f.object.to_string()
        } else {
            format!("{} {}", f.object, f.field)
        };
        let _ = writeln!(
            out,
            "  {} {} {at}\n      {}",
            palette.color(color, &format!("{:<7}", f.severity.as_str())),
            f.code,
            f.message
        );
    }
    let _ = out.write_char('\n');
}

/// The closing line, as Terraform writes it.
pub fn summary_line(summary: Summary) -> String {
    if summary.is_empty() {
        return "No changes. The cluster already matches the plan.".to_owned();
    }
    format!(
        "Plan: {} to create, {} to change, {} to delete, {} {}.",
        summary.create,
        summary.update,
        summary.delete,
        summary.restart,
        if summary.restart == 1 {
            "restart"
        } else {
            "restarts"
        }
    )
}

/// The whole plan as text.
pub fn plan(planned: &Planned, palette: Palette) -> String {
    plan_with(planned, palette, &[])
}

/// The whole plan as text, with diffs rendered ahead: `rendered[i]`, where present, is the diff
/// of the plan's `i`-th change (steps in order, then their changes), as [`crate::diff::unified`]
/// renders it (e.g. by [`crate::engine::preview`] while it waited on the server).
pub fn plan_with(planned: &Planned, palette: Palette, rendered: &[Option<String>]) -> String {
    let mut out = String::new();
    write_plan(&mut out, planned, palette, rendered).expect("writing to a String cannot fail");
    out
}

/// Writes the whole plan as text to `out` as it goes (a large plan is not held twice), with
/// the diffs of `rendered` (see [`plan_with`]).
pub fn write_plan(
    out: &mut impl Write,
    planned: &Planned,
    palette: Palette,
    rendered: &[Option<String>],
) -> std::fmt::Result {
    let graph = &planned.graph;
    writeln!(
        out,
        "meshplan: plan {} ({}), {} objects read from {}\n",
        palette.bold(&graph.plan),
        graph.strategy.as_str(),
        planned.inventory.len(),
        planned.source
    )?;
    findings(out, &planned.translation.findings, palette);
    write_steps(out, graph, palette, rendered)
}

/// Every step of a graph, a diff per object, and the summary line.
pub fn steps(graph: &StepGraph, palette: Palette) -> String {
    let mut out = String::new();
    write_steps(&mut out, graph, palette, &[]).expect("writing to a String cannot fail");
    out
}

/// Writes every step of a graph, a diff per object, and the summary line to `out`; the diffs
/// of `rendered` (see [`plan_with`]) are taken as they are.
fn write_steps(
    out: &mut impl Write,
    graph: &StepGraph,
    palette: Palette,
    rendered: &[Option<String>],
) -> std::fmt::Result {
    let changes = || {
        graph
            .steps
            .iter()
            .flat_map(|step| &step.changes)
            .enumerate()
    };
    let diff = |(i, change): (usize, &Change)| match rendered.get(i) {
        Some(Some(diff)) => Cow::Borrowed(diff.as_str()),
        _ => Cow::Owned(change_diff(change)),
    };
    // Diffs are most of the work of a large plan: a second thread renders every other one,
    // a bounded way ahead, while this one renders the rest and writes all in order.
    std::thread::scope(|scope| {
        let (sender, received) = std::sync::mpsc::sync_channel(DIFFS_AHEAD);
        scope.spawn(move || {
            for change in changes().skip(1).step_by(2) {
                if sender.send(diff(change)).is_err() {
                    break;
                }
            }
        });
        let mut diffs = changes().map(move |change| {
            if change.0 % 2 == 0 {
                diff(change)
            } else {
                received
                    .recv()
                    .expect("the diff thread renders every other change")
            }
        });
        write_steps_with(out, graph, palette, &mut diffs)
    })
}

/// How many diffs the second rendering thread may have ready before they are written.
const DIFFS_AHEAD: usize = 64;

fn change_diff(change: &Change) -> String {
    diff::unified(change.before.as_deref(), change.after.as_ref())
}

/// Writes the steps, taking each change's diff from `diffs` (in order).
fn write_steps_with<'a>(
    out: &mut impl Write,
    graph: &StepGraph,
    palette: Palette,
    diffs: &mut impl Iterator<Item = Cow<'a, str>>,
) -> std::fmt::Result {
    let total = graph.steps.len();
    for (i, step) in graph.steps.iter().enumerate() {
        let after = if step.depends_on.is_empty() {
            String::new()
        } else {
            format!("  (after {})", step.depends_on.join(", "))
        };
        writeln!(
            out,
            "{} {}{after}\n  {}",
            palette.bold(&format!("Step {}/{total}", i + 1)),
            palette.bold(&step.id),
            step.description
        )?;
        if step.changes.is_empty() {
            writeln!(out, "  (no object changes)")?;
        }
        for change in &step.changes {
            let color = action_color(change.action);
            writeln!(
                out,
                "  {} {}",
                palette.color(color, change.action.symbol()),
                change.object
            )?;
            let diff = diffs.next().expect("one diff per change");
            for line in diff.lines() {
                let styled = if line.starts_with("+++") || line.starts_with("---") {
                    palette.bold(line)
                } else if line.starts_with('+') {
                    palette.color(AnsiColor::Green, line)
                } else if line.starts_with('-') {
                    palette.color(AnsiColor::Red, line)
                } else if line.starts_with("@@") {
                    palette.color(AnsiColor::Cyan, line)
                } else {
                    Cow::Borrowed(line)
                };
                writeln!(out, "      {styled}")?;
            }
        }
        out.write_char('\n')?;
    }
    writeln!(out, "{}", palette.bold(&summary_line(graph.summary())))
}

/// What the confirmation prompt shows right before its question: the summary, then one line per
/// step (id, what it does, how many objects), so the last screen before "yes" says it all.
pub fn confirmation(summary: &str, steps: &[(String, String, usize)], question: &str) -> String {
    let mut out = format!("\n{summary}\n");
    let width = steps.iter().map(|(id, ..)| id.len()).max().unwrap_or(0);
    for (i, (id, description, objects)) in steps.iter().enumerate() {
        let objects = match objects {
            0 => String::new(),
            1 => " (1 object)".to_owned(),
            n => format!(" ({n} objects)"),
        };
        let _ = writeln!(out, "  {:>2}. {id:<width$}  {description}{objects}", i + 1);
    }
    let _ = write!(out, "\n{question}\n  Only 'yes' will be accepted: ");
    out
}

/// The confirmation of an apply: the graph's summary and every step.
pub fn apply_confirmation(graph: &StepGraph, question: &str) -> String {
    let steps: Vec<(String, String, usize)> = graph
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.description.clone(), s.changes.len()))
        .collect();
    confirmation(&summary_line(graph.summary()), &steps, question)
}
