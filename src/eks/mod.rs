//! The Istio EKS add-on through the EKS API: compare it with the plan, create or update it, wait
//! for ACTIVE, and delete it on an explicit rollback; and which EKS cluster a kubeconfig names.

pub mod sim;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_eks::Client;
use aws_sdk_eks::config::http::HttpResponse;
use aws_sdk_eks::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::{Addon, AddonStatus, ResolveConflicts};
use serde::Deserialize;
use serde_json::Value;

use crate::plan::EksCluster;
use crate::steps::{Action, ChangeAction, StepGraph};

/// Errors of the EKS add-on step and of EKS cluster discovery.
#[derive(Debug, thiserror::Error)]
pub enum EksError {
    /// The plan installs the add-on but no EKS cluster is known.
    #[error(
        "no EKS cluster is known for the Istio add-on, so nothing was changed: set `[source] eks = \
         {{ name = \"NAME\", region = \"REGION\" }}`, pass `--eks-cluster NAME --region REGION`, or \
         use a kubeconfig context whose cluster is an EKS ARN \
         (arn:aws:eks:REGION:ACCOUNT:cluster/NAME)"
    )]
    NoCluster,
    /// An EKS API call failed (after retries, when it was throttled or the service erred).
    #[error("{what}: {message}")]
    Api {
        /// What was being done.
        what: String,
        /// The cause, with the service's error code and message.
        message: String,
    },
    /// The add-on reached a failed or degraded state.
    #[error(
        "EKS add-on {addon} on cluster {cluster} is {status}; its health issues:\n{issues}\nFix \
         them (see the add-on in the EKS console or `aws eks describe-addon --cluster-name \
         {cluster} --addon-name {addon}`), then run `meshplan apply` again"
    )]
    Unhealthy {
        /// The cluster.
        cluster: String,
        /// The add-on.
        addon: String,
        /// Its status, e.g. `CREATE_FAILED`.
        status: String,
        /// Its health issues, one a line.
        issues: String,
    },
    /// The add-on did not become ACTIVE in time.
    #[error(
        "EKS add-on {addon} on cluster {cluster} did not become ACTIVE within {timeout:?} (last \
         status {status}); run `meshplan apply` again to keep waiting"
    )]
    Timeout {
        /// The cluster.
        cluster: String,
        /// The add-on.
        addon: String,
        /// The last status seen.
        status: String,
        /// How long it waited (the plan's `strategy.rollout_timeout`).
        timeout: Duration,
    },
    /// The add-on change in the plan is not one meshplan wrote.
    #[error("the EKS add-on change of the plan is malformed: {0}")]
    Settings(String),
    /// The EKS bearer token or the client using it could not be made.
    #[error("connecting to the EKS cluster directly: {0}")]
    Token(String),
    /// The simulated EKS endpoint of a rehearsal could not start.
    #[error("the simulated EKS endpoint could not start: {0}")]
    Simulator(#[from] std::io::Error),
}

/// What the plan asks of the add-on: the `after` of its change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonSettings {
    /// Add-on name, e.g. `solo-io_istio-distro`.
    pub addon_name: String,
    /// Version; EKS picks its default when absent.
    #[serde(default)]
    pub addon_version: Option<String>,
    /// Configuration values, JSON or YAML, passed through.
    #[serde(default)]
    pub configuration_values: Option<String>,
    /// `NONE`, `OVERWRITE` or `PRESERVE`.
    #[serde(default)]
    pub resolve_conflicts: Option<String>,
}

impl AddonSettings {
    /// The settings of an add-on change's `after`.
    pub fn from_value(value: &Value) -> Result<Self, EksError> {
        serde_json::from_value(value.clone()).map_err(|e| EksError::Settings(e.to_string()))
    }

