//! One JSONL record parsed in a single pass: the text field decoded (borrowed when it has no
//! escapes, else decoded into a buffer the caller reuses), every other field kept as raw JSON for
//! `meta`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::reason;

/// A parsed record.
pub struct Record<'a> {
    /// The text field, unescaped: a slice of the line, or of the caller's buffer when it had
    /// escapes.
    pub text: &'a str,
    /// The id field as a string (a non-string id keeps its JSON spelling).
    pub key: Option<String>,
    /// The other fields as a JSON object, keys sorted.
    pub meta: String,
}

/// Parses one JSONL line; an error carries a quarantine reason and a message. A text with escapes
/// is decoded into `buffer`, which the caller keeps from line to line so that no text allocates.
pub fn parse_record<'a>(
    line: &'a str,
    text_field: &str,
    id_field: Option<&str>,
    buffer: &'a mut String,
) -> Result<Record<'a>, (&'static str, String)> {
    let malformed = |e: serde_json::Error| (reason::MALFORMED_JSON, e.to_string());
    let mut de = serde_json::Deserializer::from_str(line);
    let fields = FieldsSeed {
        text_field,
        buffer: &mut *buffer,
    }
    .deserialize(&mut de)
    .map_err(malformed)?;
    de.end().map_err(malformed)?;
    let text = match fields.text {
        Some(Value::Str(Cow::Borrowed(text))) => text,
        Some(Value::Str(Cow::Owned(_))) => unreachable!("the text seed decodes into the buffer"),
        Some(Value::InBuffer) => buffer.as_str(),
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
    let others = fields.others;
    let key = match id_field {
        None => None,
        Some(f) => {
            let raw = others
                .iter()
                .find(|(k, _)| k == f)
                .map(|(_, v)| v)
                .ok_or_else(|| (reason::MISSING_ID_FIELD, format!("no field `{f}`")))?;
            Some(
                serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_string()),
            )
        }
    };
    Ok(Record {
        text,
        key,
        meta: meta_object(others),
    })
}

/// The fields as one JSON object, keys sorted; of a repeated key the last value is kept, as in
/// serde_json's own maps.
fn meta_object(mut fields: Vec<(Cow<str>, &RawValue)>) -> String {
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    // Runs of one key are in input order (the sort is stable): move the last value forward.
    fields.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    let mut meta = Vec::with_capacity(
        2 + fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>(),
    );
    meta.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            meta.push(b',');
        }
        serde_json::to_writer(&mut meta, k.as_ref()).expect("writing to a Vec cannot fail");
        meta.push(b':');
        meta.extend_from_slice(v.get().as_bytes());
    }
    meta.push(b'}');
    String::from_utf8(meta).expect("JSON written from strings is UTF-8")
}

/// A record's fields: the text field's value, and the rest raw, in input order.
struct Fields<'a> {
    text: Option<Value<'a>>,
    others: Vec<(Cow<'a, str>, &'a RawValue)>,
}

struct FieldsSeed<'f> {
    text_field: &'f str,
    /// Where an escaped text is decoded.
    buffer: &'f mut String,
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
            others: Vec::new(),
        };
        while let Some(key) = map.next_key_seed(ValueSeed { buffer: None })? {
            let Value::Str(key) = key else {
                unreachable!("JSON object keys are strings")
            };
            if key == self.text_field {
                self.buffer.clear();
                let buffer = Some(&mut *self.buffer);
                fields.text = Some(map.next_value_seed(ValueSeed { buffer })?);
            } else {
                fields.others.push((key, map.next_value()?));
            }
        }
        Ok(fields)
    }
}

/// A JSON value that is wanted only as a string: anything else is skipped and named by its kind.
enum Value<'a> {
    Str(Cow<'a, str>),
    /// A string with escapes, decoded into the seed's buffer.
    InBuffer,
    Other(&'static str),
}

struct ValueSeed<'b> {
    buffer: Option<&'b mut String>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(match self.buffer {
            Some(buffer) => {
                buffer.push_str(v);
                Value::InBuffer
            }
            None => Value::Str(Cow::Owned(v.to_owned())),
        })
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

    /// Parses with a fresh buffer, for tests that look only at the error.
    fn parse_err(line: &str, id_field: Option<&str>) -> Option<(&'static str, String)> {
        parse_record(line, "text", id_field, &mut String::new()).err()
    }

    #[test]
    fn records_parse_into_text_key_and_sorted_meta() {
        let mut buf = String::new();
        let r = parse_record(
            r#"{"url":"u","text":"hi\nthere","id":7,"a":[1]}"#,
            "text",
            Some("id"),
            &mut buf,
        )
        .unwrap();
        assert_eq!(r.text, "hi\nthere");
        assert_eq!(r.key.as_deref(), Some("7"));
        assert_eq!(r.meta, r#"{"a":[1],"id":7,"url":"u"}"#);
    }

    #[test]
    fn repeated_keys_keep_their_last_value() {
        let mut buf = String::new();
        let line = r#"{"b":1,"text":"x\n","b":2,"a\"q":3,"text":"y\ty"}"#;
        let r = parse_record(line, "text", None, &mut buf).unwrap();
        assert_eq!(r.text, "y\ty");
        assert_eq!(r.meta, r#"{"a\"q":3,"b":2}"#);
        let r = parse_record(r#"{"text":"x\n","text":"plain"}"#, "text", None, &mut buf).unwrap();
        assert_eq!((r.text, r.meta.as_str()), ("plain", "{}"));
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
            assert_eq!(parse_err(line, None).map(|e| e.0), Some(want), "{line}");
        }
        assert_eq!(
            parse_err(r#"{"text":"x"}"#, Some("id")).map(|e| e.0),
            Some(reason::MISSING_ID_FIELD)
        );
    }

    #[test]
    fn escaped_text_is_decoded_and_plain_text_borrowed() {
        let mut buf = String::new();
        let r = parse_record(r#"{"text":"a\u00e9\"b"}"#, "text", None, &mut buf).unwrap();
        assert_eq!(r.text, "aé\"b");
        let line = r#"{"text":"plain","x":{"y":[1,{"z":2}]}}"#;
        let r = parse_record(line, "text", None, &mut buf).unwrap();
        assert_eq!(r.text, "plain");
        assert!(line.as_bytes().as_ptr_range().contains(&r.text.as_ptr()));
        assert_eq!(r.meta, r#"{"x":{"y":[1,{"z":2}]}}"#);
        for line in [r#"{"text":"x"} trailing"#, r#"{"text":"x","#] {
            assert_eq!(
                parse_err(line, None).map(|e| e.0),
                Some(reason::MALFORMED_JSON),
                "{line}"
            );
        }
        let err = parse_err(r#"{"text":{"a":[1]}}"#, None).unwrap();
        assert_eq!(
            err,
            (
                reason::TEXT_NOT_STRING,
                "field `text` is an object, not a string".into()
            )
        );
    }
}
