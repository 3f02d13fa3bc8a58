//! How [`super::AwsWaf`] runs a call: writes paced, throttling retried with exponential backoff,
//! every failure classified into a [`WafErrorKind`].
//!
//! Only throttling is retried. `WAFLimitsExceededException` is a resource limit (too many IP sets,
//! web ACLs, ...) that waiting does not lift, and `WAFOptimisticLockException` means the caller's
//! plan is stale: retrying either would only delay the answer, or overwrite a change nobody reviewed.

use std::future::Future;
use std::time::Duration;

use aws_sdk_wafv2 as sdk;
use aws_sdk_wafv2::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::Config;
use crate::sdk_error::{self, EndpointRecorder};
use crate::util::term::verbose;
use crate::waf::{WafError, WafErrorKind};

/// How [`super::AwsWaf`] spaces and retries its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPolicy {
    /// Minimum time between two write calls.
    pub write_interval: Duration,
    /// First wait after a throttling error; doubled on each further attempt.
    pub backoff: Duration,
    /// Attempts per call when throttled, the first included.
    pub max_attempts: u32,
}

impl CallPolicy {
    /// The pacing a configuration asks for, with a backoff suited to WAF's per-second quotas.
    pub fn from_config(config: &Config) -> CallPolicy {
        CallPolicy {
            write_interval: Duration::from_millis(config.guardrails.write_interval_ms),
            backoff: Duration::from_secs(1),
            max_attempts: 5,
        }
    }
}

/// Paces and retries the calls of one client.
pub(super) struct Caller {
    policy: CallPolicy,
    last_write: Mutex<Option<Instant>>,
    /// Where the client's requests went, for errors that are not AWS answers.
    pub(super) endpoint: EndpointRecorder,
}

impl Caller {
    pub(super) fn new(policy: CallPolicy, endpoint: EndpointRecorder) -> Caller {
        Caller {
            policy,
            last_write: Mutex::new(None),
            endpoint,
        }
    }

    /// Runs one call with pacing (writes) and backoff (throttling).
    pub(super) async fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        resource: &str,
        write: bool,
        send: F,
    ) -> Result<T, WafError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, sdk::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempt = 1;
        loop {
            if write {
                self.pace().await;
            }
            let err = match send().await {
                Ok(out) => {
                    verbose!("wafv2: {operation} `{resource}`");
                    return Ok(out);
                }
                Err(err) => self.classify(&err),
            };
            if matches!(err, WafErrorKind::Throttled { .. }) && attempt < self.policy.max_attempts {
                let wait = self.policy.backoff * 2u32.pow(attempt - 1);
                verbose!("wafv2: {operation} `{resource}`: throttled, retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            verbose!("wafv2: {operation} `{resource}`: failed");
            return Err(WafError {
                operation,
                resource: resource.to_owned(),
                kind: err,
            });
        }
    }

    async fn pace(&self) {
        let mut last = self.last_write.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until(at + self.policy.write_interval).await;
        }
        *last = Some(Instant::now());
    }

    fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &self,
        err: &SdkError<E, sdk::config::http::HttpResponse>,
    ) -> WafErrorKind {
        let message = || err.message().unwrap_or_default().to_owned();
        match err
            .code()
            .filter(|_| matches!(err, SdkError::ServiceError(_)))
        {
            Some(code) => kind_of(code, message()),
            None => WafErrorKind::Unexpected {
                message: sdk_error::describe(err, "WAFv2", &self.endpoint.endpoint()),
            },
        }
    }
}

/// What an AWS error code means to waftune; only [`WafErrorKind::Throttled`] is retried.
fn kind_of(code: &str, message: String) -> WafErrorKind {
    match code {
        "WAFOptimisticLockException" => WafErrorKind::Stale,
        "WAFNonexistentItemException" => WafErrorKind::NotFound,
        "WAFDuplicateItemException" | "WafV2DuplicateItem" => WafErrorKind::Duplicate,
        "WAFAssociatedItemException" => WafErrorKind::StillReferenced,
        "WAFLimitsExceededException" => WafErrorKind::LimitExceeded { message },
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => WafErrorKind::Throttled { message },
        code => WafErrorKind::Other {
            code: code.to_owned(),
            message,
        },
    }
}

/// Every item of a listing: the Rust SDK has no paginator for WAFv2, so follow `NextMarker`.
/// An empty page or a repeated marker ends the walk even if a marker is returned.
pub(super) async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, WafError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), WafError>>,
{
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let (items, next) = page(marker.clone()).await?;
        let empty = items.is_empty();
        all.extend(items);
        match next {
            Some(next) if !empty && marker.as_deref() != Some(next.as_str()) => {
                marker = Some(next);
            }
            _ => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use aws_sdk_wafv2::error::ErrorMetadata;
    use aws_sdk_wafv2::operation::list_ip_sets::ListIPSetsError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    #[test]
    fn only_throttling_is_retryable() {
        let kind = |code| kind_of(code, "m".into());
        for code in [
            "ThrottlingException",
            "Throttling",
            "TooManyRequestsException",
            "RequestLimitExceeded",
        ] {
            assert_eq!(
                kind(code),
                WafErrorKind::Throttled {
                    message: "m".into()
                }
            );
        }
        assert_eq!(
            kind("WAFLimitsExceededException"),
            WafErrorKind::LimitExceeded {
                message: "m".into()
            }
        );
        assert_eq!(kind("WAFOptimisticLockException"), WafErrorKind::Stale);
        assert_eq!(kind("WAFNonexistentItemException"), WafErrorKind::NotFound);
        assert_eq!(kind("WafV2DuplicateItem"), WafErrorKind::Duplicate);
        assert!(
            matches!(kind("WAFInvalidParameterException"), WafErrorKind::Other { code, .. } if code == "WAFInvalidParameterException")
        );
    }

    /// How many attempts `call` makes when every one fails with `code`.
    async fn attempts_for(code: &'static str) -> (u32, WafErrorKind) {
        let caller = Caller::new(
            CallPolicy {
                write_interval: Duration::ZERO,
                backoff: Duration::ZERO,
                max_attempts: 3,
            },
            EndpointRecorder::default(),
        );
        let sent = AtomicU32::new(0);
        let err = caller
            .call("ListIPSets", "REGIONAL", false, || {
                sent.fetch_add(1, Ordering::SeqCst);
                async move {
                    let meta = ErrorMetadata::builder().code(code).message("no").build();
                    let response = sdk::config::http::HttpResponse::new(
                        400.try_into().unwrap(),
                        SdkBody::empty(),
                    );
                    Err::<(), _>(SdkError::service_error(
                        ListIPSetsError::generic(meta),
                        response,
                    ))
                }
            })
            .await
            .unwrap_err();
        (sent.load(Ordering::SeqCst), err.kind)
    }

    #[tokio::test]
    async fn a_resource_limit_fails_at_once_and_throttling_is_retried() {
        let (attempts, kind) = attempts_for("WAFLimitsExceededException").await;
        assert_eq!(attempts, 1);
        assert!(matches!(kind, WafErrorKind::LimitExceeded { .. }));
        let (attempts, kind) = attempts_for("ThrottlingException").await;
        assert_eq!(attempts, 3);
        assert!(matches!(kind, WafErrorKind::Throttled { .. }));
    }
}
