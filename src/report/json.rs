//! The JSON contract of `plan --format json` (documented in the README).

use serde::Serialize;
use serde_json::Value;

use crate::diff;
use crate::findings::Finding;
use crate::object::ObjectRef;
use crate::pipeline::Planned;
use crate::steps::{ChangeAction, Summary};

#[derive(Serialize)]
struct PlanJson<'a> {
    plan: &'a str,
    strategy: &'a str,
    findings: &'a [Finding],
    steps: Vec<StepJson<'a>>,
    summary: Summary,
}

#[derive(Serialize)]
struct StepJson<'a> {
    id: &'a str,
    description: &'a str,
    depends_on: &'a [String],
    changes: Vec<ChangeJson<'a>>,
}

#[derive(Serialize)]
struct ChangeJson<'a> {
    action: ChangeAction,
    object: &'a ObjectRef,
    before: Option<Value>,
    after: Option<Value>,
    diff: String,
}

/// The plan as pretty JSON, with a trailing newline.
pub fn plan(planned: &Planned) -> String {
    let graph = &planned.graph;
    let doc = PlanJson {
        plan: &graph.plan,
        strategy: graph.strategy.as_str(),
        findings: &planned.translation.findings,
        steps: graph
            .steps
            .iter()
            .map(|step| StepJson {
                id: &step.id,
                description: &step.description,
                depends_on: &step.depends_on,
                changes: step
                    .changes
                    .iter()
                    .map(|c| ChangeJson {
                        action: c.action,
                        object: &c.object,
                        before: c.before.as_deref().map(diff::normalise),
                        after: c.after.as_ref().map(diff::normalise),
                        diff: diff::unified(c.before.as_deref(), c.after.as_ref()),
                    })
                    .collect(),
            })
            .collect(),
        summary: graph.summary(),
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("the plan serialises");
    text.push('\n');
    text
}

#[derive(Serialize)]
struct TranslationJson<'a> {
    objects: Vec<Value>,
    findings: &'a [Finding],
}

/// `translate -o json`: the Istio objects and the findings.
pub fn translation(objects: &[Value], findings: &[Finding]) -> String {
    let doc = TranslationJson {
        objects: objects.iter().map(diff::normalise).collect(),
        findings,
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("the translation serialises");
    text.push('\n');
    text
}
