#!/bin/bash
# The llama student end to end (issue 27), on 2 ranks unless stated: everything kd does with a gpt, done
# with a llama (rotary positions, RMSNorm, SwiGLU, grouped-query attention, untied or tied head):
#  1. training on text; kd predict's logits reproduced by docs/examples/llama_forward.py (numpy, from the
#     weights by their Hugging Face names, 1e-4), kd eval's NLL/accuracy/bits per byte by numpy, for an
#     untied G = 2 model and a tied multi-query (G = 1) one;
#  2. dense KD from kd logits (float16), hard labels, sparse top-k / tail / sampled, the chunked loss ==
#     the whole one;
#  3. online teachers both ways (a llama teaching a gpt, a gpt teaching a llama), online == stored f32
#     logits; MiniLM relations over grouped-query attention (q-q, k-k, v-v of other widths and head
#     counts), TinyBERT attention maps and hidden states; stored kd logits --hidden/--attn == online;
#  4. 2 ranks == 1 rank (one step over rows whose targets are spread unevenly); stop/resume bitwise,
#     overlapped and with the sharded optimizer on 3 ranks;
#  5. kd generate --prompt (greedy repeats itself), kd generate --data with beam search, kd eval --decode,
#     Seq-KD on the decoded rows; self-distillation and generations;
#  6. --init from an h5py file by Hugging Face's names (the rotary buffers ignored, a tied head checked);
#  7. bad specs: one line, exit 2.
source "$(dirname "$0")/lib.sh"
"$PY" "$TESTS_DIR/make_tokens.py" fx > /dev/null || exit 1
"$KD" import text --in fx/corpus.txt --ctx 16 --doc-sep % --valid-frac 0.15 --test-frac 0.15 --out c.h5 > /dev/null ||
  exit 1
same() { "$PY" "$TESTS_DIR/compare_weights.py" "$@" > /dev/null; }
LT=llama:vocab=256,ctx=16,layers=2,dim=32,heads=4,kv_heads=2,ffn=48
LS=llama:vocab=256,ctx=16,layers=1,dim=16,heads=2,kv_heads=1,ffn=24
TG=(--batch 16 --threads 1 --progress off --optimizer adamw --lr 0.003)

# 1. A llama from text, and its forward in numpy.
kdrun 2 train --data c.h5 --student $LT "${TG[@]}" --epochs 2 --dropout 0.1 --out lt > lt.log || fail "training a llama"
expect "held-out bits per byte printed" grep -Eq '^valid: nll [0-9.]+  ppl [0-9.]+  bpb [0-9.]+' lt.log
expect "the banner names the llama and its spec" grep -q "student llama vocab=256,ctx=16,layers=2,dim=32,heads=4,kv_heads=2,ffn=48,rope_theta=10000,norm_eps=1.0000000000000001e-05,tie=0" lt.log
expect "weights by Hugging Face's names, [out, in]" "$PY" -c "
import h5py
m = h5py.File('lt/final.h5')['model']
want = {'model/embed_tokens/weight': (256, 32), 'model/layers/1/self_attn/q_proj/weight': (32, 32),
        'model/layers/1/self_attn/k_proj/weight': (16, 32), 'model/layers/1/self_attn/v_proj/weight': (16, 32),
        'model/layers/1/self_attn/o_proj/weight': (32, 32), 'model/layers/0/mlp/gate_proj/weight': (48, 32),
        'model/layers/0/mlp/up_proj/weight': (48, 32), 'model/layers/0/mlp/down_proj/weight': (32, 48),
        'model/layers/0/input_layernorm/weight': (32,), 'model/layers/0/post_attention_layernorm/weight': (32,),
        'model/norm/weight': (32,), 'lm_head/weight': (256, 32)}
names = []
m.visititems(lambda n, d: names.append(n) if isinstance(d, h5py.Dataset) else None)
assert len(names) == 2 + 2 * 9 + 1, names
for k, s in want.items():
    assert m[k].shape == s, (k, m[k].shape)
"
kdrun 1 predict --ckpt lt/final.h5 --data c.h5 --out lp.h5 > /dev/null || fail "kd predict of a llama"
"$KD" eval --ckpt lt/final.h5 --data c.h5 --json > lt.json || fail "kd eval of a llama"
expect "numpy forward == kd predict, numpy NLL/accuracy/bpb == kd eval (untied, G = 2)" \
  "$PY" "$TESTS_DIR/check_lm.py" lt/final.h5 c.h5 lp.h5 lt.json
