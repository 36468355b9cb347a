//! The step graph: the migration as serialisable data (what a saved plan and the journal hold).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object::ObjectRef;
use crate::plan::{EksCluster, Install, StrategyKind};

/// A whole migration: its steps in execution order, each with its dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepGraph {
    /// Plan name.
    pub plan: String,
    /// Strategy the graph was built for.
    pub strategy: StrategyKind,
    /// Steps in a valid execution order.
    pub steps: Vec<Step>,
    /// The traffic entry a parallel-namespace migration puts in front of both sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::entry::Entry>,
}

/// One step: an action and the object changes it makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Stable identifier, e.g. `routing` or `restart-howto-k8s-http2-red`.
    pub id: String,
    /// What the step does, in a sentence.
    pub description: String,
    /// Steps that must finish first.
    pub depends_on: Vec<String>,
    /// What the engine does.
    pub action: Action,
    /// The objects it creates, changes, deletes or restarts.
    pub changes: Vec<Change>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    /// Check the source and the cluster before anything changes.
    Preflight {
        /// Namespaces in scope.
        namespaces: Vec<String>,
        /// The App Mesh mesh.
        mesh: String,
    },
    /// Make sure Istio is installed and serving.
    EnsureIstio {
        /// Existing installation, or an EKS add-on.
        install: Install,
        /// Control-plane revision, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<String>,
        /// The EKS cluster the add-on goes onto (`install = "eks-addon"`; bound from the plan,
        /// the command line or the kubeconfig context).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eks: Option<EksCluster>,
    },
    /// Server-side apply the `after` of every change.
    Apply,
    /// Set and remove namespace labels.
    Relabel {
        /// The namespace.
        namespace: String,
        /// Labels removed.
        remove: Vec<String>,
        /// Labels set.
        set: BTreeMap<String, String>,
    },
    /// Restart a Deployment so its pods are re-created (and re-injected).
    Restart {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        deployment: String,
    },
    /// Check every pod of the Deployments runs `istio-proxy` and no App Mesh `envoy`.
    VerifySidecars {
        /// Namespace.
        namespace: String,
        /// Deployment names.
        deployments: Vec<String>,
    },
    /// Delete every object in `changes`.
    Delete,
    /// Wait until Deployments just created have rolled out.
    WaitRollout {
        /// Namespace.
        namespace: String,
        /// Deployment names.
        deployments: Vec<String>,
    },
    /// Copy the Secrets in `changes` from `from` into `to` when the step runs, so their data is
    /// never part of a plan, a saved plan or the journal.
    CloneSecrets {
        /// Source namespace.
        from: String,
        /// Target namespace.
        to: String,
    },
}

/// One object change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Create, update, delete or restart.
    pub action: ChangeAction,
    /// The object.
    pub object: ObjectRef,
    /// The object before the step (absent when created or restarted); shared with the
    /// inventory it was read into.
    pub before: Option<Arc<Value>>,
    /// The object after the step (absent when deleted or restarted).
    pub after: Option<Value>,
}

/// The kinds of object change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// `+` a new object.
    Create,
    /// `~` a changed object.
    Update,
    /// `-` a removed object.
    Delete,
    /// `↻` a rollout restart.
    Restart,
}

impl ChangeAction {
    /// The symbol shown in the plan.
    pub fn symbol(self) -> &'static str {
        match self {
            ChangeAction::Create => "+",
            ChangeAction::Update => "~",
            ChangeAction::Delete => "-",
            ChangeAction::Restart => "↻",
        }
    }
}

/// How many changes of each kind a graph makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects created.
    pub create: usize,
    /// Objects changed.
    pub update: usize,
    /// Objects deleted.
    pub delete: usize,
    /// Deployments restarted.
    pub restart: usize,
}

impl Summary {
    /// True when the graph changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Summary::default()
    }
}

impl StepGraph {
    /// An in-place graph of `steps` for plan `plan`, as tests build one.
    #[cfg(test)]
    pub(crate) fn in_place(plan: &str, steps: Vec<Step>) -> Self {
        StepGraph {
            plan: plan.to_owned(),
            strategy: crate::plan::StrategyKind::InPlace,
            steps,
            entry: None,
        }
    }

    /// The namespaces the graph itself creates.
    pub fn created_namespaces(&self) -> std::collections::BTreeSet<String> {
        self.steps
            .iter()
            .flat_map(|s| &s.changes)
            .filter(|c| c.action == ChangeAction::Create && c.object.kind == "Namespace")
            .map(|c| c.object.name.clone())
            .collect()
    }

    /// Counts the changes.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in self.steps.iter().flat_map(|s| &s.changes) {
            match change.action {
                ChangeAction::Create => summary.create += 1,
                ChangeAction::Update => summary.update += 1,
                ChangeAction::Delete => summary.delete += 1,
                ChangeAction::Restart => summary.restart += 1,
            }
        }
        summary
    }
}

