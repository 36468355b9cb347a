//! JSON equality that walks two objects' fields in step.
//!
//! `serde_json`'s own equality looks every field of one object up in the other by hash (SipHash,
//! with `preserve_order`), which made comparisons a tenth of the simulator's work. Objects written
//! from stored ones keep their fields in order, so fields are compared in order first; only
//! objects whose fields come in another order are compared by lookup.

use serde_json::{Map, Value};

/// Whether `a` and `b` are equal JSON values (as `==` says, field order not mattering).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => same_fields(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        _ => a == b,
    }
}

/// [`same`] for optional values: both absent, or both present and equal.
pub fn same_opt(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn same_fields(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    if a.len() != b.len() {
        return false;
    }
    for ((ka, va), (kb, vb)) in a.iter().zip(b) {
        if ka != kb {
            // Another order: each field of `a` looked up in `b` (keys are unique, lengths equal).
            return a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)));
        }
        if !same(va, vb) {
            // The same field with another value: unequal whatever the order of the rest.
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agrees_with_serde_json_equality_in_and_out_of_field_order() {
        let base = json!({"a": 1, "b": {"c": [1, {"d": "x"}], "e": null}, "f": true});
        let cases = [
            json!({"a": 1, "b": {"c": [1, {"d": "x"}], "e": null}, "f": true}),
            json!({"f": true, "b": {"e": null, "c": [1, {"d": "x"}]}, "a": 1}),
            json!({"a": 1, "b": {"c": [1, {"d": "y"}], "e": null}, "f": true}),
            json!({"a": 1, "b": {"c": [{"d": "x"}, 1], "e": null}, "f": true}),
            json!({"a": 1, "b": {"c": [1, {"d": "x"}]}, "f": true}),
            json!({"a": 1, "b": {"c": [1, {"d": "x"}], "e": null}, "g": true}),
            json!({"f": true, "b": {"e": null, "c": [1, {"d": "x"}]}, "a": 2}),
            json!([1, 2]),
            json!(1.0),
        ];
        for other in &cases {
            assert_eq!(same(&base, other), base == *other, "{other}");
            assert_eq!(same(other, &base), *other == base, "{other}");
        }
        assert!(same_opt(None, None));
        assert!(!same_opt(Some(&base), None));
        assert!(same_opt(Some(&base), Some(&cases[1])));
    }
}
