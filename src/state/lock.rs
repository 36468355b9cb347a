//! One run per plan at a time: a lock file that names its holder.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Random id of this run; `unlock --force ID` names it.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it was taken (RFC 3339).
    pub since: String,
}

impl Holder {
    /// A holder for this process, now.
    pub fn current() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".to_owned());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Holder {
            id: format!("{:08x}{:08x}", now.subsec_nanos(), std::process::id()),
            host,
            pid: std::process::id(),
            since: jiff::Timestamp::now().to_string(),
        }
    }

    /// True when this holder ran on `me`'s host in another process that is gone: it died
    /// without releasing, and only a process on its own host can know that.
    pub fn died_on_host_of(&self, me: &Holder) -> bool {
        self.host == me.host
            && self.pid != me.pid
            && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// Why a lock could not be taken or cleared.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error(
        "plan is locked by run {} (pid {} on {}, since {}); wait for it to finish, or if it died, run `meshplan unlock PLAN --force {}`",
        holder.id, holder.pid, holder.host, holder.since, holder.id
    )]
    Held {
        /// The holder.
        holder: Holder,
    },
    /// `unlock --force` named another holder.
    #[error("the lock is held by run {actual}, not {given}; nothing was changed")]
    WrongId {
        /// The id given.
        given: String,
        /// The holder's id.
        actual: String,
    },
    /// The cluster could not be asked about the lock.
    #[error("{what}: {source}")]
    Api {
        /// The lock object.
        what: String,
        /// The cause.
        source: kube::Error,
    },
    /// Other runs kept taking the lock in the moments it was free.
    #[error("{what} changed hands while this run tried to take it; try again")]
    Contended {
        /// The lock object.
        what: String,
    },
    /// The lock file could not be read or written.
    #[error("lock file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    holder: Holder,
}

impl LockGuard {
    /// Who holds it (this run).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Only remove our own lock: a forced unlock may have handed it to another run.
        if read(&self.path)
            .ok()
            .flatten()
            .is_some_and(|h| h.id == self.holder.id)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Who holds the lock at `path`, if anyone.
pub fn holder(path: &Path) -> Result<Option<Holder>, LockError> {
    read(path)
}

fn read(path: &Path) -> Result<Option<Holder>, LockError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(serde_json::from_str(&text).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LockError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Takes the lock at `path` for `holder`, or says who has it.
pub fn acquire(path: &Path, holder: Holder) -> Result<LockGuard, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // create_new is the atomic test-and-set: exactly one of two racing runs succeeds.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut file) => {
            let text = serde_json::to_string(&holder).expect("holders serialise");
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(LockGuard {
                path: path.to_owned(),
                holder,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A holder on this host whose process is gone died without releasing: reclaim.
            if let Some(stale) = read(path)?
                && stale.died_on_host_of(&holder)
            {
                std::fs::remove_file(path).map_err(io)?;
                return acquire(path, holder);
            }
            let holder = read(path)?.unwrap_or(Holder {
                id: "unknown".to_owned(),
                host: "unknown".to_owned(),
                pid: 0,
                since: "unknown".to_owned(),
            });
            Err(LockError::Held { holder })
        }
        Err(source) => Err(io(source)),
    }
}

/// Clears a stale lock, but only when `id` names its holder.
pub fn force_unlock(path: &Path, id: &str) -> Result<Option<Holder>, LockError> {
    match read(path)? {
        None if !path.exists() => Ok(None),
        Some(holder) if holder.id != id => Err(LockError::WrongId {
            given: id.to_owned(),
            actual: holder.id,
        }),
        holder => {
            std::fs::remove_file(path).map_err(|source| LockError::Io {
                path: path.to_owned(),
                source,
            })?;
            Ok(holder)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_naming_the_holder_and_force_unlock_needs_the_id() {
        let dir = std::env::temp_dir().join(format!("meshplan-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("color.lock");
        let first = acquire(&path, Holder::current()).unwrap();
        let id = first.holder().id.clone();
        match acquire(&path, Holder::current()) {
            Err(LockError::Held { holder }) => assert_eq!(holder.id, id),
            other => panic!("{other:?}"),
        }
        let message = acquire(&path, Holder::current()).unwrap_err().to_string();
        assert!(message.contains(&format!("--force {id}")), "{message}");
        assert!(matches!(
            force_unlock(&path, "nope"),
            Err(LockError::WrongId { .. })
        ));
        assert!(path.exists());
        assert_eq!(force_unlock(&path, &id).unwrap().map(|h| h.id), Some(id));
        // The old guard no longer owns the file: dropping it leaves a new holder's lock alone.
        let second = acquire(&path, Holder::current()).unwrap();
        drop(first);
        assert!(path.exists());
        drop(second);
        assert!(!path.exists());
        assert_eq!(force_unlock(&path, "anything").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_left_by_a_dead_process_on_this_host_is_reclaimed() {
        let dir = std::env::temp_dir().join(format!("meshplan-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("color.lock");
        let mut dead = Holder::current();
        dead.id = "dead".to_owned();
        // Far above pid_max: no such process.
        dead.pid = u32::MAX - 1;
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let guard = acquire(&path, Holder::current()).unwrap();
        assert_ne!(guard.holder().id, "dead");
        drop(guard);
        // On another host the same lock is left alone: only its holder can know it is stale.
        dead.host = "elsewhere".to_owned();
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        assert!(matches!(
            acquire(&path, Holder::current()),
            Err(LockError::Held { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
