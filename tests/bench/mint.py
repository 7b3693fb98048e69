#!/usr/bin/env python3
"""Mints the benchmark's keys, token pools and request sequences (idempotent, cached).

Everything goes to one work directory (default target/bench/work):

  keys/rs256.pem es256.pem eddsa.pem attacker_rs256.pem   private keys (bench only)
  jwks.json            public JWKS: kid rs-1 (RS256, 2048), es-1 (ES256), ed-1 (EdDSA/Ed25519)
  pool.txt             10,000 distinct valid RS256 tokens, then 500 invalid ones (one per line)
  seq_measure.txt      1,000,000 pool indices: Zipf(s) over the valid tokens, 5 % invalid
  seq_warm.txt         the same distribution from another seed (warm-up)
  seq_*_valid.txt      the same sequences without the invalid tokens (cache-hit-only variants)
  cold_rs256.txt ...   distinct valid tokens, each sent at most once (cold-verify variants)
  manifest.json        parameters, counts, expiry; the cache key for re-use

A second run re-uses the files when the parameters match and the tokens stay valid for more than
a day; otherwise it mints everything again. Tokens are valid for 7 days.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://issuer.bench.meshguard.test"
AUDIENCE = "meshguard-bench"
LIFETIME_S = 7 * 24 * 3600
MIN_REMAINING_S = 24 * 3600
FORMAT_VERSION = 1

KIDS = {"RS256": "rs-1", "ES256": "es-1", "EdDSA": "ed-1"}
KEY_FILES = {"RS256": "rs256.pem", "ES256": "es256.pem", "EdDSA": "eddsa.pem"}
COLD_FILES = {"RS256": "cold_rs256.txt", "ES256": "cold_es256.txt", "EdDSA": "cold_eddsa.txt"}

# Share of each kind in the invalid part of the pool.
INVALID_KINDS = (
    ("bad_signature", 0.40),  # signed by another RSA key under kid rs-1: needs a full verify
    ("expired", 0.30),  # valid signature, exp one hour ago
    ("wrong_audience", 0.20),  # valid signature, aud not accepted
    ("malformed", 0.10),  # not a JWS (bad base64 / segments / truncated)
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_private(path: Path, key) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)


def load_private(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def make_keys(keys_dir: Path) -> None:
    keys_dir.mkdir(parents=True, exist_ok=True)
    write_private(keys_dir / "rs256.pem", rsa.generate_private_key(65537, 2048))
    write_private(keys_dir / "attacker_rs256.pem", rsa.generate_private_key(65537, 2048))
    write_private(keys_dir / "es256.pem", ec.generate_private_key(ec.SECP256R1()))
    write_private(keys_dir / "eddsa.pem", ed25519.Ed25519PrivateKey.generate())


def jwk_of(alg: str, key) -> dict:
    pub = key.public_key()
    kid = KIDS[alg]
    if alg == "RS256":
        nums = pub.public_numbers()
        n = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
        e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": b64url(n), "e": b64url(e)}
    if alg == "ES256":
        nums = pub.public_numbers()
        return {
            "kty": "EC",
            "kid": kid,
            "alg": alg,
            "use": "sig",
            "crv": "P-256",
            "x": b64url(nums.x.to_bytes(32, "big")),
            "y": b64url(nums.y.to_bytes(32, "big")),
        }
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "kid": kid, "alg": alg, "use": "sig", "crv": "Ed25519", "x": b64url(raw)}


# Worker state for the process pool: keys are loaded once per worker process.
_KEYS: dict = {}


def _init_worker(keys_dir: str) -> None:
    d = Path(keys_dir)
    for alg, name in KEY_FILES.items():
        _KEYS[alg] = load_private(d / name)
    _KEYS["attacker"] = load_private(d / "attacker_rs256.pem")


def _sign(job: tuple) -> str:
    """job = (alg, key name, subject, now, kind)."""
    alg, key_name, sub, now, kind = job
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + LIFETIME_S,
        "jti": sub,
        "role": "reader",
        "scope": "bench:read bench:list",
    }
    if kind == "expired":
        claims["iat"] = now - 7200
        claims["exp"] = now - 3600
    elif kind == "wrong_audience":
        claims["aud"] = "someone-else"
    return jwt.encode(claims, _KEYS[key_name], algorithm=alg, headers={"kid": KIDS[alg], "typ": "JWT"})


def sign_all(jobs: list, keys_dir: Path, label: str) -> list:
    t0 = time.time()
    workers = max(1, min(2, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(str(keys_dir),)) as ex:
        out = list(ex.map(_sign, jobs, chunksize=256))
    print(f"mint: {len(out)} {label} tokens in {time.time() - t0:.1f}s", file=sys.stderr)
    return out


def malformed(rng: random.Random, valid: str, i: int) -> str:
    parts = valid.split(".")
    choice = i % 5
    if choice == 0:
        return valid[: len(valid) // 2]  # truncated mid-payload
    if choice == 1:
        return parts[0] + "." + parts[1]  # two segments
    if choice == 2:
        return parts[0] + ".%%%." + parts[2]  # bad base64 in the payload
    if choice == 3:
        return b64url(rng.randbytes(24)) + "." + b64url(rng.randbytes(60)) + "." + b64url(rng.randbytes(256))
    return parts[0] + "." + parts[1] + "." + parts[2][:-10]  # short signature


def zipf_sequence(rng: random.Random, n_valid: int, n_invalid: int, s: float, invalid_share: float, length: int) -> list:
    # Rank r (1-based) has weight 1/r^s; ranks map to pool lines through a random permutation so
    # popularity is not tied to the line order.
    cum = []
    total = 0.0
    for r in range(1, n_valid + 1):
        total += 1.0 / (r**s)
        cum.append(total)
    perm = list(range(n_valid))
    rng.shuffle(perm)
    seq = []
    for _ in range(length):
        if rng.random() < invalid_share:
            seq.append(n_valid + rng.randrange(n_invalid))
        else:
            rank = bisect.bisect_left(cum, rng.random() * total)
            seq.append(perm[min(rank, n_valid - 1)])
    return seq


def write_valid_only(out: Path, n_valid: int) -> None:
    """seq_<name>_valid.txt: seq_<name>.txt without the invalid tokens (derived, so re-made if absent)."""
    for name in ("measure", "warm"):
        target = out / f"seq_{name}_valid.txt"
        if target.exists():
            continue
        lines = (out / f"seq_{name}.txt").read_text().split()
        target.write_text("\n".join(x for x in lines if int(x) < n_valid) + "\n")


def seq_stats(seq: list, n_valid: int) -> dict:
    """Share of requests whose token was not seen before, over growing prefixes (cold-cache view)."""
    seen = set()
    firsts = 0
    out = {}
    marks = {10_000, 100_000, 1_000_000}
    for i, idx in enumerate(seq, 1):
        if idx < n_valid and idx not in seen:
            seen.add(idx)
            firsts += 1
        if i in marks:
            out[str(i)] = {"distinct_valid": len(seen), "first_seen_share": round(firsts / i, 4)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="target/bench/work")
    ap.add_argument("--pool", type=int, default=10_000, help="distinct valid tokens in the pool")
    ap.add_argument("--invalid", type=int, default=500, help="invalid tokens in the pool")
    ap.add_argument("--invalid-share", type=float, default=0.05, help="share of requests with an invalid token")
    ap.add_argument("--zipf-s", type=float, default=1.0, help="Zipf exponent of token reuse")
    ap.add_argument("--seq-len", type=int, default=1_000_000)
    ap.add_argument("--cold", type=int, default=30_000, help="distinct tokens per algorithm for the cold variants")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()

    out = Path(args.out)
    params = {
        "format": FORMAT_VERSION,
        "pool": args.pool,
        "invalid": args.invalid,
        "invalid_share": args.invalid_share,
        "zipf_s": args.zipf_s,
        "seq_len": args.seq_len,
        "cold": args.cold,
        "issuer": ISSUER,
        "audience": AUDIENCE,
    }
    manifest_path = out / "manifest.json"
    now = int(time.time())
    if manifest_path.exists() and not args.force:
        try:
            old = json.loads(manifest_path.read_text())
            if old.get("params") == params and old.get("expires_at", 0) - now > MIN_REMAINING_S:
                print(f"mint: re-using {out} (tokens valid until {old['expires_at']})", file=sys.stderr)
                write_valid_only(out, args.pool)
                return 0
        except (OSError, ValueError):
            pass

    out.mkdir(parents=True, exist_ok=True)
    keys_dir = out / "keys"
    make_keys(keys_dir)
    keys = {alg: load_private(keys_dir / name) for alg, name in KEY_FILES.items()}
    jwks = {"keys": [jwk_of(alg, key) for alg, key in keys.items()]}
    (out / "jwks.json").write_text(json.dumps(jwks, separators=(",", ":")) + "\n")

    rng = random.Random(20261122)
    valid = sign_all([("RS256", "RS256", f"user-{i:05d}", now, "valid") for i in range(args.pool)], keys_dir, "pool RS256")
    invalid_jobs, kinds = [], []
    for kind, share in INVALID_KINDS:
        count = round(args.invalid * share)
        kinds.extend([kind] * count)
    kinds = (kinds + ["malformed"] * args.invalid)[: args.invalid]
    for i, kind in enumerate(kinds):
        key_name = "attacker" if kind == "bad_signature" else "RS256"
        invalid_jobs.append(("RS256", key_name, f"bad-{i:05d}", now, kind))
    invalid = sign_all(invalid_jobs, keys_dir, "invalid")
    invalid = [malformed(rng, tok, i) if kinds[i] == "malformed" else tok for i, tok in enumerate(invalid)]
    (out / "pool.txt").write_text("\n".join(valid + invalid) + "\n")

    seqs = {}
    for name, seed in (("measure", 1), ("warm", 2)):
        seq = zipf_sequence(random.Random(seed), args.pool, args.invalid, args.zipf_s, args.invalid_share, args.seq_len)
        (out / f"seq_{name}.txt").write_text("\n".join(map(str, seq)) + "\n")
        seqs[name] = seq_stats(seq, args.pool)

    write_valid_only(out, args.pool)

    for alg, fname in COLD_FILES.items():
        toks = sign_all([(alg, alg, f"cold-{alg}-{i:06d}", now, "valid") for i in range(args.cold)], keys_dir, f"cold {alg}")
        if len(set(toks)) != len(toks):
            print(f"mint: duplicate cold {alg} tokens", file=sys.stderr)
            return 1
        (out / fname).write_text("\n".join(toks) + "\n")

    manifest = {
        "params": params,
        "minted_at": now,
        "expires_at": now + LIFETIME_S,
        "invalid_kinds": {k: kinds.count(k) for k, _ in INVALID_KINDS},
        "sequence_stats": seqs,
        "token_bytes": {"pool_rs256": len(valid[0])},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"mint: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
