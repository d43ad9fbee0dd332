"""The peers of `fwp bench`: the same fast weight programmer ops in JAX
(XLA on the CPU) and a NumPy token loop, at the same shapes, timed the same
way (best of several calls after a warm-up), written as JSON rows.

    python3 Benchmarks/Peers/jax_fwp.py --out results/peers.json [--dims 64,128] [--T 1024]

Ops (docs/contract.md sections 2-4): phi identity, norm l2 (k' = k / |k|,
q' = q / |q|), no denominator, S_0 = 0, layout [B, H, T, d].

    sum rule:    S_t = S_{t-1} + v_t k'_t^T                                 y_t = S_t q'_t
    delta rule:  S_t = S_{t-1} + beta_t (v_t - S_{t-1} k'_t) k'_t^T          y_t = S_t q'_t

Each in two JAX forms, both jit-compiled: a `lax.scan` over tokens (the
recurrence) and a `lax.scan` over chunks of C tokens (the chunked form; the
delta rule's WY representation; (I + A)^-1 by log2 C products, as A is nilpotent):

    sum:    Y = Q S^T + tril(Q K^T) V,                       S <- S + V^T K
    delta:  A = tril(diag(beta) K K^T, -1),  W = (I + A)^-1 diag(beta) K,  U = (I + A)^-1 diag(beta) V,
            Unew = U - W S^T,  Y = Q S^T + tril(Q K^T) Unew,  S <- S + Unew^T K

forward+backward is `jax.vjp` of the forward with a random dY, giving
dq, dk, dv (and dbeta). The NumPy baseline is the recurrence as a user
writes it: a Python loop over tokens, batched over B and H with einsum
(forward only). The script checks that every JAX form agrees with the NumPy
loop before it times anything.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def normalize(x):
    return x / np.sqrt((x * x).sum(-1, keepdims=True))


def numpy_loop(rule, q, k, v, beta):
    """The token loop a user writes: y [B, H, T, d]."""
    q, k = normalize(q), normalize(k)
    B, H, T, d = q.shape
    S = np.zeros((B, H, v.shape[-1], d), dtype=np.float32)
    y = np.empty_like(v)
    for t in range(T):
        kt, vt, qt = k[:, :, t], v[:, :, t], q[:, :, t]
        if rule == "sum":
            S += vt[..., :, None] * kt[..., None, :]
        else:
            vbar = np.einsum("bhij,bhj->bhi", S, kt)
            S += (beta[:, :, t, None] * (vt - vbar))[..., :, None] * kt[..., None, :]
        y[:, :, t] = np.einsum("bhij,bhj->bhi", S, qt)
    return y


def jax_forms(jax, jnp, lax):
    def l2(x):
        return x / jnp.sqrt((x * x).sum(-1, keepdims=True))

    def scan_one(rule, q, k, v, beta):
        # one sequence: q, k [T, dk], v [T, dv], beta [T]
        def step(S, xs):
            qt, kt, vt, bt = xs
            if rule == "sum":
                S = S + jnp.outer(vt, kt)
            else:
                S = S + jnp.outer(bt * (vt - S @ kt), kt)
            return S, S @ qt
        S0 = jnp.zeros((v.shape[-1], k.shape[-1]), q.dtype)
        _, y = lax.scan(step, S0, (l2(q), l2(k), v, beta))
        return y

    def chunked_one(rule, q, k, v, beta, C):
        T, dk = k.shape
        dv = v.shape[-1]
        pad = (-T) % C
        q, k = l2(q), l2(k)
        if pad:
            z = lambda x: jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)])
            q, k, v, beta = z(q), z(k), z(v), z(beta)
        n = (T + pad) // C
        Qc, Kc, Vc, Bc = (x.reshape((n, C) + x.shape[1:]) for x in (q, k, v, beta))
        causal = jnp.tril(jnp.ones((C, C), q.dtype))
        strict = jnp.tril(jnp.ones((C, C), q.dtype), -1)
        eye = jnp.eye(C, dtype=q.dtype)

        def step(St, xs):  # St = S^T [dk, dv]
            Q, K, V, b = xs
            if rule == "sum":
                Unew = V
            else:
                A = strict * (b[:, None] * (K @ K.T))
                # (I + A)^-1 for nilpotent A: (I - A)(I + A^2)(I + A^4)... (log2 C products;
                # XLA's batched triangular solve is about 100x slower on the CPU here).
                inv, P = eye - A, A @ A
                for _ in range(max(0, (C - 1).bit_length() - 1)):
                    inv, P = inv + inv @ P, P @ P
                WU = inv @ (b[:, None] * jnp.concatenate([K, V], 1))
                W, U = WU[:, :dk], WU[:, dk:]
                Unew = U - W @ St
            Y = Q @ St + (causal * (Q @ K.T)) @ Unew
            return St + K.T @ Unew, Y

        _, Y = lax.scan(step, jnp.zeros((dk, dv), q.dtype), (Qc, Kc, Vc, Bc))
        return Y.reshape((n * C, dv))[:T]

    def batched(f):
        return jax.vmap(jax.vmap(f))

    forms = {}
    for rule in ("sum", "delta"):
        forms[(rule, "scan")] = batched(lambda q, k, v, b, rule=rule: scan_one(rule, q, k, v, b))
        forms[(rule, "chunked")] = batched(lambda q, k, v, b, rule=rule: chunked_one(rule, q, k, v, b, 64))
    return forms


def best_seconds(f, min_runs=3, min_seconds=1.0):
    f()  # warm-up (compiles)
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSON rows to write")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--T", type=int, default=1024)
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--H", type=int, default=8)
    ap.add_argument("--numpy-T", type=int, default=256, help="tokens of the (slow) NumPy loop; its tokens/s is per token")
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    from jax import lax
    jax.config.update("jax_default_matmul_precision", "highest")
    forms = jax_forms(jax, jnp, lax)
    rows = []
    rng = np.random.default_rng(1)
    for d in [int(x) for x in args.dims.split(",")]:
        B, H, T = args.B, args.H, args.T
        q, k, v, dy = (rng.standard_normal((B, H, T, d)).astype(np.float32) for _ in range(4))
        beta = rng.uniform(size=(B, H, T)).astype(np.float32)
        jq, jk, jv, jb, jdy = (jnp.asarray(x) for x in (q, k, v, beta, dy))
        for rule in ("sum", "delta"):
            # Correctness first: every JAX form against the NumPy loop on a short prefix.
            Tc = min(T, 200)
            ref = numpy_loop(rule, q[:, :, :Tc], k[:, :, :Tc], v[:, :, :Tc], beta[:, :, :Tc])
            for algo in ("scan", "chunked"):
                got = np.asarray(forms[(rule, algo)](jq[:, :, :Tc], jk[:, :, :Tc], jv[:, :, :Tc], jb[:, :, :Tc]))
                err = np.abs(got - ref).max() / max(1.0, np.abs(ref).max())
                if not err < 1e-3:
                    sys.exit(f"jax_fwp.py: JAX {rule} {algo} disagrees with the NumPy loop: relative error {err:.3g}")
            for algo in ("scan", "chunked"):
                f = forms[(rule, algo)]
                fwd = jax.jit(f)
                args_ = (jq, jk, jv, jb)

                def vjp(q, k, v, b, dy, f=f):
                    y, pull = jax.vjp(f, q, k, v, b)
                    return pull(dy)
                both = jax.jit(vjp)
                for pas, run in (("forward", lambda: fwd(*args_).block_until_ready()),
                                 ("forward+backward", lambda: jax.block_until_ready(both(*args_, jdy)))):
                    s = best_seconds(run)
                    rows.append(dict(peer="jax", op=rule, algo=algo + ("(64)" if algo == "chunked" else ""), **{"pass": pas},
                                     B=B, H=H, T=T, d=d, seconds=s, tokens_per_s=B * T / s))
                    print(f"jax {rule} {algo} {pas} d={d}: {B * T / s:,.0f} tokens/s", file=sys.stderr)
            Tn = min(T, args.numpy_T)
            s = best_seconds(lambda: numpy_loop(rule, q[:, :, :Tn], k[:, :, :Tn], v[:, :, :Tn], beta[:, :, :Tn]), min_runs=2, min_seconds=0.5)
            rows.append(dict(peer="numpy", op=rule, algo="token loop", **{"pass": "forward"}, B=B, H=H, T=Tn, d=d,
                             seconds=s, tokens_per_s=B * Tn / s))
            print(f"numpy {rule} loop forward d={d}: {B * Tn / s:,.0f} tokens/s", file=sys.stderr)
    meta = dict(jax=jax.__version__, numpy=np.__version__, devices=[str(x) for x in jax.devices()], cpus=os.cpu_count())
    tmp = args.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(dict(meta=meta, rows=rows), fh, indent=2)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
