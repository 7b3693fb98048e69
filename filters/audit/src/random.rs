//! Host randomness for request and trace ids.

/// Fills `buf` from WASI `random_get`. Should the host refuse (it does not in Envoy), the bytes
/// come from a SplitMix64 sequence seeded with `seed()` (the host clock and the context id, only
/// asked for then): unique enough for ids, which are identifiers, not secrets.
pub(crate) fn fill(buf: &mut [u8], seed: impl FnOnce() -> u64) -> bool {
    if getrandom::fill(buf).is_ok() {
        return true;
    }
    let mut state = seed();
    for chunk in buf.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        for (dst, src) in chunk.iter_mut().zip(z.to_le_bytes()) {
            *dst = src;
        }
    }
    false
}
