//! One JSONL record parsed in a single pass: the text field decoded (borrowed when it has no
//! escapes), every other field kept as raw JSON for `meta`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::reason;

/// A parsed record.
pub struct Record<'a> {
    /// The text field, unescaped.
    pub text: Cow<'a, str>,
    /// The id field as a string (a non-string id keeps its JSON spelling).
    pub key: Option<String>,
    /// The other fields as a JSON object, keys sorted.
    pub meta: String,
}

/// Parses one JSONL line; an error carries a quarantine reason and a message.
pub fn parse_record<'a>(
    line: &'a str,
    text_field: &str,
    id_field: Option<&str>,
) -> Result<Record<'a>, (&'static str, String)> {
    let malformed = |e: serde_json::Error| (reason::MALFORMED_JSON, e.to_string());
    let mut de = serde_json::Deserializer::from_str(line);
    let fields = FieldsSeed { text_field }
        .deserialize(&mut de)
        .map_err(malformed)?;
    de.end().map_err(malformed)?;
    let text = match fields.text {
        Some(Value::Str(text)) => text,
        Some(Value::Other(kind)) => {
            return Err((
                reason::TEXT_NOT_STRING,
                format!("field `{text_field}` is {kind}, not a string"),
            ));
        }
        None => {
            return Err((
                reason::MISSING_TEXT_FIELD,
                format!("no field `{text_field}`"),
            ));
        }
    };
    let key = match id_field {
        None => None,
        Some(f) => {
            let raw = fields
                .others
                .get(f)
                .ok_or_else(|| (reason::MISSING_ID_FIELD, format!("no field `{f}`")))?;
            Some(
                serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_string()),
            )
        }
    };
    let mut meta = String::from("{");
    for (k, v) in &fields.others {
        if meta.len() > 1 {
            meta.push(',');
        }
        meta.push_str(&serde_json::Value::from(k.as_ref()).to_string());
        meta.push(':');
        meta.push_str(v.get());
    }
    meta.push('}');
    Ok(Record { text, key, meta })
}

/// A record's fields: the text field's value, and the rest raw (a repeated key keeps its last
/// value, as in serde_json's own maps).
struct Fields<'a> {
    text: Option<Value<'a>>,
    others: BTreeMap<Cow<'a, str>, &'a RawValue>,
}

struct FieldsSeed<'f> {
    text_field: &'f str,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = Fields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields {
            text: None,
            others: BTreeMap::new(),
        };
        while let Some(key) = map.next_key_seed(ValueSeed)? {
            let Value::Str(key) = key else {
                unreachable!("JSON object keys are strings")
            };
            if key == self.text_field {
                fields.text = Some(map.next_value_seed(ValueSeed)?);
            } else {
                fields.others.insert(key, map.next_value()?);
            }
        }
        Ok(fields)
    }
}

/// A JSON value that is wanted only as a string: anything else is skipped and named by its kind.
enum Value<'a> {
    Str(Cow<'a, str>),
    Other(&'static str),
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Other("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value<'de>, E> {
        Ok(Value::Other("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value<'de>, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value<'de>, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value<'de>, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an array"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_into_text_key_and_sorted_meta() {
        let r = parse_record(
            r#"{"url":"u","text":"hi\nthere","id":7,"a":[1]}"#,
            "text",
            Some("id"),
        )
        .unwrap();
        assert_eq!(r.text, "hi\nthere");
        assert_eq!(r.key.as_deref(), Some("7"));
        assert_eq!(r.meta, r#"{"a":[1],"id":7,"url":"u"}"#);
    }

    #[test]
    fn bad_records_get_named_reasons() {
        let cases = [
            ("{not json", reason::MALFORMED_JSON),
            ("[1,2]", reason::MALFORMED_JSON),
            (r#"{"body":"x"}"#, reason::MISSING_TEXT_FIELD),
            (r#"{"text":42}"#, reason::TEXT_NOT_STRING),
            (r#"{"text":null}"#, reason::TEXT_NOT_STRING),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse_record(line, "text", None).err().map(|e| e.0),
                Some(want),
                "{line}"
            );
        }
        assert_eq!(
            parse_record(r#"{"text":"x"}"#, "text", Some("id"))
                .err()
                .map(|e| e.0),
            Some(reason::MISSING_ID_FIELD)
        );
    }

    #[test]
    fn escaped_text_is_decoded_and_plain_text_borrowed() {
        let r = parse_record(r#"{"text":"a\u00e9\"b"}"#, "text", None).unwrap();
        assert_eq!(r.text, "aé\"b");
        let r = parse_record(r#"{"text":"plain","x":{"y":[1,{"z":2}]}}"#, "text", None).unwrap();
        assert!(matches!(r.text, Cow::Borrowed("plain")));
        assert_eq!(r.meta, r#"{"x":{"y":[1,{"z":2}]}}"#);
        for line in [r#"{"text":"x"} trailing"#, r#"{"text":"x","#] {
            assert_eq!(
                parse_record(line, "text", None).err().map(|e| e.0),
                Some(reason::MALFORMED_JSON),
                "{line}"
            );
        }
        let err = parse_record(r#"{"text":{"a":[1]}}"#, "text", None)
            .err()
            .unwrap();
        assert_eq!(
            err,
            (
                reason::TEXT_NOT_STRING,
                "field `text` is an object, not a string".into()
            )
        );
    }
}
