//! Value types of the plan file that validate themselves while they are parsed, so that a bad
//! value is reported at its own line and column by the TOML parser.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration written like Kubernetes and Prometheus write them: `500ms`, `30s`, `5m`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "invalid duration `{text}`: write a number followed by a unit (ms, s, m, h), \
                 e.g. `30s`, `5m` or `1h30m`"
            )
        };
        let mut total = std::time::Duration::ZERO;
        let mut rest = text;
        if rest.is_empty() {
            return Err(invalid());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .ok_or_else(invalid)?;
            if digits == 0 {
                return Err(invalid());
            }
            let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let (unit, len) = if rest.starts_with("ms") {
                (std::time::Duration::from_millis(1), 2)
            } else if rest.starts_with('s') {
                (std::time::Duration::from_secs(1), 1)
            } else if rest.starts_with('m') {
                (std::time::Duration::from_secs(60), 1)
            } else if rest.starts_with('h') {
                (std::time::Duration::from_secs(3600), 1)
            } else {
                return Err(invalid());
            };
            rest = &rest[len..];
            let part = unit.checked_mul(u32::try_from(value).map_err(|_| invalid())?);
            total = total
                .checked_add(part.ok_or_else(invalid)?)
                .ok_or_else(invalid)?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        let (mut h, mut m, mut s, ms) = (
            millis / 3_600_000,
            millis / 60_000 % 60,
            millis / 1000 % 60,
            millis % 1000,
        );
        if ms != 0 {
            // Sub-second precision cannot be expressed in h/m/s, so write it all in milliseconds.
            return write!(f, "{millis}ms");
        }
        for (value, unit) in [(&mut h, "h"), (&mut m, "m"), (&mut s, "s")] {
            if *value != 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: a number and a unit (ms, s, m, h), repeated, e.g. `30s`, `5m`, `1h30m`."
        })
    }
}

/// A Kubernetes namespace name: a DNS-1123 label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NamespaceName(String);

const DNS1123_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Checks a DNS-1123 label, the rule for namespace names, and says what is wrong.
pub fn check_dns1123_label(text: &str) -> Result<(), String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a valid namespace name: use at most 63 lowercase letters, digits \
             and '-', starting and ending with a letter or digit"
        ))
    }
}

impl NamespaceName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NamespaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NamespaceName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        check_dns1123_label(text).map(|()| NamespaceName(text.to_owned()))
    }
}

impl<'de> Deserialize<'de> for NamespaceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for NamespaceName {
    fn schema_name() -> Cow<'static, str> {
        "NamespaceName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DNS1123_LABEL_PATTERN,
            "maxLength": 63,
            "description": "A Kubernetes namespace name (DNS-1123 label)."
        })
    }
}

/// A whole percentage from 0 to 100: a weight or a ramp step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Percent(u8);

impl Percent {
    /// The percentage as a number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Percent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer from 0 to 100")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Percent, E> {
                u8::try_from(value)
                    .ok()
                    .filter(|v| *v <= 100)
                    .map(Percent)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{value} is out of range: expected an integer from 0 to 100"
                        ))
                    })
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Percent, E> {
                self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
            }
        }
        deserializer.deserialize_i64(Visitor)
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> Cow<'static, str> {
        "Percent".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 0, "maximum": 100 })
    }
}

/// An Istio release as `MAJOR.MINOR` (a patch number is accepted and kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    text: String,
}

impl IstioVersion {
    /// True when the release serves the `v1` APIs of networking, security and telemetry (1.22+).
    pub fn serves_v1(&self) -> bool {
        (self.major, self.minor) >= (1, 22)
    }
}

impl Default for IstioVersion {
    fn default() -> Self {
        "1.27".parse().expect("the default Istio version parses")
    }
}

impl FromStr for IstioVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            || format!("invalid Istio version `{text}`: expected e.g. `1.27` or `1.27.3`");
        let mut parts = text.split('.');
        let mut number = || -> Result<u32, String> {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .ok_or_else(invalid)
        };
        let (major, minor) = (number()?, number()?);
        if let Some(patch) = parts.next()
            && (patch.is_empty() || !patch.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid());
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        if major != 1 {
            return Err(format!(
                "unsupported Istio version `{text}`: meshplan targets Istio 1.x"
            ));
        }
        Ok(IstioVersion {
            major,
            minor,
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for IstioVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IstioVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for IstioVersion {
    fn schema_name() -> Cow<'static, str> {
        "IstioVersion".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^1\\.[0-9]+(\\.[0-9]+)?$",
            "description": "Target Istio release, e.g. `1.27`."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_go_style() {
        for (text, secs) in [("30s", 30), ("5m", 300), ("1h30m", 5400), ("0s", 0)] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.0.as_secs(), secs, "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_eq!("1500ms".parse::<Duration>().unwrap().to_string(), "1500ms");
        for bad in [
            "",
            "5",
            "m",
            "5 m",
            "5d",
            "-1s",
            "1.5s",
            "99999999999999999999h",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn namespace_names_follow_dns1123() {
        for good in ["a", "howto-k8s-http2", "x1", &"a".repeat(63)] {
            assert!(good.parse::<NamespaceName>().is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(bad.parse::<NamespaceName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn istio_versions_decide_api_versions() {
        assert!("1.22".parse::<IstioVersion>().unwrap().serves_v1());
        assert!("1.30.3".parse::<IstioVersion>().unwrap().serves_v1());
        assert!(!"1.21.6".parse::<IstioVersion>().unwrap().serves_v1());
        for bad in ["1", "2.0", "1.x", "1.2.3.4", "1..2", "v1.22"] {
            assert!(bad.parse::<IstioVersion>().is_err(), "{bad}");
        }
    }
}
