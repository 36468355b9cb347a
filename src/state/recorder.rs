//! The journal of a running apply, shared by the steps running at once, whose step records are
//! stored in groups (group commit): a record made while a write is under way goes out with every
//! other record made meanwhile, in one append and one sync (a ConfigMap: one replace). With
//! `--concurrency` steps starting and ending at once, a sync per record (two per step: 520 for
//! the 1k-object benchmark) made them wait for each other's syncs under the journal's lock.

use std::sync::Mutex as SyncMutex;

use tokio::sync::{Mutex, MutexGuard};

use super::{JOURNAL, Journal, StateError, Store};

/// A journal whose step records are stored in groups.
pub struct Recorder {
    journal: Mutex<Journal>,
    store: Store,
    /// Records made but not yet handed to a write.
    queued: SyncMutex<Queued>,
    /// Held while a group is written: what is stored so far.
    stored: Mutex<Stored>,
}

/// Where a record stands in the order records were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Default)]
struct Queued {
    lines: String,
    last: u64,
}

#[derive(Default)]
struct Stored {
    upto: u64,
    /// A failed write: the records it carried are lost, and so is every record after them.
    failed: Option<String>,
}

impl Recorder {
    /// Shares `journal`, whose records go to `store`.
    pub fn new(journal: Journal, store: Store) -> Self {
        Recorder {
            journal: Mutex::new(journal),
            store,
            queued: SyncMutex::default(),
            stored: Mutex::default(),
        }
    }

    /// The journal, to read or change.
    pub async fn lock(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().await
    }

    /// Queues step `id`'s record as `journal` (this recorder's, locked) has it. Made under the
    /// journal's lock, records queue in the order they were made; [`Recorder::store`] stores them.
    pub fn queue(&self, journal: &Journal, id: &str) -> Ticket {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        queued.lines.push_str(&journal.update_line(id));
        queued.last += 1;
        Ticket(queued.last)
    }

    /// Returns once every record up to `ticket` is stored: by a write already under way, or by
    /// one this call makes of every record queued by then.
    pub async fn store(&self, ticket: Ticket) -> Result<(), StateError> {
        let mut stored = self.stored.lock().await;
        if stored.upto >= ticket.0 {
            return Ok(());
        }
        if let Some(message) = &stored.failed {
            return Err(StateError::NotRecorded {
                location: self.store.location(JOURNAL),
                message: message.clone(),
            });
        }
        // Taken under the journal's lock: the whole journal (for a store that cannot append)
        // then holds every record of the group, and no record made later.
        let (lines, upto, whole) = {
            let journal = self.journal.lock().await;
            let whole = (!self.store.appends()).then(|| journal.to_text());
            let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut queued.lines), queued.last, whole)
        };
        let written = self
            .store
            .append(JOURNAL, &lines, || whole.unwrap_or_default())
            .await;
        match written {
            Ok(()) => {
                stored.upto = upto;
                Ok(())
            }
            Err(e) => {
                stored.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The journal as it is now.
    pub async fn snapshot(&self) -> Journal {
        self.journal.lock().await.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StepState;
    use crate::steps::StepGraph;

    fn journal() -> Journal {
        let graph = StepGraph::in_place("demo", Vec::new());
        let mut journal = Journal::new(&graph, "f");
        for id in ["a", "b", "c"] {
            journal.step(id);
        }
        journal
    }

    #[tokio::test]
    async fn records_made_while_a_group_is_written_go_out_together_in_the_order_made() {
        let dir = std::env::temp_dir().join(format!("meshplan-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::files(dir.join("journal.json"), dir.join("lock"));
        let journal = journal();
        journal.save(&store).await.unwrap();
        let recorder = Recorder::new(journal, store.clone());
        let mut tickets = Vec::new();
        for (id, state) in [
            ("a", StepState::Running),
            ("b", StepState::Running),
            ("a", StepState::Done),
        ] {
            let mut j = recorder.lock().await;
            j.step(id).state = state;
            tickets.push(recorder.queue(&j, id));
        }
        let size = || std::fs::metadata(dir.join("journal.json")).unwrap().len();
        let before = size();
        // The last ticket stores the whole group; the earlier ones find it stored.
        recorder.store(tickets[2]).await.unwrap();
        let after = size();
        assert!(after > before);
        recorder.store(tickets[0]).await.unwrap();
        recorder.store(tickets[1]).await.unwrap();
        assert_eq!(size(), after, "nothing written twice");
        let text = std::fs::read_to_string(dir.join("journal.json")).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        let read = Journal::load(&store, "f").await.unwrap().unwrap();
        assert_eq!(read.steps["a"].state, StepState::Done);
        assert_eq!(read.steps["b"].state, StepState::Running);
        assert_eq!(read.steps["c"].state, StepState::Pending);
        assert_eq!(read, recorder.snapshot().await);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_record_after_it() {
        let dir = std::env::temp_dir().join(format!("meshplan-recorder-x-{}", std::process::id()));
        // Never saved whole: there is no file to append to.
        let store = Store::files(dir.join("journal.json"), dir.join("lock"));
        let recorder = Recorder::new(journal(), store);
        let first = {
            let mut j = recorder.lock().await;
            j.step("a").state = StepState::Running;
            recorder.queue(&j, "a")
        };
        assert!(matches!(
            recorder.store(first).await,
            Err(StateError::Io { .. })
        ));
        let second = {
            let mut j = recorder.lock().await;
            j.step("a").state = StepState::Done;
            recorder.queue(&j, "a")
        };
        let err = recorder.store(second).await.unwrap_err();
        assert!(matches!(err, StateError::NotRecorded { .. }), "{err}");
        assert!(err.to_string().contains("journal.json"), "{err}");
    }
}
