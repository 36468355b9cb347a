//! The journal: what each step of a run did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JOURNAL, StateError, Store};
use crate::object::ObjectRef;
use crate::steps::StepGraph;

/// The progress of one run of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// Plan name.
    pub plan: String,
    /// Fingerprint of the plan text the run executes.
    pub fingerprint: String,
    /// The steps, as planned when the run began: a resumed run executes exactly these, even
    /// though the cluster (the source of a new plan) has changed under the first attempt.
    pub graph: StepGraph,
    /// Per step id.
    pub steps: BTreeMap<String, StepRecord>,
}

/// What happened to one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Where the step is.
    pub state: StepState,
    /// When it started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The objects as they were before the step touched them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_images: Vec<PreImage>,
}

/// States of a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Not started.
    #[default]
    Pending,
    /// Started; a crash here means "observe again before acting".
    Running,
    /// Finished and verified.
    Done,
    /// Failed; the error says why.
    Failed,
    /// Undone by a rollback.
    RolledBack,
}

/// An object before a step touched it (`None`: it did not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreImage {
    /// The object.
    pub object: ObjectRef,
    /// Its content before, server-set fields removed.
    pub before: Option<Value>,
}

impl Journal {
    /// A journal with every step of `graph` pending.
    pub fn new(graph: &StepGraph, fingerprint: &str) -> Self {
        Journal {
            plan: graph.plan.clone(),
            fingerprint: fingerprint.to_owned(),
            graph: graph.clone(),
            steps: graph
                .steps
                .iter()
                .map(|s| (s.id.clone(), StepRecord::default()))
                .collect(),
        }
    }

    /// Reads the journal from `store`; `None` when there is none yet. A journal of another plan
    /// version is refused rather than resumed against the wrong steps.
    pub async fn load(store: &Store, fingerprint: &str) -> Result<Option<Journal>, StateError> {
        let Some(text) = store.read(JOURNAL).await? else {
            return Ok(None);
        };
        let location = || store.location(JOURNAL);
        let journal: Journal = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            location: location(),
            message: e.to_string(),
        })?;
        if journal.fingerprint != fingerprint {
            return Err(StateError::PlanChanged {
                location: location(),
                found: journal.fingerprint,
                expected: fingerprint.to_owned(),
            });
        }
        Ok(Some(journal))
    }

    /// Writes the journal (atomically to a file; with a precondition to a ConfigMap).
    pub async fn save(&self, store: &Store) -> Result<(), StateError> {
        let mut text = serde_json::to_string_pretty(self).expect("journals serialise");
        text.push('\n');
        store.write(JOURNAL, &text).await
    }

    /// The record of a step (created pending when unknown).
    pub fn step(&mut self, id: &str) -> &mut StepRecord {
        self.steps.entry(id.to_owned()).or_default()
    }

    /// True when every step is done.
    pub fn complete(&self) -> bool {
        self.steps.values().all(|s| s.state == StepState::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "meshplan-journal-{}-{}",
            std::process::id(),
            std::thread::current()
                .name()
                .unwrap_or("t")
                .replace(':', "_")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn journals_round_trip_and_refuse_another_plan() {
        let path = dir().join("color.state.json");
        let store = Store::files(path.clone(), dir().join("color.lock"));
        assert_eq!(Journal::load(&store, "abc").await.unwrap(), None);
        let graph = StepGraph {
            plan: "color".to_owned(),
            strategy: crate::plan::StrategyKind::InPlace,
            steps: Vec::new(),
            entry: None,
        };
        let mut journal = Journal::new(&graph, "abc");
        journal.step("routing").state = StepState::Running;
        journal.step("routing").pre_images.push(PreImage {
            object: ObjectRef::new("v1", "Service", Some("ns"), "color"),
            before: None,
        });
        journal.save(&store).await.unwrap();
        assert_eq!(
            Journal::load(&store, "abc").await.unwrap(),
            Some(journal.clone())
        );
        assert!(!journal.complete());
        match Journal::load(&store, "def").await {
            Err(StateError::PlanChanged {
                found, expected, ..
            }) => {
                assert_eq!((found.as_str(), expected.as_str()), ("abc", "def"));
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            Journal::load(&store, "abc").await,
            Err(StateError::Corrupt { .. })
        ));
        // No temporary files are left behind by atomic writes.
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);
    }
}
