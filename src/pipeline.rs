//! The whole offline flow: plan → inventory → translate → strategy → step graph.

use crate::inventory::Inventory;
use crate::plan::{PlanFile, Seg, StrategyKind, Target};
use crate::steps::StepGraph;
use crate::translate::{self, Options, Translation};
use crate::{Error, strategy};

/// A plan worked out against its source.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan.
    pub plan: PlanFile,
    /// What was read.
    pub inventory: Inventory,
    /// The Istio version of it; its objects, Services and workloads have moved into `graph`.
    pub translation: Translation,
    /// The steps that carry it out.
    pub graph: StepGraph,
    /// Where the inventory was read from, for people.
    pub source: String,
}

/// Translation options as a plan sets them.
pub fn options(plan: &PlanFile) -> Options {
    let spec = &plan.spec;
    Options {
        namespaces: Some(
            spec.source
                .namespaces
                .iter()
                .map(|n| n.to_string())
                .collect(),
        ),
        mesh: Some(spec.source.mesh.clone()),
        version: spec.istio.version.clone(),
        weights: spec
            .routing
            .iter()
            .filter(|(_, r)| !r.weights.is_empty())
            .map(|(k, r)| {
                let weights = r
                    .weights
                    .iter()
                    .map(|(t, w)| (t.clone(), w.get()))
                    .collect();
                (k.clone(), weights)
            })
            .collect(),
        cluster_domain: "cluster.local".to_owned(),
    }
}

/// Reads the plan's manifests and builds its step graph, without touching a cluster.
pub fn plan_offline(plan: PlanFile, strategy: Option<StrategyKind>) -> Result<Planned, Error> {
    if plan.spec.source.manifests.is_empty() {
        return Err(Error::Unsupported(format!(
            "{}: the plan has no `source.manifests` to read offline; plan against the cluster \
             instead (`meshplan plan` does so for such plans)",
            plan.path.display()
        )));
    }
    let paths: Vec<_> = plan
        .spec
        .source
        .manifests
        .iter()
        .map(|p| plan.base_dir().join(p))
        .collect();
    let inventory = Inventory::from_paths(&paths)?;
    let source = paths
        .iter()
        .map(|p| lexical(p))
        .collect::<Vec<_>>()
        .join(", ");
    plan_with(plan, inventory, source, strategy)
}

/// Translates an inventory (from files or from a cluster) and builds the plan's step graph.
pub fn plan_with(
    plan: PlanFile,
    inventory: Inventory,
    source: String,
    strategy: Option<StrategyKind>,
) -> Result<Planned, Error> {
    let mut translation = translate::translate(&inventory, &options(&plan));
    if !translation.override_problems.is_empty() {
        let errors = translation
            .override_problems
            .iter()
            .map(|p| {
                let mut path = vec![Seg::Key("routing"), Seg::Key(&p.service)];
                if let Some(target) = &p.target {
                    path.extend([Seg::Key("weights"), Seg::Key(target)]);
                }
                plan.error_at(&path, Target::Key, p.message.clone(), Some(p.help.clone()))
            })
            .collect();
        return Err(plan.invalid(errors).into());
    }
    let kind = strategy.unwrap_or(plan.spec.strategy.kind);
    let graph = strategy::build(&plan, kind, &inventory, &mut translation)?;
    Ok(Planned {
        plan,
        inventory,
        translation,
        graph,
        source,
    })
}

/// A path with `dir/..` pairs folded away, for display only.
fn lexical(path: &std::path::Path) -> String {
    use std::path::Component;
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    parts
        .iter()
        .collect::<std::path::PathBuf>()
        .display()
        .to_string()
}
