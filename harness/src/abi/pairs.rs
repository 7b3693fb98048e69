//! The proxy-wasm map ("pairs") encoding.

/// cpp-host limits: 1 MiB and 1024 pairs.
const MAX_BYTES: usize = 1 << 20;
const MAX_PAIRS: usize = 1024;

/// `u32 n`, `n × (u32 key_len, u32 value_len)`, then `key 0x00 value 0x00` per pair. An empty
/// map is empty bytes (never the 1-byte form).
pub(crate) fn serialize_pairs(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as usize)
}

/// Parses the pairs encoding; anything malformed (bad NULs, trailing bytes, over the limits) is
/// an empty list, as in cpp-host.
pub(crate) fn parse_pairs(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    parse(bytes).unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if bytes.is_empty() || bytes.len() > MAX_BYTES {
        return None;
    }
    let n = u32_at(bytes, 0)?;
    if n > MAX_PAIRS {
        return None;
    }
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        sizes.push((u32_at(bytes, 4 + i * 8)?, u32_at(bytes, 8 + i * 8)?));
    }
    let mut at = 4 + n * 8;
    let mut out = Vec::with_capacity(n);
    for (klen, vlen) in sizes {
        let key = bytes.get(at..at + klen)?;
        if *bytes.get(at + klen)? != 0 {
            return None;
        }
        at += klen + 1;
        let value = bytes.get(at..at + vlen)?;
        if *bytes.get(at + vlen)? != 0 {
            return None;
        }
        at += vlen + 1;
        out.push((String::from_utf8_lossy(key).into_owned(), value.to_vec()));
    }
    (at == bytes.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty() {
        let pairs = vec![
            ("a".to_owned(), b"1".to_vec()),
            ("bb".to_owned(), b"".to_vec()),
        ];
        let bytes = serialize_pairs(&pairs);
        assert_eq!(parse_pairs(&bytes), pairs);
        assert!(serialize_pairs(&[]).is_empty());
        assert!(parse_pairs(&[0]).is_empty());
        let mut trailing = bytes.clone();
        trailing.push(1);
        assert!(parse_pairs(&trailing).is_empty());
    }
}