LM=llama:vocab=256,ctx=16,layers=2,dim=24,heads=4,kv_heads=1,ffn=40,tie=1,rope_theta=500,norm_eps=1e-6
kdrun 2 train --data c.h5 --student $LM "${TG[@]}" --epochs 1 --out mq > /dev/null || fail "a tied multi-query llama"
kdrun 1 predict --ckpt mq --data c.h5 --out mp.h5 > /dev/null && "$KD" eval --ckpt mq --data c.h5 --json > mq.json
expect "numpy forward == kd predict, kd eval == numpy (tied, G = 1, rope_theta 500, norm_eps 1e-6)" \
  "$PY" "$TESTS_DIR/check_lm.py" mq/final.h5 c.h5 mp.h5 mq.json
expect "a tied llama stores no lm_head" "$PY" -c "import h5py; assert 'lm_head' not in h5py.File('mq/final.h5')['model']"

# 2. Distillation from stored logits: dense, hard labels, sparse, chunked.
kdrun 2 logits --ckpt lt --data c.h5 --dtype f16 --out lt16.h5 > /dev/null || fail "kd logits of a llama"
S=(--data c.h5 --student $LS --batch 12 --threads 1 --progress off --epochs 1 --log-every 5)
kdrun 2 train "${S[@]}" --teacher lt16.h5 --alpha 0.5 --temperature 2 --out kd > kd.log || fail "dense KD into a llama"
expect "dense KD: teacher agreement reported" grep -Eq '^valid: .* teacher agreement 0\.[0-9]+' kd.log
kdrun 2 train "${S[@]}" --out hard > /dev/null || fail "hard labels"
kdrun 2 logits --ckpt lt --data c.h5 --topk 8 --out ltk.h5 > /dev/null || fail "top-k logits"
kdrun 2 logits --ckpt lt --data c.h5 --sample 8 --sample-temperature 2 --out lts.h5 > /dev/null || fail "sampled logits"
for m in topk tail; do
  kdrun 2 train "${S[@]}" --teacher ltk.h5 --sparse-kd $m --temperature 2 --max-steps 10 --out sp_$m > /dev/null ||
    fail "sparse $m"
done
kdrun 2 train "${S[@]}" --teacher lts.h5 --sparse-kd sampled --temperature 2 --max-steps 10 --out sp_s > /dev/null ||
  fail "sparse sampled"
expect "sparse top-k, tail and sampled train a llama" test -e sp_topk/final.h5 -a -e sp_tail/final.h5 -a -e sp_s/final.h5
C=("${S[@]}" --teacher lt16.h5 --temperature 2 --alpha 0.5 --max-steps 6 --optimizer sgd --lr 0.5)
kdrun 2 train "${C[@]}" --loss-chunk 40 --out ch > /dev/null || fail "chunked loss"
kdrun 2 train "${C[@]}" --loss-chunk -1 --out wh > /dev/null || fail "whole loss"
expect "the chunked head GEMM and loss == the whole (1e-5), untied head" same ch/final.h5 wh/final.h5 --rtol 1e-5
kdrun 2 train "${C[@]}" --student $LM --loss-chunk 40 --out cht > /dev/null && \
  kdrun 2 train "${C[@]}" --student $LM --loss-chunk -1 --out wht > /dev/null
expect "... and with the head tied to the embedding" same cht/final.h5 wht/final.h5 --rtol 1e-5

# 3. Online teachers, both ways, and the intermediate terms over grouped-query attention.
kdrun 2 train --data c.h5 --student gpt:vocab=256,ctx=16,layers=2,dim=32,heads=4 "${TG[@]}" --epochs 1 --out gt \
  > /dev/null || fail "a gpt teacher"
kdrun 2 logits --ckpt lt --data c.h5 --dtype f32 --out lt32.h5 > /dev/null || fail "f32 logits"
W=(--data c.h5 --threads 1 --progress off --lr 0.5 --optimizer sgd --temperature 2 --alpha 0.5 --log-every 1
   --train-rows 32 --batch 32 --epochs 4)
kdrun 1 train "${W[@]}" --student $LS --teacher lt32.h5 --out ost > /dev/null || fail "stored logits of a llama"
kdrun 1 train "${W[@]}" --student $LS --teacher-model lt --out oon > oon.log || fail "an online llama teacher"
expect "online llama teacher == its stored f32 logits: losses per step 1e-5" cols ost oon loss ce kd
expect "... and the weights" close ost/final.h5 oon/final.h5 --rtol 1e-5
expect "the banner names the online llama" grep -q '^teacher: online llama ' oon.log
kdrun 2 train "${W[@]}" --student gpt:vocab=256,ctx=16,layers=1,dim=16,heads=2 --teacher-model lt --out g_from_l \
  > /dev/null || fail "a llama teaching a gpt"
kdrun 2 train "${W[@]}" --student $LS --teacher-model gt --out l_from_g > /dev/null || fail "a gpt teaching a llama"
expect "online teachers both ways train" test -e g_from_l/final.h5 -a -e l_from_g/final.h5
I=(--teacher-model lt --attn-relations q-q,k-k,v-v --relation-heads 2 --hidden-map uniform --attn-weight 2
   --hidden-weight 0.5)