    /// True when `current` has what these settings ask for. An unset version or configuration
    /// leaves the add-on's own alone; configurations are compared as data, so JSON and YAML
    /// spellings of the same values are equal.
    pub fn satisfied_by(&self, current: &Addon) -> bool {
        let version = self
            .addon_version
            .as_deref()
            .is_none_or(|v| Some(v) == current.addon_version());
        let configuration = self.configuration_values.as_deref().is_none_or(|want| {
            let have = current.configuration_values().unwrap_or_default();
            parse_configuration(want) == parse_configuration(have)
        });
        version && configuration
    }

    fn resolve_conflicts(&self) -> Option<ResolveConflicts> {
        self.resolve_conflicts
            .as_deref()
            .map(ResolveConflicts::from)
    }
}

/// Configuration values as data (JSON is YAML, so one parser reads both); empty text is no
/// configuration.
fn parse_configuration(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return None;
    }
    serde_saphyr::from_str::<Value>(text)
        .ok()
        .or_else(|| Some(Value::String(text.to_owned())))
}

/// The add-on as its change's `before` shows it. `resolveConflicts` is how a call behaves, not
/// something EKS stores: it is carried over from the plan so the diff shows only real changes.
pub fn settings_value(addon: &Addon, resolve_conflicts: Option<&str>) -> Value {
    let mut out = serde_json::Map::new();
    out.insert(
        "addonName".into(),
        Value::from(addon.addon_name().unwrap_or_default()),
    );
    if let Some(version) = addon.addon_version() {
        out.insert("addonVersion".into(), Value::from(version));
    }
    if let Some(values) = addon.configuration_values().filter(|v| !v.is_empty()) {
        out.insert("configurationValues".into(), Value::from(values));
    }
    if let Some(resolve) = resolve_conflicts {
        out.insert("resolveConflicts".into(), Value::from(resolve));
    }
    Value::Object(out)
}

/// The EKS add-ons of one cluster.
#[derive(Debug, Clone)]
pub struct Addons {
    client: Client,
    cluster: String,
}

/// Calls made before giving up on throttling or service errors.
const ATTEMPTS: u32 = 6;
/// First wait between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between attempts, and between status checks.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

