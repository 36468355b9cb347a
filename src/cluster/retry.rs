//! Retries with exponential backoff for transient API failures (429, 5xx, dropped
//! connections); never for answers that will not change, such as validation errors.

use std::future::Future;
use std::time::Duration;

/// Attempts in all, including the first.
const ATTEMPTS: u32 = 8;
/// First pause; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// True when the same request may succeed later.
pub fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            matches!(status.code, 429 | 500 | 502 | 503 | 504)
                // A write raced another writer: reading and writing again settles it. (An
                // AlreadyExists 409 or a field-manager conflict will not change; not retried.)
                || (status.code == 409 && status.reason == "Conflict")
        }
        // Transport failures: refused or dropped connections, timeouts.
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or the attempts run out.
pub async fn retry<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = FIRST_DELAY;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < ATTEMPTS && transient(&error) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
                attempt += 1;
            }
            other => return other,
        }
    }
}
