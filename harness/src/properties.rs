//! Encoders for property values as Envoy serializes them, and the defaults every stream has.

/// A string property (raw bytes).
pub fn string(value: &str) -> Vec<u8> {
    value.as_bytes().to_vec()
}

/// An int property: 8 bytes little-endian.
pub fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

/// A bool property: one byte.
pub fn boolean(value: bool) -> Vec<u8> {
    vec![u8::from(value)]
}

/// Properties every stream has unless the test overrides them: a plain-text connection from
/// 127.0.0.1 (`connection.mtls` false, no peer certificate).
pub(crate) fn defaults() -> Vec<(String, Vec<u8>)> {
    vec![
        ("source\0address".to_owned(), string("127.0.0.1:45678")),
        ("source\0port".to_owned(), int(45678)),
        ("destination\0address".to_owned(), string("127.0.0.1:8080")),
        ("destination\0port".to_owned(), int(8080)),
        ("connection\0mtls".to_owned(), boolean(false)),
    ]
}