impl Addons {
    /// The add-ons of `cluster`, with credentials from aws-config's default chain.
    pub async fn connect(cluster: &EksCluster) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(cluster.region.clone()))
            // One retry policy, ours (see `call`), so what the tests exercise is what runs.
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        Addons::new(Client::new(&config), &cluster.name)
    }

    /// The add-ons of `cluster` through an existing client (a simulator's, or a mock).
    pub fn new(client: Client, cluster: &str) -> Self {
        Addons {
            client,
            cluster: cluster.to_owned(),
        }
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The add-on, or `None` when the cluster has none of that name.
    pub async fn describe(&self, name: &str) -> Result<Option<Addon>, EksError> {
        let result = call(|| {
            self.client
                .describe_addon()
                .cluster_name(&self.cluster)
                .addon_name(name)
                .send()
        })
        .await;
        match result {
            Ok(output) => Ok(output.addon),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(self.api_error(&format!("describing add-on {name}"), err)),
        }
    }

    /// Creates the add-on, or updates it when it differs from `settings`, then waits until it is
    /// ACTIVE, reporting its status. Does nothing but a describe when it already matches.
    pub async fn ensure(
        &self,
        settings: &AddonSettings,
        timeout: Duration,
        poll: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), EksError> {
        let name = settings.addon_name.as_str();
        match self.describe(name).await? {
            None => {
                progress(format!("creating EKS add-on {name}"));
                let request = self
                    .client
                    .create_addon()
                    .cluster_name(&self.cluster)
                    .addon_name(name)
                    .set_addon_version(settings.addon_version.clone())
                    .set_configuration_values(settings.configuration_values.clone())
                    .set_resolve_conflicts(settings.resolve_conflicts());
                call(|| request.clone().send())
                    .await
                    .map_err(|e| self.api_error(&format!("creating add-on {name}"), e))?;
            }
            // Another run (or EKS itself) is already moving it: wait for the outcome.
            Some(current) if in_progress(current.status()) => {}
            Some(current) if !settings.satisfied_by(&current) => {
                progress(format!("updating EKS add-on {name}"));
                let request = self
                    .client
                    .update_addon()
                    .cluster_name(&self.cluster)
                    .addon_name(name)
                    .set_addon_version(settings.addon_version.clone())
                    .set_configuration_values(settings.configuration_values.clone())
                    .set_resolve_conflicts(settings.resolve_conflicts());
                call(|| request.clone().send())
                    .await
                    .map_err(|e| self.api_error(&format!("updating add-on {name}"), e))?;
            }
            Some(current) => return self.healthy(name, &current),
        }
        self.wait_active(name, timeout, poll, progress).await
    }

    /// Waits until the add-on is ACTIVE, backing off between checks; a failed or degraded state
    /// is an error quoting its health issues.
    pub async fn wait_active(
        &self,
        name: &str,
        timeout: Duration,
        poll: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), EksError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = poll;
        loop {
            let current = self.describe(name).await?.ok_or_else(|| EksError::Api {
                what: format!("waiting for add-on {name}"),
                message: "the add-on disappeared while meshplan waited for it".to_owned(),
            })?;
            let status = status_name(current.status());
            if !in_progress(current.status()) {
                return self.healthy(name, &current);
            }
            progress(format!("EKS add-on {name}: {status}"));
            if tokio::time::Instant::now() >= deadline {
                return Err(EksError::Timeout {
                    cluster: self.cluster.clone(),
                    addon: name.to_owned(),
                    status,
                    timeout,
                });
            }
            tokio::time::sleep(delay.min(deadline - tokio::time::Instant::now())).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Deletes the add-on; one already gone is fine.
    pub async fn delete(&self, name: &str) -> Result<(), EksError> {
        let result = call(|| {
            self.client
                .delete_addon()
                .cluster_name(&self.cluster)
                .addon_name(name)
                .send()
        })
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(self.api_error(&format!("deleting add-on {name}"), err)),
        }
    }

    fn healthy(&self, name: &str, current: &Addon) -> Result<(), EksError> {
        match current.status() {
            Some(AddonStatus::Active) => Ok(()),
            status => Err(EksError::Unhealthy {
                cluster: self.cluster.clone(),
                addon: name.to_owned(),
                status: status_name(status),
                issues: issues(current),
            }),
        }
    }

    fn api_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        what: &str,
        err: SdkError<E, HttpResponse>,
    ) -> EksError {
        EksError::Api {
            what: format!("EKS cluster {}: {what}", self.cluster),
            message: DisplayErrorContext(&err).to_string(),
        }
    }
}

/// Observes the cluster's add-on and rewrites the plan's add-on change to match: a create when
/// it is absent, an update (with the add-on as it is as `before`) when it differs, and no change
/// at all when it already matches.
pub async fn observe(graph: &mut StepGraph, addons: &Addons) -> Result<(), EksError> {
    for step in &mut graph.steps {
        if !matches!(step.action, Action::EnsureIstio { .. }) {
            continue;
        }
        let mut kept = Vec::new();
        for mut change in std::mem::take(&mut step.changes) {
            if !change.object.is_eks_addon() {
                kept.push(change);
                continue;
            }
            let after = change.after.as_ref().ok_or_else(|| {
                EksError::Settings("the add-on change has no settings".to_owned())
            })?;
            let settings = AddonSettings::from_value(after)?;
            match addons.describe(&settings.addon_name).await? {
                None => kept.push(change),
                Some(current) if settings.satisfied_by(&current) => {}
                Some(current) => {
                    change.action = ChangeAction::Update;
                    change.before = Some(Arc::new(settings_value(
                        &current,
                        settings.resolve_conflicts.as_deref(),
                    )));
                    kept.push(change);
                }
            }
        }
        step.changes = kept;
    }
    Ok(())
}

/// The EKS cluster an ARN names (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`, as `aws eks
/// update-kubeconfig` names kubeconfig clusters and contexts).
pub fn cluster_from_arn(arn: &str) -> Option<EksCluster> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("eks"), Some(region), Some(_account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let name = rest.strip_prefix("cluster/")?;
    (!name.is_empty() && !region.is_empty()).then(|| EksCluster {
        name: name.to_owned(),
        region: region.to_owned(),
    })
}

