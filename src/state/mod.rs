//! The checkpoint journal and the plan lock, in local files or in the cluster.
//!
//! The journal records, per step, its state, timing, error and the pre-images of the objects it
//! touched, so that an interrupted `apply` resumes and `rollback` restores. A file is written
//! whole atomically (temporary file, fsync, rename, fsync of the folder) when a run starts, then
//! each step update is appended and synced, those made at once together ([`Recorder`]): a crash
//! leaves every acknowledged update and at most a torn last one, which reading ignores. In the cluster, a ConfigMap holds it, written whole
//! with resourceVersion preconditions, and a Lease is the lock.

mod configmap;
mod journal;
mod lease;
mod lock;
mod recorder;
mod store;

pub use configmap::ConfigMapDocs;
pub use journal::{Journal, PreImage, StepRecord, StepState};
pub use lease::{LEASE_SECONDS, LeaseGuard, LeaseLock};
pub use lock::{Holder, LockError, LockGuard};
pub use recorder::{Recorder, Ticket};
pub use store::{Lock, Store, object_name};

/// The key of the checkpoint journal in a store.
pub const JOURNAL: &str = "journal";

use std::path::{Path, PathBuf};

/// Where a plan's journal and lock live by default: `.meshplan/<plan>.state.json` and `.lock`.
pub fn default_paths(base: &Path, plan: &str) -> (PathBuf, PathBuf) {
    let dir = base.join(".meshplan");
    (
        dir.join(format!("{plan}.state.json")),
        dir.join(format!("{plan}.lock")),
    )
}

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A state file could not be read or written.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state in the cluster could not be read or written.
    #[error("{location}: {source}")]
    Api {
        /// Where the state lives.
        location: String,
        /// The cause.
        source: kube::Error,
    },
    /// Someone else wrote the state since this run read it.
    #[error(
        "{location} was changed by someone else since this run read it; nothing was overwritten. Another run may be working on this plan: check `meshplan status`"
    )]
    Conflict {
        /// Where the state lives.
        location: String,
    },
    /// The state outgrew a ConfigMap.
    #[error(
        "{location}: the state has grown to {bytes} bytes, more than a ConfigMap holds (1 MiB); use `[state] backend = \"file\"` for a plan this large"
    )]
    TooLarge {
        /// Where the state lives.
        location: String,
        /// Its size.
        bytes: usize,
    },
    /// The stored state is not what meshplan wrote.
    #[error("{location} is damaged: {message}")]
    Corrupt {
        /// Where the state lives.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A step record was not stored: the write of an earlier record failed, and the journal
    /// takes no record after a gap.
    #[error("{location}: a step record was not stored, as an earlier write failed: {message}")]
    NotRecorded {
        /// Where the state lives.
        location: String,
        /// Why the earlier write failed.
        message: String,
    },
    /// The journal belongs to another version of the plan.
    #[error(
        "{location} was written for a different plan (fingerprint {found}, the plan now has {expected}); finish or roll back the old run, or move it away"
    )]
    PlanChanged {
        /// Where the state lives.
        location: String,
        /// Fingerprint in the state.
        found: String,
        /// Fingerprint of the plan given.
        expected: String,
    },
}

/// Writes `bytes` to `path` atomically: a reader sees the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    use std::io::Write;
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    // The rename is only durable once the folder itself is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// Appends `bytes` to the file at `path` and syncs it; a crash leaves at most a torn tail.
pub fn append_durable(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    use std::io::Write;
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_data().map_err(io)
}

/// The fingerprint of a plan's text: a journal belongs to exactly one version of a plan.
pub fn fingerprint(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
