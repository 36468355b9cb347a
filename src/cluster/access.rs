//! Permission preflight: asks the API server, with SelfSubjectAccessReviews, whether this user may
//! do everything a run needs, and names every missing permission at once, before anything changes.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

use super::{Cluster, ClusterError, retry};
use crate::object::ObjectRef;
use crate::steps::Access;

/// Reviews asked at once: enough to be quick, few enough not to be throttled.
const AT_ONCE: usize = 16;

/// Checks every permission in `needed`; `ClusterError::Forbidden` lists the missing ones.
pub async fn check_access(cluster: &Cluster, needed: &[Access]) -> Result<(), ClusterError> {
    cluster
        .discover(&api_versions(needed.iter().map(|a| a.api_version.as_str())))
        .await;
    let mut missing = Vec::new();
    for batch in needed.chunks(AT_ONCE) {
        let mut reviews = JoinSet::new();
        for (i, access) in batch.iter().enumerate() {
            let probe = ObjectRef::new(
                &access.api_version,
                &access.kind,
                access.namespace.as_deref(),
                "-",
            );
            let resource = cluster.resource(&probe).await?;
            let attributes = ResourceAttributes {
                verb: Some(access.verb.to_owned()),
                group: Some(resource.group.clone()),
                version: Some(resource.version.clone()),
                resource: Some(resource.plural.clone()),
                namespace: access.namespace.clone(),
                ..ResourceAttributes::default()
            };
            let api: Api<SelfSubjectAccessReview> = Api::all(cluster.client.clone());
            reviews.spawn(async move {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(attributes.clone()),
                        ..SelfSubjectAccessReviewSpec::default()
                    },
                    ..SelfSubjectAccessReview::default()
                };
                let params = PostParams::default();
                let answer = retry(|| api.create(&params, &review)).await;
                (i, attributes, answer)
            });
        }
        let mut answers = Vec::new();
        while let Some(joined) = reviews.join_next().await {
            answers.push(joined.expect("review tasks do not panic"));
        }
        // Report in the order asked, whatever order the answers came in.
        answers.sort_by_key(|(i, _, _)| *i);
        for (_, attributes, answer) in answers {
            let answer = answer.map_err(|source| ClusterError::Api {
                what: "asking the API server for permissions (SelfSubjectAccessReview)".to_owned(),
                source,
            })?;
            if !answer.status.is_some_and(|s| s.allowed) {
                missing.push(describe(&attributes));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Forbidden(missing))
    }
}

/// Group-versions, each once.
pub(super) fn api_versions<'a>(versions: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut versions: Vec<&str> = versions.into_iter().collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

/// `create destinationrules.networking.istio.io in namespace shop`, as `kubectl auth can-i` names it.
fn describe(a: &ResourceAttributes) -> String {
    let resource = match a.group.as_deref() {
        None | Some("") => a.resource.clone().unwrap_or_default(),
        Some(group) => format!("{}.{group}", a.resource.as_deref().unwrap_or_default()),
    };
    let verb = a.verb.as_deref().unwrap_or_default();
    match &a.namespace {
        Some(namespace) => format!("{verb} {resource} in namespace {namespace}"),
        None => format!("{verb} {resource} (cluster-wide)"),
    }
}
