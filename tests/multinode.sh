#!/bin/bash
# Several "nodes" on this machine, as Open MPI sees a cluster: each node is a Linux network namespace
# with an address of its own on a virtual switch (veth pairs on a bridge that lives in a namespace of
# its own, so the machine's network is not touched and nothing outside is contacted), its own
# hostname (a UTS namespace) and its own node-local scratch folder (a mount namespace: $MN_LOCAL shows
# different contents on each node, like /tmp or a local SSD on a cluster). Everything else, /tmp and
# the work folder included, is shared, like a cluster's shared filesystem. Needs root.
#
# Source it, then:
#   mn_up N                      nodes kdn1..kdnN (10.231.0.1..N) and a head kdhead (10.231.0.254),
#                                where mpirun and slurmctld run; exports MN_DIR, MN_LOCAL, MN_HOSTS
#                                and MN_ID (the namespaces are kd${MN_ID}n1, ..., kd${MN_ID}head, kd${MN_ID}sw)
#   mn_exec NODE CMD...          run CMD on NODE (kdhead, kdn1, ...), as a launch agent would
#   mn_mpirun ARGS...            mpirun on the head over the nodes' TCP (the hostfile is $MN_HOSTS),
#                                with launch/local.sh's settings to give up on a lost node
#   mn_kill_node NODE            SIGKILL every process on NODE (a node that dies)
#   mn_link NODE up|down         the node's cable to the switch (a link that fails, and is mended)
#   mn_cluster_flags             mpirun's options for this cluster (hostfile, launch agent, interfaces)
#   mn_pids NODE                 the pids of the processes on NODE
#   mn_down                      stop every process on the nodes, remove the namespaces and MN_DIR
# mn_up installs an EXIT trap (and a detached watchdog, for a caller killed by SIGKILL) that runs
# mn_down, so nothing is left behind when the caller fails.
#
# Run as a program it is the launch agent Open MPI starts instead of ssh (plm_rsh_agent):
#   multinode.sh HOST COMMAND...   (the command is a shell line, as ssh would run it)
# and the entry into a node:  multinode.sh --enter NODE PROGRAM [ARGS...]
MN_NET=10.231.0

mn_ns() { echo "kd${MN_ID}${1#kd}"; } # namespace of node kdn1 -> kd<id>n1, kdhead -> kd<id>head

