#!/bin/bash
# Hugging Face safetensors both ways (issue 29), checked with numpy only (tests/check_safetensors.py: its own
# reader and writer of the format, and GPT2LMHeadModel's and LlamaForCausalLM's forward passes as transformers
# documents them):
#  1. kd export --format safetensors of a gpt, an untied GQA llama (kv_heads < heads) and a tied multi-query
#     llama: the file's layout, names, shapes (GPT-2's Conv1D [in, out]) and config.json, and the numpy forward
#     of the exported files == kd predict (1e-4 of the largest logit); f16 and bf16 exports near it;
#  2. kd import weights of those exports gives the checkpoints' /model datasets bitwise;
#  3. models written by numpy (F32, F16 and BF16 tensors; GPT-2's own names without "transformer." and its
#     attn.bias buffers; a sharded llama with its index; a tied llama storing lm_head.weight) import, and
#     kd predict on them gives the numpy forward's logits; kd train --init and --teacher-model take them;
#  4. broken files and configurations: exit 1, one line naming the file and the tensor (or key), no file left.
source "$(dirname "$0")/lib.sh"
CHK=("$PY" "$TESTS_DIR/check_safetensors.py")
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1
T=(--data c.h5 --batch 8 --epochs 1 --max-steps 3 --threads 1 --progress off --optimizer adamw --lr 0.01)

# 1. kd -> safetensors: the files, and their forward in numpy against kd predict.
"$KD" train "${T[@]}" --student gpt:vocab=256,ctx=16,layers=2,dim=24,heads=4 --out gpt > /dev/null || fail "train gpt"
"$KD" train "${T[@]}" --student llama:vocab=256,ctx=16,layers=2,dim=32,heads=4,kv_heads=2,ffn=48 --out llg2 > /dev/null ||
  fail "train an untied GQA llama"
"$KD" train "${T[@]}" --student llama:vocab=256,ctx=16,layers=2,dim=24,heads=4,kv_heads=1,ffn=40,tie=1,rope_theta=500,norm_eps=1e-6 \
  --out llmq > /dev/null || fail "train a tied multi-query llama"
for r in gpt llg2 llmq; do
  "$KD" export --ckpt $r --format safetensors --out $r.hf > $r.export || fail "kd export $r"
  "$KD" predict --ckpt $r --data c.h5 --out $r.pred.h5 > /dev/null || fail "kd predict $r"
  expect "$r: the export's layout and config.json, and its numpy forward == kd predict (1e-4)" \
    "${CHK[@]}" check $r.hf c.h5 $r.pred.h5 F32 1e-4
done
expect "the export says what it wrote, tokenizer.json too" grep -q "^kd export: wrote llg2.hf/model.safetensors and llg2.hf/config.json (LlamaForCausalLM, 21 tensors, .* f32) from llg2/ckpt-00000003.h5; tokenizer.json (bytes, 256 ids)" llg2.export
expect "the gpt is a GPT2LMHeadModel of 28 tensors (its head tied)" grep -q "(GPT2LMHeadModel, 28 tensors" gpt.export
for dt in f16:F16:5e-3 bf16:BF16:5e-2; do
  IFS=: read -r d D tol <<< "$dt"
  for r in gpt llg2; do
    "$KD" export --ckpt $r --format safetensors --dtype $d --out $r.$d > /dev/null || fail "kd export --dtype $d $r"
    expect "$r --dtype $d: every tensor $D, the numpy forward near kd predict's ($tol)" \
      "${CHK[@]}" check $r.$d c.h5 $r.pred.h5 $D $tol
  done
done
expect "an f16 file is about half the f32 one" \
  test "$(stat -c %s llg2.f16/model.safetensors)" -lt "$(( $(stat -c %s llg2.hf/model.safetensors) * 6 / 10 ))"
"$KD" export --ckpt gpt --format safetensors --out gpt.hf > /dev/null && expect "a second export replaces the files" \
  "${CHK[@]}" check gpt.hf c.h5 gpt.pred.h5 F32 1e-4 > /dev/null

# 2. safetensors -> kd: bitwise.
for r in gpt llg2 llmq; do
  "$KD" import weights --in $r.hf/model.safetensors --config $r.hf/config.json --out $r.init.h5 > $r.import ||
    fail "kd import weights $r"
  expect "$r: kd -> safetensors -> kd is bitwise, and the student the same" "$PY" - $r/final.h5 $r.init.h5 <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
def names(f):
    l = []
    f["model"].visititems(lambda n, d: l.append(n) if isinstance(d, h5py.Dataset) else None)
    return sorted(l)
assert names(a) == names(b), (names(a), names(b))
for n in names(a):
    assert np.array_equal(a["model"][n][()].view(np.uint32), b["model"][n][()].view(np.uint32)), n
for k in ("family", "student"):
    assert a.attrs[k] == b.attrs[k], (k, a.attrs[k], b.attrs[k])
