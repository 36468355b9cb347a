//! The journal: what each step of a run did.
//!
//! Stored as a log of JSON values: the whole journal (compact, on one line), then one value per
//! step update (`{"step": ID, "state": …}`), each appended and synced as it happens. A run
//! starts by rewriting the log as one whole journal, so the log stays as long as one run's
//! updates, and writing a step's progress costs that step's record, not the whole graph again.
//! A crash while appending leaves a torn last value, which reading ignores: that update was
//! never acknowledged, and its step is observed again.

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

/// A step update as logged after the whole journal.
#[derive(Deserialize)]
struct Update {
    step: String,
    #[serde(flatten)]
    record: StepRecord,
}

/// A step update being logged.
#[derive(Serialize)]
struct UpdateRef<'a> {
    step: &'a str,
    #[serde(flatten)]
    record: &'a StepRecord,
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
        let journal = Journal::parse(&text).map_err(|e| StateError::Corrupt {
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

    /// Reads a stored journal: the whole journal, then the step updates logged after it. A torn
    /// last update (a crash while appending it) is ignored.
    pub fn parse(text: &str) -> Result<Journal, serde_json::Error> {
        let mut values = serde_json::Deserializer::from_str(text);
        let mut journal = Journal::deserialize(&mut values)?;
        for update in values.into_iter::<Update>() {
            match update {
                Ok(Update { step, record }) => {
                    journal.steps.insert(step, record);
                }
                Err(e) if e.is_eof() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(journal)
    }

    /// The whole journal as stored, on one line.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string(self).expect("journals serialise");
        text.push('\n');
        text
    }

    /// Writes the whole journal, replacing what is stored (atomically to a file; with a
    /// precondition to a ConfigMap).
    pub async fn save(&self, store: &Store) -> Result<(), StateError> {
        store.write(JOURNAL, &self.to_text()).await
    }

    /// Records the current state of step `id`: appended to the journal file; a ConfigMap, which
    /// cannot append, is written whole.
    pub async fn save_step(&self, store: &Store, id: &str) -> Result<(), StateError> {
        store
            .append(JOURNAL, &self.update_line(id), || self.to_text())
            .await
    }

    /// Step `id`'s record as logged after the whole journal, on a line of its own.
    pub(super) fn update_line(&self, id: &str) -> String {
        let update = UpdateRef {
            step: id,
            record: self.steps.get(id).expect("a step of this journal"),
        };
        let mut line = serde_json::to_string(&update).expect("step records serialise");
        line.push('\n');
        line
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
        let graph = StepGraph::in_place("color", Vec::new());
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
        // Step updates are appended; a torn last one (a crash while appending) is ignored.
        journal.step("routing").state = StepState::Done;
        journal.save_step(&store, "routing").await.unwrap();
        let logged = std::fs::read_to_string(&path).unwrap();
        assert_eq!(logged.lines().count(), 2, "{logged}");
        assert_eq!(
            Journal::load(&store, "abc").await.unwrap(),
            Some(journal.clone())
        );
        let whole = journal.to_text();
        journal.step("routing").state = StepState::Failed;
        journal.save_step(&store, "routing").await.unwrap();
        let torn = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &torn[..torn.len() - 20]).unwrap();
        journal.step("routing").state = StepState::Done;
        assert_eq!(
            Journal::load(&store, "abc").await.unwrap(),
            Some(journal.clone())
        );
        // A whole save replaces the log.
        journal.save(&store).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
        std::fs::write(&path, format!("{whole}{{\"step\": 3}}\n{{}}")).unwrap();
        assert!(matches!(
            Journal::load(&store, "abc").await,
            Err(StateError::Corrupt { .. })
        ));
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            Journal::load(&store, "abc").await,
            Err(StateError::Corrupt { .. })
        ));
        // No temporary files are left behind by atomic writes.
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
