# Shared helpers of kd's shell tests. ctest sets KD (the kd binary), MPIEXEC
# and PY (a python3 with h5py); each test works in its own scratch directory.
set -u
: "${KD:?KD must point at build/kd}"
: "${MPIEXEC:=mpiexec}"
: "${PY:=/usr/bin/python3}"
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kd-test.XXXXXX")
# KD_TEST_KEEP=DIR keeps a copy of the scratch directory there (for a failure's files).
trap '[ -n "${KD_TEST_KEEP:-}" ] && cp -r "$WORK" "$KD_TEST_KEEP"; rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
FAILED=0
PASSED=0

# kdrun NP ARGS...: kd under mpiexec, one OpenBLAS thread per rank, bounded in time.
kdrun() {
  local np=$1
  shift
  timeout -k 5 120 "$MPIEXEC" -q -np "$np" --oversubscribe --bind-to none "$KD" "$@"
}

ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
expect() { # expect DESCRIPTION COMMAND...: the command must succeed
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
# expect_exit CODE DESCRIPTION PATTERN KD_ARGS...: kd on 2 ranks exits CODE with one line matching PATTERN.
expect_exit() {
  local code=$1 what=$2 pat=$3 out rc
  shift 3
  out=$(kdrun 2 "$@" 2>&1)
  rc=$?
  expect "$what: exit $code (got $rc)" test "$rc" -eq "$code"
  expect "$what: one line" test "$(grep -c "$pat" <<< "$out")" -eq 1
}
# expect_usage_error DESCRIPTION PATTERN KD_ARGS...: exit 2 (usage) with one line matching PATTERN.
expect_usage_error() { expect_exit 2 "$@"; }

# pids_of NAME DIR: processes called NAME whose arguments include "--out DIR".
pids_of() {
  local p
  for p in $(pgrep -x "$1"); do
    tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qx -- "$2" && echo "$p"
  done
}
# signal_ranks SIG DIR: signal the kd ranks of the run writing DIR (as Slurm does).
signal_ranks() { local p; for p in $(pids_of kd "$2"); do kill "-$1" "$p"; done; }
# kill_job DIR: SIGKILL every process of that run (launcher and ranks).
kill_job() {
  local p
  for name in timeout mpiexec mpirun orterun kd; do
    for p in $(pids_of "$name" "$1"); do kill -KILL "$p" 2>/dev/null; done
  done
}
# quiet CMD...: run CMD with its output discarded (for expect).
quiet() { "$@" >/dev/null 2>&1; }
# close A.h5 B.h5 (--exact | --rtol X): the /model weights of two files agree (compare_weights.py).
close() { "$PY" "$TESTS_DIR/compare_weights.py" "$@" > /dev/null; }
# cols A B COLUMNS...: metrics.csv columns of two runs agree to 1e-5 (relative) on every row.
cols() {
  "$PY" - "$@" <<'PY'
import csv, sys
a, b, names = sys.argv[1], sys.argv[2], sys.argv[3:]
ra, rb = list(csv.DictReader(open(a + "/metrics.csv"))), list(csv.DictReader(open(b + "/metrics.csv")))
assert len(ra) == len(rb) and ra, (len(ra), len(rb))
for x, y in zip(ra, rb):
    for n in names:
        u, v = float(x[n]), float(y[n])
        assert abs(u - v) <= 1e-5 * max(abs(u), abs(v), 1e-3), (n, x["step"], u, v)
PY
}
# later CHECK ARGS...: a check (expect_usage_error, or a function calling expect) in the background, 4 at a time,
# while the test goes on, its lines kept in later.N (N is $nlater inside it); settle, at the end, waits for them and
# reports their lines in order, and a check that did not finish fails. For refused runs: most of their time is
# mpiexec waiting out the ranks' exit.
nlater=0
later() {
  while [ "$(jobs -rp | wc -l)" -ge 4 ]; do wait -n; done
  nlater=$((nlater + 1))
  { "$@"; echo "later: done"; } > "later.$nlater" 2>&1 &
}
settle() {
  wait
  local i line
  for ((i = 1; i <= nlater; i++)); do
    while IFS= read -r line; do
      case $line in
        "ok: "*) ok "${line#ok: }" ;;
        "FAIL: "*) fail "${line#FAIL: }" ;;
        "later: done") ;;
        *) echo "$line" ;;
      esac
    done < "later.$i"
    grep -qx "later: done" "later.$i" || fail "check $i in the background did not finish: $(head -c 300 "later.$i")"
  done
  rm -f later.*
  nlater=0
}
# collect: for the bad-input matrices, whose case_ runs each case in the background in its folder cK and
# writes cK/result ("ok" or "fail", then the line) and appends K to started: wait for them all, then
# report them in order (a case without a result fails).
collect() {
  wait
  local k
  for k in "${started[@]}"; do
    if [ "$(head -n 1 "c$k/result" 2>/dev/null)" = ok ]; then ok "$(tail -n +2 "c$k/result")"
    else fail "$(tail -n +2 "c$k/result" 2>/dev/null || echo "case $k: no result")"; fi
  done
  started=()
}
