"""The ratio table of `make bench-peers`: fastweights (`fwp bench --json`)
against the JAX and NumPy peers (`jax_fwp.py`) measured in the same run.

    python3 Benchmarks/Peers/compare.py results/bench.json PEERS.json... [--markdown OUT.md] [--json OUT.json]

For every op, d and pass: the best tokens/s of each side over its forms
(fastweights: recurrent, chunked 32/64; JAX: lax.scan, chunked 64), the
ratio, and the NumPy token loop (forward only); then the LM training step
per mixer (op lm-step).
"""
import argparse
import json
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    ap.add_argument("peers", nargs="+", help="jax_fwp.py and jax_lm_step.py outputs")
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    a = ap.parse_args()
    ours = json.load(open(a.bench))
    files = [json.load(open(p)) for p in a.peers]
    peers = dict(meta=files[0]["meta"], rows=[r for f in files for r in f["rows"]])
    rows = []
    keys = sorted({(p["op"], p["d"], p["pass"], p["B"], p["H"], p["T"]) for p in peers["rows"] if p["peer"] == "jax"},
                  key=lambda k: (k[0] == "lm-step", k[1], k[0], k[2]))
    for op, d, pas, B, H, T in keys:
        mine = [r for r in ours if r["op"] == op and r["dk"] == d and r["pass"] == pas and r["B"] == B and r["H"] == H and r["T"] == T]
        jax = [p for p in peers["rows"] if p["peer"] == "jax" and p["op"] == op and p["d"] == d and p["pass"] == pas]
        if op == "lm-step":  # one row per mixer: pair them by mixer
            for j in jax:
                mine_m = [r for r in mine if r["algo"] == j["algo"]]
                if mine_m:
                    r = mine_m[0]
                    rows.append(dict(op=f"lm-step {j['algo']}", d=d, **{"pass": pas}, B=B, H=H, T=T,
                                     fastweights_tokens_per_s=r["tokens_per_s"], fastweights_algo=j["algo"],
                                     machine_peak_fraction=r.get("machine_peak_fraction"),
                                     jax_tokens_per_s=j["tokens_per_s"], jax_algo=j["algo"],
                                     ratio=r["tokens_per_s"] / j["tokens_per_s"], numpy_tokens_per_s=None))
            continue
        numpy = [p for p in peers["rows"] if p["peer"] == "numpy" and p["op"] == op and p["d"] == d and p["pass"] == pas]
        if not mine or not jax:
            continue
        best = max(mine, key=lambda r: r["tokens_per_s"])
        jbest = max(jax, key=lambda p: p["tokens_per_s"])
        rows.append(dict(op=op, d=d, **{"pass": pas}, B=B, H=H, T=T,
                         fastweights_tokens_per_s=best["tokens_per_s"], fastweights_algo=best["algo"] + (f"({best['chunk']})" if best.get("chunk") else ""),
                         machine_peak_fraction=best.get("machine_peak_fraction"),
                         jax_tokens_per_s=jbest["tokens_per_s"], jax_algo=jbest["algo"],
                         ratio=best["tokens_per_s"] / jbest["tokens_per_s"],
                         numpy_tokens_per_s=numpy[0]["tokens_per_s"] if numpy else None))
    lines = ["| op | d | pass | fastweights tokens/s | JAX tokens/s | ratio | NumPy loop tokens/s | fastweights of machine peak |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        npy = f"{r['numpy_tokens_per_s']:,.0f}" if r["numpy_tokens_per_s"] else "-"
        mp = f"{100 * r['machine_peak_fraction']:.0f}%" if r.get("machine_peak_fraction") else "-"
        lines.append(f"| {r['op']} | {r['d']} | {r['pass']} | {r['fastweights_tokens_per_s']:,.0f} ({r['fastweights_algo']}) | "
                     f"{r['jax_tokens_per_s']:,.0f} ({r['jax_algo']}) | {r['ratio']:.1f}x | {npy} | {mp} |")
    table = "\n".join(lines)
    print(table)
    print(f"\nJAX {peers['meta']['jax']} on {', '.join(peers['meta']['devices'])}, NumPy {peers['meta']['numpy']}; "
          f"B={rows[0]['B'] if rows else '?'}, H={rows[0]['H'] if rows else '?'}, T={rows[0]['T'] if rows else '?'}, phi identity, norm l2")
    for path, text in ((a.markdown, table + "\n"), (a.json, json.dumps(dict(meta=peers["meta"], rows=rows), indent=2))):
        if path:
            with open(path + ".tmp", "w") as fh:
                fh.write(text)
            os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
