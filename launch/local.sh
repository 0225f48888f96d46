#!/bin/bash
# launch/local.sh N COMMAND [ARGS...]: run build/kd on N ranks of this box.
#   - ranks are not bound to cores (--bind-to none): kd gives each rank
#     cores / ranks OpenBLAS threads (override with --threads);
#   - more ranks than cores are allowed (--oversubscribe);
#   - runs as root when needed; mpirun's own help banners are silenced (-q) on one box;
#   - across nodes (KD_MPIRUN_FLAGS="--hostfile H ..."), mpirun gives up on a node that stops
#     answering (KD_MPIRUN_GIVE_UP in common.sh), and its lines naming a lost host are kept.
# Extra mpirun flags: KD_MPIRUN_FLAGS="--mca btl self,vader" launch/local.sh ...
set -u
source "$(dirname "$0")/common.sh"
if [ $# -lt 2 ]; then
  echo "usage: launch/local.sh N COMMAND [ARGS...]   e.g. launch/local.sh 2 train --data d.h5 ..." >&2
  exit 2
fi
np=$1
shift
case $np in '' | *[!0-9]* | 0) echo "launch/local.sh: N must be a positive integer, got '$np'" >&2; exit 2 ;; esac
[ -x "$KD_BUILD/kd" ] || { echo "launch/local.sh: $KD_BUILD/kd is not built (run ./launch/test.sh or cmake)" >&2; exit 2; }
# Live progress only when this script's output is a terminal (ranks see a
# pseudo-terminal under mpirun either way).
tty=()
[ -t 1 ] && tty=(-x KD_TTY=1)
quiet=(-q)
case " ${KD_MPIRUN_FLAGS:-} " in
  *" --hostfile "* | *" -hostfile "* | *" --default-hostfile "* | *" --host "* | *" -host "* | *" -H "* | \
    *" --machinefile "* | *" -machinefile "*) quiet=() ;;
esac
exec mpirun "${quiet[@]}" -np "$np" --oversubscribe --bind-to none "${KD_MPIRUN_GIVE_UP[@]}" "${tty[@]}" ${KD_MPIRUN_FLAGS:-} \
  "$KD_BUILD/kd" "$@"
