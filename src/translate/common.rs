//! Small conversions every translator uses: durations, regex escaping, metadata, selectors.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::appmesh;
use crate::object::ObjectRef;

use super::{MANAGED_BY, SOURCE_ANNOTATION};

/// True when `labels` has every label of `wanted` with the same value (any labels have none).
pub fn carries(labels: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// An App Mesh duration as an Istio duration string; `None` for zero (Istio rejects `0s` on most
/// fields, where App Mesh's 0 means "disabled").
pub fn duration(d: &appmesh::Duration) -> Option<String> {
    let millis = d.millis();
    if millis == 0 {
        None
    } else {
        Some(millis_text(millis))
    }
}

/// Milliseconds as `Ns` when whole seconds, else `Nms`.
pub fn millis_text(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// Escapes every RE2 metacharacter so the text matches literally.
pub fn re2_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Metadata of an object meshplan creates: managed-by label and the App Mesh source annotation.
pub fn metadata(name: &str, namespace: &str, source: &ObjectRef) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY.0.to_owned(),
            MANAGED_BY.1.to_owned(),
        )])),
        annotations: Some(BTreeMap::from([(
            SOURCE_ANNOTATION.to_owned(),
            source.to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

/// A name made fit for a DNS-1123 label (lower case, `-` for anything else, at most 63 bytes).
pub fn dns_label(text: &str) -> String {
    let mut out: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    out.trim_matches('-').to_owned()
}

/// A port number as Istio wants it, when it is one.
pub fn port(value: i64) -> Option<u32> {
    u32::try_from(value)
        .ok()
        .filter(|p| (1..=65535).contains(p))
}

/// The resource name at the end of an App Mesh ARN (`…/virtualNode/<name>`).
pub fn arn_name(arn: &str) -> Option<&str> {
    arn.rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && arn.starts_with("arn:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appmesh::{Duration, DurationUnit};

    #[test]
    fn durations_follow_the_conversion_rule() {
        let d = |unit, value| duration(&Duration { unit, value });
        assert_eq!(d(DurationUnit::Millis, 1500).as_deref(), Some("1500ms"));
        assert_eq!(d(DurationUnit::Millis, 2000).as_deref(), Some("2s"));
        assert_eq!(d(DurationUnit::Seconds, 15).as_deref(), Some("15s"));
        assert_eq!(d(DurationUnit::Seconds, 0), None);
    }

    #[test]
    fn escaping_makes_metacharacters_literal() {
        assert_eq!(re2_escape("a.b*c"), "a\\.b\\*c");
        assert_eq!(re2_escape("/v1/(x)"), "/v1/\\(x\\)");
    }

    #[test]
    fn labels_are_made_dns_safe() {
        assert_eq!(dns_label("Color_V1"), "color-v1");
        assert_eq!(dns_label("-x-"), "x");
    }
}
