//! Request header values as Envoy's header matchers see them: duplicates of a header joined
//! with `,`. The joined value is never built: patterns are compared against the pieces in
//! place, so a `request.headers[…]` condition allocates nothing, however many rules test it.

use super::string_match::StringPattern;

/// The value of one request header, possibly spread over several header lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderValue<'h> {
    headers: &'h [(String, Vec<u8>)],
    name: &'h str,
    first: &'h [u8],
    /// Length of the joined value (all lines plus one `,` between each two).
    len: usize,
    single: bool,
}

impl<'h> HeaderValue<'h> {
    /// The value of header `name` (lower-case) in `headers`; `None` when absent.
    pub(crate) fn find(headers: &'h [(String, Vec<u8>)], name: &'h str) -> Option<Self> {
        let mut lines = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let (_, first) = lines.next()?;
        let (count, rest_len) = lines.fold((1usize, 0usize), |(c, l), (_, v)| (c + 1, l + v.len()));
        Some(HeaderValue {
            headers,
            name,
            first,
            len: first.len() + rest_len + (count - 1),
            single: count == 1,
        })
    }

    /// The joined bytes.
    fn bytes(&self) -> impl Iterator<Item = u8> + Clone + 'h {
        let name = self.name;
        let mut first = true;
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(move |(_, v)| {
                let comma = (!std::mem::take(&mut first)).then_some(b',');
                comma.into_iter().chain(v.iter().copied())
            })
    }

    /// Whether the (joined) value matches `pattern`.
    pub(crate) fn matches(&self, pattern: &StringPattern) -> bool {
        if self.single {
            return pattern.matches(self.first);
        }
        let starts = |p: &str| p.len() <= self.len && self.bytes().take(p.len()).eq(p.bytes());
        let ends = |p: &str| {
            self.len
                .checked_sub(p.len())
                .is_some_and(|skip| self.bytes().skip(skip).eq(p.bytes()))
        };
        match pattern {
            StringPattern::Exact(s) => s.len() == self.len && self.bytes().eq(s.bytes()),
            StringPattern::Prefix(s) => starts(s),
            StringPattern::Suffix(s) => ends(s),
            StringPattern::PrefixSuffix { prefix, suffix } => {
                self.len >= prefix.len() + suffix.len() && starts(prefix) && ends(suffix)
            }
            StringPattern::Present => self.len > 0,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn joined(h: &HeaderValue<'_>) -> Vec<u8> {
        h.bytes().collect()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn duplicate_headers_are_joined_like_envoy() {
        let headers = vec![
            ("x-a".to_owned(), b"1".to_vec()),
            ("x-b".to_owned(), b"2".to_vec()),
            ("X-A".to_owned(), b"3".to_vec()),
            ("x-a".to_owned(), b"".to_vec()),
            ("x-a".to_owned(), b"45".to_vec()),
        ];
        let b = HeaderValue::find(&headers, "x-b").unwrap();
        assert_eq!(joined(&b), b"2");
        let a = HeaderValue::find(&headers, "x-a").unwrap();
        assert_eq!(joined(&a), b"1,3,,45");
        assert_eq!(a.len, 7);
        assert!(HeaderValue::find(&headers, "x-c").is_none());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn patterns_match_the_joined_value_exactly_as_a_built_string() {
        let headers = vec![
            ("x-a".to_owned(), b"ab".to_vec()),
            ("x-a".to_owned(), b"c".to_vec()),
            ("x-a".to_owned(), b"de".to_vec()),
        ];
        let value = HeaderValue::find(&headers, "x-a").unwrap();
        let built = b"ab,c,de";
        let patterns = [
            "ab,c,de",
            "ab,c,d",
            "ab,c,dee",
            "ab*",
            "ab,c*",
            "ab,c,de*",
            "ab,c,de,*",
            "b*",
            "*de",
            "*,c,de",
            "*ab,c,de",
            "*xab,c,de",
            "*e",
            "*d",
            "*",
            "x",
        ];
        for p in patterns {
            let p = StringPattern::parse(p).unwrap();
            assert_eq!(value.matches(&p), p.matches(built), "{p:?}");
        }
        for (prefix, suffix, want) in [("ab", "de", true), ("ab,c,", ",c,de", false)] {
            let p = StringPattern::PrefixSuffix {
                prefix: prefix.into(),
                suffix: suffix.into(),
            };
            assert_eq!(value.matches(&p), want, "{p:?}");
            assert_eq!(p.matches(built), want);
        }
        let empty = vec![("x-e".to_owned(), Vec::new())];
        let e = HeaderValue::find(&empty, "x-e").unwrap();
        assert!(!e.matches(&StringPattern::Present));
    }
}
