//! Strict JWS compact parsing: size cap, character set, segment count, base64url, JSON header.
