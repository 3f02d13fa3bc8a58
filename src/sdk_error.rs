//! AWS SDK failures said like a person, for the SDK adapters (`waf::aws`, `athena::client`).
//!
//! A modelled AWS error has a code and a message. Anything else (an endpoint answering 404 or an
//! HTML page, a connection refused, a timeout) reaches the SDK as a nested error whose `Display`
//! and `Debug` are a dump of its internals; here it becomes one sentence with the endpoint, the
//! HTTP status and a hint. The endpoint is recorded from each request by [`EndpointRecorder`]: the
//! SDK's errors do not carry it.
//!
//! The smithy types are the same in every SDK crate; they are named here through `aws_sdk_wafv2`.

use std::sync::{Arc, Mutex};

use aws_sdk_wafv2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_wafv2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_wafv2::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};

type HttpResponse = aws_sdk_wafv2::config::http::HttpResponse;

const HINT: &str = "is AWS_ENDPOINT_URL right? With moto, are its Python pins installed \
     (`.ci/requirements.txt`: a newer botocore answers some calls with 404)?";

/// Remembers the origin (`scheme://host:port`) of the last request a client sent.
#[derive(Debug, Clone, Default)]
pub struct EndpointRecorder(Arc<Mutex<Option<String>>>);

impl EndpointRecorder {
    /// The last endpoint, or a placeholder before any request was sent.
    pub fn endpoint(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "(not reached)".to_owned())
    }
}

impl Intercept for EndpointRecorder {
    fn name(&self) -> &'static str {
        "waftune::EndpointRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(origin(context.request().uri()).to_owned());
        }
        Ok(())
    }
}

/// `https://host:port` of a URI: the path of a request says nothing about where it went.
fn origin(uri: &str) -> &str {
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    match uri[after_scheme..].find('/') {
        Some(i) => &uri[..after_scheme + i],
        None => uri,
    }
}

/// What went wrong, as one sentence without the service's name and the operation (the caller's
/// error names them): `code: message` for a modelled AWS error; otherwise the endpoint, the HTTP
/// status or the connection failure, and a hint.
pub fn describe<E>(err: &SdkError<E, HttpResponse>, service: &str, endpoint: &str) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let (SdkError::ServiceError(_), Some(code)) = (err, err.code()) {
        return match err.message() {
            Some(message) => format!("{code}: {message}"),
            None => code.to_owned(),
        };
    }
    match err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => match err.raw_response() {
            Some(response) => unexpected_response(response, service, endpoint),
            None => format!(
                "the {service} endpoint `{endpoint}` sent an answer the SDK cannot read; {HINT}"
            ),
        },
        SdkError::DispatchFailure(_) => format!(
            "cannot reach the {service} endpoint `{endpoint}` ({}); check the network, the region and AWS_ENDPOINT_URL",
            DisplayErrorContext(err)
        ),
        SdkError::TimeoutError(_) => format!(
            "the {service} endpoint `{endpoint}` did not answer in time; check the network, the region and AWS_ENDPOINT_URL"
        ),
        // Construction failures (credentials, invalid parameters) are worded well enough by the SDK.
        _ => DisplayErrorContext(err).to_string(),
    }
}

fn unexpected_response(response: &HttpResponse, service: &str, endpoint: &str) -> String {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    let body = response
        .body()
        .bytes()
        .map(|b| {
            String::from_utf8_lossy(b)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|b| !b.is_empty())
        .map(|b| {
            let start: String = b.chars().take(80).collect();
            let more = if start.len() < b.len() { "…" } else { "" };
            format!(": `{start}{more}`")
        })
        .unwrap_or_default();
    format!(
        "the {service} endpoint `{endpoint}` answered HTTP {status}{content_type}, not an AWS API answer{body}; {HINT}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(origin("http://127.0.0.1:5000/"), "http://127.0.0.1:5000");
        assert_eq!(
            origin("https://wafv2.ap-northeast-1.amazonaws.com/x?y"),
            "https://wafv2.ap-northeast-1.amazonaws.com"
        );
        assert_eq!(origin("http://h"), "http://h");
    }
}
