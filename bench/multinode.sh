#!/bin/bash
# bench/multinode.sh [--runs N] [--steps S]: what crossing nodes costs, measured on namespace nodes
# (tests/multinode.sh: two network namespaces joined by veth on a bridge, TCP between them; needs root).
#   1. MPI_Allreduce of 4 B .. 16 MiB on 2 ranks (bench_allreduce): one node over shared memory
#      (btl vader), one node over loopback TCP (btl tcp), 2 namespace nodes over veth TCP; the per-hop
#      latency alpha and the bus bandwidth of 16 MiB of each;
#   2. the reference GPT (gpt:vocab=256,ctx=128,layers=4,dim=256,heads=4, global batch 32 x 128 tokens,
#      AdamW, per-token KD against float16 logits, as bench/gpt.sh) on 2 ranks x 1 OpenBLAS thread: one
#      node, and 2 namespace nodes with --overlap on (the multi-node default) and off: tokens/s (median
#      of --runs) and the step's split from kd's step_ms line (compute phases against the allreduce);
#   3. bench/project.py --gpt with the veth figures as a third network beside the assumed ones.
# The namespace nodes share this machine's 2 cores, so both layouts run the same compute; veth moves
# bytes with the CPU (no NIC), so its bandwidth is this machine's memory-copy path through the
# kernel's TCP stack, not a network's. Prints; asserts nothing.
set -u
runs=3 steps=20
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: bench/multinode.sh [--runs N] [--steps S]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/multinode.sh: network namespaces need root" >&2; exit 2; }
source "$(dirname "$0")/lib.sh"
source "$KD_ROOT/tests/multinode.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ar=$KD_BUILD/bench_allreduce
[ -x "$ar" ] || cmake --build "$KD_BUILD" --target bench_allreduce >/dev/null || exit 1
bench_header
mn_up 2 || exit 1
trap 'mn_down; rm -rf "$work"' EXIT

one_node() { mpirun -q -np 2 --bind-to none "$@"; }
two_nodes() { mn_mpirun -q -np 2 --map-by node --bind-to none "$@"; }

echo
echo "== MPI_Allreduce, 2 ranks (sum of floats, in place)"
declare -A ALPHA BW
for layout in "shared memory, one node" "loopback TCP, one node" "veth TCP, 2 namespace nodes"; do
  echo "-- $layout"
  case $layout in
    shared*) out=$(one_node --mca btl vader,self "$ar" 16) ;;
    loopback*) out=$(one_node --mca btl tcp,self --mca btl_tcp_if_include lo "$ar" 16) ;;
    *) out=$(two_nodes --mca btl tcp,self "$ar" 16) ;;
  esac
  echo "$out"
  ALPHA[$layout]=$(sed -n 's/^alpha_us=\([0-9.]*\).*/\1/p' <<< "$out")
  BW[$layout]=$(sed -n 's/.*busbw_GBs=\([0-9.]*\).*/\1/p' <<< "$out")
done

V=256 T=128 L=4 D=256 H=4 B=32
bench_tokens $V $T || exit 1
spec="gpt:vocab=$V,ctx=$T,layers=$L,dim=$D,heads=$H"
# gpt_run LAUNCH [EXTRA...]: one run's final and step_ms lines
gpt_run() {
  local launch=$1
  shift
  $launch "$KD_BUILD/kd" train --data "$work/g.h5" --teacher "$work/gt.h5" --student "$spec" --batch $B --epochs 100 \
    --max-steps "$steps" --threads 1 --optimizer adamw --lr 3e-4 --weight-decay 0.1 --alpha 0.5 --temperature 2 \
    --schedule const --ckpt-epochs 0 --progress off --log-every 1000000 --force --out "$work/r" "$@" |
    grep '^final:\|^step_ms:'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR ? (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0) }'; }
echo
echo "== the reference GPT ($spec), 2 ranks x 1 thread, $steps steps, median of $runs runs (interleaved)"
declare -A TPS LAST
cases=("one node (shared memory)" "2 nodes, veth TCP, --overlap on" "2 nodes, veth TCP, --overlap off")
for _ in $(seq "$runs"); do
  for c in "${cases[@]}"; do
    case $c in
      one*) out=$(gpt_run one_node) ;;
      *on) out=$(gpt_run two_nodes --overlap on) ;;
      *) out=$(gpt_run two_nodes --overlap off) ;;
    esac
    TPS[$c]="${TPS[$c]:-} $(sed -n 's/^final:.*tokens_per_s=\([0-9]*\).*/\1/p' <<< "$out")"
    LAST[$c]=$(grep '^step_ms:' <<< "$out")
  done
done
for c in "${cases[@]}"; do
  printf '%-34s %9s tokens/s   (runs:%s)\n' "$c" "$(median <<< "${TPS[$c]}")" "${TPS[$c]}"
  echo "    ${LAST[$c]}"
done

v="veth TCP, 2 namespace nodes"
echo
echo "== bench/project.py --gpt with the veth figures measured above (alpha ${ALPHA[$v]} us, ${BW[$v]} GB/s)"
/usr/bin/python3 "$KD_ROOT/bench/project.py" --gpt --net "veth TCP here" "${BW[$v]}" "${ALPHA[$v]}"