/// A permission a run needs: a verb on a kind, in a namespace or cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Access {
    /// Kubernetes verb, e.g. `patch`.
    pub verb: &'static str,
    /// `group/version` of the kind.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// The namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
}

impl Access {
    /// A verb on a kind, in `namespace` or cluster-wide.
    pub fn new(verb: &'static str, api_version: &str, kind: &str, namespace: Option<&str>) -> Self {
        Access {
            verb,
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
        }
    }

    fn on(verb: &'static str, object: &ObjectRef) -> Self {
        Access::new(
            verb,
            &object.api_version,
            &object.kind,
            object.namespace.as_deref(),
        )
    }
}

impl Step {
    /// The objects whose pre-images the step records (what it changes, or the namespace it
    /// relabels), restarts aside.
    pub fn touched(&self) -> Vec<ObjectRef> {
        let mut objects: Vec<ObjectRef> = self
            .changes
            .iter()
            .filter(|c| c.action != ChangeAction::Restart)
            .map(|c| c.object.clone())
            .collect();
        if let Action::Relabel { namespace, .. } = &self.action
            && objects.is_empty()
        {
            objects.push(ObjectRef::new("v1", "Namespace", None, namespace));
        }
        objects
    }
}

/// Objects by kind and namespace: the engine reads a group of several with one LIST.
pub fn by_kind(
    objects: impl IntoIterator<Item = ObjectRef>,
) -> BTreeMap<(String, String, Option<String>), Vec<ObjectRef>> {
    let mut groups: BTreeMap<_, Vec<ObjectRef>> = BTreeMap::new();
    for object in objects {
        let key = (
            object.api_version.clone(),
            object.kind.clone(),
            object.namespace.clone(),
        );
        groups.entry(key).or_default().push(object);
    }
    groups
}

impl StepGraph {
    /// Every permission executing the graph needs, and undoing it: a run that could not be rolled
    /// back should not start. Sorted, without repeats.
    pub fn access(&self) -> Vec<Access> {
        let mut needed = std::collections::BTreeSet::new();
        for step in &self.steps {
            match &step.action {
                Action::Preflight { namespaces, .. } => {
                    for namespace in namespaces {
                        let object = ObjectRef::new("v1", "Namespace", None, namespace);
                        needed.insert(Access::on("get", &object));
                    }
                }
                Action::EnsureIstio { .. } => {
                    needed.insert(Access::new(
                        "get",
                        "apps/v1",
                        "Deployment",
                        Some("istio-system"),
                    ));
                }
                Action::Relabel { namespace, .. } => {
                    let object = ObjectRef::new("v1", "Namespace", None, namespace);
                    needed.extend(["get", "patch"].map(|verb| Access::on(verb, &object)));
                }
                Action::CloneSecrets { from, .. } => {
                    needed.insert(Access::new("get", "v1", "Secret", Some(from.as_str())));
                }
                Action::Restart { namespace, .. }
                | Action::VerifySidecars { namespace, .. }
                | Action::WaitRollout { namespace, .. } => {
                    let deployments =
                        |verb| Access::new(verb, "apps/v1", "Deployment", Some(namespace.as_str()));
                    // A rollout is waited for by watching its Deployment.
                    needed.extend([
                        deployments("get"),
                        deployments("list"),
                        deployments("patch"),
                        deployments("watch"),
                    ]);
                    needed.insert(Access::new("list", "v1", "Pod", Some(namespace.as_str())));
                }
                Action::Apply | Action::Delete => {}
            }
            // The EKS add-on is reached through the EKS API with AWS credentials: no Kubernetes
            // permission covers it.
            let objects = step.changes.iter().filter(|c| !c.object.is_eks_addon());
            // A step reads the objects of a kind it touches several of with one LIST.
            let touched = step.touched().into_iter().filter(|o| !o.is_eks_addon());
            needed.extend(
                by_kind(touched)
                    .into_values()
                    .filter(|group| group.len() > 1)
                    .map(|group| Access::on("list", &group[0])),
            );
            for change in objects {
                // Reading the pre-image, acting, and the inverse a rollback performs.
                let verbs: &[&'static str] = match change.action {
                    ChangeAction::Create => &["get", "create", "patch", "delete"],
                    ChangeAction::Update | ChangeAction::Restart => &["get", "patch"],
                    ChangeAction::Delete => &["get", "delete", "create"],
                };
                needed.extend(verbs.iter().map(|verb| Access::on(verb, &change.object)));
            }
        }
        needed.into_iter().collect()
    }
}

