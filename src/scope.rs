//! The safety rules of a run, checked before anything is written: every object a step writes or
//! deletes lies in the plan's scope, and deletions touch only App Mesh objects in scope or objects
//! the run itself creates. A saved plan or a journal edited by hand is refused here, whole.

use std::collections::BTreeSet;

use crate::object::ObjectRef;
use crate::plan::PlanSpec;
use crate::state::PreImage;
use crate::steps::{Action, ChangeAction, Step, StepGraph};
use crate::strategy::ISTIO_ROOT_NAMESPACE;

/// What a run of one plan may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Namespaces whose objects a run may write: the source namespaces, and the target namespace
    /// of a parallel-namespace migration.
    pub namespaces: BTreeSet<String>,
    /// The App Mesh `Mesh` being migrated (cluster-scoped; `cleanup.delete_mesh` deletes it).
    pub mesh: String,
}

/// A step that would reach outside the plan's scope; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A step writes an object outside the scope.
    #[error(
        "step `{step}` writes {object}, which is outside the plan's scope ({scope}); nothing was \
         changed. A saved plan or journal edited by hand is refused: plan again with `meshplan plan`"
    )]
    OutOfScope {
        /// The step.
        step: String,
        /// The object.
        object: String,
        /// What the scope is, in words.
        scope: String,
    },
    /// A step deletes an object meshplan may not delete.
    #[error(
        "step `{step}` deletes {object}: meshplan deletes only App Mesh objects in scope and \
         objects the run creates; nothing was changed"
    )]
    Deletes {
        /// The step.
        step: String,
        /// The object.
        object: String,
    },
    /// A change names one object and carries another.
    #[error("step `{step}` changes {object} but carries the object {carried}; nothing was changed")]
    Mismatch {
        /// The step.
        step: String,
        /// The object the change names.
        object: String,
        /// The object its content names.
        carried: String,
    },
}

/// True for App Mesh objects.
fn is_appmesh(object: &ObjectRef) -> bool {
    object.group() == crate::appmesh::GROUP
}

/// True for Istio configuration (networking, security, telemetry).
fn is_istio_config(object: &ObjectRef) -> bool {
    object.group().ends_with(".istio.io")
}

impl Scope {
    /// The scope of a plan.
    pub fn of(spec: &PlanSpec) -> Scope {
        let mut namespaces: BTreeSet<String> = spec
            .source
            .namespaces
            .iter()
            .map(|n| n.to_string())
            .collect();
        namespaces.extend(
            spec.strategy
                .target_namespace
                .as_ref()
                .map(|n| n.to_string()),
        );
        Scope {
            namespaces,
            mesh: spec.source.mesh.clone(),
        }
    }

    fn describe(&self) -> String {
        let names: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        format!(
            "objects in namespaces {names}, the Namespaces {names} themselves, Istio \
             configuration in {ISTIO_ROOT_NAMESPACE}, and the App Mesh Mesh {}",
            self.mesh,
            names = names.join(", ")
        )
    }

    /// True when a run may write `object`.
    fn contains(&self, object: &ObjectRef) -> bool {
        match &object.namespace {
            // The EKS add-on is no Kubernetes object; its "namespace" is the EKS cluster.
            _ if object.is_eks_addon() => true,
            Some(ns) => {
                self.namespaces.contains(ns)
                    || (ns == ISTIO_ROOT_NAMESPACE && is_istio_config(object))
            }
            None => {
                (object.api_version == "v1"
                    && object.kind == "Namespace"
                    && self.namespaces.contains(&object.name))
                    || (is_appmesh(object) && object.kind == "Mesh" && object.name == self.mesh)
            }
        }
    }

    fn in_scope(&self, step: &Step, object: &ObjectRef) -> Result<(), ScopeError> {
        if self.contains(object) {
            return Ok(());
        }
        Err(ScopeError::OutOfScope {
            step: step.id.clone(),
            object: object.to_string(),
            scope: self.describe(),
        })
    }

    fn namespace(&self, step: &Step, namespace: &str) -> Result<(), ScopeError> {
        self.in_scope(step, &ObjectRef::new("v1", "Namespace", None, namespace))
    }

