#include "train/config.h"
#include "loss/divergence.h"

#include <stddef.h>
#include <string.h>

#define T_(f) offsetof(kd_train_cfg, f)
#define STR(cfg, f) sizeof(((cfg *)0)->f)

/* name, type, offset, size, default, choices, lo, hi, lo_open, hi_open, help */
const kd_opt_spec kd_train_opts[] = {
  {"data", KD_OPT_STR, T_(data), STR(kd_train_cfg, data), "", NULL, 0, 0, 0, 0,
   "HDF5 data file: /train/x [N,D], /train/y [N] (optional /valid, /test); required unless --resume"},
  {"teacher", KD_OPT_STR, T_(teacher), STR(kd_train_cfg, teacher), "", NULL, 0, 0, 0, 0,
   "HDF5 teacher file with /train/logits [N,C] (may be the data file); none: supervised training"},
  {"out", KD_OPT_STR, T_(out), STR(kd_train_cfg, out), "", NULL, 0, 0, 0, 0,
   "run directory (checkpoints, metrics.csv, final.h5); refused if it holds a run, unless --force; "
   "required unless --resume"},
  {"student", KD_OPT_STR, T_(student), STR(kd_train_cfg, student), "", NULL, 0, 0, 0, 0,
   "the student, [FAMILY:]SPEC; family mlp (the default): sizes input-hidden...-classes, e.g. 784-800-800-10; "
   "required unless --resume"},
  {"resume", KD_OPT_STR, T_(resume), STR(kd_train_cfg, resume), "", NULL, 0, 0, 0, 0,
   "continue a run: a checkpoint FILE or DIR[:latest|best|step:N]; needs no other option"},
  {"init", KD_OPT_STR, T_(init_from), STR(kd_train_cfg, init_from), "", NULL, 0, 0, 0, 0,
   "start a new run from a checkpoint's weights (fresh optimizer, step 0): FILE or DIR[:latest|best|step:N]"},
  {"activation", KD_OPT_CHOICE, T_(activation), STR(kd_train_cfg, activation), "relu", "relu|gelu", 0, 0, 0, 0,
   "hidden activation (also as --student mlp:SIZES,activation=gelu)"},
  {"weight-init", KD_OPT_CHOICE, T_(weight_init), STR(kd_train_cfg, weight_init), "he", "he|xavier", 0, 0, 0, 0,
   "hidden-layer initialisation (the output layer is always Xavier; also as --student mlp:SIZES,init=xavier)"},
  {"dropout", KD_OPT_REAL, T_(dropout), 0, "0", NULL, 0, 1, 0, 1,
   "dropout probability on hidden layers, in [0, 1)"},
  {"alpha", KD_OPT_REAL, T_(alpha), 0, "0.1", NULL, 0, 1, 0, 0,
   "weight of the hard-label loss, in [0, 1]; 1 - alpha weighs the soft loss"},
  {"temperature", KD_OPT_REAL, T_(temperature), 0, "4", NULL, 0, 1000, 1, 0,
   "distillation temperature T > 0"},
  {"divergence", KD_OPT_STR, T_(divergence), STR(kd_train_cfg, divergence), "forward", NULL, 0, 0, 0, 0,
   "the soft term between the teacher's and the student's softmax(z / T), times T^2: forward KL(teacher || "
   "student), reverse KL(student || teacher), jsd:BETA (GKD's generalized Jensen-Shannon, BETA the teacher's weight "
   "in the mixture; 0 is forward, 1 reverse) or skew:ALPHA (DistiLLM's skew KL(teacher || ALPHA teacher + (1 - "
   "ALPHA) student)), or reverse-sampled (with --on-policy: the reverse KL estimated from the token the student "
   "sampled at each position, a per-token policy gradient; T 1, --rollout-temperature 1, no top-k); sparse teacher "
   "logits serve forward only"},
  {"optimizer", KD_OPT_CHOICE, T_(optimizer), STR(kd_train_cfg, optimizer), "sgd", "sgd|adamw", 0, 0, 0, 0,
   "optimizer"},
  {"lr", KD_OPT_REAL, T_(lr), 0, "0.05", NULL, 0, 100, 1, 0, "peak learning rate > 0"},
  {"momentum", KD_OPT_REAL, T_(momentum), 0, "0.9", NULL, 0, 1, 0, 1, "SGD momentum, in [0, 1)"},
  {"nesterov", KD_OPT_FLAG, T_(nesterov), 0, "0", NULL, 0, 0, 0, 0, "Nesterov momentum (SGD)"},
  {"weight-decay", KD_OPT_REAL, T_(weight_decay), 0, "0", NULL, 0, 10, 0, 0,
   "weight decay on weights (not biases): coupled for SGD, decoupled for AdamW"},
  {"beta1", KD_OPT_REAL, T_(beta1), 0, "0.9", NULL, 0, 1, 0, 1, "AdamW beta1, in [0, 1)"},
  {"beta2", KD_OPT_REAL, T_(beta2), 0, "0.999", NULL, 0, 1, 0, 1, "AdamW beta2, in [0, 1)"},
  {"eps", KD_OPT_REAL, T_(eps), 0, "1e-8", NULL, 0, 1, 1, 0, "AdamW epsilon > 0"},
  {"schedule", KD_OPT_CHOICE, T_(schedule), STR(kd_train_cfg, schedule), "cosine", "const|cosine", 0, 0, 0, 0,
   "learning-rate schedule after warmup"},
  {"warmup", KD_OPT_INT, T_(warmup), 0, "0", NULL, 0, 1e12, 0, 0, "linear warmup steps"},
  {"clip", KD_OPT_REAL, T_(clip), 0, "0", NULL, 0, 1e30, 0, 0, "clip the global gradient norm to this (0: off)"},
  {"epochs", KD_OPT_INT, T_(epochs), 0, "10", NULL, 1, 1e9, 0, 0, "passes over the training rows, >= 1"},
  {"batch", KD_OPT_INT, T_(batch), 0, "128", NULL, 1, 1 << 24, 0, 0,
   "global batch (all ranks together), >= number of ranks"},
  {"max-steps", KD_OPT_INT, T_(max_steps), 0, "0", NULL, 0, 1e15, 0, 0,
   "stop after this many steps (0: no limit; the schedule still spans --epochs)"},
  {"seed", KD_OPT_INT, T_(seed), 0, "1", NULL, 0, 9.2e18, 0, 0, "seed of initialisation, shuffling and dropout"},
  {"threads", KD_OPT_INT, T_(threads), 0, "0", NULL, 0, 4096, 0, 0,
   "OpenBLAS threads per rank (0: cores available to the rank / ranks sharing them)"},
  {"bucket-kib", KD_OPT_INT, T_(bucket_kib), 0, "4096", NULL, 1, 1 << 20, 0, 0,
   "largest gradient bucket in KiB (a layer boundary closes one at a quarter of it): the unit of "
   "communication, and of overlap with --overlap"},
  {"overlap", KD_OPT_CHOICE, T_(overlap), STR(kd_train_cfg, overlap), "auto", "auto|on|off", 0, 0, 0, 0,
   "start each gradient bucket's reduction as soon as the backward pass has finished it, overlapping "
   "communication with the layers below (off: all buckets after the backward pass, blocking; auto: on when "
   "the ranks span several nodes, off on one node, where the copies compete with the compute for the same cores)"},
  {"shard-optimizer", KD_OPT_CHOICE, T_(shard_optimizer), STR(kd_train_cfg, shard_optimizer), "auto",
   "auto|on|off", 0, 0, 0, 0,
   "reduce-scatter the gradients, each rank updates its 1/p slice of the parameters, allgather them (off: "
   "allreduce, every rank updates everything; auto: on from 3 ranks)"},
  {"log-every", KD_OPT_INT, T_(log_every), 0, "50", NULL, 1, 1e15, 0, 0, "steps between metrics.csv rows"},
  {"ckpt-every", KD_OPT_INT, T_(ckpt_every), 0, "0", NULL, 0, 1e15, 0, 0,
   "steps between checkpoints (0: none between epoch ends); there is always one at the end"},
  {"ckpt-epochs", KD_OPT_INT, T_(ckpt_epochs), 0, "1", NULL, 0, 1e9, 0, 0,
   "also checkpoint (and evaluate) at every N-th epoch end (0: not at epoch ends)"},
  {"keep", KD_OPT_INT, T_(keep), 0, "3", NULL, 1, 1e9, 0, 0, "checkpoints kept (plus the best one)"},
  {"eval-every", KD_OPT_INT, T_(eval_every), 0, "0", NULL, 0, 1e15, 0, 0,
   "steps between evaluations (0: at each checkpoint and the end only)"},
  {"val-rows", KD_OPT_INT, T_(val_rows), 0, "0", NULL, 0, 1e15, 0, 0,
   "hold out the last N rows of /train for validation (when the data file has no /valid)"},
  {"best-metric", KD_OPT_CHOICE, T_(best_metric), STR(kd_train_cfg, best_metric), "auto", "auto|accuracy|nll", 0, 0,
   0, 0, "validation metric that picks the best checkpoint (ties keep the earlier); auto: accuracy for classifiers, "
   "nll for language models (gpt, llama)"},
  {"progress", KD_OPT_CHOICE, T_(progress), STR(kd_train_cfg, progress), "auto", "auto|on|lines|off", 0, 0, 0, 0,
   "a progress line every --progress-every seconds (step, loss, rate, ETA): on, redrawn in place; lines, plain "
   "lines (logs); auto, in place on a terminal and plain lines otherwise"},
  {"progress-every", KD_OPT_REAL, T_(progress_every), 0, "10", NULL, 0, 86400, 1, 0,
   "seconds between progress lines"},
  {"force", KD_OPT_FLAG, T_(force), 0, "0", NULL, 0, 0, 0, 0, "reuse an --out directory that holds a run"},
  {"self-distill", KD_OPT_FLAG, T_(self_distill), 0, "0", NULL, 0, 0, 0, 0,
   "self-distillation: the teacher is a frozen snapshot of an earlier checkpoint of this run (no teacher file)"},
  {"teacher-ckpt", KD_OPT_STR, T_(teacher_ckpt), STR(kd_train_cfg, teacher_ckpt), "best", NULL, 0, 0, 0, 0,
   "with --self-distill: which checkpoint teaches: best, latest, step:N, or a checkpoint FILE"},
  {"refresh-every", KD_OPT_INT, T_(refresh_every), 0, "0", NULL, 0, 1e9, 0, 0,
   "with --self-distill: replace the snapshot by a newer checkpoint every E epochs (0: keep the first)"},
  {"snapshot-logits", KD_OPT_STR, T_(snapshot_logits), STR(kd_train_cfg, snapshot_logits), "", NULL, 0, 0, 0, 0,
   "with --self-distill: write each snapshot's logits for the training rows to this teacher file"},
  {"generations", KD_OPT_INT, T_(generations), 0, "1", NULL, 1, 1000, 0, 0,
   "born-again generations: generation g+1 is a fresh student distilled from generation g's best checkpoint; "
   "each lives in OUT/gen{g}"},
  {"generation", KD_OPT_INT, T_(generation), 0, "0", NULL, 0, 1000, 0, 0,
   "which generation this run is (set by kd; leave it)"},
  {"hint-layer", KD_OPT_INT, T_(hint_layer), 0, "0", NULL, 0, 1000, 0, 0,
   "FitNets hints: match student hidden layer K (1-based, after the activation) to the teacher file's "
   "/train/features through a learned linear regressor (0: off)"},
  {"hint-weight", KD_OPT_REAL, T_(hint_weight), 0, "1", NULL, 0, 1e6, 1, 0,
   "BETA: the hint loss BETA * 0.5 * mean ||W h_s + b - h_t||^2 is added to the loss"},
  {"hint-epochs", KD_OPT_INT, T_(hint_epochs), 0, "0", NULL, 0, 1e9, 0, 0,
   "stage-wise FitNets: the first E epochs (counted in --epochs) train the layers up to K and the regressor on "
   "the hint loss alone"},
  {"on-nonfinite", KD_OPT_CHOICE, T_(on_nonfinite), STR(kd_train_cfg, on_nonfinite), "stop", "stop|skip", 0, 0, 0, 0,
   "a non-finite loss or gradient: stop the run (the last checkpoint stays the latest), or skip that step's "
   "update on every rank and count it"},
  {"train-rows", KD_OPT_INT, T_(train_rows), 0, "0", NULL, 0, 1e15, 0, 0,
   "train on the first N rows of /train only (0: all; --val-rows are taken from the end first)"},
  {"labelled-fraction", KD_OPT_REAL, T_(labelled_fraction), 0, "1", NULL, 0, 1, 0, 0,
   "keep the hard label on this fraction of training rows (chosen by --seed), the rest are unlabelled "
   "(y = -1): semi-supervised distillation, needs --teacher"},
  {"normalize", KD_OPT_CHOICE, T_(normalize), STR(kd_train_cfg, normalize), "none", "none|standard|minmax", 0, 0, 0, 0,
   "input normalisation, per feature, from the training rows: standard (x - mean) / std, minmax (x - min) / "
   "(max - min); stored with the model (/preprocess) and applied by kd eval, predict and logits"},
  {"profile", KD_OPT_FLAG, T_(profile), 0, "0", NULL, 0, 0, 0, 0,
   "time every kernel of the student's forward and backward passes (gpt students) and print, at the end, where "
   "rank 0's step time went: ms per step, share and GFLOP/s per kernel"},
  {"teacher-model", KD_OPT_STR, T_(teacher_model), STR(kd_train_cfg, teacher_model), "", NULL, 0, 0, 0, 0,
   "online teacher: a kd checkpoint FILE or DIR[:best|latest|step:N] (any family and size with the student's "
   "classes or vocabulary), loaded frozen on every rank, run forward on each training batch; its logits replace a "
   "teacher file's (excludes --teacher and --self-distill)"},
  {"teacher-vocab-crop", KD_OPT_INT, T_(teacher_vocab_crop), 0, "0", NULL, 0, 1 << 30, 0, 0,
   "an online teacher whose vocabulary is the student's with unused ids after it (a padded embedding): keep its "
   "first N logits, N the student's vocabulary, and renormalise over them (0: the vocabularies must match)"},
  {"cross-tokenizer", KD_OPT_CHOICE, T_(cross_tokenizer), STR(kd_train_cfg, cross_tokenizer), "off",
   "off|uld|exact|hybrid", 0, 0, 0, 0,
   "a teacher with another tokenizer (--teacher-model of the data file's /teacher_tokenizer, the file imported with "
   "--teacher-tokenizer): it reads the teacher rows of the same text, and the soft term is taken at aligned "
   "positions (both tokens end at the same byte): uld (sorted probabilities, L1), exact (--divergence over the ids "
   "both vocabularies spell the same, renormalised there), hybrid (exact weighted by the teacher's mass on those ids, "
   "uld on the rest); off: the teacher must share the student's ids"},
  {"on-policy", KD_OPT_REAL, T_(on_policy), 0, "0", NULL, 0, 1, 0, 0,
   "on-policy distillation (GKD's lambda): this share of the steps (a draw keyed by the seed and the step) train on "
   "completions the student samples for its rows' prompts, scored by the online teacher (--teacher-model) with "
   "--divergence, without hard labels; 0: every step trains on the data's own completions"},
  {"prompt-tokens", KD_OPT_INT, T_(prompt_tokens), 0, "0", NULL, 0, 1 << 20, 0, 0,
   "--on-policy: the prompt of a row without a prompt (every position a target): its first N tokens (0: half the "
   "row); a prompt-completion row's prompt is its unmasked prefix"},
  {"rollout-max-new", KD_OPT_INT, T_(rollout_max_new), 0, "0", NULL, 0, 1 << 20, 0, 0,
   "--on-policy: tokens sampled per completion at most (0: up to the row's width)"},
  {"rollout-temperature", KD_OPT_REAL, T_(rollout_temperature), 0, "1", NULL, 0, 100, 1, 0,
   "--on-policy: the student samples from softmax(z / this)"},
  {"rollout-top-k", KD_OPT_INT, T_(rollout_top_k), 0, "0", NULL, 0, 1 << 24, 0, 0,
   "--on-policy: sample among the k most likely tokens (0: all)"},
  {"attn-relations", KD_OPT_STR, T_(attn_relations), STR(kd_train_cfg, attn_relations), "", NULL, 0, 0, 0, 0,
   "MiniLM attention relations (gpt, llama, with --teacher-model): any of q-q,k-k,v-v: KL between the teacher's and the "
   "student's softmax(A A^T / sqrt(d)) per relation head, layers from --attn-map (default: the last layers)"},
  {"relation-heads", KD_OPT_INT, T_(relation_heads), 0, "0", NULL, 0, 4096, 0, 0,
   "relation heads R of --attn-relations (0: the student's head count, or where grouped-query keys and values are "
   "narrower the largest R below it that divides every width used); R divides every width used (queries H hd, keys "
   "and values G hd) of both models"},
  {"attn-loss", KD_OPT_CHOICE, T_(attn_loss), STR(kd_train_cfg, attn_loss), "none", "none|mse|mse-scores", 0, 0, 0, 0,
   "TinyBERT attention maps (gpt, llama): mse between the attention probabilities of mapped layers (same head count; "
   "online or stored /train/attn/{l}), mse-scores between the pre-softmax scores, masked entries zeroed (online only)"},
  {"attn-weight", KD_OPT_REAL, T_(attn_weight), 0, "1", NULL, 0, 1e6, 0, 0,
   "weight of the relation and attention-map losses"},
  {"attn-map", KD_OPT_STR, T_(attn_map), STR(kd_train_cfg, attn_map), "", NULL, 0, 0, 0, 0,
   "student:teacher attention layer pairs (1-based blocks) of the relation and map losses, e.g. 1:2,2:4, or "
   "uniform (student layer m takes teacher layer m * Lt / Ls); default: uniform for maps, the last layers for "
   "relations"},
  {"hidden-map", KD_OPT_STR, T_(hidden_map), STR(kd_train_cfg, hidden_map), "", NULL, 0, 0, 0, 0,
   "TinyBERT hidden states (gpt, llama): student:teacher pairs of hidden states (0 the embedding output, l the output of "
   "block l, before ln_f), e.g. 0:0,1:2,2:4, or uniform; matched through a learned projection [Dt, Ds] by mean "
   "squared error (online, or stored /train/hidden/{l})"},
  {"hidden-weight", KD_OPT_REAL, T_(hidden_weight), 0, "1", NULL, 0, 1e6, 0, 0, "weight of the hidden-state loss"},
  {"intermediate-epochs", KD_OPT_INT, T_(intermediate_epochs), 0, "0", NULL, 0, 1e9, 0, 0,
   "TinyBERT's two stages: the first E epochs train on the intermediate losses (relations, maps, hidden states) "
   "alone, the rest on the logit KD loss alone (unlike --hint-epochs, whose second stage keeps the hint)"},
  {"sparse-kd", KD_OPT_CHOICE, T_(sparse_kd), STR(kd_train_cfg, sparse_kd), "auto", "auto|topk|tail|sampled", 0, 0,
   0, 0,
   "which teacher logits of --teacher FILE: topk (/train/topk, renormalised over its K ids), tail (topk plus one bin "
   "for the rest of the mass, needs /train/topk/lse), sampled (/train/sampled counts, unbiased); auto: dense "
   "/train/logits, else sampled, else tail, else topk"},
  {"loss-chunk", KD_OPT_INT, T_(loss_chunk), 0, "0", NULL, -1, 1 << 24, 0, 0,
   "gpt students: positions per chunk of the head GEMM and loss, whose logits [chunk, V] and gradient are all that "
   "exists of them (0: auto, chunks of 64 MiB when the vocabulary is over 256; -1: the whole batch at once)"},
  {"stream", KD_OPT_CHOICE, T_(stream), STR(kd_train_cfg, stream), "auto", "auto|on|off", 0, 0, 0, 0,
   "read the training rows and their teacher targets from disk while the steps run (a reader thread, two "
   "windows of rows in memory) instead of holding the rank's shard in memory; auto: stream when the shard would "
   "not fit in --memory-budget. Streamed runs shuffle blocks of rows and rows within windows of --shuffle-window "
   "rows, an order the same for any rank count"},
  {"memory-budget", KD_OPT_STR, T_(memory_budget), STR(kd_train_cfg, memory_budget), "", NULL, 0, 0, 0, 0,
   "memory per rank for the training rows and teacher targets, SIZE with K, M or G (KiB, MiB, GiB): what --stream "
   "auto compares the shard with, and what streaming must fit in (default: half the node's memory over its ranks)"},
  {"shuffle-window", KD_OPT_INT, T_(shuffle_window), 0, "0", NULL, 0, 1e15, 0, 0,
   "streamed runs: rows shuffled together, a whole number of blocks (0: 16 blocks of about 4 MiB of rows each); "
   "two windows' share of rows is what a rank buffers"},
};

