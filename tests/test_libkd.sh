#!/bin/bash
# libkd installed and used from outside the tree (issue 30): cmake --install of this build into a temporary
# prefix; examples/generate.c built out of tree against it twice, with pkg-config (kd.pc) and with CMake
# (find_package(kd), target kd::kd), and run on a student trained here: its text equals kd generate's for
# greedy, sampled (a seed) and beam-search decoding; the installed header has no MPI and the shared library
# exports only the public API, under its soname; a C++ compiler takes the header where one is installed.
source "$(dirname "$0")/lib.sh"
build=$(dirname "$KD")
src=$(cd "$TESTS_DIR/.." && pwd)
prefix=$PWD/prefix
cmake --install "$build" --prefix "$prefix" > install.log 2>&1 || { fail "cmake --install: $(tail -3 install.log)"; finish; exit 1; }
expect "the install holds kd, libkd (shared and static), the header, kd.pc, the CMake package and the docs" \
  test -x "$prefix/bin/kd" -a -e "$prefix/lib/libkd.so" -a -e "$prefix/lib/libkd.a" -a -e "$prefix/include/kd/libkd.h" \
  -a -e "$prefix/lib/pkgconfig/kd.pc" -a -e "$prefix/lib/cmake/kd/kdConfig.cmake" -a -e "$prefix/share/doc/kd/usage.md"
expect "the public header includes no MPI and no internal header" \
  test "$(grep -c '#include' "$prefix/include/kd/libkd.h")" -eq 2 -a "$(grep -c 'mpi\|kd/model\|kd/data' "$prefix/include/kd/libkd.h")" -eq 0
nm -D --defined-only "$prefix/lib/libkd.so" | awk '{print $3}' | sed 's/@.*//' | grep -v '^KD_' | sort > exported
sed -n 's/^KD_API [^(]* \**\(kd_[a-z_]*\)(.*/\1/p' "$prefix/include/kd/libkd.h" | sort > declared
expect "libkd.so exports exactly the $(wc -l < declared) functions of the public header" cmp -s exported declared
expect "libkd.so's soname carries the major and minor version" \
  bash -c "readelf -d '$prefix/lib/libkd.so' | grep -q 'SONAME.*libkd.so.0.2'"

# a student to run
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 24 --doc-sep % --out t.h5 > /dev/null || fail "import"
kdrun 1 train --data t.h5 --student gpt:vocab=256,ctx=24,layers=1,dim=16,heads=2 --batch 8 --epochs 1 --max-steps 30 \
  --threads 1 --progress off --optimizer adamw --lr 0.01 --out lm > /dev/null || fail "train"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc -std=c11 -Wall -Werror "$src/examples/generate.c" $(pkg-config --cflags --libs kd) -Wl,-rpath,"$prefix/lib" \
  -o gen_pc 2> cc.log || fail "building the example with pkg-config: $(cat cc.log)"
cmake -S "$src/examples" -B exb -DCMAKE_PREFIX_PATH="$prefix" > cmake.log 2>&1 && cmake --build exb > build.log 2>&1 ||
  fail "building the example with find_package(kd): $(tail -5 cmake.log build.log)"
prompt="The fox "
for d in greedy:1 sample:3 sample:11 beam:3:1; do
  mode=${d%:*} seed=${d##*:}
  "$KD" generate --ckpt lm --prompt "$prompt" --max-new 30 --decode "$mode" --seed "$seed" > want.$mode.$seed 2> /dev/null ||
    fail "kd generate --decode $mode"
  for prog in gen_pc exb/generate; do
    ./$prog lm "$prompt" 30 "$mode" "$seed" > got 2> got.err || fail "$prog $mode: $(cat got.err)"
    expect "$prog ($mode, seed $seed): the installed library continues the prompt as kd generate" cmp -s got want.$mode.$seed
  done
done
expect "the example says which library and student it ran" grep -q "^libkd 0.2.0: gpt:vocab=256,ctx=24" got.err
if command -v c++ > /dev/null 2>&1; then
  printf '#include <kd/libkd.h>\nint main() { kd_session *s = nullptr; return kd_session_open(&s, "x", nullptr) == KD_OK; }\n' > cxx.cc
  expect "a C++ program compiles and links against the header and the library" \
    c++ -std=c++11 -Wall -Werror cxx.cc $(pkg-config --cflags --libs kd) -Wl,-rpath,"$prefix/lib" -o cxx
else
  echo "note: no C++ compiler here; the header's extern \"C\" is not compiled as C++"
fi
finish
