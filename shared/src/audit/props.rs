//! Decoding the host values the audit record uses: `host:port` strings and Envoy's integer,
//! duration and timestamp properties.

/// Splits `host:port`, `[v6]:port`, a bare host or a bare IPv6 address into host and port.
/// Brackets are removed from IPv6 hosts (OTel `client.address` / `server.address` hold the bare
/// address).
pub fn split_host_port(text: &str) -> (&str, Option<u16>) {
    if let Some(rest) = text.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (text, None),
        };
    }
    match text.rsplit_once(':') {
        // One colon: host:port. More than one: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (text, None),
        },
        _ => (text, None),
    }
}

/// An Envoy integer property (`response.code`, `request.duration`, `request.time`): a 64-bit
/// little-endian integer. `None` for any other length.
pub fn int64_le(bytes: &[u8]) -> Option<i64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(i64::from_le_bytes(array))
}

/// An Envoy duration or timestamp property (`request.duration`, `request.time`) in nanoseconds
/// (since the Unix epoch for a timestamp); negative values give `None`.
///
/// Envoy serializes these as the raw bytes of `absl::Duration` / `absl::Time`: a little-endian
/// `i64` of seconds, a `u32` of quarter-nanosecond ticks, and padding (12 or 16 bytes). An
/// 8-byte value is read as an `i64` of nanoseconds (the form a test host may use).
pub fn nanos(bytes: &[u8]) -> Option<u64> {
    match bytes.len() {
        8 => u64::try_from(int64_le(bytes)?).ok(),
        12 | 16 => {
            let seconds = int64_le(bytes.get(..8)?)?;
            let ticks: [u8; 4] = bytes.get(8..12)?.try_into().ok()?;
            let ticks = u32::from_le_bytes(ticks);
            if ticks >= 4_000_000_000 {
                return None; // infinite or not an absl value
            }
            let seconds = u64::try_from(seconds).ok()?;
            seconds
                .checked_mul(1_000_000_000)?
                .checked_add(u64::from(ticks / 4))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn host_and_port() {
        assert_eq!(split_host_port("10.0.0.1:5555"), ("10.0.0.1", Some(5555)));
        assert_eq!(split_host_port("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(
            split_host_port("api.example.com"),
            ("api.example.com", None)
        );
        assert_eq!(split_host_port("api:http"), ("api:http", None));
        assert_eq!(split_host_port("api:99999"), ("api:99999", None));
        assert_eq!(split_host_port("[::1"), ("[::1", None));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn integers() {
        assert_eq!(int64_le(&200i64.to_le_bytes()), Some(200));
        assert_eq!(int64_le(&(-1i64).to_le_bytes()), Some(-1));
        assert_eq!(int64_le(b"200"), None);
        assert_eq!(int64_le(&[]), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn durations_and_timestamps() {
        assert_eq!(nanos(&1_500i64.to_le_bytes()), Some(1_500));
        assert_eq!(nanos(&(-1i64).to_le_bytes()), None);
        let mut absl = Vec::new();
        absl.extend_from_slice(&2i64.to_le_bytes());
        absl.extend_from_slice(&(4 * 250_000_000u32).to_le_bytes());
        assert_eq!(nanos(&absl), Some(2_250_000_000), "12-byte absl::Duration");
        absl.extend_from_slice(&[0; 4]);
        assert_eq!(nanos(&absl), Some(2_250_000_000), "16-byte, padded");
        let mut infinite = Vec::new();
        infinite.extend_from_slice(&i64::MAX.to_le_bytes());
        infinite.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(nanos(&infinite), None);
        assert_eq!(nanos(b"12ms"), None);
    }
}