kdrun 1 train "${W[@]}" --student $LS "${I[@]}" --out r1 > r1.log || fail "relations + hidden, 1 rank"
kdrun 2 train "${W[@]}" --student $LS "${I[@]}" --out r2 > /dev/null || fail "relations + hidden, 2 ranks"
expect "MiniLM relations over GQA (student 2 query heads on 1 kv head, teacher 4 on 2) + hidden: 2 ranks == 1 rank" \
  cols r1 r2 loss kd relation hidden
expect "the relation and hidden losses are logged and not zero" "$PY" -c "
import csv
r = list(csv.DictReader(open('r1/metrics.csv')))
assert all(float(x['relation']) > 0 and float(x['hidden']) > 0 for x in r), r[0]"
L4=llama:vocab=256,ctx=16,layers=2,dim=16,heads=4,kv_heads=1,ffn=24
for k in mse mse-scores; do
  kdrun 1 train "${W[@]}" --student $L4 --teacher-model lt --attn-loss $k --attn-map 1:2,2:1 --out a1 --force \
    > /dev/null || fail "attn $k, 1 rank"
  kdrun 2 train "${W[@]}" --student $L4 --teacher-model lt --attn-loss $k --attn-map 1:2,2:1 --out a2 --force \
    > /dev/null || fail "attn $k, 2 ranks"
  expect "TinyBERT attention maps ($k), 4 query heads each, 1 and 2 kv heads: 2 ranks == 1 rank" cols a1 a2 loss attn
done
kdrun 2 logits --ckpt lt --data c.h5 --dtype f32 --hidden 0,2 --attn 1,2 --out lti.h5 > /dev/null ||
  fail "kd logits --hidden --attn of a llama"
T2=("${W[@]}" --student $L4 --hidden-map 0:0,2:2 --attn-loss mse --attn-map 1:1,2:2)
kdrun 1 train "${T2[@]}" --teacher lti.h5 --out ti_st > /dev/null || fail "stored hidden states and maps"
kdrun 1 train "${T2[@]}" --teacher-model lt --out ti_on > /dev/null || fail "the same online"
expect "stored hidden states and attention maps of a llama == its online ones" cols ti_st ti_on loss kd hidden attn

# 4. 2 ranks == 1 rank (targets spread unevenly); stop/resume bitwise, overlapped and sharded.
E=(train --data fx/eq.h5 --teacher fx/eqt.h5 --student llama:vocab=13,ctx=10,layers=2,dim=16,heads=4,kv_heads=2,ffn=24
   --batch 8 --epochs 1 --max-steps 1 --dropout 0.1 --optimizer sgd --lr 0.5 --threads 1 --progress off --alpha 0.3
   --temperature 2)
kdrun 1 "${E[@]}" --out e1 > /dev/null || fail "1-rank step"
kdrun 2 "${E[@]}" --out e2 > /dev/null || fail "2-rank step"
expect "2 ranks == 1 rank with unevenly spread targets (1e-5)" same e1/final.h5 e2/final.h5 --rtol 1e-5
R=(train "${S[@]}" --teacher lt16.h5 --epochs 2 --dropout 0.1 --optimizer adamw --lr 0.003 --ckpt-every 20
   --overlap on --shard-optimizer on)
kdrun 3 "${R[@]}" --out ra > /dev/null || fail "uninterrupted run"
kdrun 3 "${R[@]}" --out rb --max-steps 50 > /dev/null || fail "first half"
kdrun 3 train --resume rb > /dev/null || fail "resume"
expect "llama resume is bitwise (overlap, sharded optimizer, 3 ranks)" same ra/final.h5 rb/final.h5 --exact

# 5. Decoding: the cache, beam search, kd generate --data, kd eval --decode, Seq-KD; self-distillation.
"$KD" generate --ckpt lt --prompt "the quick" --max-new 30 --decode greedy > g1.txt 2> g1.err || fail "kd generate"
"$KD" generate --ckpt lt --prompt "the quick" --max-new 30 --decode greedy > g2.txt 2> /dev/null
expect "greedy generation twice gives the same text" cmp -s g1.txt g2.txt
printf 'cat\tk a t\ndog\td o g\nbird\tb er d\nfish\tf i sh\ncow\tk au\nhen\th e n\nant\ta n t\nbee\tb ii\nowl\tau l\n' > w.tsv
for i in $(seq 6); do cat w.tsv; done | awk -F'\t' -v OFS='\t' '{print $1 NR, $2}' > p.tsv
"$KD" import pairs --in p.tsv --valid-frac 0.2 --test-frac 0.1 --out p.h5 > /dev/null || fail "import pairs"
PQ=(--data p.h5 --threads 1 --progress off --batch 8 --optimizer adamw --lr 0.01)
kdrun 2 train "${PQ[@]}" --student llama:vocab=64,ctx=24,layers=2,dim=32,heads=4,kv_heads=2,ffn=48 --epochs 6 \
  --out pt > /dev/null || fail "a prompt-completion llama"
