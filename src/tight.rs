//! JSON values held at their exact size.
//!
//! serde_json builds a mapping by inserting into an empty one, so a mapping of five fields keeps
//! room for eight, and its index for more; with `preserve_order` each slot is a 112-byte entry.
//! A plan holds every object it reads and writes as JSON, so that slack was about a third of the
//! memory of the parsed manifests (62 MB of values for 5 MB of YAML at 10k objects; 37 MB now).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON value read with every mapping and list allocated at its length, the same value that
/// `serde_json::Value`'s own `Deserialize` reads (a repeated key keeps its first place and its
/// last value).
pub struct Tight(pub Value);

impl<'de> Deserialize<'de> for Tight {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tight, D::Error> {
        deserializer.deserialize_any(TightVisitor).map(Tight)
    }
}

struct TightVisitor;

impl<'de> Visitor<'de> for TightVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_i128<E: serde::de::Error>(self, value: i128) -> Result<Value, E> {
        Number::deserialize(serde::de::value::I128Deserializer::new(value)).map(Value::Number)
    }

    fn visit_u128<E: serde::de::Error>(self, value: u128) -> Result<Value, E> {
        Number::deserialize(serde::de::value::U128Deserializer::new(value)).map(Value::Number)
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Tight::deserialize(deserializer).map(|t| t.0)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Tight(item)) = seq.next_element()? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Gathered first, so that the mapping is made once at its size.
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some((key, Tight(value))) = map.next_entry()? {
            entries.push((key, value));
        }
        let mut object = Map::with_capacity(entries.len());
        for (key, value) in entries {
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Builds `value` again with every mapping and list at its length (for values made by
/// `serde_json::to_value`, which grows them one insert at a time).
pub fn tighten(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, tighten(value)))
                .collect(),
        ),
        Value::Array(items) => {
            // Collected in place, into the old allocation: shrunk after.
            let mut items: Vec<Value> = items.into_iter().map(tighten).collect();
            items.shrink_to_fit();
            Value::Array(items)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_value_serde_json_reads_with_mappings_at_their_size() {
        let text = r#"{"b": [1, -2, 3.5, "x", null, true, {}], "a": {"z": 1, "y": {"k": "v"}}, "b": {"again": 1}}"#;
        let loose: Value = serde_json::from_str(text).unwrap();
        let Tight(tight) = serde_json::from_str(text).unwrap();
        assert_eq!(tight, loose);
        let keys: Vec<_> = tight.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a"], "a repeated key keeps its first place");
        assert_eq!(
            tight["b"],
            serde_json::json!({"again": 1}),
            "and its last value"
        );
        let Tight(list) = serde_json::from_str("[1, 2, 3, 4, 5]").unwrap();
        assert_eq!(list.as_array().unwrap().capacity(), 5);
    }

    #[test]
    fn tightened_values_are_equal_and_at_their_size() {
        let mut value = serde_json::json!({"a": [1, 2], "b": {"c": "d"}});
        value["a"].as_array_mut().unwrap().reserve(100);
        let tight = tighten(value.clone());
        assert_eq!(tight, value);
        assert_eq!(tight["a"].as_array().unwrap().capacity(), 2);
    }
}