    /// Refuses a graph that writes outside the scope, deletes what it may not, or whose changes
    /// carry other objects than they name.
    pub fn check(&self, graph: &StepGraph) -> Result<(), ScopeError> {
        let created: BTreeSet<&ObjectRef> = graph
            .steps
            .iter()
            .flat_map(|s| &s.changes)
            .filter(|c| c.action == ChangeAction::Create)
            .map(|c| &c.object)
            .collect();
        for step in &graph.steps {
            match &step.action {
                Action::Relabel { namespace, .. }
                | Action::Restart { namespace, .. }
                | Action::VerifySidecars { namespace, .. }
                | Action::WaitRollout { namespace, .. } => self.namespace(step, namespace)?,
                Action::CloneSecrets { from, to } => {
                    self.namespace(step, from)?;
                    self.namespace(step, to)?;
                }
                Action::Preflight { .. }
                | Action::EnsureIstio { .. }
                | Action::Apply
                | Action::Delete => {}
            }
            for change in &step.changes {
                self.in_scope(step, &change.object)?;
                if let Some(after) = &change.after
                    && !change.object.is_eks_addon()
                    && ObjectRef::of(after) != change.object
                {
                    return Err(ScopeError::Mismatch {
                        step: step.id.clone(),
                        object: change.object.to_string(),
                        carried: ObjectRef::of(after).to_string(),
                    });
                }
                // A Delete step deletes every object it lists, whatever the change says.
                let deletes =
                    change.action == ChangeAction::Delete || step.action == Action::Delete;
                if deletes && !is_appmesh(&change.object) && !created.contains(&change.object) {
                    return Err(ScopeError::Deletes {
                        step: step.id.clone(),
                        object: change.object.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Refuses to restore a pre-image outside the scope, or to delete (the pre-image says the
    /// object did not exist) an object the step did not create.
    pub fn check_restore(&self, step: &Step, image: &PreImage) -> Result<(), ScopeError> {
        self.in_scope(step, &image.object)?;
        let created = step
            .changes
            .iter()
            .any(|c| c.object == image.object && c.action == ChangeAction::Create);
        if image.before.is_none() && !created && !image.object.is_eks_addon() {
            return Err(ScopeError::Deletes {
                step: step.id.clone(),
                object: image.object.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanFile;
    use crate::state::PreImage;

    fn color() -> (Scope, StepGraph) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let plan = PlanFile::load(&root.join("plans/color.toml")).unwrap();
        let scope = Scope::of(&plan.spec);
        let graph = crate::pipeline::plan_offline(plan, None).unwrap().graph;
        (scope, graph)
    }

    #[test]
    fn the_plans_own_graphs_are_in_scope() {
        let (scope, graph) = color();
        assert_eq!(scope.check(&graph), Ok(()));
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let plan = PlanFile::load(&root.join("plans/color-parallel.toml")).unwrap();
        let scope = Scope::of(&plan.spec);
        let graph = crate::pipeline::plan_offline(plan, None).unwrap().graph;
        assert_eq!(scope.check(&graph), Ok(()));
    }

    #[test]
    fn writes_outside_the_scope_and_foreign_deletions_are_refused() {
        let (scope, graph) = color();
        let step = |graph: &StepGraph, id: &str| -> usize {
            graph.steps.iter().position(|s| s.id == id).unwrap()
        };

        let mut relabel = graph.clone();
        let i = step(&relabel, "relabel-howto-k8s-http2");
        relabel.steps[i].action = Action::Relabel {
            namespace: "kube-system".into(),
            remove: Vec::new(),
            set: Default::default(),
        };
        assert!(matches!(
            scope.check(&relabel),
            Err(ScopeError::OutOfScope { object, .. }) if object == "Namespace kube-system"
        ));

        let mut cluster_wide = graph.clone();
        let i = step(&cluster_wide, "routing");
        let change = &mut cluster_wide.steps[i].changes[0];
        change.object = ObjectRef::new("rbac.authorization.k8s.io/v1", "ClusterRole", None, "x");
        change.after = None;
        assert!(matches!(
            scope.check(&cluster_wide),
            Err(ScopeError::OutOfScope { object, .. }) if object == "ClusterRole x"
        ));

        // The delete step lists a Service: not App Mesh, not created by the run.
        let mut delete = graph.clone();
        let i = step(&delete, "delete-appmesh");
        let mut service = delete.steps[i].changes[0].clone();
        service.object = ObjectRef::new("v1", "Service", Some("howto-k8s-http2"), "color");
        delete.steps[i].changes.push(service);
        assert_eq!(
            scope.check(&delete),
            Err(ScopeError::Deletes {
                step: "delete-appmesh".into(),
                object: "Service howto-k8s-http2/color".into()
            })
        );
    }

    #[test]
    fn a_rollback_deletes_only_what_the_step_created() {
        let (scope, graph) = color();
        let routing = graph.steps.iter().find(|s| s.id == "routing").unwrap();
        let created = routing
            .changes
            .iter()
            .find(|c| c.action == ChangeAction::Create)
            .unwrap();
        let absent = |object: &ObjectRef| PreImage {
            object: object.clone(),
            before: None,
        };
        assert_eq!(
            scope.check_restore(routing, &absent(&created.object)),
            Ok(())
        );
        // The Service existed before; a journal saying otherwise is not believed.
        let service = ObjectRef::new("v1", "Service", Some("howto-k8s-http2"), "color");
        assert!(matches!(
            scope.check_restore(routing, &absent(&service)),
            Err(ScopeError::Deletes { .. })
        ));
    }
}
