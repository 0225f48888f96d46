# A real Slurm on this machine, for tests and benchmarks (one node, or several namespace nodes of
# tests/multinode.sh with slurm_up_nodes): munged, slurmctld and slurmd
# started from a configuration written into a temporary directory (the machine's /etc is not
# touched), on free ports, with the settings of a stock Debian site: MpiDefault=none,
# TaskPlugin=task/none, SelectType=select/cons_tres. Source it, then
#   slurm_up [--pin-slurmd CPUS]   start; exports SLURM_CONF; --pin-slurmd starts slurmd under
#                                  taskset (its tasks inherit that mask, as under a launcher that
#                                  binds nothing)
#   slurm_up_nodes [NODE...]       the same on tests/multinode.sh's namespace nodes (source it and run
#                                  mn_up first): slurmctld on kdhead, one slurmd per node (default:
#                                  all of mn_up's nodes), each reached at its own address; commands
#                                  that talk to slurmctld (sbatch, scontrol, ...) run on kdhead:
#                                  slurm_cmd CMD... (the helpers below use it)
#   slurm_down                     stop exactly the daemons slurm_up started (by pid), then wait for them
#   slurm_cmd CMD...               run a Slurm client command where slurmctld is reachable
#   slurm_wait_state JOB STATE...  wait (up to 60 s) until the job is in one of the states
#   slurm_release JOB              start a requeued job now instead of after its BeginTime
# slurm_up and slurm_up_nodes install a trap so the daemons are stopped on exit, also when the
# caller fails (and a watchdog for a caller killed by SIGKILL).
SLURM_DIR=""
SLURM_PIDS=()
SLURM_HEAD="" # the namespace node slurmctld runs on (slurm_up_nodes), "" for this machine

