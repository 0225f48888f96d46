#!/bin/bash
# Wrong options and values: one "kd: error" line, exit 2 for usage and 1 for
# data, on 2 ranks, with no rank left waiting (each run is under a timeout).
# --help lists every option with its default.
source "$(dirname "$0")/lib.sh"
"$KD" synth --out d.h5 --teacher-out t.h5 --train 200 --test 50 --dim 8 --classes 3 >/dev/null || exit 1
base=(--data d.h5 --student 8-16-3 --epochs 1 --progress off)

case_() { later check_case "$@"; } # case_ WANT_RC NEEDLE ARGS...
check_case() {
  local want=$1 needle=$2
  shift 2
  local out
  out=$(kdrun 2 "$@" 2>&1 >/dev/null)
  local rc=$?
  local lines
  lines=$(printf '%s\n' "$out" | grep -c '^kd: error')
  if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -qF -- "$needle"; then
    ok "exit $want, '$needle': $*"
  else
    fail "wanted exit $want and one error line naming '$needle'; got exit $rc: $out ($*)"
  fi
}
# The full bad-input matrix is test_badinput.sh; these are the command-level cases.
case_ 2 "--data is required" train --student 8-16-3 --out o11
case_ 2 "expected an integer" train "${base[@]}" --out o12 --batch 12.5
case_ 2 "unknown command" frobnicate
case_ 2 "--momentum needs" train "${base[@]}" --out o13 --momentum
touch afile
case_ 2 "not a directory" train "${base[@]}" --out afile
case_ 1 "no such file" train --data missing.h5 --student 8-16-3 --out o14
case_ 1 "takes 9" train --data d.h5 --student 9-16-3 --out o15
# A family's settings in the spec (issue 30): the same run as the alias options, a clash or an unknown key is exit 2.
case_ 2 "--activation relu and --student mlp:8-16-3,activation=gelu (activation=gelu) disagree" \
  train "${base[@]/8-16-3/mlp:8-16-3,activation=gelu}" --activation relu --out o16
case_ 2 "'colour=red' is not a setting of the mlp family" train "${base[@]/8-16-3/mlp:8-16-3,colour=red}" --out o17
case_ 2 "'activation=' is not a setting" train "${base[@]/8-16-3/mlp:8-16-3,activation=}" --out o18
kdrun 1 train "${base[@]/8-16-3/mlp:8-16-3,activation=gelu,init=xavier}" --threads 1 --out spec > /dev/null || fail "spec settings"
kdrun 1 train "${base[@]}" --activation gelu --weight-init xavier --threads 1 --out alias > /dev/null || fail "alias options"
expect "--student mlp:8-16-3,activation=gelu,init=xavier trains bitwise as --activation gelu --weight-init xavier" \
  cmp -s <("$PY" -c "import h5py,sys; f=h5py.File('spec/final.h5'); print([f[k][()].tobytes().hex() for k in ('model/layer0/weight','model/layer1/bias')], f.attrs['activation'], f.attrs['student'])") \
  <("$PY" -c "import h5py,sys; f=h5py.File('alias/final.h5'); print([f[k][()].tobytes().hex() for k in ('model/layer0/weight','model/layer1/bias')], f.attrs['activation'], f.attrs['student'])")

help=$("$KD" train --help)
n_opts=$(printf '%s\n' "$help" | grep -c '^  --')
missing=$(printf '%s\n' "$help" | grep '^  --' | grep -vc -e '(default' -e '(required)')
n_table=$(sed -n '/^const kd_opt_spec kd_train_opts\[\] = {/,/^};/p' "$TESTS_DIR/../src/train/config.c" | grep -c '^  {"')
expect "train --help lists all $n_table options of the table (got $n_opts)" test "$n_opts" -eq "$n_table" -a "$n_table" -gt 30
expect "every option shows its default" test "$missing" -eq 0
for o in data teacher student alpha temperature optimizer lr momentum weight-decay schedule warmup clip epochs \
         batch dropout activation threads log-every progress out force seed; do
  printf '%s\n' "$help" | grep -q -- "^  --$o" || fail "--help lacks --$o"
done
ok "--help names the issue's options"
expect "kd --help exits 0" quiet "$KD" --help
settle
expect "failed runs leave no metrics.csv" test ! -e o14/metrics.csv -a ! -e o15/metrics.csv
finish
