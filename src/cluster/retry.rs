//! Retries with exponential backoff for transient API failures (429, 5xx, dropped
//! connections); never for answers that will not change, such as validation errors.

use std::future::Future;
use std::time::Duration;

/// Attempts in all, including the first.
const ATTEMPTS: u32 = 8;
/// First pause; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// True when the server is throttling, failing or unreachable: the same request may succeed later.
pub fn unavailable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        // Transport failures: refused or dropped connections, timeouts.
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// True when the same request may succeed later: the server was unavailable, or a write raced
/// another writer, which reading and writing again settles. (An AlreadyExists 409 or a
/// field-manager conflict will not change; not retried.)
pub fn transient(error: &kube::Error) -> bool {
    unavailable(error)
        || matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "Conflict")
}

/// Runs `call` until it succeeds, fails for good, or the attempts run out.
pub async fn retry<T, F, Fut>(call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    retry_when(transient, call).await
}

/// Runs `call` until it succeeds, fails with an error `again` does not accept, or the attempts
/// run out.
pub async fn retry_when<T, F, Fut>(
    again: fn(&kube::Error) -> bool,
    mut call: F,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = FIRST_DELAY;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < ATTEMPTS && again(&error) => {
                tracing::warn!(attempt, of = ATTEMPTS, ?delay, %error, "retrying a request");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
                attempt += 1;
            }
            other => return other,
        }
    }
}
