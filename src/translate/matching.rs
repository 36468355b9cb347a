//! App Mesh request matches → Istio `HTTPMatchRequest`, shared by router and gateway routes.

use crate::appmesh::{GrpcMatch, HeaderMatch, HttpMatch, PathMatch, QueryParameterMatch};
use crate::findings::Code;
use crate::istio::{Empty, HttpMatchRequest, StringMatch};

use super::common::re2_escape;

/// A problem found while converting a match: a code, the field path and a message.
pub type Problem = (Code, String, String);

/// Largest generated range regex; beyond it a range is refused rather than emitted unreadably.
const MAX_RANGE_REGEX: usize = 2000;

/// Converts an HTTP/HTTP2 route match. `field` is the path of the `match` object.
pub fn http(m: &HttpMatch, field: &str, problems: &mut Vec<Problem>) -> HttpMatchRequest {
    let mut out = HttpMatchRequest::default();
    if let Some(prefix) = &m.prefix {
        out.uri = Some(StringMatch::Prefix(prefix.clone()));
    }
    if let Some(path) = &m.path {
        out.uri = path_match(path).or(out.uri);
    }
    out.method = m.method.clone().map(StringMatch::Exact);
    out.scheme = m.scheme.clone().map(StringMatch::Exact);
    headers(&m.headers, &format!("{field}.headers"), &mut out, problems);
    query(&m.query_parameters, &mut out);
    out
}

/// Converts a gRPC route match.
pub fn grpc(m: &GrpcMatch, field: &str, problems: &mut Vec<Problem>) -> HttpMatchRequest {
    let mut out = HttpMatchRequest {
        uri: match (&m.service_name, &m.method_name) {
            (Some(service), Some(method)) => {
                Some(StringMatch::Exact(format!("/{service}/{method}")))
            }
            (Some(service), None) => Some(StringMatch::Prefix(format!("/{service}/"))),
            (None, Some(method)) => {
                Some(StringMatch::Regex(format!("/[^/]+/{}", re2_escape(method))))
            }
            (None, None) => None,
        },
        ..HttpMatchRequest::default()
    };
    headers(
        &m.metadata,
        &format!("{field}.metadata"),
        &mut out,
        problems,
    );
    out
}

/// `path.exact` / `path.regex` → `uri`.
pub fn path_match(path: &PathMatch) -> Option<StringMatch> {
    match (&path.exact, &path.regex) {
        (Some(exact), _) => Some(StringMatch::Exact(exact.clone())),
        (None, Some(regex)) => Some(StringMatch::Regex(regex.clone())),
        (None, None) => None,
    }
}

/// Query parameters: exact values, or presence (any value).
pub fn query(params: &[QueryParameterMatch], out: &mut HttpMatchRequest) {
    for param in params {
        let value = match param.match_.as_ref().and_then(|m| m.exact.clone()) {
            Some(exact) => StringMatch::Exact(exact),
            // Envoy fails a query matcher when the parameter is absent: `.*` means "present".
            None => StringMatch::Regex(".*".to_owned()),
        };
        out.query_params.insert(param.name.clone(), value);
    }
}

/// Header (or gRPC metadata) conditions → `headers` / `withoutHeaders`, names lower-cased.
pub fn headers(
    list: &[HeaderMatch],
    field: &str,
    out: &mut HttpMatchRequest,
    problems: &mut Vec<Problem>,
) {
    for (i, header) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let name = header.name.to_ascii_lowercase();
        if out.headers.contains_key(&name) || out.without_headers.contains_key(&name) {
            problems.push((
                Code::HeaderConflict,
                at,
                format!(
                    "header `{name}` is matched twice; Istio keeps one condition per header, so \
                     this condition is left out and the route matches more requests"
                ),
            ));
            continue;
        }
        let Some(value) = header_value(header, &at, problems) else {
            continue;
        };
        if header.invert == Some(true) {
            out.without_headers.insert(name, value);
        } else {
            out.headers.insert(name, value);
        }
    }
}

fn header_value(
    header: &HeaderMatch,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<StringMatch> {
    let Some(method) = &header.match_ else {
        return Some(StringMatch::Any(Empty {}));
    };
    let mut candidates = Vec::new();
    if let Some(v) = &method.exact {
        candidates.push(StringMatch::Exact(v.clone()));
    }
    if let Some(v) = &method.prefix {
        candidates.push(StringMatch::Prefix(v.clone()));
    }
    if let Some(v) = &method.suffix {
        candidates.push(StringMatch::Regex(format!(".*{}", re2_escape(v))));
    }
    if let Some(v) = &method.regex {
        candidates.push(StringMatch::Regex(v.clone()));
    }
    if let Some(range) = &method.range {
        match range_regex(range.start, range.end) {
            Some(regex) => candidates.push(StringMatch::Regex(regex)),
            None => {
                problems.push((
                    Code::HeaderConflict,
                    format!("{at}.match.range"),
                    format!(
                        "range [{}, {}) of header `{}` is empty or too wide for a regular \
                         expression; the condition is left out",
                        range.start, range.end, header.name
                    ),
                ));
                return None;
            }
        }
    }
    match candidates.len() {
        0 => Some(StringMatch::Any(Empty {})),
        1 => candidates.pop(),
        _ => {
            problems.push((
                Code::HeaderConflict,
                format!("{at}.match"),
                format!(
                    "header `{}` names several match methods; App Mesh applies one and Istio \
                     allows one: only the first ({}) is kept",
                    header.name,
                    describe(&candidates[0])
                ),
            ));
            Some(candidates.swap_remove(0))
        }
    }
}

fn describe(m: &StringMatch) -> &'static str {
    match m {
        StringMatch::Exact(_) => "exact",
        StringMatch::Prefix(_) => "prefix",
        StringMatch::Regex(_) => "regex",
        StringMatch::Any(_) => "presence",
    }
}

