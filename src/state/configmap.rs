//! State documents in a ConfigMap, written with resourceVersion preconditions: a write based on
//! an old read fails with a conflict instead of overwriting what another writer saved.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::Mutex;

use super::StateError;
use crate::cluster::{retry_when, unavailable};

/// The API server refuses ConfigMaps over 1 MiB; refuse a little earlier with a clear message.
const MAX_BYTES: usize = 1024 * 1024 - 4096;

/// One plan's ConfigMap.
#[derive(Clone)]
pub struct ConfigMapDocs {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    /// The ConfigMap as last read or written by this run (`None` inside: it does not exist).
    seen: Arc<Mutex<Option<Option<ConfigMap>>>>,
}

impl std::fmt::Debug for ConfigMapDocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigMap {}/{}", self.namespace, self.name)
    }
}

impl ConfigMapDocs {
    /// The ConfigMap `name` in `namespace`.
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        ConfigMapDocs {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            seen: Arc::default(),
        }
    }

    /// The ConfigMap's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where a document lives, for messages.
    pub fn location(&self, key: &str) -> String {
        format!(
            "ConfigMap {}/{} (key {key}.json)",
            self.namespace, self.name
        )
    }

    fn api_error(&self, key: &str, source: kube::Error) -> StateError {
        match source {
            kube::Error::Api(status) if status.code == 409 => StateError::Conflict {
                location: self.location(key),
            },
            source => StateError::Api {
                location: self.location(key),
                source,
            },
        }
    }

    /// Reads a document; `None` when there is none.
    pub async fn read(&self, key: &str) -> Result<Option<String>, StateError> {
        let found = retry_when(unavailable, || self.api.get_opt(&self.name))
            .await
            .map_err(|e| self.api_error(key, e))?;
        let text = found
            .as_ref()
            .and_then(|cm| cm.data.as_ref()?.get(&format!("{key}.json")).cloned());
        *self.seen.lock().await = Some(found);
        Ok(text)
    }

    /// Writes a document, on the condition that nobody wrote the ConfigMap since this run last
    /// read or wrote it.
    pub async fn write(&self, key: &str, text: &str) -> Result<(), StateError> {
        let mut seen = self.seen.lock().await;
        if seen.is_none() {
            drop(seen);
            self.read(key).await?;
            seen = self.seen.lock().await;
        }
        let mut data: BTreeMap<String, String> = seen
            .as_ref()
            .and_then(|cm| cm.as_ref()?.data.clone())
            .unwrap_or_default();
        data.insert(format!("{key}.json"), text.to_owned());
        let bytes: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > MAX_BYTES {
            return Err(StateError::TooLarge {
                location: self.location(key),
                bytes,
            });
        }
        let params = PostParams {
            field_manager: Some(crate::cluster::FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let written = match seen.as_ref().and_then(|cm| cm.as_ref()) {
            // The resourceVersion of what this run saw is the precondition of the replace.
            Some(current) => {
                let mut next = current.clone();
                next.data = Some(data);
                next.metadata.managed_fields = None;
                retry_when(unavailable, || self.api.replace(&self.name, &params, &next)).await
            }
            None => {
                let created = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/managed-by".to_owned(),
                            "meshplan".to_owned(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    data: Some(data),
                    ..ConfigMap::default()
                };
                retry_when(unavailable, || self.api.create(&params, &created)).await
            }
        }
        .map_err(|e| self.api_error(key, e))?;
        *seen = Some(Some(written));
        Ok(())
    }
}
