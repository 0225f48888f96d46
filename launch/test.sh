#!/bin/bash
# Install what is missing (Debian, as root), build, and run the whole test suite.
set -u
source "$(dirname "$0")/common.sh"
kd_need_packages "${KD_BUILD_PKGS[@]}" "${KD_TEST_PKGS[@]}" || exit 1
echo "kd: building in $KD_BUILD"
kd_build || exit 1
cd "$KD_BUILD" || exit 1
ctest -j "$(nproc)" --output-on-failure "$@"
