//! W3C Trace Context `tracestate`: validation only (the filter never edits vendor entries).
//!
//! Grammar (W3C Trace Context level 1 §3.3): a comma-separated list of up to 32 `key=value`
//! members, optional whitespace around commas, empty members ignored. Keys are `simple-key`
//! (`[a-z][a-z0-9_\-*/]{0,255}`) or `tenant@system`; values are 1–256 printable ASCII characters
//! other than `,` and `=`, not ending in a space. Duplicate keys make the list invalid. Several
//! `tracestate` headers are one list joined with commas. An invalid list is dropped whole.

/// Most list members allowed.
pub const MAX_MEMBERS: usize = 32;

/// True when the `tracestate` header values (in order) form one valid list.
pub fn is_valid(values: &[&[u8]]) -> bool {
    let mut keys: Vec<&[u8]> = Vec::new();
    for value in values {
        for member in value.split(|&b| b == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            let Some(eq) = member.iter().position(|&b| b == b'=') else {
                return false;
            };
            let (key, value) = (member.get(..eq), member.get(eq + 1..));
            let (Some(key), Some(value)) = (key, value) else {
                return false;
            };
            if !valid_key(key) || !valid_value(value) || keys.contains(&key) {
                return false;
            }
            keys.push(key);
            if keys.len() > MAX_MEMBERS {
                return false;
            }
        }
    }
    true
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

fn valid_key(key: &[u8]) -> bool {
    match key.iter().position(|&b| b == b'@') {
        None => match key {
            [first, rest @ ..] => {
                first.is_ascii_lowercase() && rest.len() <= 255 && rest.iter().all(|&b| key_char(b))
            }
            [] => false,
        },
        Some(at) => {
            let (tenant, system) = (key.get(..at), key.get(at + 1..));
            let (Some(tenant), Some(system)) = (tenant, system) else {
                return false;
            };
            let tenant_ok = match tenant {
                [first, rest @ ..] => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && rest.len() <= 240
                        && rest.iter().all(|&b| key_char(b))
                }
                [] => false,
            };
            let system_ok = match system {
                [first, rest @ ..] => {
                    first.is_ascii_lowercase()
                        && rest.len() <= 13
                        && rest.iter().all(|&b| key_char(b))
                }
                [] => false,
            };
            tenant_ok && system_ok
        }
    }
}

fn valid_value(value: &[u8]) -> bool {
    let nblk = |b: u8| (0x21..=0x7e).contains(&b) && b != b',' && b != b'=';
    !value.is_empty()
        && value.len() <= 256
        && value.iter().all(|&b| b == b' ' || nblk(b))
        && value.last().is_some_and(|&b| nblk(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn valid_lists() {
        for ok in [
            "",
            "rojo=00f067aa0ba902b7",
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            " rojo=1 ,\tcongo=2 ,,",
            "fw529a3039@dt=d0b5a2d2-1",
            "1tenant@sys-1=v a l",
            "k*/_-=!\"#$%&'()*+-./09:;<>?@AZ[\\]^_`az{|}~",
        ] {
            assert!(is_valid(&[ok.as_bytes()]), "{ok:?}");
        }
        assert!(is_valid(&[b"a=1", b"b=2"]), "several headers form one list");
        let list: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        assert!(is_valid(&[list.join(",").as_bytes()]));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_lists() {
        for bad in [
            "novalue",
            "=v",
            "Upper=v",
            "1digit=v",
            "k=",
            "k=a=b",
            "k=\u{e9}",
            "k=a\r\nx",
            "a@=v",
            "@b=v",
            "a@Sys=v",
            "a@toolongsystemid=v",
            "k=1,k=2",
        ] {
            assert!(!is_valid(&[bad.as_bytes()]), "{bad:?}");
        }
        assert!(!is_valid(&[b"k=1", b"k=2"]), "duplicate across headers");
        let list: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(!is_valid(&[list.join(",").as_bytes()]));
        assert!(!is_valid(&[format!("k={}", "v".repeat(257)).as_bytes()]));
        assert!(!is_valid(&[format!("k{}=v", "a".repeat(256)).as_bytes()]));
    }
}