/// The EKS cluster a kubeconfig context names by ARN (its cluster's name, or its own), as `aws
/// eks update-kubeconfig` writes them; `None` for any other context or an unreadable kubeconfig.
pub fn cluster_of_kubeconfig(
    path: Option<&std::path::Path>,
    context: Option<&str>,
) -> Option<EksCluster> {
    let config = match path {
        Some(path) => kube::config::Kubeconfig::read_from(path).ok()?,
        None => kube::config::Kubeconfig::read().ok()?,
    };
    let name = context.or(config.current_context.as_deref())?;
    let named = config.contexts.iter().find(|c| c.name == name)?;
    named
        .context
        .as_ref()
        .and_then(|c| cluster_from_arn(&c.cluster))
        .or_else(|| cluster_from_arn(&named.name))
}

/// Sends a request, retrying throttling (HTTP 429, `ThrottlingException`) and service errors
/// (5xx) with exponential backoff; other errors return at once.
async fn call<T, E, F, Fut>(mut send: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match send().await {
            Err(err) if attempt < ATTEMPTS && retryable(&err) => {
                tracing::warn!(attempt, of = ATTEMPTS, ?delay, error = ?err.code(), "retrying an EKS request");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn retryable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let code = matches!(
        err.code(),
        Some(
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "ServerException"
                | "ServiceUnavailableException"
                | "InternalFailure"
        )
    );
    let status = err.raw_response().is_some_and(|r| {
        let status = r.status();
        status.as_u16() == 429 || status.is_server_error()
    });
    let transport = matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
    );
    code || status || transport
}

fn in_progress(status: Option<&AddonStatus>) -> bool {
    matches!(
        status,
        Some(AddonStatus::Creating | AddonStatus::Updating) | None
    )
}

fn status_name(status: Option<&AddonStatus>) -> String {
    status.map_or("UNKNOWN", |s| s.as_str()).to_owned()
}

/// The add-on's health issues, one a line: code, message, resource ids.
fn issues(addon: &Addon) -> String {
    let issues = addon.health().map(|h| h.issues()).unwrap_or_default();
    if issues.is_empty() {
        return "  (EKS reports no health issues)".to_owned();
    }
    issues
        .iter()
        .map(|issue| {
            let mut line = format!(
                "  - {}: {}",
                issue.code().map_or("Unknown", |c| c.as_str()),
                issue.message().unwrap_or("(no message)")
            );
            if !issue.resource_ids().is_empty() {
                line.push_str(&format!(
                    " (resources: {})",
                    issue.resource_ids().join(", ")
                ));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_eks_clusters() {
        assert_eq!(
            cluster_from_arn("arn:aws:eks:eu-west-1:123456789012:cluster/prod"),
            Some(EksCluster {
                name: "prod".into(),
                region: "eu-west-1".into()
            })
        );
        assert_eq!(cluster_from_arn("kind-kind"), None);
        assert_eq!(cluster_from_arn("arn:aws:iam::123456789012:role/x"), None);
    }

    #[test]
    fn configurations_compare_as_data() {
        let addon = Addon::builder()
            .addon_version("v1.27.1-eksbuild.1")
            .configuration_values("{\"pilot\": {\"replicas\": 2}}")
            .build();
        let mut settings = AddonSettings {
            addon_name: "solo-io_istio-distro".into(),
            addon_version: Some("v1.27.1-eksbuild.1".into()),
            configuration_values: Some("pilot:\n  replicas: 2\n".into()),
            resolve_conflicts: None,
        };
        assert!(settings.satisfied_by(&addon));
        settings.configuration_values = Some("pilot:\n  replicas: 3\n".into());
        assert!(!settings.satisfied_by(&addon));
        settings.configuration_values = None;
        settings.addon_version = Some("v1.28.0-eksbuild.1".into());
        assert!(!settings.satisfied_by(&addon));
    }
}