assert b.attrs["kd_format"] == "weights", b.attrs["kd_format"]
PY
done
expect "the import says what it wrote" grep -q "^kd import: wrote llg2.init.h5 (llama:vocab=256,ctx=16,layers=2,dim=32,heads=4,kv_heads=2,ffn=48,rope_theta=10000,norm_eps=1.0000000000000001e-05,tie=0 from the LlamaForCausalLM of llg2.hf/model.safetensors: 21 tensors of 1 file, F32 21" llg2.import
"$KD" import weights --in llg2.hf/model.safetensors --config llg2.hf/config.json --out llg2.init.h5 > /dev/null 2> exists.err
expect "an existing --out without --force: exit 2" test $? -eq 2 -a "$(grep -c 'exists; pass --force' exists.err)" -eq 1

# 3. Models written by numpy: import, predict, train from them.
"${CHK[@]}" write np_gpt gpt2 > /dev/null && "${CHK[@]}" write np_sh llama-sharded > /dev/null &&
  "${CHK[@]}" write np_tied llama-tied > /dev/null || fail "writing models with numpy"
for m in np_gpt:model.safetensors np_sh:model.safetensors.index.json np_tied:model.safetensors; do
  d=${m%%:*} f=$d/${m#*:}
  "$KD" import weights --in $f --config $d/config.json --out $d.h5 > $d.import || fail "kd import weights $f"
  "$KD" predict --ckpt $d.h5 --data c.h5 --out $d.pred.h5 > /dev/null || fail "kd predict on $d.h5"
  expect "$f: kd predict on the import == the numpy forward (1e-4)" "${CHK[@]}" forward $d $f c.h5 $d.pred.h5 1e-4
done
expect "the gpt2 file: F32, F16 and BF16 tensors read, GPT-2's 4 buffers skipped" \
  grep -q "28 tensors of 1 file, F32 12, F16 9, BF16 7; 4 skipped" np_gpt.import
expect "the sharded llama: 2 files, the 2 inv_freq buffers skipped" grep -q "21 tensors of 2 files, .* 2 skipped" np_sh.import
expect "the tied llama: lm_head.weight equal to the embedding, skipped with the inv_freq buffers" \
  grep -q "tie=1 from .* 3 skipped" np_tied.import
TS=(--data c.h5 --batch 8 --epochs 1 --max-steps 1 --threads 1 --progress off)
"$KD" train "${TS[@]}" --student llama:vocab=256,ctx=16,layers=2,dim=32,heads=4,kv_heads=2,ffn=40,norm_eps=1e-6 \
  --init np_sh.h5 --out from_init > /dev/null
expect "kd train --init takes an imported model" test $? -eq 0 -a -e from_init/final.h5
"$KD" train "${TS[@]}" --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --teacher-model np_gpt.h5 --alpha 0.5 \
  --out from_teacher > /dev/null
expect "kd train --teacher-model takes an imported model" test $? -eq 0 -a -e from_teacher/final.h5

# 4. Broken files and configurations.
"${CHK[@]}" bad bad np_gpt np_tied > /dev/null || fail "writing the broken files"
n=0
while IFS=$'\t' read -r name in cfg names rest; do
  n=$((n + 1))
  "$KD" import weights --in "$in" --config "$cfg" --out bad/$name.h5 > /dev/null 2> bad/$name.err
  rc=$?
  ok=1
  [ $rc -eq 1 ] && [ "$(wc -l < bad/$name.err)" -eq 1 ] && grep -qF -- "$names" bad/$name.err || ok=0
  IFS=$'\t' read -ra want <<< "$rest"
  for w in "${want[@]}"; do grep -qF -- "$w" bad/$name.err || ok=0; done
  [ -e bad/$name.h5 ] && ok=0
  if [ $ok -eq 1 ]; then ok "bad $name: exit 1, one line: $(cut -c1-150 bad/$name.err)"
  else fail "bad $name: exit $rc: $(cat bad/$name.err) (wanted $names and: $rest)"; fi
done < bad/cases.tsv
expect "the broken files: all $n cases ran" test "$n" -eq 33
"$KD" synth --out s.h5 --train 64 --test 0 --dim 4 --classes 3 > /dev/null
"$KD" train --data s.h5 --student 4-8-3 --epochs 1 --batch 16 --threads 1 --progress off --out mlp > /dev/null
"$KD" export --ckpt mlp --format safetensors --out mlp.hf > /dev/null 2> mlp.err
expect "exporting an mlp: exit 2, one line" test $? -eq 2 -a "$(grep -c 'kd exports gpt students' mlp.err)" -eq 1
touch afile
"$KD" export --ckpt gpt --format safetensors --out afile > /dev/null 2> afile.err
expect "--out naming a file: exit 2" test $? -eq 2 -a "$(grep -c 'is a file' afile.err)" -eq 1
"$KD" export --ckpt gpt --format gguf --dtype bf16 --out x.gguf > /dev/null 2> gbf.err
expect "gguf with --dtype bf16: exit 2" test $? -eq 2 -a "$(grep -c 'f32 or f16' gbf.err)" -eq 1
"$KD" import weights --in np_gpt/model.safetensors --config np_gpt/config.json --ctx 64 --out ctx.h5 > /dev/null 2> ctx.err
expect "--ctx on a gpt: exit 2" test $? -eq 2 -a "$(grep -c 'ctx is for llama' ctx.err)" -eq 1
finish