/// A regular expression matching the canonical decimal integers in `[start, end)`.
pub fn range_regex(start: i64, end: i64) -> Option<String> {
    let (start, end) = (i128::from(start), i128::from(end) - 1);
    if start > end {
        return None;
    }
    let mut alternatives = Vec::new();
    // Negative values: "-" and the magnitude, from |min(end, -1)| up to |start|.
    if start < 0 {
        let lo = (-end.min(-1)) as u128;
        let hi = (-start) as u128;
        alternatives.extend(positive(lo, hi).into_iter().map(|p| format!("-{p}")));
    }
    if end >= 0 {
        alternatives.extend(positive(start.max(0) as u128, end as u128));
    }
    let regex = if alternatives.len() == 1 {
        alternatives.pop()?
    } else {
        format!("(?:{})", alternatives.join("|"))
    };
    (regex.len() <= MAX_RANGE_REGEX).then_some(regex)
}

/// Alternatives for `[lo, hi]` of non-negative integers, split by digit count.
fn positive(lo: u128, hi: u128) -> Vec<String> {
    let mut out = Vec::new();
    let digits = |n: u128| n.to_string().len();
    for len in digits(lo)..=digits(hi) {
        let first = if len == 1 {
            0
        } else {
            10u128.pow(len as u32 - 1)
        };
        let last = 10u128.pow(len as u32) - 1;
        let (a, b) = (lo.max(first), hi.min(last));
        if a <= b {
            same_length(&a.to_string(), &b.to_string(), &mut out, String::new());
        }
    }
    out
}

/// Alternatives for digit strings of equal length, `a <= b`.
fn same_length(a: &str, b: &str, out: &mut Vec<String>, prefix: String) {
    let (a0, b0) = (a.as_bytes()[0] - b'0', b.as_bytes()[0] - b'0');
    let rest = a.len() - 1;
    let any = |n: usize| match n {
        0 => String::new(),
        1 => "[0-9]".to_owned(),
        n => format!("[0-9]{{{n}}}"),
    };
    let class = |lo: u8, hi: u8| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("[{lo}-{hi}]")
        }
    };
    if rest == 0 {
        out.push(format!("{prefix}{}", class(a0, b0)));
        return;
    }
    if a0 == b0 {
        same_length(&a[1..], &b[1..], out, format!("{prefix}{a0}"));
        return;
    }
    let a_min = a[1..].bytes().all(|c| c == b'0');
    let b_max = b[1..].bytes().all(|c| c == b'9');
    if a_min && b_max {
        out.push(format!("{prefix}{}{}", class(a0, b0), any(rest)));
        return;
    }
    let (mut lo, mut hi) = (a0, b0);
    if !a_min {
        same_length(&a[1..], &"9".repeat(rest), out, format!("{prefix}{a0}"));
        lo += 1;
    }
    if !b_max {
        hi -= 1;
    }
    if lo <= hi {
        out.push(format!("{prefix}{}{}", class(lo, hi), any(rest)));
    }
    if !b_max {
        same_length(&"0".repeat(rest), &b[1..], out, format!("{prefix}{b0}"));
    }
}

#[cfg(test)]
mod tests {
    use super::range_regex;

    fn compile(regex: &str) -> regex::Regex {
        regex::Regex::new(&format!("^(?:{regex})$")).unwrap()
    }

    fn matches(regex: &str, value: i64) -> bool {
        compile(regex).is_match(&value.to_string())
    }

    #[test]
    fn ranges_match_exactly_their_integers() {
        for (start, end) in [
            (10, 20),
            (0, 1),
            (-5, 5),
            (7, 1234),
            (-300, -20),
            (99, 101),
            (0, 100000),
        ] {
            let text = range_regex(start, end).unwrap();
            let regex = compile(&text);
            for v in start - 50..end + 50 {
                let matched = regex.is_match(&v.to_string());
                assert_eq!(
                    matched,
                    (start..end).contains(&v),
                    "[{start},{end}) {v} {text}"
                );
            }
        }
        assert_eq!(range_regex(10, 20).unwrap(), "1[0-9]");
        assert_eq!(range_regex(5, 5), None);
    }

    #[test]
    fn extreme_ranges_stay_small() {
        let regex = range_regex(i64::MIN, i64::MAX).unwrap();
        assert!(regex.len() < 2000, "{}", regex.len());
        assert!(matches(&regex, 0) && matches(&regex, -1) && matches(&regex, i64::MAX - 1));
        assert!(!matches(&regex, i64::MAX));
    }
}
