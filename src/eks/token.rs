//! Direct connection to an EKS cluster: DescribeCluster for its endpoint and CA, and a bearer
//! token made as `aws eks get-token` makes it, re-made before it expires.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;

use super::EksError;
use crate::plan::EksCluster;

/// How long the presigned URL is valid for (`aws eks get-token` signs for 60 s; EKS accepts the
/// token for 15 minutes from its signing time).
const PRESIGN_EXPIRY: Duration = Duration::from_secs(60);
/// Tokens are re-made this often, well inside their 15 minutes.
pub const REFRESH: Duration = Duration::from_secs(10 * 60);

/// The bearer token for `cluster`: a SigV4 presigned STS GetCallerIdentity URL, signed with the
/// header `x-k8s-aws-id: CLUSTER`, base64url without padding, prefixed `k8s-aws-v1.`.
pub fn token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String, EksError> {
    let url = presigned_url(credentials, region, cluster, time)?;
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

/// The presigned STS GetCallerIdentity URL inside a token.
pub fn presigned_url(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String, EksError> {
    let signing = |e: &dyn std::fmt::Display| EksError::Token(e.to_string());
    let url =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = Identity::from(credentials.clone());
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRY);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing(&e))?
        .into();
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        [("x-k8s-aws-id", cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| signing(&e))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| signing(&e))?
        .into_parts();
    let mut signed = http::Request::builder()
        .uri(&url)
        .body(())
        .map_err(|e| signing(&e))?;
    instructions.apply_to_request_http1x(&mut signed);
    Ok(signed.uri().to_string())
}

/// Where and how to reach an EKS cluster's API server, as DescribeCluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The API server URL.
    pub url: String,
    /// Its CA bundle, base64-encoded PEM (as a kubeconfig's `certificate-authority-data`).
    pub certificate_authority: String,
}

/// DescribeCluster: the cluster's API endpoint and CA.
pub async fn describe_endpoint(
    client: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Endpoint, EksError> {
    let output = client
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(|e| EksError::Api {
            what: format!("describing EKS cluster {cluster}"),
            message: aws_sdk_eks::error::DisplayErrorContext(&e).to_string(),
        })?;
    let found = output.cluster.as_ref();
    let missing = |what: &str| EksError::Api {
        what: format!("describing EKS cluster {cluster}"),
        message: format!("the cluster has no {what} yet (is it still CREATING?)"),
    };
    Ok(Endpoint {
        url: found
            .and_then(|c| c.endpoint())
            .ok_or_else(|| missing("endpoint"))?
            .to_owned(),
        certificate_authority: found
            .and_then(|c| c.certificate_authority())
            .and_then(|c| c.data())
            .ok_or_else(|| missing("certificate authority"))?
            .to_owned(),
    })
}

/// A kube Client for an EKS cluster reached directly: endpoint and CA from DescribeCluster,
/// credentials from aws-config's default chain, and a token re-made every [`REFRESH`] by a
/// task that ends when the client is dropped. kube's own stack (retries, tracing) stays as is.
pub async fn connect(cluster: &EksCluster) -> Result<kube::Client, EksError> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cluster.region.clone()))
        .load()
        .await;
    let endpoint = describe_endpoint(&aws_sdk_eks::Client::new(&config), &cluster.name).await?;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| EksError::Token("no AWS credentials provider is configured".to_owned()))?;
    let make = {
        let cluster = cluster.clone();
        move |provider: aws_credential_types::provider::SharedCredentialsProvider| {
            let cluster = cluster.clone();
            async move {
                let credentials = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| EksError::Token(format!("AWS credentials: {e}")))?;
                token(
                    &credentials,
                    &cluster.region,
                    &cluster.name,
                    SystemTime::now(),
                )
            }
        }
    };
    let current = Arc::new(RwLock::new(make(provider.clone()).await?));
    let refreshed = Arc::downgrade(&current);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REFRESH).await;
            let Some(cell) = refreshed.upgrade() else {
                return;
            };
            // On failure the old token stays; it is good for a few more minutes and the next
            // attempt may succeed.
            if let Ok(token) = make(provider.clone()).await {
                *cell.write().expect("the token lock is never poisoned") = token;
            }
        }
    });
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: eks\n  cluster:\n    server: {}\n    \
         certificate-authority-data: {}\ncontexts:\n- name: eks\n  context:\n    cluster: eks\n    \
         user: eks\nusers:\n- name: eks\n  user: {{}}\ncurrent-context: eks\n",
        endpoint.url, endpoint.certificate_authority
    );
    let kube_error = |e: &dyn std::fmt::Display| EksError::Token(e.to_string());
    let file = kube::config::Kubeconfig::from_yaml(&kubeconfig).map_err(|e| kube_error(&e))?;
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| kube_error(&e))?;
    let authorize = tower::util::MapRequestLayer::new(move |mut request: http::Request<_>| {
        let token = current
            .read()
            .expect("the token lock is never poisoned")
            .clone();
        if let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(|e| kube_error(&e))?
        .with_layer(&authorize)
        .build())
}
