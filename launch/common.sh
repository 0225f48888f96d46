# Sourced by the launch scripts: Debian packages, build, MPI environment.
KD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KD_BUILD=${KD_BUILD:-$KD_ROOT/build}
KD_BUILD_PKGS=(gcc libc6-dev make cmake pkg-config openmpi-bin libopenmpi-dev libopenblas-dev
               libhdf5-openmpi-dev hdf5-tools zlib1g-dev libpcre2-dev libutf8proc-dev)
KD_TEST_PKGS=(python3-h5py python3-numpy slurm-wlm munge festlex-cmu) # Slurm: tests/test_slurm.sh starts a real one
# mpirun and its daemons give up on a node that stopped answering (its link down, or powered off: no
# TCP reset comes back) once its connection has been silent 10 + 3 x 5 s: without these Open MPI 4.1
# waits forever (measured with tests/multinode.sh, docs/usage.md "Several nodes"). A site sets other
# values with KD_MPIRUN_GIVE_UP="--mca oob_tcp_keepalive_time 30 ..." (or "" for Open MPI's own);
# launch/slurm.sbatch takes the same variable and defaults.
KD_MPIRUN_GIVE_UP_DEFAULT="--mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5 --mca oob_tcp_keepalive_probes 3"
# shellcheck disable=SC2206
KD_MPIRUN_GIVE_UP=(${KD_MPIRUN_GIVE_UP-$KD_MPIRUN_GIVE_UP_DEFAULT})

# kd_need_packages PKG...: install what is missing (Debian, as root), or say
# exactly what is missing and stop.
kd_need_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "kd: not a Debian system; make sure the equivalents of these Debian packages are installed:" >&2
    echo "    $*" >&2
    local tool
    for tool in cmake mpicc mpirun; do
      command -v "$tool" >/dev/null 2>&1 || { echo "kd: '$tool' is not on PATH" >&2; return 1; }
    done
    return 0
  fi
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "kd: missing Debian packages: ${missing[*]}" >&2
    echo "kd: install them as root:  apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  echo "kd: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "kd: apt-get install ${missing[*]} failed" >&2
    return 1
  }
}

kd_build() {
  cmake -S "$KD_ROOT" -B "$KD_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null &&
    cmake --build "$KD_BUILD" -j "$(nproc)" >/dev/null || {
      echo "kd: build failed; rerun: cmake --build $KD_BUILD" >&2
      return 1
    }
}

# Open MPI refuses to run as root without these.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# kd_fortunes_files: the fortune files of Debian's fortunes package, one per line, sorted.
kd_fortunes_files() {
  local fdir
  fdir=$(dpkg -L fortunes 2>/dev/null | grep -m1 '/fortunes/[^/]*\.dat$' | xargs -r dirname)
  find "${fdir:-/usr/share/games/fortunes}" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort
}

# kd_fortunes_data DATA TENTH [TOKENIZER]: the text experiments' data (launch/results-text.sh,
# results-inter.sh, results-sparse.sh), made when missing: the fortune files of Debian's fortunes package as
# token rows of 128 (TOKENIZER as kd import text's --tokenizer, default bytes), and every 10th
# of their training rows (a tenth spread over all files; the first tenth of the rows would be the first
# files in alphabetical order, a different distribution from the test text).
kd_fortunes_data() {
  local data=$1 tenth=$2
  local -a files
  mapfile -t files < <(kd_fortunes_files)
  [ -e "$data" ] || "$KD_BUILD/kd" import text --in "${files[@]}" --doc-sep % --ctx 128 --tokenizer "${3:-bytes}" \
    --out "$data" || return 1
  [ -e "$tenth" ] && return 0
  /usr/bin/python3 - "$data" "$tenth.tmp" <<'PY' || return 1
import shutil, sys, h5py
src, dst = sys.argv[1:3]
shutil.copyfile(src, dst)
with h5py.File(dst, "r+") as f:
    for name in list(f["train"]):
        d = f["train"][name]
        keep, attrs = d[::10], dict(d.attrs)
        del f["train"][name]
        f["train"].create_dataset(name, data=keep)
        f["train"][name].attrs.update(attrs)
    f.attrs["rows_train"] = len(keep)
    f.attrs["generator"] = f.attrs["generator"] + "; every 10th training row (launch/results-text.sh)"
PY
  h5repack "$tenth.tmp" "$tenth" && rm -f "$tenth.tmp" # reclaims the deleted datasets' space
}

# kd_recipe_args RECIPE TEACHER: the kd train options of an on-policy results recipe (launch/results-onpolicy.sh,
# results-onpolicy-text.sh) into the array KD_RECIPE_ARGS: continued (none: the control), kd-DIV (lambda 0: the
# data scored by the online TEACHER), opLAMBDA-DIV (on-policy); DIV forward, reverse or jsdBETA; T = 1, alpha 0.
kd_recipe_args() {
  local recipe=$1 lambda=${1%%-*} div=${1#*-}
  KD_RECIPE_ARGS=()
  case $recipe in
    continued) ;;
    kd-* | op*) KD_RECIPE_ARGS=(--teacher-model "$2" --divergence "${div/jsd/jsd:}" --temperature 1 --alpha 0)
      [[ $recipe == op* ]] && KD_RECIPE_ARGS+=(--on-policy "${lambda#op}") ;;
  esac
  return 0
}

# kd_score_decode CSV DATA MODEL RECIPE SEED DIR EPOCHS SECONDS: the checkpoint DIR:best's (KD_CKPT_PICK) greedy and beam-5
# PER / WER on DATA's /test (kd eval --decode, 2 ranks), one CSV row each, tagged DIR's name and the decoding
# (a row already there is not redone). DIR.log holds the run's banner (its parameter count).
kd_score_decode() {
  local csv=$1 data=$2 d j tag params
  shift 2
  params=$(sed -n 's/.* (\([0-9]*\) parameters).*/\1/p' "$4.log" | head -1)
  for d in greedy beam:5; do
    tag="$(basename "$4")-$d"
    grep -q ",$tag\$" "$csv" && continue
    j=$("$KD_ROOT/launch/local.sh" 2 eval --ckpt "$4:${KD_CKPT_PICK:-best}" --data "$data" --decode "$d" --json) || return 1
    /usr/bin/python3 - "$j" "$1,$2,$3,$d" "$params,$5,$6,$tag" >> "$csv" <<'PY' || return 1
import json, sys
j = json.loads(sys.argv[1])
print("%s,%.6f,%.6f,%d,%.1f,%s" % (sys.argv[2], j["per"], j["wer"], j["words"], j["seq_per_s"], sys.argv[3]))
PY
  done
}
