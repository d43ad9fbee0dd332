"""The LM training-step peer of `fwp bench`'s `lm-step` rows: the same
character LM in JAX (jit-compiled, XLA on the CPU), one whole step timed:
loss, gradients (jax.grad), global-norm clipping at 0.25 and Adam.

    python3 Benchmarks/Peers/jax_lm_step.py --out results/peers-lm.json [--mixers softmax,linear,delta]

Config (LanguageModelStepBenchmarks): byte embedding [256, D] scaled by
sqrt(D) and tied to the output, 2 pre-norm blocks, D = 128, 8 heads of 16,
feed-forward 512 (relu), batch 16 x 256 bytes, no dropout. Mixers as
Sources/FWModels/LanguageModel/LanguageModel.md defines them:

    softmax: causal softmax attention, scores / sqrt(dk)
    linear:  phi = elu + 1, sum rule, o = c S q / (z . q + 1e-5)
    delta:   phi = elu + 1 then sum normalisation, beta = sigmoid(w_beta . u),
             delta rule, o = c S q                                  (c = 1/sqrt(dk))

The fast weight mixers use the chunked forms (C = 64; the delta rule's WY
form with (I + A)^-1 from log2 C products), JAX's fastest here.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def build(jax, jnp, lax, mixer, L=2, D=128, H=8, F=512, C=64):
    dk = D // H

    def init(key):
        ks = iter(jax.random.split(key, 64))
        n = lambda shape, std: std * jax.random.normal(next(ks), shape, jnp.float32)
        p = {"emb": n((256, D), 1 / np.sqrt(D)), "head_b": jnp.zeros(256), "lnf": (jnp.ones(D), jnp.zeros(D)), "blocks": []}
        for _ in range(L):
            b = {"ln1": (jnp.ones(D), jnp.zeros(D)), "ln2": (jnp.ones(D), jnp.zeros(D)),
                 "wq": n((D, D), 1 / np.sqrt(D)), "wk": n((D, D), 1 / np.sqrt(D)), "wv": n((D, D), 1 / np.sqrt(D)),
                 "wo": n((D, D), 1 / np.sqrt(D)), "w1": n((D, F), 1 / np.sqrt(D)), "b1": jnp.zeros(F),
                 "w2": n((F, D), 1 / np.sqrt(F)), "b2": jnp.zeros(D)}
            if mixer == "delta":
                b["wb"] = n((D, H), 1 / np.sqrt(D))
            p["blocks"].append(b)
        return p

    def ln(x, gb):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / jnp.sqrt(v + 1e-5) * gb[0] + gb[1]

    elu1 = lambda x: jnp.where(x > 0, x + 1, jnp.exp(x))
    causal = jnp.tril(jnp.ones((C, C), jnp.float32))
    strict = jnp.tril(jnp.ones((C, C), jnp.float32), -1)
    eye = jnp.eye(C, dtype=jnp.float32)

    def chunks(x):  # [T, d] -> [T/C, C, d]
        return x.reshape((x.shape[0] // C, C) + x.shape[1:])

    def linear_head(q, k, v):  # one head: [T, dk]
        def step(carry, xs):
            St, z = carry
            Q, K, V = xs
            A = causal * (Q @ K.T)
            num = Q @ St + A @ V
            den = Q @ z + A.sum(1) + 1e-5
            return (St + K.T @ V, z + K.sum(0)), num / den[:, None]
        _, y = lax.scan(step, (jnp.zeros((dk, dk)), jnp.zeros(dk)), (chunks(q), chunks(k), chunks(v)))
        return y.reshape(-1, dk)

    def delta_head(q, k, v, beta):
        def step(St, xs):
            Q, K, V, b = xs
            A = strict * (b[:, None] * (K @ K.T))
            inv, P = eye - A, A @ A
            for _ in range(max(0, (C - 1).bit_length() - 1)):
                inv, P = inv + inv @ P, P @ P
            WU = inv @ (b[:, None] * jnp.concatenate([K, V], 1))
            Unew = WU[:, dk:] - WU[:, :dk] @ St
            return St + K.T @ Unew, Q @ St + (causal * (Q @ K.T)) @ Unew
        _, y = lax.scan(step, jnp.zeros((dk, dk)), (chunks(q), chunks(k), chunks(v), chunks(beta)))
        return y.reshape(-1, dk)

    def mix(b, u):  # u [B, T, D]
        B, T, _ = u.shape
        heads = lambda x: x.reshape(B, T, H, dk).transpose(0, 2, 1, 3)  # [B, H, T, dk]
        q, k, v = heads(u @ b["wq"]), heads(u @ b["wk"]), heads(u @ b["wv"])
        if mixer == "softmax":
            s = jnp.einsum("bhtd,bhsd->bhts", q, k) / np.sqrt(dk)
            s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -1e30)
            o = jnp.einsum("bhts,bhsd->bhtd", jax.nn.softmax(s, -1), v)
        elif mixer == "linear":
            o = jax.vmap(jax.vmap(linear_head))(elu1(q), elu1(k), v) / np.sqrt(dk)
        else:
            qn, kn = elu1(q), elu1(k)
            qn, kn = qn / qn.sum(-1, keepdims=True), kn / kn.sum(-1, keepdims=True)
            beta = jax.nn.sigmoid(u @ b["wb"]).transpose(0, 2, 1)  # [B, H, T]
            o = jax.vmap(jax.vmap(delta_head))(qn, kn, v, beta) / np.sqrt(dk)
        return o.transpose(0, 2, 1, 3).reshape(B, T, D) @ b["wo"]

    def loss(p, tokens, targets):
        x = np.sqrt(D) * p["emb"][tokens]
        for b in p["blocks"]:
            x = x + mix(b, ln(x, b["ln1"]))
            h = ln(x, b["ln2"])
            x = x + jax.nn.relu(h @ b["w1"] + b["b1"]) @ b["w2"] + b["b2"]
        logits = ln(x, p["lnf"]) @ p["emb"].T + p["head_b"]
        lp = jax.nn.log_softmax(logits, -1)
        return -jnp.take_along_axis(lp, targets[..., None], -1).mean()

    def step(p, m, v, t, tokens, targets):
        l, g = jax.value_and_grad(loss)(p, tokens, targets)
        leaves = jax.tree_util.tree_leaves(g)
        norm = jnp.sqrt(sum((x * x).sum() for x in leaves))
        g = jax.tree_util.tree_map(lambda x: x * jnp.minimum(1.0, 0.25 / (norm + 1e-6)), g)
        m = jax.tree_util.tree_map(lambda a, x: 0.9 * a + 0.1 * x, m, g)
        v = jax.tree_util.tree_map(lambda a, x: 0.999 * a + 0.001 * x * x, v, g)
        t = t + 1
        p = jax.tree_util.tree_map(lambda w, a, b: w - 1e-3 * (a / (1 - 0.9 ** t)) / (jnp.sqrt(b / (1 - 0.999 ** t)) + 1e-8), p, m, v)
        return p, m, v, t, l

    return init, jax.jit(step)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--mixers", default="softmax,linear,delta")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context", type=int, default=256)
    a = ap.parse_args()
    import jax
    import jax.numpy as jnp
    from jax import lax
    jax.config.update("jax_default_matmul_precision", "highest")
    rng = np.random.default_rng(9)
    tokens = jnp.asarray(rng.integers(32, 128, (a.batch, a.context)), jnp.int32)
    targets = jnp.asarray(rng.integers(32, 128, (a.batch, a.context)), jnp.int32)
    rows = []
    for mixer in a.mixers.split(","):
        init, step = build(jax, jnp, lax, mixer)
        p = init(jax.random.PRNGKey(0))
        m = jax.tree_util.tree_map(jnp.zeros_like, p)
        v = jax.tree_util.tree_map(jnp.zeros_like, p)
        t = jnp.asarray(0.0)
        state = [p, m, v, t]

        def once():
            out = step(*state, tokens, targets)
            jax.block_until_ready(out)
            state[:] = out[:4]
            return float(out[4])
        first = once()  # compiles
        if not np.isfinite(first):
            sys.exit(f"jax_lm_step.py: {mixer}: non-finite loss {first}")
        times, start = [], time.perf_counter()
        while len(times) < 3 or time.perf_counter() - start < 2.0:
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
        s = min(times)
        n = a.batch * a.context
        rows.append(dict(peer="jax", op="lm-step", algo=mixer, **{"pass": "forward+backward"}, B=a.batch, H=8, T=a.context, d=16,
                         seconds=s, tokens_per_s=n / s, first_loss=first))
        print(f"jax lm-step {mixer}: {n / s:,.0f} tokens/s ({s * 1e3:.0f} ms per step, first loss {first:.3f})", file=sys.stderr)
    meta = dict(jax=jax.__version__, numpy=np.__version__, devices=[str(x) for x in jax.devices()], cpus=os.cpu_count())
    with open(a.out + ".tmp", "w") as fh:
        json.dump(dict(meta=meta, rows=rows), fh, indent=2)
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
