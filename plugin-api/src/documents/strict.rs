//! Strict reading of the documents a host sends: a key given twice is an error (it could
//! both accept and withdraw), and a policy value that is an object must be exactly
//! `{"value": v, "locked": b}`, so a mistyped `locked` cannot silently drop a lock.

use std::{collections::BTreeMap, fmt, marker::PhantomData};

use serde::{
    de::{self, value::SeqAccessDeserializer, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::Value as Json;

use super::{path::did_you_mean, PolicyValue};

/// A map whose keys must each appear once.
pub(super) fn unique_map<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "the key {key:?} is given twice"
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(Unique(PhantomData))
}

/// A section of unique keys, each read as `V`.
#[derive(Deserialize)]
#[serde(transparent, bound = "V: Deserialize<'de>")]
pub(super) struct Section<V>(#[serde(deserialize_with = "unique_map")] pub BTreeMap<String, V>);

pub(super) fn sections<'de, D, V>(
    deserializer: D,
) -> Result<BTreeMap<String, BTreeMap<String, V>>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    let outer: BTreeMap<String, Section<V>> = unique_map(deserializer)?;
    Ok(outer.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// Statement names as the contract spells them, each once.
fn statement_versions<E: de::Error>(section: Section<u32>) -> Result<super::StatementVersions, E> {
    section
        .0
        .into_iter()
        .map(|(name, version)| {
            let statement: super::Statement = serde_json::from_value(Json::String(name.clone()))
                .map_err(|_| {
                    E::custom(format_args!(
                        "versions: unknown statement {name:?}: expected ksn, private_ksn or kmp{}",
                        did_you_mean(&name, ["ksn", "private_ksn", "kmp"])
                    ))
                })?;
            Ok((statement, version))
        })
        .collect()
}

impl<'de> Deserialize<'de> for PolicyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PolicyValueVisitor)
    }
}

struct PolicyValueVisitor;

const WRAPPED_KEYS: &[&str] = &["value", "locked", "versions"];

impl<'de> Visitor<'de> for PolicyValueVisitor {
    type Value = PolicyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a value, or {"value": v, "locked": true|false}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicyValue, A::Error> {
        let mut value: Option<Json> = None;
        let mut locked: Option<bool> = None;
        let mut versions: Option<Section<u32>> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "value" if value.is_none() => value = Some(map.next_value()?),
                "locked" if locked.is_none() => locked = Some(map.next_value()?),
                "versions" if versions.is_none() => versions = Some(map.next_value()?),
                "value" | "locked" | "versions" => {
                    return Err(de::Error::custom(format_args!(
                        "the key {key:?} is given twice"
                    )))
                }
                _ => {
                    return Err(de::Error::custom(format_args!(
                        r#"unknown key {key:?} in a locked value: expected {{"value": v, "locked": true|false}}{}"#,
                        did_you_mean(&key, WRAPPED_KEYS.iter().copied())
                    )))
                }
            }
        }
        match value {
            Some(value) => Ok(PolicyValue::Wrapped {
                value,
                locked: locked.unwrap_or(false),
                versions: versions.map(statement_versions).transpose()?,
            }),
            None => Err(de::Error::custom(
                r#"a policy value given as an object needs "value": expected {"value": v, "locked": true|false}"#,
            )),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<PolicyValue, A::Error> {
        Json::deserialize(SeqAccessDeserializer::new(seq)).map(PolicyValue::Plain)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(Json::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(
            serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number),
        ))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(Json::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(Json::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(Json::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<PolicyValue, E> {
        Ok(PolicyValue::Plain(Json::Null))
    }
}

#[cfg(test)]
mod tests {
    use crate::documents::{read_document, LocalChange, PolicyDocument, PolicyValue};
    use serde_json::json;

    fn policy(text: &str) -> Result<PolicyDocument, String> {
        read_document::<PolicyDocument>("push_policy", text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_mistyped_lock_is_an_error_not_an_unlocked_value() {
        let err =
            policy(r#"{"settings": {"d": {"k": {"value": true, "lockd": true}}}}"#).unwrap_err();
        assert!(
            err.starts_with("push_policy: settings.d.k: unknown key \"lockd\""),
            "{err}"
        );
        assert!(err.contains("did you mean `locked`?"), "{err}");
    }

    #[test]
    fn a_lock_is_a_boolean_and_needs_a_value() {
        let err =
            policy(r#"{"settings": {"d": {"k": {"value": 1, "locked": "yes"}}}}"#).unwrap_err();
        assert!(
            err.starts_with("push_policy: settings.d.k.locked: invalid type"),
            "{err}"
        );
        let err = policy(r#"{"settings": {"d": {"k": {"locked": true}}}}"#).unwrap_err();
        assert!(err.contains("needs \"value\""), "{err}");
    }

    #[test]
    fn keys_given_twice_are_errors_at_every_level() {
        for text in [
            r#"{"settings": {"d": {"k": 1, "k": 2}}}"#,
            r#"{"settings": {"d": {"k": 1}, "d": {"j": 2}}}"#,
            r#"{"settings": {"d": {"k": {"value": true, "value": false}}}}"#,
            r#"{"settings": {}, "settings": {}}"#,
        ] {
            let err = policy(text).unwrap_err();
            assert!(
                err.contains("given twice") || err.contains("duplicate field"),
                "{text}: {err}"
            );
        }
        let err = read_document::<LocalChange>("set_local", r#"{"d": {"k": true, "k": false}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("set_local: d"), "{err}");
        assert!(err.contains("given twice"), "{err}");
    }

    #[test]
    fn plain_and_wrapped_values_read_as_before() {
        let doc = policy(
            r#"{"settings": {"d": {"a": true, "b": 5, "c": "x", "e": [1, 2], "f": null,
                "g": {"value": 3}, "h": {"locked": true, "value": false}}}}"#,
        )
        .unwrap();
        let d = &doc.settings["d"];
        assert_eq!(d["a"], PolicyValue::Plain(json!(true)));
        assert_eq!(d["b"].value(), &json!(5));
        assert_eq!(d["e"].value(), &json!([1, 2]));
        assert_eq!(d["f"].value(), &json!(null));
        assert!(!d["g"].locked());
        assert_eq!((d["h"].value(), d["h"].locked()), (&json!(false), true));
    }

    #[test]
    fn an_acceptance_names_its_statement_versions() {
        use crate::documents::Statement;
        let doc = policy(
            r#"{"settings": {"d": {"k": {"value": true, "locked": true,
                "versions": {"ksn": 2, "private_ksn": 1}}}}}"#,
        )
        .unwrap();
        let versions = doc.settings["d"]["k"].versions().unwrap();
        assert_eq!(versions[&Statement::Ksn], 2);
        assert_eq!(versions[&Statement::PrivateKsn], 1);
        let err = policy(r#"{"settings": {"d": {"k": {"value": true, "versions": {"ksm": 1}}}}}"#)
            .unwrap_err();
        assert!(err.contains("unknown statement \"ksm\""), "{err}");
        assert!(err.contains("did you mean `ksn`?"), "{err}");
        let err = policy(r#"{"settings": {"d": {"k": {"value": true, "versions": {"ksn": -1}}}}}"#)
            .unwrap_err();
        assert!(err.contains("settings.d.k"), "{err}");
        let err = policy(
            r#"{"settings": {"d": {"k": {"value": true, "versions": {"ksn": 1, "ksn": 2}}}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("given twice"), "{err}");
        // Round trip: a host that stores the document sends back the same.
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(policy(&text).unwrap(), doc);
    }
}
