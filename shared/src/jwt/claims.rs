//! Typed registered claims: NumericDates as checked integers, `aud` as string or array.
