#!/usr/bin/env bash
# Two "machines" on this one: network namespaces fwp-a and fwp-b joined by a
# veth pair (10.77.0.1 <-> 10.77.0.2), one MPI rank in each, Open MPI's TCP
# transport between them (no shared memory; no core binding, since each
# "host" would bind its rank to core 0), then a 2-rank `fwp train lm
# --distributed` beside a 1-rank run of the same model, and an all-reduce
# check. Needs root (ip netns) and a built fwp. Tears everything down on exit.
#
#   scripts/mpi-two-namespaces.sh [FWP] [DATA] [OUT] [STEPS]
#
# FWP defaults to .build/release/fwp, DATA to a generated corpus, OUT to
# results/mpi-two-namespaces, STEPS to 40. Prints tokens/s of both runs and
# writes OUT/summary.json.
set -euo pipefail

FWP=$(realpath "${1:-.build/release/fwp}")
DATA=${2:-}
OUT=$(realpath -m "${3:-results/mpi-two-namespaces}")
STEPS=${4:-40}
A=fwp-a; B=fwp-b
[ "$(id -u)" = 0 ] || { echo "$0: needs root (ip netns)" >&2; exit 2; }
[ -x "$FWP" ] || { echo "$0: no fwp at $FWP (make build, or pass its path)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "$0: no mpirun (apt-get install openmpi-bin)" >&2; exit 2; }

WORK=$(mktemp -d)
cleanup() {
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cleanup; WORK=$(mktemp -d)

# The two namespaces and the cable between them.
ip netns add $A
ip netns add $B
ip link add veth-a netns $A type veth peer name veth-b netns $B
ip -n $A addr add 10.77.0.1/24 dev veth-a
ip -n $B addr add 10.77.0.2/24 dev veth-b
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set veth-a up
ip -n $B link set veth-b up
ip -n $A route get 10.77.0.2 >/dev/null

# mpirun (in fwp-a) starts the remote rank through this "rsh agent": instead
# of ssh to 10.77.0.2 it runs the daemon command inside fwp-b.
cat > "$WORK/netns-agent" <<AGENT
#!/usr/bin/env bash
host=\$1; shift
while [ "\${1:-}" = "-x" ] || [ "\${1:-}" = "-T" ]; do shift; done
case "\$host" in 10.77.0.2) ns=$B ;; *) ns=$A ;; esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$WORK/netns-agent"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$WORK/hosts"

if [ -z "$DATA" ]; then
    mkdir -p "$WORK/works"
    python3 - "$WORK/works" <<'PY'
import random, sys
random.seed(7)
words = "to be or not that is the question whether tis nobler in the mind".split()
for w in range(8):
    with open(f"{sys.argv[1]}/w{w}.txt", "w") as f:
        for i in range(4000):
            f.write(" ".join(random.choice(words) for _ in range(8)) + "\n")
PY
    "$FWP" data text --text "$WORK/works" --out "$WORK/data" --quiet
    DATA=$WORK/data
fi
DATA=$(realpath "$DATA")

MPI=(mpirun --allow-run-as-root --hostfile "$WORK/hosts" -np 2 --bind-to none
     --mca plm_rsh_agent "$WORK/netns-agent"
     --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24
     -x FWP_THREADS=1 -x FWP_KEEP_BLAS_CORE=1)
# The language-modelling table's model (fwp reproduce schlag2021-lm): 4 blocks, D 128, 16 x 256 bytes.
MODEL=(--data "$DATA" --mixer delta --layers 4 --model-size 128 --heads 8 --feed-forward 512
       --context 256 --batch 16 --steps "$STEPS" --eval-every "$STEPS" --eval-bytes 4096 --dropout 0 --quiet)

mkdir -p "$(dirname "$OUT")"
echo "== all-reduce over the veth pair (this model's gradients: 828,416 floats; and a 10M-parameter model's)"
ip netns exec $A "${MPI[@]}" "$FWP" mpi-check --floats 828416 --repeats 30 | tee "$WORK/check-small.txt"
ip netns exec $A "${MPI[@]}" "$FWP" mpi-check --floats 10000000 --repeats 10 | tee "$WORK/check-large.txt"
echo "== 1 process, 1 thread"
FWP_THREADS=1 "$FWP" train lm "${MODEL[@]}" --out "$WORK/one" | tee "$WORK/one.txt"
echo "== 2 ranks, one in each namespace, 1 thread each"
ip netns exec $A "${MPI[@]}" "$FWP" train lm "${MODEL[@]}" --distributed --out "$WORK/two" | tee "$WORK/two.txt"
echo "== the same, one all-reduce after the backward instead of per-block buckets"
ip netns exec $A "${MPI[@]}" "$FWP" train lm "${MODEL[@]}" --distributed --single-allreduce --out "$WORK/single" | tee "$WORK/single.txt"

rm -rf "$OUT.tmp"; mkdir -p "$OUT.tmp"
python3 - "$WORK" "$OUT.tmp" "$STEPS" <<'PY'
import json, re, sys
work, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
one = json.load(open(f"{work}/one/summary.json"))
two = json.load(open(f"{work}/two/summary.json"))
single = json.load(open(f"{work}/single/summary.json"))
def check(name):
    t = open(f"{work}/{name}").read()
    m = re.search(r"all-reduce of (\d+) floats .*?; ([0-9.]+) ms", t)
    return {"floats": int(m.group(1)), "bytes": 4 * int(m.group(1)), "ms": float(m.group(2)), "passed": "mpi-check: passed" in t}
r = {"transport": "Open MPI TCP over a veth pair between two network namespaces",
     "steps": steps, "params": one["params"],
     "one_process_tokens_per_s": one["tokens_per_s"], "two_ranks_tokens_per_s": two["tokens_per_s"],
     "two_ranks_single_allreduce_tokens_per_s": single["tokens_per_s"],
     "speedup": two["tokens_per_s"] / one["tokens_per_s"],
     "final_train_loss_one": one["final_train_loss"], "final_train_loss_two": two["final_train_loss"],
     "loss_relative_difference": abs(two["final_train_loss"] - one["final_train_loss"]) / abs(one["final_train_loss"]),
     "allreduce": [check("check-small.txt"), check("check-large.txt")]}
json.dump(r, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(r, indent=2))
PY
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "wrote $OUT/summary.json"