kdrun 2 generate --ckpt pt --data p.h5 --decode beam:3 --nbest 2 --batch 4 --out pg.h5 > pg.log || fail "generate --data"
kdrun 1 generate --ckpt pt --data p.h5 --decode beam:3 --nbest 2 --batch 4 --out pg1.h5 > /dev/null
expect "kd generate --data on 1 and 2 ranks writes the same rows" "$PY" -c "
import h5py, numpy as np
a, b = h5py.File('pg.h5'), h5py.File('pg1.h5')
for k in ('train/tokens', 'train/mask', 'train/nbest_tokens', 'train/nbest_scores'):
    assert np.array_equal(a[k][()], b[k][()]), k"
kdrun 2 eval --ckpt pt --data p.h5 --split valid --decode beam:3 --json > pe.json || fail "eval --decode"
expect "eval --decode of a llama reports PER and WER" "$PY" -c "
import json; r = json.load(open('pe.json')); assert 0 <= r['per'] <= 1 and 0 <= r['wer'] <= 1, r"
kdrun 2 train --data pg.h5 --student llama:vocab=64,ctx=24,layers=1,dim=16,heads=2,kv_heads=1,ffn=24 --threads 1 \
  --progress off --batch 8 --epochs 1 --out seqkd > /dev/null || fail "Seq-KD on the decoded rows"
expect "Seq-KD trains a llama on a llama's beam outputs" test -e seqkd/final.h5
kdrun 2 train "${S[@]}" --epochs 2 --self-distill --teacher-ckpt latest --ckpt-every 20 --out sd > sd.log ||
  fail "llama self-distillation"
expect "the llama snapshot teaches" grep -q "self-distillation: the teacher is now sd/ckpt-" sd.log
kdrun 2 train "${S[@]}" --generations 2 --out gens > gens.log || fail "llama generations"
expect "llama generations print their table" grep -q "^born-again generations" gens.log

# 6. --init from an h5py file by Hugging Face's names (as from a LlamaForCausalLM state_dict).
"$PY" - <<'PY'
import h5py, numpy as np
with h5py.File("mq/final.h5") as f, h5py.File("hf.h5", "w") as g, h5py.File("hf_bad.h5", "w") as b:
    names = []
    f["model"].visititems(lambda n, d: names.append(n) if isinstance(d, h5py.Dataset) else None)
    for n in names:
        g["model/" + n] = f["model/" + n][()]
        b["model/" + n] = f["model/" + n][()]
    emb = f["model/model/embed_tokens/weight"][()]
    g["model/lm_head/weight"] = emb                                    # a tied state_dict carries both
    g["model/model/rotary_emb/inv_freq"] = np.ones(3, np.float32)     # a buffer, recomputed by kd
    b["model/lm_head/weight"] = emb + 1
PY
kdrun 2 train "${S[@]}" --student $LM --init hf.h5 --max-steps 2 --out init > init.log 2>&1 || fail "--init hf.h5"
expect "--init from Hugging Face's names" grep -q "initial weights from hf.h5" init.log
kdrun 2 train "${S[@]}" --student $LM --init hf_bad.h5 --max-steps 2 --out init2 > init2.log 2>&1
expect "--init with a head that differs from the tied embedding: exit 1" \
  test $? -eq 1 -a -n "$(grep -F 'lm_head/weight differs from' init2.log)"

# 7. Bad specs: one line, exit 2.
bad() { # bad NEEDLE SPEC
  local out rc
  out=$(timeout -k 2 20 "$MPIEXEC" -q -np 2 --oversubscribe --bind-to none "$KD" train --data c.h5 --student "$2" \
        --epochs 1 --out bad 2>&1 >/dev/null)
  rc=$?
  if [ $rc -eq 2 ] && [ "$(grep -c '^kd: error' <<<"$out")" -eq 1 ] && grep -qF -- "$1" <<<"$out"; then ok "bad spec: '$1'"
  else fail "bad spec $2: wanted exit 2 and '$1', got $rc: $out"; fi
}
bad "kv_heads=3 does not divide heads=4" llama:vocab=256,ctx=16,layers=1,dim=16,heads=4,kv_heads=3,ffn=8
bad "the head width dim / heads = 3 is odd" llama:vocab=256,ctx=16,layers=1,dim=12,heads=4,kv_heads=2,ffn=8
bad "heads=3 does not divide dim=16" llama:vocab=256,ctx=16,layers=1,dim=16,heads=3,kv_heads=1,ffn=8
bad "ffn is missing" llama:vocab=256,ctx=16,layers=1,dim=16,heads=4,kv_heads=2
finish
