//! The requirement tree (Envoy `JwtRequirement`) and its evaluation over per-provider verdicts.
//!
//! Evaluation is lazy: a provider's token is validated only when the tree reaches it, in order,
//! and `requires_any` stops at the first requirement that passes. When the tree reaches a
//! provider whose keys are still being fetched, evaluation stops with [`Wait`].

use super::reason;

/// A compiled requirement. Provider references are indices into
/// [`super::JwtAuthnConfig::providers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A valid token of this provider.
    Provider(usize),
    /// At least one.
    Any(Vec<Requirement>),
    /// All.
    All(Vec<Requirement>),
    /// No token at all is fine; every token present must be valid for a provider reading it.
    AllowMissing,
    /// Always satisfied; valid tokens are still verified (their claims are passed on).
    AllowMissingOrFailed,
}

impl Requirement {
    /// Providers whose token locations the requirement looks at (sorted, deduplicated).
    /// `allow_missing*` look at every provider, like Envoy.
    pub fn providers(&self, provider_count: usize) -> Vec<usize> {
        let mut out = Vec::new();
        self.collect(provider_count, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    fn collect(&self, n: usize, out: &mut Vec<usize>) {
        match self {
            Requirement::Provider(p) => out.push(*p),
            Requirement::Any(list) | Requirement::All(list) => {
                list.iter().for_each(|r| r.collect(n, out))
            }
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => out.extend(0..n),
        }
    }
}

/// What became of the token(s) looked at for a provider (or for all present tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No token at the locations.
    Missing,
    /// The token verified.
    Verified,
    /// A token was present and refused, with the reason code.
    Failed(&'static str),
}

/// Evaluation must stop: keys of this provider are not loaded yet (or are being refetched for an
/// unknown `kid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub usize);

/// Supplies verdicts to the evaluation (memoised by the implementor).
pub trait Verdicts {
    /// The verdict of provider `p` on the token at its locations.
    fn provider(&mut self, p: usize) -> Result<Verdict, Wait>;
    /// Over every token present at any provider's locations: `Missing` when there is none,
    /// `Verified` when each verifies with at least one provider reading its location,
    /// otherwise `Failed` with the first reason.
    fn all_present(&mut self) -> Result<Verdict, Wait>;
}

/// Result of a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// Satisfied.
    Allow,
    /// Not satisfied: no token where one was needed.
    DenyMissing,
    /// Not satisfied: a token was refused for this reason.
    DenyInvalid(&'static str),
}

/// Evaluates `req`.
pub fn evaluate(req: &Requirement, v: &mut dyn Verdicts) -> Result<Evaluation, Wait> {
    Ok(match req {
        Requirement::Provider(p) => match v.provider(*p)? {
            Verdict::Verified => Evaluation::Allow,
            Verdict::Missing => Evaluation::DenyMissing,
            Verdict::Failed(r) => Evaluation::DenyInvalid(r),
        },
        Requirement::AllowMissing => match v.all_present()? {
            Verdict::Verified | Verdict::Missing => Evaluation::Allow,
            Verdict::Failed(r) => Evaluation::DenyInvalid(r),
        },
        Requirement::AllowMissingOrFailed => {
            // Still verify, so a valid token's identity is passed on.
            v.all_present()?;
            Evaluation::Allow
        }
        Requirement::Any(list) => {
            let mut first_invalid = None;
            for r in list {
                match evaluate(r, v)? {
                    Evaluation::Allow => return Ok(Evaluation::Allow),
                    Evaluation::DenyInvalid(reason) => {
                        first_invalid.get_or_insert(reason);
                    }
                    Evaluation::DenyMissing => {}
                }
            }
            match first_invalid {
                Some(r) => Evaluation::DenyInvalid(r),
                None => Evaluation::DenyMissing,
            }
        }
        Requirement::All(list) => {
            for r in list {
                match evaluate(r, v)? {
                    Evaluation::Allow => {}
                    deny => return Ok(deny),
                }
            }
            Evaluation::Allow
        }
    })
}

impl Evaluation {
    /// The reason code of a denial (`missing` for [`Evaluation::DenyMissing`]).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Evaluation::Allow => None,
            Evaluation::DenyMissing => Some(reason::MISSING),
            Evaluation::DenyInvalid(r) => Some(r),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    struct Fixed {
        verdicts: Vec<Result<Verdict, Wait>>,
        all: Result<Verdict, Wait>,
        asked: Vec<usize>,
    }

    impl Verdicts for Fixed {
        fn provider(&mut self, p: usize) -> Result<Verdict, Wait> {
            self.asked.push(p);
            self.verdicts[p]
        }
        fn all_present(&mut self) -> Result<Verdict, Wait> {
            self.all
        }
    }

    fn fixed(v: &[Result<Verdict, Wait>], all: Result<Verdict, Wait>) -> Fixed {
        Fixed {
            verdicts: v.to_vec(),
            all,
            asked: vec![],
        }
    }

    use Requirement::*;
    use Verdict::*;

    #[wasm_bindgen_test(unsupported = test)]
    fn provider_name() {
        let mut v = fixed(
            &[Ok(Verified), Ok(Missing), Ok(Failed("expired"))],
            Ok(Missing),
        );
        assert_eq!(evaluate(&Provider(0), &mut v), Ok(Evaluation::Allow));
        assert_eq!(evaluate(&Provider(1), &mut v), Ok(Evaluation::DenyMissing));
        assert_eq!(
            evaluate(&Provider(2), &mut v),
            Ok(Evaluation::DenyInvalid("expired"))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn any_stops_at_first_pass_and_prefers_invalid_reason() {
        let mut v = fixed(&[Ok(Missing), Ok(Verified), Ok(Failed("x"))], Ok(Missing));
        let req = Any(vec![Provider(0), Provider(1), Provider(2)]);
        assert_eq!(evaluate(&req, &mut v), Ok(Evaluation::Allow));
        assert_eq!(v.asked, vec![0, 1]);
        let req = Any(vec![Provider(0), Provider(2)]);
        assert_eq!(evaluate(&req, &mut v), Ok(Evaluation::DenyInvalid("x")));
        let req = Any(vec![Provider(0), Provider(0)]);
        assert_eq!(evaluate(&req, &mut v), Ok(Evaluation::DenyMissing));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn all_needs_every_one() {
        let mut v = fixed(&[Ok(Verified), Ok(Verified), Ok(Missing)], Ok(Missing));
        assert_eq!(
            evaluate(&All(vec![Provider(0), Provider(1)]), &mut v),
            Ok(Evaluation::Allow)
        );
        assert_eq!(
            evaluate(&All(vec![Provider(0), Provider(2)]), &mut v),
            Ok(Evaluation::DenyMissing)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn allow_missing_and_allow_failed() {
        for (all, missing_ok, failed_ok) in [
            (Ok(Missing), Ok(Evaluation::Allow), Ok(Evaluation::Allow)),
            (Ok(Verified), Ok(Evaluation::Allow), Ok(Evaluation::Allow)),
            (
                Ok(Failed("bad_signature")),
                Ok(Evaluation::DenyInvalid("bad_signature")),
                Ok(Evaluation::Allow),
            ),
        ] {
            let mut v = fixed(&[], all);
            assert_eq!(evaluate(&AllowMissing, &mut v), missing_ok);
            assert_eq!(evaluate(&AllowMissingOrFailed, &mut v), failed_ok);
        }
        // Envoy's usual "provider or allow_missing".
        let mut v = fixed(&[Ok(Failed("expired"))], Ok(Failed("expired")));
        let req = Any(vec![Provider(0), AllowMissing]);
        assert_eq!(
            evaluate(&req, &mut v),
            Ok(Evaluation::DenyInvalid("expired"))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn wait_propagates() {
        let mut v = fixed(&[Ok(Missing), Err(Wait(1))], Ok(Missing));
        assert_eq!(
            evaluate(&Any(vec![Provider(0), Provider(1)]), &mut v),
            Err(Wait(1))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn providers_listed() {
        let req = Any(vec![Provider(2), All(vec![Provider(0), Provider(2)])]);
        assert_eq!(req.providers(4), vec![0, 2]);
        assert_eq!(
            Any(vec![Provider(1), AllowMissing]).providers(3),
            vec![0, 1, 2]
        );
    }
}
