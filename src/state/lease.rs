//! The plan lock as a coordination.k8s.io Lease, for runs that share a cluster rather than a disk
//! (a CronJob, several operators). The holder renews it while it runs; a lease nobody renewed
//! for its duration is expired and may be taken, so a crashed pod never blocks the plan for long.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams, Preconditions};

use super::lock::{Holder, LockError};
use crate::cluster::{retry_when, unavailable};

/// How long a lease lasts without renewal.
pub const LEASE_SECONDS: i32 = 60;
const HOST: &str = "meshplan.io/host";
const PID: &str = "meshplan.io/pid";
const SINCE: &str = "meshplan.io/since";

/// The Lease of one plan.
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    namespace: String,
    name: String,
}

/// A held Lease; renewed in the background until released.
pub struct LeaseGuard {
    lock: LeaseLock,
    holder: Holder,
    renewal: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Lease {}/{} held by {}",
            self.lock.namespace, self.lock.name, self.holder.id
        )
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // Without renewal the lease expires on its own within LEASE_SECONDS.
        self.renewal.abort();
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl LeaseLock {
    /// The Lease `name` in `namespace`.
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Where the lease lives, for messages.
    pub fn location(&self) -> String {
        format!("Lease {}/{}", self.namespace, self.name)
    }

    fn error(&self, source: kube::Error) -> LockError {
        LockError::Api {
            what: self.location(),
            source,
        }
    }

    async fn read(&self) -> Result<Option<Lease>, LockError> {
        retry_when(unavailable, || self.api.get_opt(&self.name))
            .await
            .map_err(|e| self.error(e))
    }

    /// Takes the lease for `holder`, or says who has it.
    pub async fn acquire(&self, holder: Holder) -> Result<LeaseGuard, LockError> {
        let params = PostParams::default();
        // Two rounds: losing a race to create or take over re-reads and reports the winner.
        for _ in 0..2 {
            let current = self.read().await?;
            let taken = match &current {
                Some(lease) => match holder_of(lease) {
                    Some(other) if !expired(lease) && !other.died_on_host_of(&holder) => {
                        return Err(LockError::Held { holder: other });
                    }
                    _ => {
                        let mut next = lease.clone();
                        next.metadata.annotations = Some(annotations(&holder));
                        next.metadata.managed_fields = None;
                        next.spec = Some(spec(&holder));
                        // The resourceVersion read above makes this a compare-and-swap.
                        retry_when(unavailable, || self.api.replace(&self.name, &params, &next))
                            .await
                    }
                },
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            namespace: Some(self.namespace.clone()),
                            annotations: Some(annotations(&holder)),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/managed-by".to_owned(),
                                "meshplan".to_owned(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        spec: Some(spec(&holder)),
                    };
                    retry_when(unavailable, || self.api.create(&params, &lease)).await
                }
            };
            match taken {
                Ok(_) => {
                    let renewal = tokio::spawn(renew(self.clone(), holder.id.clone()));
                    return Ok(LeaseGuard {
                        lock: self.clone(),
                        holder,
                        renewal,
                    });
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => return Err(self.error(e)),
            }
        }
        match self.read().await?.as_ref().and_then(holder_of) {
            Some(other) => Err(LockError::Held { holder: other }),
            None => Err(LockError::Contended {
                what: self.location(),
            }),
        }
    }

    /// Who holds the lease, if anyone (an expired lease is free).
    pub async fn holder(&self) -> Result<Option<Holder>, LockError> {
        Ok(self
            .read()
            .await?
            .filter(|lease| !expired(lease))
            .as_ref()
            .and_then(holder_of))
    }

    /// Deletes the lease, but only when `id` names its holder.
    pub async fn force_unlock(&self, id: &str) -> Result<Option<Holder>, LockError> {
        let Some(lease) = self.read().await? else {
            return Ok(None);
        };
        let holder = holder_of(&lease);
        match &holder {
            Some(h) if h.id != id => {
                return Err(LockError::WrongId {
                    given: id.to_owned(),
                    actual: h.id.clone(),
                });
            }
            _ => {}
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: lease.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        retry_when(unavailable, || self.api.delete(&self.name, &params))
            .await
            .map_err(|e| self.error(e))?;
        Ok(holder)
    }
}

impl LeaseGuard {
    /// Who holds it (this run).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Gives the lease up, if this run still holds it.
    pub async fn release(self) -> Result<(), LockError> {
        self.renewal.abort();
        let Some(mut lease) = self.lock.read().await? else {
            return Ok(());
        };
        if lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            != Some(&self.holder.id)
        {
            return Ok(());
        }
        lease.metadata.managed_fields = None;
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = None;
        }
        let params = PostParams::default();
        match retry_when(unavailable, || {
            self.lock.api.replace(&self.lock.name, &params, &lease)
        })
        .await
        {
            Ok(_) => Ok(()),
            // Taken over meanwhile (after expiring): it is someone else's now.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(self.lock.error(e)),
        }
    }
}

/// Renews the lease every third of its duration while this run holds it.
async fn renew(lock: LeaseLock, id: String) {
    let every = Duration::from_secs((LEASE_SECONDS / 3) as u64);
    loop {
        tokio::time::sleep(every).await;
        let Ok(Some(mut lease)) = lock.read().await else {
            continue;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(id.as_str()) {
            // Lost (forced unlock, or expired and taken over): stop claiming it.
            return;
        }
        spec.renew_time = Some(now());
        lease.metadata.managed_fields = None;
        let _ = lock
            .api
            .replace(&lock.name, &PostParams::default(), &lease)
            .await;
    }
}

fn spec(holder: &Holder) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.id.clone()),
        lease_duration_seconds: Some(LEASE_SECONDS),
        acquire_time: Some(now()),
        renew_time: Some(now()),
        ..LeaseSpec::default()
    }
}

fn annotations(holder: &Holder) -> BTreeMap<String, String> {
    BTreeMap::from([
        (HOST.to_owned(), holder.host.clone()),
        (PID.to_owned(), holder.pid.to_string()),
        (SINCE.to_owned(), holder.since.clone()),
    ])
}

fn holder_of(lease: &Lease) -> Option<Holder> {
    let id = lease.spec.as_ref()?.holder_identity.clone()?;
    let note = |key: &str| {
        lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key).cloned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    Some(Holder {
        id,
        host: note(HOST),
        pid: note(PID).parse().unwrap_or(0),
        since: note(SINCE),
    })
}

/// True when the holder has not renewed the lease within its duration.
fn expired(lease: &Lease) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = jiff::SignedDuration::from_secs(
        spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS).into(),
    );
    renewed.0 + duration < jiff::Timestamp::now()
}
