//! A minimal client for Prometheus's instant-query HTTP API (`POST /api/v1/query`).
//!
//! It uses the shared client of [`crate::http`], so gates add no second HTTP or TLS stack.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;

use super::GateError;

/// How long one query may take, connection included, unless [`Prometheus::with_timeout`] says
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read: a gate needs one number, and a runaway query must not eat memory.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// A Prometheus server reached over its HTTP API.
#[derive(Clone)]
pub struct Prometheus {
    url: String,
    endpoint: Uri,
    timeout: Duration,
    client: crate::http::HttpClient,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The answer to an instant query, reduced to the one number a gate compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A finite value.
    Value(f64),
    /// Nothing to compare.
    NoData(Absence),
}

/// Why an answer holds no usable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// The query matched no series.
    NoSeries,
    /// The value is NaN, typically 0/0: no requests in the window.
    NotANumber,
    /// The value is +Inf or -Inf, typically x/0.
    Infinite,
}

impl std::fmt::Display for Absence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Absence::NoSeries => "the query matched no series",
            Absence::NotANumber => "the value is NaN (no requests in the window?)",
            Absence::Infinite => "the value is infinite (a division by zero?)",
        })
    }
}

impl Prometheus {
    /// A client for the Prometheus at `url` (`http://` or `https://`, optionally with a path
    /// prefix such as `/prometheus`).
    pub fn new(url: &str) -> Result<Prometheus, GateError> {
        let invalid = |reason: String| GateError::Url {
            url: url.to_owned(),
            reason,
        };
        let base = url.trim_end_matches('/');
        let parsed: Uri = base.parse().map_err(|e| invalid(format!("{e}")))?;
        let https = match parsed.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(invalid(
                    "the URL must start with http:// or https://".into(),
                ));
            }
        };
        if parsed.authority().is_none() {
            return Err(invalid("the URL names no host".into()));
        }
        if parsed.query().is_some() {
            return Err(invalid("the URL must not have a query string".into()));
        }
        let endpoint: Uri = format!("{base}/api/v1/query")
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        let client = crate::http::client(https).map_err(invalid)?;
        Ok(Prometheus {
            url: url.to_owned(),
            endpoint,
            timeout: DEFAULT_TIMEOUT,
            client,
        })
    }

    /// The same client with another per-query time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Prometheus {
        self.timeout = timeout;
        self
    }

    /// Runs an instant query at `at` (Prometheus's own clock when `None`).
    pub async fn query(
        &self,
        promql: &str,
        at: Option<jiff::Timestamp>,
    ) -> Result<Sample, GateError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("query", promql);
        if let Some(at) = at {
            form.append_pair("time", &at.to_string());
        }
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("meshplan/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(form.finish())))
            .expect("a request from a parsed URI and static headers is valid");
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| GateError::Unreachable {
                        url: self.url.clone(),
                        reason: chain(&e),
                    })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| GateError::Response {
                    url: self.url.clone(),
                    query: promql.to_owned(),
                    reason: format!("reading the answer failed: {}", chain(&*e)),
                })?
                .to_bytes();
            Ok::<_, GateError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| GateError::Timeout {
                url: self.url.clone(),
                timeout: self.timeout,
            })??;
        parse_answer(status, &body, promql).map_err(|answer| match answer {
            Answer::Rejected(message) => GateError::Query {
                query: promql.to_owned(),
                message,
            },
            Answer::ManySeries(count) => GateError::ManySeries {
                query: promql.to_owned(),
                count,
            },
            Answer::Unexpected(reason) => GateError::Response {
                url: self.url.clone(),
                query: promql.to_owned(),
                reason,
            },
        })
    }
}

/// An error and its causes, joined the way a person reads them.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// What made an answer unusable; the caller adds the URL and query.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Prometheus's own error message.
    Rejected(String),
    /// The query returned this many series.
    ManySeries(usize),
    /// The answer is not what the API documents.
    Unexpected(String),
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    value: Option<(f64, String)>,
}

