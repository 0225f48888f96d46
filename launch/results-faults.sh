#!/bin/bash
# launch/results-faults.sh [N] [S]: N (default 20) faults at random moments in 2-node runs on namespace
# nodes (tests/multinode.sh; needs root), each run started with launch/local.sh (its Open MPI give-up
# settings) and --collective-timeout S (default 60). A fault is, at random: every process of one node
# killed (a node that dies), or one node's link taken down (a cut cable or a powered-off node: no TCP
# reset comes back), at a random moment 0-6 s after the run's first checkpoint (steps, evaluations
# and checkpoint writes all get hit). Per fault: seconds until no kd process is left, seconds until mpirun
# and its daemons are gone (given up at S + 30 s, then killed and counted), whether the run's latest
# checkpoint resumes (kd train --resume on one node, 2 ranks, 5 more steps: it must start from a valid
# checkpoint, falling back past a damaged one if any, and finish). Prints a line per fault and totals.
set -u
source "$(dirname "$0")/common.sh"
n_faults=${1:-20}
S=${2:-60}
[ "$(id -u)" = 0 ] || { echo "launch/results-faults.sh: network namespaces need root" >&2; exit 2; }
kd_need_packages "${KD_BUILD_PKGS[@]}" || exit 1
[ -x "$KD_BUILD/kd" ] || kd_build || exit 1
KD=$KD_BUILD/kd
source "$KD_ROOT/tests/multinode.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-faults.XXXXXX")
trap 'rm -rf "$work"' EXIT
mn_up 2 || exit 1
"$KD" synth --out "$work/d.h5" --teacher-out "$work/t.h5" --train 8192 --test 256 --dim 64 --classes 10 >/dev/null ||
  exit 1
A=(--data "$work/d.h5" --teacher "$work/t.h5" --student 64-512-512-10 --epochs 1000 --batch 128 --ckpt-every 40
   --progress off --collective-timeout "$S")

kd_left() { local p; for p in $(mn_pids kdn1) $(mn_pids kdn2); do [ "$(cat /proc/$p/comm 2>/dev/null)" = kd ] && echo "$p"; done; }
all_left() { for n in kdhead kdn1 kdn2; do mn_pids $n; done; }
echo "kd $("$KD" --version | cut -d' ' -f2): $n_faults faults, 2 nodes x 1 rank, launch/local.sh, --collective-timeout $S"
echo "(at s: seconds after the first checkpoint; kd gone, job gone: seconds after the fault)"
printf '%-3s %-12s %7s %9s %11s %-34s\n' "#" fault "at s" "kd gone" "job gone" "checkpoint"
not_started=0 kd_late=0 job_late=0 unusable=0 no_ckpt=0 damaged=0 sum_kd=0 sum_job=0 max_kd=0 max_job=0
for i in $(seq "$n_faults"); do
  node=kdn$((1 + RANDOM % 2))
  kind=$([ $((RANDOM % 2)) = 0 ] && echo kill || echo link)
  at=$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 6 * r / 32767 }')
  out=$work/run$i
  mn_exec kdhead env KD_BUILD="$KD_BUILD" KD_MPIRUN_FLAGS="$(mn_cluster_flags) --map-by node" \
    "$KD_ROOT/launch/local.sh" 2 train "${A[@]}" --out "$out" > "$out.log" 2>&1 &
  launcher=$!
  for _ in $(seq 600); do [ -e "$out/ckpt-00000040.h5" ] && break; sleep 0.05; done
  if [ ! -e "$out/ckpt-00000040.h5" ]; then # not a fault's outcome: say what the launch did
    echo "$i: the run wrote no checkpoint within 30 s of its launch; its log:"
    sed 's/^/    /' "$out.log" | tail -8
    not_started=$((not_started + 1))
  fi
  sleep "$at"
  t0=$(date +%s.%N)
  if [ "$kind" = kill ]; then mn_kill_node "$node"; else mn_link "$node" down; fi
  kd_s="" job_s=""
  while :; do
    now=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
    [ -z "$kd_s" ] && [ -z "$(kd_left)" ] && kd_s=$now
    [ -z "$job_s" ] && [ -z "$(all_left)" ] && job_s=$now
    [ -n "$kd_s" ] && [ -n "$job_s" ] && break
    awk -v n="$now" -v s="$S" 'BEGIN { exit !(n > s + 30) }' && break
    sleep 0.25
  done
  [ -z "$kd_s" ] && { kd_s=">$((S + 30))"; kd_late=$((kd_late + 1)); }
  [ -z "$job_s" ] && { job_s=">$((S + 30))"; job_late=$((job_late + 1)); }
  for n in kdhead kdn1 kdn2; do mn_kill_node $n; done
  wait $launcher 2>/dev/null
  mn_link "$node" up
  if [ -e "$out/latest" ] || ls "$out"/ckpt-*.h5 >/dev/null 2>&1; then
    step=$(ls "$out"/ckpt-*.h5 | sed 's/.*ckpt-0*\([0-9]*\)\.h5/\1/' | sort -n | tail -1)
    res=$(timeout -k 5 120 mpirun -q -np 2 --oversubscribe --bind-to none "$KD" train --resume "$out" \
      --max-steps $((step + 5)) 2>&1)
    rc=$?
    from=$(sed -n 's/^kd: resume at step \([0-9]*\).*/\1/p' <<< "$res")
    bad=$(grep -c '^kd: resume: .*\(damaged\|falling back\)' <<< "$res")
    damaged=$((damaged + bad))
    if [ $rc = 0 ] && [ -n "$from" ]; then
      ck="resumed at step $from$([ "$bad" -gt 0 ] && echo ", $bad damaged skipped")"
    else
      ck="UNUSABLE (rc $rc)"
      unusable=$((unusable + 1))
      echo "$res" | tail -3 | sed 's/^/    /'
    fi
  else
    ck="none written yet"
    no_ckpt=$((no_ckpt + 1))
  fi
  printf '%-3s %-12s %7s %9s %11s %-34s\n' "$i" "$kind $node" "$at" "$kd_s" "$job_s" "$ck"
  case $kd_s in '>'*) ;; *) sum_kd=$(awk -v a=$sum_kd -v b=$kd_s 'BEGIN { print a + b }')
    max_kd=$(awk -v a=$max_kd -v b=$kd_s 'BEGIN { print (b > a ? b : a) }') ;; esac
  case $job_s in '>'*) ;; *) sum_job=$(awk -v a=$sum_job -v b=$job_s 'BEGIN { print a + b }')
    max_job=$(awk -v a=$max_job -v b=$job_s 'BEGIN { print (b > a ? b : a) }') ;; esac
  rm -rf "$out"
done
echo
mean() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? s / n : 0) }'; }
echo "kd processes alive past S + 30 = $((S + 30)) s: $kd_late of $n_faults (mean end $(mean "$sum_kd" $((n_faults - kd_late))) s, slowest ${max_kd} s)"
echo "launcher (mpirun + daemons) alive past $((S + 30)) s: $job_late of $n_faults (mean end $(mean "$sum_job" $((n_faults - job_late))) s, slowest ${max_job} s)"
echo "unusable checkpoints: $unusable; damaged checkpoints skipped on resume: $damaged; faults before the first checkpoint: $no_ckpt"
echo "runs that had not started within 30 s of their launch: $not_started"
