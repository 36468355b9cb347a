//! Where a plan's state lives: local files (journal + lock file) or the cluster (ConfigMap +
//! Lease). Every command reaches its state through [`Store`], whichever backend the plan names.

use std::path::{Path, PathBuf};

use kube::Client;

use super::configmap::ConfigMapDocs;
use super::lease::{LeaseGuard, LeaseLock};
use super::lock::{self, Holder, LockError, LockGuard};
use super::{StateError, append_durable, write_atomic};

/// A plan's state store.
#[derive(Clone, Debug)]
pub enum Store {
    /// A journal file beside a lock file.
    Files {
        /// The journal; other documents sit beside it.
        journal: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A ConfigMap for the documents and a Lease for the lock.
    Cluster {
        /// The documents.
        docs: Box<ConfigMapDocs>,
        /// The lock.
        lease: Box<LeaseLock>,
    },
}

/// A held lock of either backend.
#[derive(Debug)]
pub enum Lock {
    /// A lock file, removed on release or drop.
    File(LockGuard),
    /// A Lease, given up on release (it expires by itself when dropped).
    Lease(Box<LeaseGuard>),
}

impl Lock {
    /// Who holds it (this run).
    pub fn holder(&self) -> &Holder {
        match self {
            Lock::File(guard) => guard.holder(),
            Lock::Lease(guard) => guard.holder(),
        }
    }

    /// Gives the lock up.
    pub async fn release(self) -> Result<(), LockError> {
        match self {
            Lock::File(guard) => {
                drop(guard);
                Ok(())
            }
            Lock::Lease(guard) => (*guard).release().await,
        }
    }
}

/// The name of a plan's ConfigMap and Lease: `meshplan-<plan>`, made a valid object name.
pub fn object_name(plan: &str) -> String {
    let mut name: String = plan
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    name = format!("meshplan-{}", name.trim_matches('-'));
    name.truncate(253);
    name
}

impl Store {
    /// Local files.
    pub fn files(journal: PathBuf, lock: PathBuf) -> Self {
        Store::Files { journal, lock }
    }

    /// The ConfigMap and Lease `meshplan-<plan>` in `namespace`.
    pub fn cluster(client: Client, namespace: &str, plan: &str) -> Self {
        let name = object_name(plan);
        Store::Cluster {
            docs: Box::new(ConfigMapDocs::new(client.clone(), namespace, &name)),
            lease: Box::new(LeaseLock::new(client, namespace, &name)),
        }
    }

    /// The file of a document: the journal itself, or `<journal stem>.<key>.json` beside it.
    fn path(journal: &Path, key: &str) -> PathBuf {
        if key == super::JOURNAL {
            journal.to_owned()
        } else {
            journal.with_extension(format!("{key}.json"))
        }
    }

    /// Where a document lives, for messages.
    pub fn location(&self, key: &str) -> String {
        match self {
            Store::Files { journal, .. } => Self::path(journal, key).display().to_string(),
            Store::Cluster { docs, .. } => docs.location(key),
        }
    }

    /// The namespace of the ConfigMap and Lease; `None` for files.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Store::Files { .. } => None,
            Store::Cluster { docs, .. } => Some(docs.namespace()),
        }
    }

    /// Where the lock lives, for messages.
    pub fn lock_location(&self) -> String {
        match self {
            Store::Files { lock, .. } => lock.display().to_string(),
            Store::Cluster { lease, .. } => lease.location(),
        }
    }

    /// Reads a document; `None` when there is none yet.
    pub async fn read(&self, key: &str) -> Result<Option<String>, StateError> {
        match self {
            Store::Files { journal, .. } => {
                let path = Self::path(journal, key);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Some(text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StateError::Io { path, source }),
                }
            }
            Store::Cluster { docs, .. } => docs.read(key).await,
        }
    }

    /// Writes a document: atomically to a file, or to the ConfigMap on the condition that nobody
    /// else wrote it since this run read it.
    pub async fn write(&self, key: &str, text: &str) -> Result<(), StateError> {
        match self {
            Store::Files { journal, .. } => {
                write_atomic(&Self::path(journal, key), text.as_bytes())
            }
            Store::Cluster { docs, .. } => docs.write(key, text).await,
        }
    }

    /// Whether documents are appended to (files) rather than replaced whole (a ConfigMap).
    pub fn appends(&self) -> bool {
        matches!(self, Store::Files { .. })
    }

    /// Adds `line` to the end of a document: appended and synced to a file; a ConfigMap, which
    /// cannot append, is replaced by `whole` (the document with the line).
    pub async fn append(
        &self,
        key: &str,
        line: &str,
        whole: impl FnOnce() -> String,
    ) -> Result<(), StateError> {
        match self {
            Store::Files { journal, .. } => {
                append_durable(&Self::path(journal, key), line.as_bytes())
            }
            Store::Cluster { docs, .. } => docs.write(key, &whole()).await,
        }
    }

    /// Takes the plan's lock for `holder`, or says who has it.
    pub async fn lock(&self, holder: Holder) -> Result<Lock, LockError> {
        match self {
            Store::Files { lock, .. } => lock::acquire(lock, holder).map(Lock::File),
            Store::Cluster { lease, .. } => lease
                .acquire(holder)
                .await
                .map(|guard| Lock::Lease(Box::new(guard))),
        }
    }

    /// Runs `work` holding the plan's lock, and releases the lock whatever the outcome.
    pub async fn locked<T, E: From<LockError>>(
        &self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let lock = self.lock(Holder::current()).await?;
        tracing::info!(lock = %self.lock_location(), run = %lock.holder().id, "lock taken");
        let result = work.await;
        let released = lock.release().await;
        tracing::info!(lock = %self.lock_location(), "lock released");
        let value = result?;
        released?;
        Ok(value)
    }

    /// Who holds the lock, if anyone.
    pub async fn holder(&self) -> Result<Option<Holder>, LockError> {
        match self {
            Store::Files { lock, .. } => lock::holder(lock),
            Store::Cluster { lease, .. } => lease.holder().await,
        }
    }

    /// Clears a stale lock, but only when `id` names its holder.
    pub async fn force_unlock(&self, id: &str) -> Result<Option<Holder>, LockError> {
        match self {
            Store::Files { lock, .. } => lock::force_unlock(lock, id),
            Store::Cluster { lease, .. } => lease.force_unlock(id).await,
        }
    }
}