/// Reads an API answer: a number, no data, or why not.
fn parse_answer(status: StatusCode, body: &[u8], promql: &str) -> Result<Sample, Answer> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            return Err(Answer::Unexpected(if status.is_success() {
                format!("the answer is not Prometheus API JSON ({e}): {text}")
            } else {
                format!("HTTP {status}: {text}")
            }));
        }
    };
    if envelope.status != "success" {
        let message = envelope.error.unwrap_or_else(|| {
            format!(
                "HTTP {status}, error type {}",
                envelope.error_type.as_deref().unwrap_or("unknown")
            )
        });
        return Err(Answer::Rejected(message));
    }
    let Some(Data {
        result_type,
        result,
    }) = envelope.data
    else {
        return Err(Answer::Unexpected("the answer has no data".into()));
    };
    let malformed =
        |e: serde_json::Error| Answer::Unexpected(format!("malformed {result_type}: {e}"));
    let value = match result_type.as_str() {
        "scalar" => {
            serde_json::from_value::<(f64, String)>(result)
                .map_err(malformed)?
                .1
        }
        "vector" => {
            let mut series: Vec<VectorSample> =
                serde_json::from_value(result).map_err(malformed)?;
            match series.len() {
                0 => return Ok(Sample::NoData(Absence::NoSeries)),
                1 => match series.pop().and_then(|s| s.value) {
                    Some((_, value)) => value,
                    None => {
                        return Err(Answer::Unexpected(
                            "the series holds a native histogram, not a number".into(),
                        ));
                    }
                },
                n => return Err(Answer::ManySeries(n)),
            }
        }
        "matrix" => {
            return Err(Answer::Unexpected(format!(
                "`{promql}` returns a range vector; a gate needs an instant value, e.g. wrap the range in rate(...)"
            )));
        }
        other => {
            return Err(Answer::Unexpected(format!(
                "the query returns a {other}, not a number"
            )));
        }
    };
    let number: f64 = value
        .parse()
        .map_err(|_| Answer::Unexpected(format!("`{value}` is not a number")))?;
    Ok(if number.is_nan() {
        Sample::NoData(Absence::NotANumber)
    } else if number.is_infinite() {
        Sample::NoData(Absence::Infinite)
    } else {
        Sample::Value(number)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str) -> Result<Sample, Answer> {
        parse_answer(StatusCode::from_u16(status).unwrap(), body.as_bytes(), "q")
    }

    #[test]
    fn one_series_is_its_value() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795970520,"0.995"]}]}}"#;
        assert_eq!(parse(200, body), Ok(Sample::Value(0.995)));
    }

    #[test]
    fn a_scalar_is_its_value() {
        let body =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1795970520,"42"]}}"#;
        assert_eq!(parse(200, body), Ok(Sample::Value(42.0)));
    }

    #[test]
    fn empty_nan_and_infinite_answers_are_no_data() {
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse(200, empty), Ok(Sample::NoData(Absence::NoSeries)));
        for (text, absence) in [
            ("NaN", Absence::NotANumber),
            ("+Inf", Absence::Infinite),
            ("-Inf", Absence::Infinite),
        ] {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{text}"]}}]}}}}"#
            );
            assert_eq!(parse(200, &body), Ok(Sample::NoData(absence)), "{text}");
        }
    }

    #[test]
    fn several_series_are_counted() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]},{"metric":{"a":"3"},"value":[1,"3"]}]}}"#;
        assert_eq!(parse(200, body), Err(Answer::ManySeries(3)));
    }

    #[test]
    fn prometheus_errors_carry_its_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:18: parse error: unclosed left parenthesis"}"#;
        for status in [400, 422, 503] {
            assert_eq!(
                parse(status, body),
                Err(Answer::Rejected(
                    "invalid parameter \"query\": 1:18: parse error: unclosed left parenthesis"
                        .into()
                ))
            );
        }
    }

    #[test]
    fn answers_that_are_not_the_api_are_unexpected() {
        let Err(Answer::Unexpected(reason)) = parse(404, "404 page not found") else {
            panic!("accepted");
        };
        assert!(
            reason.contains("HTTP 404 Not Found: 404 page not found"),
            "{reason}"
        );
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let Err(Answer::Unexpected(reason)) = parse(200, matrix) else {
            panic!("accepted");
        };
        assert!(reason.contains("range vector"), "{reason}");
        let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"abc"]}}"#;
        assert_eq!(
            parse(200, string),
            Err(Answer::Unexpected(
                "the query returns a string, not a number".into()
            ))
        );
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        for url in ["prometheus:9090", "ftp://host", "http://host?x=1"] {
            assert!(
                matches!(Prometheus::new(url), Err(GateError::Url { .. })),
                "{url}"
            );
        }
        let prom = Prometheus::new("http://prometheus.istio-system:9090/").unwrap();
        assert_eq!(
            prom.endpoint.to_string(),
            "http://prometheus.istio-system:9090/api/v1/query"
        );
        let prefixed = Prometheus::new("http://host/prometheus").unwrap();
        assert_eq!(
            prefixed.endpoint.to_string(),
            "http://host/prometheus/api/v1/query"
        );
    }
}
