//! Finds the fields of an object that the translator does not read, so none is dropped silently.

use serde_json::Value;

/// Field paths of `raw` not covered by `handled`, reported at the shallowest uncovered node.
///
/// Patterns are dotted paths where `[]` stands for any list index, e.g.
/// `spec.listeners[].portMapping`; a pattern covers everything below it. `apiVersion`, `kind`,
/// `metadata` and `status` are bookkeeping and always covered.
pub fn unhandled(raw: &Value, handled: &[&str]) -> Vec<String> {
    let patterns: Vec<Vec<&str>> = handled.iter().map(|p| split(p)).collect();
    let mut out = Vec::new();
    if let Value::Object(map) = raw {
        for (key, value) in map {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
                continue;
            }
            walk(value, &mut vec![key.clone()], &patterns, &mut out);
        }
    }
    out
}

fn split(pattern: &str) -> Vec<&str> {
    pattern
        .split('.')
        .flat_map(|part| match part.strip_suffix("[]") {
            Some(name) => vec![name, "[]"],
            None => vec![part],
        })
        .collect()
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    pattern == segment || (pattern == "[]" && segment.starts_with('['))
}

/// How `path` relates to the patterns: covered, on the way to one, or outside all.
fn coverage(path: &[String], patterns: &[Vec<&str>]) -> (bool, bool) {
    let mut covered = false;
    let mut partial = false;
    for pattern in patterns {
        let common = pattern
            .iter()
            .zip(path)
            .take_while(|(p, s)| segment_matches(p, s))
            .count();
        if common == pattern.len() && path.len() >= pattern.len() {
            covered = true;
        } else if common == path.len() {
            partial = true;
        }
    }
    (covered, partial)
}

fn walk(value: &Value, path: &mut Vec<String>, patterns: &[Vec<&str>], out: &mut Vec<String>) {
    let (covered, partial) = coverage(path, patterns);
    if covered {
        return;
    }
    if !partial {
        out.push(render(path));
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(key.clone());
                walk(child, path, patterns, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                walk(child, path, patterns, out);
                path.pop();
            }
        }
        // A scalar where the patterns expect more structure is still read by nobody.
        _ => out.push(render(path)),
    }
}

/// Renders a path as `spec.listeners[0].healthCheck`.
fn render(path: &[String]) -> String {
    let mut text = String::new();
    for segment in path {
        if !segment.starts_with('[') && !text.is_empty() {
            text.push('.');
        }
        text.push_str(segment);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::unhandled;
    use serde_json::json;

    #[test]
    fn reports_the_shallowest_unread_field() {
        let raw = json!({
            "apiVersion": "x", "kind": "K", "metadata": {"name": "n"}, "status": {},
            "spec": {
                "listeners": [
                    {"portMapping": {"port": 1}, "healthCheck": {"path": "/"}},
                    {"portMapping": {"port": 2}, "tls": {"mode": "STRICT"}}
                ],
                "logging": {"accessLog": {}},
                "podSelector": {"matchLabels": {"a": "b"}}
            }
        });
        let found = unhandled(&raw, &["spec.listeners[].portMapping", "spec.podSelector"]);
        assert_eq!(
            found,
            vec![
                "spec.listeners[0].healthCheck",
                "spec.listeners[1].tls",
                "spec.logging"
            ]
        );
        assert!(unhandled(&raw, &["spec"]).is_empty());
    }
}
