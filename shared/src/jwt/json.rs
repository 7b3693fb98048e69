//! Strict JSON for token headers, payloads and JWKS documents.
//!
//! `serde_json` already refuses comments, `NaN`, trailing commas, single quotes and trailing data,
//! and caps nesting at 128 levels. What it does not do is refuse duplicate object members (it keeps
//! the last one), which lets two parsers of the same token disagree about `alg`, `kid`, `sub`…
//! (catalogue row 45). [`parse_object`] rejects duplicates at every depth.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a JSON document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// The bytes are not strict UTF-8.
    NotUtf8,
    /// Not valid JSON (syntax, trailing data, nesting deeper than 128, lone surrogate escape…).
    Syntax,
    /// An object has the same member name twice.
    DuplicateMember,
    /// Valid JSON, but the top level is not an object.
    NotObject,
}

impl JsonError {
    /// Short description used in error details.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            JsonError::NotUtf8 => "not UTF-8",
            JsonError::Syntax => "not valid JSON",
            JsonError::DuplicateMember => "duplicate JSON member",
            JsonError::NotObject => "not a JSON object",
        }
    }
}

/// Parses `bytes` as one JSON object, refusing invalid UTF-8, a non-object top level and duplicate
/// members at any depth. Returns the object and the text (valid UTF-8) it was parsed from.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<(Map<String, Value>, &str), JsonError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JsonError::NotUtf8)?;
    let StrictValue(value) = serde_json::from_str(text).map_err(|e| {
        if e.to_string().starts_with(DUPLICATE) {
            JsonError::DuplicateMember
        } else {
            JsonError::Syntax
        }
    })?;
    match value {
        Value::Object(map) => Ok((map, text)),
        _ => Err(JsonError::NotObject),
    }
}

const DUPLICATE: &str = "duplicate member";

/// Nesting depth of a JSON object's members: 1 for an object of scalars, +1 per nested object or
/// array level. Iterative, so it cannot overflow the stack whatever the input.
pub fn object_depth(map: &Map<String, Value>) -> usize {
    let mut deepest = 1;
    let mut stack: Vec<(&Value, usize)> = map.values().map(|v| (v, 1)).collect();
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        let level = level + 1;
        deepest = deepest.max(level);
        stack.extend(children.map(|v| (v, level)));
    }
    deepest
}

/// A `serde_json::Value` whose objects were checked for duplicate members while parsing.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn err(input: &[u8]) -> JsonError {
        match parse_object(input) {
            Ok(_) => panic!("accepted {:?}", String::from_utf8_lossy(input)),
            Err(e) => e,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn accepts_a_plain_object_and_keeps_its_text() {
        let (map, text) = parse_object(br#"{"a":1,"b":[1,{"c":"d"}],"e":null}"#).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(text, r#"{"a":1,"b":[1,{"c":"d"}],"e":null}"#);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn duplicates_are_refused_at_any_depth() {
        assert_eq!(err(br#"{"a":1,"a":2}"#), JsonError::DuplicateMember);
        assert_eq!(err(br#"{"x":{"a":1,"a":1}}"#), JsonError::DuplicateMember);
        assert_eq!(err(br#"{"x":[{"a":1,"a":1}]}"#), JsonError::DuplicateMember);
        // Same name after escape decoding is still a duplicate.
        assert_eq!(
            err(br#"{"alg":1,"\u0061lg":2}"#),
            JsonError::DuplicateMember
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn non_objects_are_refused() {
        for input in [&br#"["RS256"]"#[..], b"\"s\"", b"null", b"1", b"true"] {
            assert_eq!(err(input), JsonError::NotObject);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn loose_json_is_refused() {
        for input in [
            &br#"{"a":1} {}"#[..],
            br#"{"a":1}x"#,
            br#"{"a":1,}"#,
            br#"{'a':1}"#,
            br#"{"a":NaN}"#,
            br#"{"a":Infinity}"#,
            br#"{"a":1 /* c */}"#,
            br#"{"a":"\ud800"}"#,
            b"\xef\xbb\xbf{}",
            b"",
        ] {
            assert_eq!(err(input), JsonError::Syntax, "{input:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_utf8_is_refused_even_inside_strings() {
        assert_eq!(err(b"{\"a\":\"\xff\"}"), JsonError::NotUtf8);
        assert_eq!(err(b"\xff\xfe{\x00}\x00"), JsonError::NotUtf8);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut s = String::from("{\"a\":");
        s.push_str(&"[".repeat(5000));
        s.push_str(&"]".repeat(5000));
        s.push('}');
        assert_eq!(err(s.as_bytes()), JsonError::Syntax);
    }
}