# A port below the kernel's ephemeral range (outgoing connections take those, and a port that
# looked free can be taken by one before slurmctld binds it: "Address already in use").
slurm_free_port() {
  local p lo
  lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
  [ -n "$lo" ] && [ "$lo" -gt 12000 ] || lo=32768
  for _ in $(seq 50); do
    p=$((10000 + RANDOM % (lo - 10000)))
    (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}

slurm_down() {
  local pid
  for pid in "${SLURM_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${SLURM_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null
  done
  SLURM_PIDS=()
  [ -n "$SLURM_DIR" ] && rm -rf "$SLURM_DIR"
  SLURM_DIR=""
  SLURM_HEAD=""
}

slurm_cmd() { if [ -n "$SLURM_HEAD" ]; then mn_exec "$SLURM_HEAD" "$@"; else "$@"; fi; }

# slurm_pidfile FILE: the pid a daemon wrote (it forks into the background).
slurm_pidfile() {
  for _ in $(seq 100); do [ -s "$1" ] && { cat "$1"; return 0; }; sleep 0.05; done
  return 1
}

slurm_up() {
  local pin=""
  [ "${1:-}" = --pin-slurmd ] && pin=$2
  slurm_start_munge || return 1
  for attempt in 1 2 3; do
    slurm_start_controller "$pin" && return 0
    echo "slurm_up: attempt $attempt failed ($(sinfo -h -o '%N %T' 2>&1)); $SLURM_DIR/log:" >&2
    tail -n 5 "$SLURM_DIR"/log/slurm*.log >&2
    slurm_stop_controller
  done
  return 1
}

# slurm_start_munge: the temporary directory, the exit trap, the watchdog and munged (on this
# machine: its socket is a path, which every network namespace reaches through the filesystem).
slurm_start_munge() {
  for tool in munged slurmctld slurmd sbatch scontrol; do
    command -v "$tool" >/dev/null || { echo "slurm_up: $tool missing (apt-get install slurm-wlm munge)" >&2; return 1; }
  done
  SLURM_DIR=$(mktemp -d /tmp/kd-slurm.XXXXXX)
  local S=$SLURM_DIR
  local prev
  prev=$(trap -p EXIT | sed "s/^trap -- '//; s/' EXIT\$//")
  trap "slurm_down; $prev" EXIT
  mkdir -p "$S/munge" "$S/spool/d" "$S/spool/ctld" "$S/log"
  chmod 755 "$S" "$S/munge"
  dd if=/dev/urandom of="$S/munge/munge.key" bs=128 count=1 2>/dev/null
  chmod 400 "$S/munge/munge.key"
  munged --force -S "$S/munge/socket" --key-file="$S/munge/munge.key" --log-file="$S/log/munged.log" \
    --pid-file="$S/munge/munged.pid" --seed-file="$S/munge/munged.seed" || return 1
  SLURM_PIDS+=("$(slurm_pidfile "$S/munge/munged.pid")")
  # ctest kills a test that runs past its timeout with SIGKILL, which no trap sees: a detached
  # watchdog stops the daemons (they re-parent to init) once this shell is gone.
  setsid -f bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done
    for f in "$2/munge/munged.pid" "$2"/slurm*.pid; do
      [ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
    rm -rf "$2"' _ $$ "$S" > /dev/null 2>&1 < /dev/null
}

# slurm_conf CTLD_HOST CTLD_PORT SLURMD_PORT SLURMD_TAG: slurm.conf up to the nodes; the slurmd's
# files are named with SLURMD_TAG ("-%n": one set per node name).
slurm_conf() {
  local S=$SLURM_DIR
  cat <<CONF
ClusterName=kdtest
SlurmctldHost=$1
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$2
SlurmdPort=$3
AuthType=auth/munge
AuthInfo=socket=$S/munge/socket
CredType=cred/munge
StateSaveLocation=$S/spool/ctld
SlurmdSpoolDir=$S/spool/d$4
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd$4.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd$4.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
KillWait=5
CONF
}

slurm_node_memory() { awk '/MemTotal/ { print int($2 / 1024) - 1024 }' /proc/meminfo; }

# slurm_start_controller PIN: slurmctld and slurmd on fresh ports, then wait until the node is idle.
slurm_start_controller() {
  local S=$SLURM_DIR pin=$1 host ctl_port d_port mem
  host=$(hostname -s)
  ctl_port=$(slurm_free_port) && d_port=$(slurm_free_port) || return 1
  while [ "$d_port" = "$ctl_port" ]; do d_port=$(slurm_free_port) || return 1; done
  mem=$(slurm_node_memory)
  { slurm_conf "$host" "$ctl_port" "$d_port" ""
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc --all) RealMemory=$mem State=UNKNOWN"
    echo "PartitionName=kd Nodes=$host Default=YES MaxTime=INFINITE State=UP"
  } > "$S/slurm.conf"
  export SLURM_CONF=$S/slurm.conf
  rm -f "$S/slurmctld.pid" "$S/slurmd.pid"
  slurmctld -f "$SLURM_CONF" || return 1
  SLURM_PIDS+=("$(slurm_pidfile "$S/slurmctld.pid")")
  if [ -n "$pin" ]; then taskset -c "$pin" slurmd -f "$SLURM_CONF" || return 1
  else slurmd -f "$SLURM_CONF" || return 1; fi
  SLURM_PIDS+=("$(slurm_pidfile "$S/slurmd.pid")")
  for _ in $(seq 300); do
    sinfo -h -o %T 2>/dev/null | grep -q '^idle' && return 0
    # a daemon that could not bind its port has exited: retry at once
    for f in "$S/slurmctld.pid" "$S/slurmd.pid"; do kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null || return 1; done
    sleep 0.1
  done
  return 1
}

# slurm_stop_controller: stop slurmctld and slurmd (not munged) before a retry on other ports.
slurm_stop_controller() {
  local S=$SLURM_DIR pid f keep=()
  for f in "$S/slurmctld.pid" "$S/slurmd.pid"; do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null
  done
  for pid in "${SLURM_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && keep+=("$pid"); done
  SLURM_PIDS=("${keep[@]}")
  rm -rf "$S/spool/ctld"/* "$S/spool/d"/*
}

# slurm_up_nodes [NODE...]: Slurm on tests/multinode.sh's nodes (mn_up has run): munged here (its
# socket, a path, is reached from every namespace), slurmctld on kdhead, slurmd -N NODE on each node,
# every daemon at its node's address (a namespace of its own: the ports are free, no retry needed).
# Each slurmd has its own spool, pid and log file (-%n), and TmpFS (where slurmstepd's PMIx server
# puts the ranks' sockets, spmix_appdir_UID_JOB.STEP) is the node-local $MN_LOCAL: in the shared /tmp
# the stepds of two nodes would both create that folder and one step would fail.
slurm_up_nodes() {
  local nodes=("$@") node addr S mem cpus up
  [ ${#nodes[@]} -gt 0 ] || nodes=("${MN_NODES[@]}")
  [ -n "${MN_DIR:-}" ] || { echo "slurm_up_nodes: run mn_up (tests/multinode.sh) first" >&2; return 1; }
  slurm_start_munge || return 1
  S=$SLURM_DIR
  SLURM_HEAD=kdhead
  mem=$(slurm_node_memory)
  cpus=$(nproc --all)
  { slurm_conf "kdhead($MN_NET.254)" 6817 6818 "-%n"
    echo "TmpFS=$MN_LOCAL"
    for node in "${nodes[@]}"; do
      addr=$(awk -v n="$node" '$2 == n { print $1 }' "$MN_DIR/hosts")
      [ -n "$addr" ] || { echo "slurm_up_nodes: no node $node" >&2; return 1; }
      echo "NodeName=$node NodeAddr=$addr CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    done
    echo "PartitionName=kd Nodes=$(IFS=,; echo "${nodes[*]}") Default=YES MaxTime=INFINITE State=UP"
  } > "$S/slurm.conf" || return 1
  # ip netns exec mounts a sysfs of the namespace's own on /sys, without /sys/fs/cgroup: slurmd's
  # cgroup autodetection would fail ("No filesystem mounted on /sys/fs/cgroup"). Named, the plugin
  # loads, and nothing here uses it (proctrack/linuxproc, task/none).
  echo "CgroupPlugin=cgroup/v1" > "$S/cgroup.conf"
  export SLURM_CONF=$S/slurm.conf
  mn_exec kdhead slurmctld -f "$SLURM_CONF" || return 1
  SLURM_PIDS+=("$(slurm_pidfile "$S/slurmctld.pid")")
  for node in "${nodes[@]}"; do
    mkdir -p "$S/spool/d-$node"
    mn_exec "$node" slurmd -N "$node" -f "$SLURM_CONF" || return 1
    SLURM_PIDS+=("$(slurm_pidfile "$S/slurmd-$node.pid")")
  done
  for _ in $(seq 300); do
    up=$(slurm_cmd sinfo -h -N -o '%N %T' 2>/dev/null | grep -c ' idle$')
    [ "$up" = ${#nodes[@]} ] && return 0
    sleep 0.1
  done
  echo "slurm_up_nodes: nodes not idle: $(slurm_cmd sinfo -h -N -o '%N %T' 2>&1 | tr '\n' ' ')" >&2
  tail -n 5 "$S"/log/slurm*.log >&2
  return 1
}

slurm_job_state() { slurm_cmd scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }

slurm_wait_state() {
  local job=$1 st
  shift
  for _ in $(seq 600); do
    st=$(slurm_job_state "$job")
    for want in "$@"; do [ "$st" = "$want" ] && return 0; done
    sleep 0.1
  done
  echo "slurm_wait_state: job $job is $st, not $*" >&2
  return 1
}

# A requeued job is held until its BeginTime (about two minutes on): move it to now until it runs.
# Not within the second of the requeue: slurmd revoked the old run's credential then, and a start in
# that same second is killed as "Job credential revoked" (seen here under load).
slurm_release() {
  local st reason
  sleep 2
  for _ in $(seq 120); do
    st=$(slurm_job_state "$1")
    reason=$(slurm_cmd scontrol show job "$1" 2>/dev/null | sed -n 's/.*Reason=\([A-Za-z_]*\).*/\1/p')
    case $st in RUNNING | COMPLETED) return 0 ;; FAILED | CANCELLED) return 1 ;; esac
    # only a job held for its BeginTime, its old run cleaned up (no step daemon of it left), takes the
    # new start time
    [ "$st" = PENDING ] && [ "$reason" = BeginTime ] && ! pgrep -f "^slurmstepd: \[$1\." >/dev/null &&
      slurm_cmd scontrol update JobId="$1" StartTime=now 2>/dev/null
    sleep 0.5
  done
  echo "slurm_release: job $1 is $st ($reason)" >&2
  return 1
}