/* Adding an option without raising KD_TRAIN_N_OPTS (the size of `given`)
 * fails here, at compile time. */
_Static_assert(sizeof kd_train_opts / sizeof kd_train_opts[0] == KD_TRAIN_N_OPTS,
               "KD_TRAIN_N_OPTS must equal the number of kd train options");

int kd_train_cfg_defaults(kd_train_cfg *c, kd_err *e) {
  memset(c, 0, sizeof *c);
  return kd_opts_parse(kd_train_opts, KD_TRAIN_N_OPTS, c, 0, NULL, "kd train", NULL, e);
}

int kd_train_cfg_parse(kd_train_cfg *c, int argc, char **argv, kd_err *e) {
  memset(c, 0, sizeof *c);
  return kd_opts_parse(kd_train_opts, KD_TRAIN_N_OPTS, c, argc, argv, "kd train", c->given, e);
}

void kd_train_help(FILE *f) { kd_opts_help(kd_train_opts, KD_TRAIN_N_OPTS, f); }

int kd_train_cfg_check(const kd_train_cfg *c, kd_err *e) {
  if (!c->data[0]) return kd_fail(e, KD_ERR_USAGE, "kd train: --data is required (see kd train --help)");
  if (!c->student[0]) return kd_fail(e, KD_ERR_USAGE, "kd train: --student is required (see kd train --help)");
  if (!c->out[0]) return kd_fail(e, KD_ERR_USAGE, "kd train: --out is required (see kd train --help)");
  if (c->self_distill && c->teacher[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --self-distill and --teacher exclude each other");
  if (c->labelled_fraction < 1.0 && !c->teacher[0] && !c->self_distill && !c->teacher_model[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --labelled-fraction %g leaves unlabelled rows, which need --teacher",
                   c->labelled_fraction);
  if (c->hint_layer > 0 && !c->teacher[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-layer needs --teacher FILE with /train/features");
  kd_divergence div;
  if (kd_divergence_parse(&div, c->divergence, e)) return e->code;
  if (c->teacher_vocab_crop > 0 && !c->teacher_model[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --teacher-vocab-crop goes with --teacher-model (an online teacher); "
                   "a teacher file's logits can be cut to the student's vocabulary in h5py");
  if (strcmp(c->cross_tokenizer, "off") != 0) {
    const char *clash = !c->teacher_model[0] ? "it needs --teacher-model (an online teacher reading the teacher rows)"
                      : c->on_policy > 0 ? "--on-policy (the student's samples have no teacher tokenization)"
                      : c->teacher_vocab_crop > 0 ? "--teacher-vocab-crop (one tokenizer, padded)"
                      : c->attn_relations[0] || strcmp(c->attn_loss, "none") != 0 || c->hidden_map[0]
                          ? "the intermediate losses (the two models' positions differ)"
                      : c->generations > 1 ? "--generations (the later ones are taught by a snapshot)" : NULL;
    if (clash)
      return kd_fail(e, KD_ERR_USAGE, "kd train: --cross-tokenizer %s: %s", c->cross_tokenizer, clash);
  }
  if (c->on_policy > 0 && !c->teacher_model[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --on-policy %g needs an online teacher (--teacher-model CKPT) to score "
                   "the student's samples", c->on_policy);
  if (c->on_policy > 0 && c->generations > 1)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --on-policy with --generations %lld: the generations after the first "
                   "are taught by a snapshot, not an online teacher; run the chain without --on-policy",
                   (long long)c->generations);
  if (div.kind == KD_DIV_REVERSE_SAMPLED && c->on_policy <= 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --divergence reverse-sampled estimates the reverse KL from the "
                   "student's own samples: it needs --on-policy (on fixed data, use --divergence reverse)");
  if (div.kind == KD_DIV_REVERSE_SAMPLED && c->dropout > 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --divergence reverse-sampled with --dropout %g: the rollout samples "
                   "without dropout and the training forward applies it, so the samples are not drawn from the "
                   "distribution the loss takes; use --dropout 0 or --divergence reverse", c->dropout);
  if (div.kind == KD_DIV_REVERSE_SAMPLED && (c->temperature != 1 || c->rollout_temperature != 1 || c->rollout_top_k))
    return kd_fail(e, KD_ERR_USAGE, "kd train: --divergence reverse-sampled is unbiased only when the student samples "
                   "from softmax(z) and the loss is at T = 1: it needs --temperature 1, --rollout-temperature 1 and "
                   "no --rollout-top-k (got %g, %g, %lld)",
                   c->temperature, c->rollout_temperature, (long long)c->rollout_top_k);
  if (c->on_policy == 0 && (c->prompt_tokens || c->rollout_max_new || c->rollout_top_k || c->rollout_temperature != 1))
    return kd_fail(e, KD_ERR_USAGE, "kd train: --prompt-tokens and the --rollout options go with --on-policy");
  if (strcmp(c->sparse_kd, "auto") != 0 && !c->teacher[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --sparse-kd %s needs --teacher FILE with sparse teacher logits",
                   c->sparse_kd);
  if (c->hint_epochs > 0 && c->hint_layer == 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-epochs needs --hint-layer");
  if (c->hint_epochs >= c->epochs && c->hint_layer > 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-epochs %lld leaves no epoch of --epochs %lld for distillation",
                   (long long)c->hint_epochs, (long long)c->epochs);
  if (c->teacher_model[0] && c->teacher[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --teacher-model (an online teacher) and --teacher FILE (stored outputs) "
                   "exclude each other: choose one");
  if (c->teacher_model[0] && c->self_distill)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --teacher-model and --self-distill exclude each other (self-distillation's "
                   "teacher is a checkpoint of the run itself: --teacher-ckpt)");
  if (c->teacher_model[0] && c->hint_layer > 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --hint-layer reads stored /train/features from --teacher FILE; with an "
                   "online teacher use --hidden-map (gpt, llama)");
  const int inter = c->attn_relations[0] || strcmp(c->attn_loss, "none") != 0 || c->hidden_map[0];
  if (inter && !c->teacher_model[0] && !c->teacher[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --attn-relations, --attn-loss and --hidden-map need a teacher: "
                   "--teacher-model CKPT (online) or --teacher FILE with /train/attn/{l} or /train/hidden/{l}");
  if (c->attn_relations[0] && !c->teacher_model[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --attn-relations needs the teacher's queries, keys and values: an online "
                   "teacher (--teacher-model)");
  if (strcmp(c->attn_loss, "mse-scores") == 0 && !c->teacher_model[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --attn-loss mse-scores needs the teacher's scores: an online teacher "
                   "(--teacher-model); stored /train/attn/{l} hold probabilities (--attn-loss mse)");
  if (c->intermediate_epochs > 0 && !inter)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --intermediate-epochs needs an intermediate loss (--attn-relations, "
                   "--attn-loss or --hidden-map)");
  if (c->intermediate_epochs >= c->epochs && c->intermediate_epochs > 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --intermediate-epochs %lld leaves no epoch of --epochs %lld for the logit "
                   "loss", (long long)c->intermediate_epochs, (long long)c->epochs);
  if ((c->attn_map[0] || c->relation_heads) && !c->attn_relations[0] && strcmp(c->attn_loss, "none") == 0)
    return kd_fail(e, KD_ERR_USAGE, "kd train: --attn-map and --relation-heads need --attn-relations or --attn-loss");
  if (c->resume[0] && c->init_from[0])
    return kd_fail(e, KD_ERR_USAGE, "kd train: --resume and --init exclude each other");
  if (c->nesterov && (strcmp(c->optimizer, "sgd") != 0 || c->momentum <= 0.0))
    return kd_fail(e, KD_ERR_USAGE, "kd train: --nesterov needs --optimizer sgd and --momentum > 0");
  return KD_OK;
}