impl StepGraph {
    /// Binds the EKS cluster the Istio add-on goes onto, naming it in the add-on's change.
    pub fn bind_eks(&mut self, cluster: &EksCluster) {
        for step in &mut self.steps {
            if let Action::EnsureIstio {
                install: Install::EksAddon,
                eks,
                ..
            } = &mut step.action
            {
                *eks = Some(cluster.clone());
                for change in &mut step.changes {
                    if change.object.is_eks_addon() {
                        change.object.namespace = Some(cluster.name.clone());
                    }
                }
            }
        }
    }

    /// The add-on step's EKS cluster, when the graph installs Istio as an add-on: `Some(None)`
    /// when no cluster is bound yet.
    pub fn addon_cluster(&self) -> Option<Option<&EksCluster>> {
        self.steps.iter().find_map(|s| match &s.action {
            Action::EnsureIstio {
                install: Install::EksAddon,
                eks,
                ..
            } => Some(eks.as_ref()),
            _ => None,
        })
    }
}

/// Why a step graph cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A step depends on a step the graph does not have.
    #[error("step `{step}` depends on `{missing}`, which is not a step of the plan")]
    UnknownDependency {
        /// The step.
        step: String,
        /// The dependency it names.
        missing: String,
    },
    /// Two steps share an id.
    #[error("two steps are called `{0}`")]
    DuplicateStep(String),
    /// The dependencies go round in a circle.
    #[error("the steps depend on each other in a cycle through `{0}`")]
    Cycle(String),
}

impl StepGraph {
    /// The steps in an order that respects every dependency (a topological sort of the DAG).
    pub fn order(&self) -> Result<Vec<usize>, GraphError> {
        use petgraph::graph::DiGraph;
        let mut dag: DiGraph<usize, ()> = DiGraph::new();
        let mut nodes = std::collections::BTreeMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            if nodes.insert(step.id.as_str(), dag.add_node(i)).is_some() {
                return Err(GraphError::DuplicateStep(step.id.clone()));
            }
        }
        for step in &self.steps {
            for dependency in &step.depends_on {
                let from = nodes.get(dependency.as_str()).ok_or_else(|| {
                    GraphError::UnknownDependency {
                        step: step.id.clone(),
                        missing: dependency.clone(),
                    }
                })?;
                dag.add_edge(*from, nodes[step.id.as_str()], ());
            }
        }
        petgraph::algo::toposort(&dag, None)
            .map(|order| order.into_iter().map(|n| dag[n]).collect())
            .map_err(|cycle| GraphError::Cycle(self.steps[dag[cycle.node_id()]].id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, deps: &[&str]) -> Step {
        Step {
            id: id.to_owned(),
            description: String::new(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            action: Action::Apply,
            changes: Vec::new(),
        }
    }

    fn graph(steps: Vec<Step>) -> StepGraph {
        StepGraph::in_place("p", steps)
    }

    #[test]
    fn access_covers_acting_and_undoing_each_change() {
        let mut apply = step("routing", &[]);
        apply.changes.push(Change {
            action: ChangeAction::Create,
            object: ObjectRef::new(
                "networking.istio.io/v1",
                "DestinationRule",
                Some("ns"),
                "dr",
            ),
            before: None,
            after: Some(serde_json::json!({})),
        });
        let mut relabel = step("relabel", &[]);
        relabel.action = Action::Relabel {
            namespace: "ns".into(),
            remove: Vec::new(),
            set: BTreeMap::new(),
        };
        let access = graph(vec![apply, relabel]).access();
        let shown: Vec<String> = access
            .iter()
            .map(|a| format!("{} {} {:?}", a.verb, a.kind, a.namespace))
            .collect();
        assert_eq!(
            shown,
            [
                "create DestinationRule Some(\"ns\")",
                "delete DestinationRule Some(\"ns\")",
                "get DestinationRule Some(\"ns\")",
                "get Namespace None",
                "patch DestinationRule Some(\"ns\")",
                "patch Namespace None",
            ]
        );
    }

    #[test]
    fn orders_respect_dependencies_and_bad_graphs_are_refused() {
        let order = graph(vec![
            step("b", &["a"]),
            step("a", &[]),
            step("c", &["a", "b"]),
        ])
        .order()
        .unwrap();
        let position = |i: usize| order.iter().position(|&o| o == i).unwrap();
        assert!(position(1) < position(0) && position(0) < position(2));
        assert_eq!(
            graph(vec![step("a", &["x"])]).order(),
            Err(GraphError::UnknownDependency {
                step: "a".into(),
                missing: "x".into()
            })
        );
        assert!(matches!(
            graph(vec![step("a", &["b"]), step("b", &["a"])]).order(),
            Err(GraphError::Cycle(_))
        ));
        assert_eq!(
            graph(vec![step("a", &[]), step("a", &[])]).order(),
            Err(GraphError::DuplicateStep("a".into()))
        );
    }
}
