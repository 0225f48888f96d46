#!/bin/bash
# bench/seqdecode.sh: decoding throughput of kd generate --data (sequences/s, greedy and beam 5) for the
# teacher and the student of launch/results-seq.sh on 1 and 2 ranks (1 OpenBLAS thread each), decoding the
# /valid split of the CMU dictionary (5,245 rows), and the student's speedup over the teacher.
# Uses launch/results-seq.sh's teacher and baseline student (seed 1) when they exist; otherwise trains a
# teacher and a student of those sizes for one epoch here (their speed, not their accuracy, is measured;
# a short-trained model may decode longer outputs). Interleaved over --runs runs, medians. Prints; asserts
# nothing.
#
#   bench/seqdecode.sh [--runs N]     (default 3 runs; 131 s at --runs 5 with the results' checkpoints)
set -u
source "$(dirname "$0")/lib.sh"
runs=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: bench/seqdecode.sh [--runs N]" >&2; exit 2 ;;
  esac
done
kd_need_packages festlex-cmu || exit 1
R=$KD_ROOT/checkpoints/results-seq
DATA=$R/cmudict.h5 T=$R/teacher S=$R/s/baseline-1
mpi() { local np=$1; shift; OPENBLAS_NUM_THREADS=1 mpirun -q -np "$np" --oversubscribe --bind-to none "$KD_BUILD/kd" "$@"; }
if [ ! -e "$T/final.h5" ] || [ ! -e "$S/final.h5" ]; then
  echo "(no launch/results-seq.sh checkpoints: training a teacher and a student for one epoch)"
  DATA=$work/cmudict.h5 T=$work/teacher S=$work/student
  "$KD_BUILD/kd" import pairs --in "$(dpkg -L festlex-cmu | grep 'cmudict-0\.4\.out$' | head -1)" \
    --format cmudict-festival --out "$DATA" > /dev/null || exit 1
  read -r V W < <(/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(len(f['tokenizer/vocab']), f['train/tokens'].shape[1])" "$DATA")
  for m in "teacher layers=3,dim=160,heads=4" "student layers=2,dim=64,heads=2"; do
    set -- $m
    mpi 2 train --data "$DATA" --student "gpt:vocab=$V,ctx=$W,$2" --epochs 1 --optimizer adamw --lr 2e-3 \
      --batch 128 --threads 1 --progress off --out "$work/$1" > "$work/$1.log" || { cat "$work/$1.log"; exit 1; }
  done
fi
bench_header
echo "teacher: $(sed -n 's/^student: //p;s/.*train: .*student \(gpt [^ ]*\) (\([0-9]*\) parameters).*/\1, \2 parameters/p' "$T.log" 2>/dev/null | head -1)"
echo "student: $(sed -n 's/.*train: .*student \(gpt [^ ]*\) (\([0-9]*\) parameters).*/\1, \2 parameters/p' "$S.log" 2>/dev/null | head -1)"
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR ? (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0) }'; }
declare -A sps
for ((k = 0; k < runs; k++)); do
  for model in teacher student; do
    ck=$T
    [ $model = student ] && ck=$S
    for d in greedy beam:5; do
      for np in 1 2; do
        out=$(mpi $np generate --ckpt "$ck:best" --data "$DATA" --split valid --decode $d \
          --out "$work/g.h5" 2>&1) || { echo "$out"; exit 1; }
        sps[$model,$d,$np]+=" $(sed -n 's/.* s on [0-9]* ranks*: \([0-9.]*\) sequences\/s.*/\1/p' <<<"$out")"
      done
    done
  done
done
printf "%-8s %-7s %12s %12s %8s\n" model decode "1 rank" "2 ranks" "2 / 1"
for model in teacher student; do
  for d in greedy beam:5; do
    a=$(median <<<"${sps[$model,$d,1]}") b=$(median <<<"${sps[$model,$d,2]}")
    printf "%-8s %-7s %12.0f %12.0f %8.2f\n" $model $d "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {print (a > 0 ? b / a : 0)}')"
  done
done
for d in greedy beam:5; do
  for np in 1 2; do
    t=$(median <<<"${sps[teacher,$d,$np]}") s=$(median <<<"${sps[student,$d,$np]}")
    echo "student / teacher, $d, $np rank(s): $(awk -v t="$t" -v s="$s" 'BEGIN {printf "%.2f", (t > 0 ? s / t : 0)}')x"
  done
done