# Inside the node's network namespace: a UTS and a mount namespace of its own, then the program.
mn_enter() {
  local node=$1 dir=${MN_DIR:?}
  shift
  ip netns exec "$(MN_ID=$(cat "$dir/id") mn_ns "$node")" \
    unshare --uts --mount --propagation private "$dir/enter.sh" "$node" "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  MN_DIR=${MN_DIR:?multinode.sh: MN_DIR is not set (mn_up sets it)}
  if [ "$1" = --enter ]; then shift; mn_enter "$@"; exit $?; fi
  host=$1
  shift
  # Open MPI passes the remote command as words meant for a remote shell, as with ssh.
  mn_enter "$host" /bin/sh -c "$*"
  exit $?
fi

source "$(dirname "${BASH_SOURCE[0]}")/../launch/common.sh" # KD_MPIRUN_GIVE_UP

mn_up() {
  local n=$1 i ns sw
  [ "$(id -u)" = 0 ] || { echo "mn_up: needs root (network namespaces)" >&2; return 1; }
  command -v ip >/dev/null && command -v unshare >/dev/null || { echo "mn_up: ip (iproute2) and unshare (util-linux) needed" >&2; return 1; }
  MN_DIR=$(mktemp -d /tmp/kd-mn.XXXXXX) || return 1
  MN_ID=${MN_DIR##*.} # unique while the folder exists (a pid could be reused by the time a cleanup runs)
  MN_LOCAL=$MN_DIR/local
  MN_HOSTS=$MN_DIR/hostfile
  MN_NODES=()
  export MN_DIR MN_LOCAL MN_HOSTS MN_ID
  echo "$MN_ID" > "$MN_DIR/id"
  mkdir -p "$MN_LOCAL"
  local prev=""
  eval "set -- $(trap -p EXIT)" # trap -- 'COMMAND' EXIT, quoted to be read back
  [ $# -ge 3 ] && prev=$3
  trap "mn_down; $prev" EXIT
  # A caller killed by SIGKILL (ctest's timeout) runs no trap: this detached watchdog cleans up.
  setsid -f bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; source "$2"; MN_DIR=$3 MN_ID=$4 mn_down' \
    _ $$ "${BASH_SOURCE[0]}" "$MN_DIR" "$MN_ID" > /dev/null 2>&1 < /dev/null
  # The node's view: its hostname, the cluster's names, its own scratch folder.
  cat > "$MN_DIR/enter.sh" <<'SH'
#!/bin/sh
node=$1
shift
hostname "$node" && mount --bind "$MN_DIR/hosts" /etc/hosts &&
  mkdir -p "$MN_DIR/scratch/$node" && mount --bind "$MN_DIR/scratch/$node" "$MN_DIR/local" || exit 1
exec "$@"
SH
  chmod +x "$MN_DIR/enter.sh"
  printf '127.0.0.1 localhost\n%s.254 kdhead\n' "$MN_NET" > "$MN_DIR/hosts"
  sw=$(mn_ns kdsw)
  ip netns add "$sw" || return 1
  ip -n "$sw" link add br0 type bridge && ip -n "$sw" link set br0 up && ip -n "$sw" link set lo up || return 1
  for i in $(seq 0 "$n"); do
    local node=kdn$i addr=$MN_NET.$i
    [ "$i" = 0 ] && node=kdhead addr=$MN_NET.254
    ns=$(mn_ns $node)
    ip netns add "$ns" || return 1
    # Both ends are made inside their namespaces: no interface appears in the machine's own.
    ip link add eth0 netns "$ns" type veth peer name "p$i" netns "$sw" &&
      ip -n "$sw" link set "p$i" master br0 && ip -n "$sw" link set "p$i" up &&
      ip -n "$ns" addr add "$addr/24" dev eth0 && ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || return 1
    [ "$i" = 0 ] && continue
    MN_NODES+=("$node")
    echo "$addr $node" >> "$MN_DIR/hosts"
    echo "$node" >> "$MN_HOSTS"
  done
  for node in "${MN_NODES[@]}"; do mn_wait_node "$node" || return 1; done
}

# mn_wait_node NODE: wait (20 tries, up to 30 s) until the head reaches NODE: a closed port answers "Connection
# refused" (there is no ping here).
mn_wait_node() {
  for _ in $(seq 20); do
    mn_exec kdhead timeout 1 bash -c "echo > /dev/tcp/$1/9" 2>&1 | grep -q refused && return 0
    sleep 0.5
  done
  echo "multinode: $1 does not answer" >&2
  return 1
}

mn_exec() { MN_DIR=$MN_DIR mn_enter "$@"; }

mn_pids() { ip netns pids "$(mn_ns "$1")" 2>/dev/null; }

mn_kill_node() {
  local pids
  pids=$(mn_pids "$1")
  [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  return 0
}

mn_link() { # the switch's end of the node's cable; up: once the head reaches the node again
  local i=${1#kdn}
  ip -n "$(mn_ns kdsw)" link set "p$i" "$2" || return 1
  [ "$2" = down ] || mn_wait_node "$1"
}

# The mpirun options of this cluster: the hostfile, this file as the launch agent (one daemon per
# node, started from the head), TCP on the switch's subnet only.
mn_cluster_flags() {
  echo "--hostfile $MN_HOSTS --mca plm_rsh_agent ${BASH_SOURCE[0]} --mca plm_rsh_no_tree_spawn 1" \
    "--mca oob_tcp_if_include $MN_NET.0/24 --mca btl_tcp_if_include $MN_NET.0/24"
}

# mpirun on the head with those options and the ones launch/local.sh uses to give up on a lost node.
mn_mpirun() {
  # shellcheck disable=SC2046
  mn_exec kdhead mpirun $(mn_cluster_flags) "${KD_MPIRUN_GIVE_UP[@]}" "$@"
}

mn_down() {
  [ -n "${MN_DIR:-}" ] && [ -n "${MN_ID:-}" ] || return 0
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^kd${MN_ID}(n[0-9]+|head|sw)\$"); do
    # shellcheck disable=SC2046
    kill -KILL $(ip netns pids "$ns") 2>/dev/null
  done
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^kd${MN_ID}(n[0-9]+|head|sw)\$"); do
    for _ in $(seq 50); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
    ip netns delete "$ns"
  done
  rm -rf "$MN_DIR"
  MN_DIR=""
}
