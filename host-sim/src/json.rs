//! JSON as the host reads it from people (scenario files, console lines, the console's API):
//! a key given twice is an error naming its place, never "the last one wins".

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value whose objects hold each key once.
pub struct Unique(pub Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Unique::deserialize(d).map(|u| u.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} is given twice"
                )));
            }
            let Unique(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Parses `text`; an error says where (`steps[3].settings.task`, and the line and column).
pub fn parse(text: &str) -> Result<Value, String> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize::<_, Unique>(&mut reader).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error's place is its line and column; a key twice, its path.
        if path.is_empty() || path == "." || inner.is_syntax() || inner.is_eof() {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    reader.end().map_err(|e| e.to_string())?;
    Ok(value.0)
}

/// The same from bytes.
pub fn parse_slice(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_where_it_is() {
        assert_eq!(
            parse(r#"{"a": [1, {"b": true}]}"#).unwrap()["a"][1]["b"],
            true
        );
        let e = parse(r#"{"do": "start", "on": {"device": 1, "device": 2}}"#).unwrap_err();
        assert!(e.contains("on") && e.contains("given twice"), "{e}");
        let e = parse(r#"{"do": "start", "do": "stop"}"#).unwrap_err();
        assert!(e.contains("\"do\" is given twice"), "{e}");
        assert!(parse("{} {}").is_err(), "one value");
        assert!(parse("{\"a\": 1,}").is_err());
    }
}
