/* The trainer's state, grouped by role, and the parts of kd train:
 *   run.c          one run: set-up, the loop, the end (and the signals)
 *   setup.c        the student, the loss terms, the output directory, the buffers
 *   data.c         the shard, its teacher targets, the evaluation splits, fingerprints
 *   resume.c       the checkpoint to continue, its configuration, its state
 *   step.c         one training step: gather, forward, loss, backward, sync, update
 *   loop.c         epochs and steps, and what each step's end schedules
 *   checkpoint.c   evaluation and checkpoints (rank 0 writes; all agree)
 *   online.c       the online teacher (--teacher-model), run on each batch
 *   xtok.c         a teacher with another tokenizer: its rows of the batch's text, the cross-tokenizer loss
 *   selfdistill.c  snapshot teachers from earlier checkpoints
 *   generations.c  born-again generations
 *   report.c       the banner, the epoch lines and the final summary
 * Data flows one way through a step: shard -> batch -> model -> loss and
 * terms -> model backward -> gradient buckets (+ step statistics) ->
 * optimizer. Checkpoints, evaluation and logging sit beside the loop. */
#ifndef KD_TRAIN_TRAINER_H
#define KD_TRAIN_TRAINER_H

#include <mpi.h>
#include <stdint.h>

#include "kd/ckpt.h"
#include "kd/data.h"
#include "kd/infer.h"
#include "kd/model.h"
#include "kd/teacher.h"
#include "infer/seqdecode.h"
#include "kd/train.h"
#include "data/rows.h"
#include "loss/term.h"
#include "loss/xtok.h"
#include "optim/gradsync.h"
#include "optim/optim.h"
#include "train/metrics.h"
#include "train/settings.h"

/* Step statistics travel at the end of the gradient buffer, so one
 * allreduce per step carries gradients, losses and control flags. The
 * first slots are also the indexes of the checkpoint's log sums: the first
 * loss term keeps slot 6 (the FitNets hint's since format 1); further terms
 * come after the control flags. */
enum { ST_LOSS, ST_CE, ST_KD, ST_CORRECT, ST_LABELLED, ST_ROWS, ST_TERM0, ST_NONFINITE, ST_ERROR, ST_STOP, ST_BASE };
#define TR_MAX_TERMS (KD_CKPT_SUMS - ST_BASE + 1)
static inline int tr_term_slot(int i) { return i == 0 ? ST_TERM0 : ST_BASE + i - 1; }
#define TR_COL_BPB (-2)

typedef struct tr_mpi {
  MPI_Comm comm;
  int rank, size, threads;
  int nodes;                  /* nodes the ranks span (1: all share one) */
} tr_mpi;

/* The student, its loss terms and the one buffer per role. */
typedef struct tr_net {
  kd_model *model;
  kd_term *terms[TR_MAX_TERMS];
  int n_terms;
  float *params;              /* [n_total]: the student's n_params, then each term's */
  float *grads;               /* [n_total + n_stats]: their gradient, then the step statistics */
  size_t n_total;
  int n_stats;
  kd_param_view *views;       /* the student's views, then the terms': what the optimizer updates */
  int n_views;
  kd_param_view *alone_views; /* while terms train alone: the layers below them and their own views */
  int n_alone_views;
} tr_net;

/* What the streamed pass over this rank's training rows found before step 1
 * (validation, fingerprints, statistics): what the in-memory stores give
 * when the shard is held. */
typedef struct tr_scan {
  uint64_t data_fp, teacher_fp;
  uint64_t *file_fp;          /* [2 * files]: each shard file's data and teacher fingerprints (as a file alone) */
  int64_t rows, targets;
  double *stats;              /* [4 * D]: per-feature sum, sum of squares, minimum, maximum */
  double absmax, seconds, bytes;
} tr_scan;

/* Training rows and evaluation splits. */
typedef struct tr_data {
  kd_rows *rows;              /* the row provider: each step's rows and targets, in the run's order */
  int streamed;               /* read from disk while the steps run (then train, teacher and sparse hold one row:
                               * the shapes) */
  kd_stream_cfg stream;       /* streamed: where and in which order */
  double budget;              /* --memory-budget, resolved (bytes per rank) */
  double shard_bytes;         /* what the largest shard would take in memory */
  tr_scan scan;
  kd_split_info info_train, info_valid, info_test;
  kd_fileset dfiles, tfiles;  /* --data and --teacher as files (one each, or a set of shards) */
  int is_set;                 /* either names a set */
  char data1[KD_PATH_MAX], teacher1[KD_PATH_MAX]; /* their first files: the evaluation splits, the tokenizer */
  kd_sparse_info sparse_info; /* what the teacher file holds for /train */
  kd_source *train;           /* this rank's shard */
  kd_teacher *teacher;        /* its teacher outputs (a file's, or a snapshot's) */
  kd_inter_store *inter;      /* its stored intermediate targets (/train/hidden/{l}, /train/attn/{l}), or NULL */
  kd_sparse_store *sparse;    /* its sparse teacher logits (/train/topk or /train/sampled), or NULL: dense */
  kd_sparse_mode sparse_mode; /* --sparse-kd as resolved against the teacher file (KD_SPARSE_DENSE: dense logits) */
  kd_source *valid, *test;    /* rank 0: whole splits for evaluation */
  kd_teacher *valid_t, *test_t;
  int has_teacher;            /* a teacher file or a self-distillation snapshot */
  int teacher_live;           /* teacher logits are there now */
  int has_valid, has_test;
  char valid_name[64];
  kd_preprocess pre;          /* input normalisation, applied by every source above */
  kd_tokenizer tok;           /* rank 0: the data file's tokenizer record (have_tok), copied into checkpoints */
  int have_tok;
  int64_t n_train;            /* rows of /train used for training */
  int64_t n_file_rows;        /* rows of /train in the file */
} tr_data;

/* The online teacher (--teacher-model): frozen, run on every batch. */
typedef struct tr_online {
  kd_model *model;            /* NULL: none */
  float *params;
  char path[KD_PATH_MAX];     /* the checkpoint (resolved) */
  uint64_t checksum;          /* of its spec and parameters: the run's teacher fingerprint */
  kd_inter inter;             /* its tensors of the last batch, for the intermediate terms */
  const float **ptrs;         /* inter's three pointer arrays, one allocation (NULL: not a Transformer) */
  kd_preprocess pre;          /* rank 0: its input normalisation (checked against the run's) */
} tr_online;

/* A teacher with another tokenizer (xtok.c, --cross-tokenizer): the teacher rows of this rank's shard, held in
 * memory, and what the loss at aligned positions needs. */
typedef struct tr_xtok {
  kd_xtok_kind kind;          /* KD_XTOK_OFF: not in use */
  int T, Tt;                  /* the student's and the teacher's row widths */
  int64_t lo, n;              /* the shard: global rows [lo, lo + n) */
  int32_t *t_tokens;          /* [n, Tt] the teacher's tokens of each row */
  uint8_t *t_mask;            /* [n, Tt] */
  int32_t *s_end, *t_end;     /* [n, T], [n, Tt]: byte offsets where each token ends (0: padding) */
  int *ns, *nt;               /* [n] each row's student and teacher tokens (one allocation, found at load) */
  kd_batch in;                /* the teacher's rows of the step (the online teacher reads these) */
  kd_vocab_map map;           /* the shared ids (the identity where both records are the same) */
  int identity;
  kd_xtok_work work;
  int32_t *pi, *pa;           /* [min(T, Tt)] one row's aligned pairs */
  double *g;                  /* [Vs] dD/dz_s of one pair */
  double aligned_share;       /* the training rows' targets with an aligned teacher position */
  uint64_t fingerprint;       /* of the teacher rows and both offsets (part of the run's data fingerprint) */
} tr_xtok;

/* On-policy distillation (rollout.c): the student's samples for its rows' prompts. */
typedef struct tr_rollout_state {
  int on;                     /* --on-policy > 0 */
  int W, prompt, max_new;     /* the rows' width; the prompt of a row without one; tokens sampled at most */
  int end_id, pad_id, n_ids;  /* from the data's tokenizer record (end -1: none; n_ids 0: the whole vocabulary) */
  int64_t *order;             /* [3 b] the rows by global id, and the sort's pairs */
  int32_t *prompts;           /* [group, W] */
  int *plen;                  /* [2 group]: prompt lengths, then tokens to sample at most */
  int64_t *ids;               /* [group] global rows (keys of the draws) */
  int *row_plen;              /* [b] each row's prompt length (0: no target, not sampled) */
  kd_hyps h;                  /* [group] one sample each */
  int active;                 /* this step's rows are the student's samples */
  int64_t sampled;            /* tokens sampled in the last on-policy step (this rank) */
  int64_t steps, total;       /* on-policy steps and tokens sampled by this run (this rank; a resume counts anew) */
} tr_rollout_state;

/* Self-distillation: the frozen teacher snapshot. */
typedef struct tr_snap {
  kd_model *model;
  float *params;
  int active, announced;
} tr_snap;

/* Gradient synchronisation and the optimizer. */
typedef struct tr_sync {
  kd_gsync gs;
  kd_optim opt;
  kd_range *upd;              /* what this rank updates: its model slices, then the terms */
  int n_upd;
} tr_sync;

typedef struct tr_sched {
  int B, b_local;             /* global and local batch */
  int64_t steps_per_epoch, total_steps, end_step;
} tr_sched;

/* One step's buffers. */
typedef struct tr_batch {
  kd_batch in;
  kd_teacher_batch tb;
  kd_sparse_batch sb;         /* sparse teacher logits of the batch (when data.sparse) */
  int32_t *targets;           /* [rows * positions] each position's target (kd_batch_targets) */
  int32_t *sampled;           /* [rows * positions] --divergence reverse-sampled: the sampled tokens, or NULL */
  float *logits, *dlogits;    /* [rows * positions, C], or NULL when the loss runs in chunks */
  int chunk;                  /* positions per chunk of the head GEMM and loss (0: not chunked) */
  float *chunk_work;          /* its buffers (kd_loss_chunk_floats) */
} tr_batch;

typedef struct tr_log {
  kd_metrics metrics;
  kd_progress progress;
  int n_cols;                 /* metrics.csv's extra columns ... */
  const char *cols[KD_METRICS_MAX_EXTRA];
  int col_slot[KD_METRICS_MAX_EXTRA]; /* ... and the statistic each one logs (-1: none in this run,
                                       * TR_COL_BPB: the evaluation's bits per byte) */
  int have_low, warned_diverging;     /* the lowest loss logged so far, for the divergence warning */
  double low_loss;
  int64_t low_step;
  kd_profile prof;                    /* --profile: the student's kernels, over the timed steps */
} tr_log;

typedef struct tr_resume {
  char path[KD_PATH_MAX];     /* the checkpoint continued */
  kd_cfg_item *items;         /* the run configuration, as text (checkpoints) */
  int n_items;
} tr_resume;

typedef struct trainer {
  kd_train_cfg cfg;           /* effective configuration (after a resume merge): the options as given */
  tr_settings set;            /* the same parsed once: what the trainer computes with */
  tr_mpi mpi;
  tr_net net;
  tr_data data;
  tr_snap snap;
  tr_online online;
  tr_xtok xtok;
  tr_rollout_state roll;
  tr_sync sync;
  tr_sched sched;
  tr_batch batch;
  tr_log log;
  tr_resume resume;
  kd_run_state st;
} trainer;

static inline int tr_root(const trainer *t) { return t->mpi.rank == 0; }

/* Seconds per phase of the training step: each mark charges the time since
 * the previous mark to phase k. */
typedef struct phase_clock {
  double s[KD_PHASES];
  double last;
  int on;
} phase_clock;
void tr_phase_mark(phase_clock *c, int k);

/* What one step decided (the same on every rank). */
typedef struct tr_step_out {
  const float *stats;         /* the reduced statistics */
  double norm;                /* gradient norm */
  float lr;
  int stop;                   /* a rank was asked to stop */
  int skipped;                /* --on-nonfinite skip dropped this step's update */
} tr_step_out;

/* outdir.c: --out created by rank 0 (refused if it holds a run); the
 * checks that every rank sees it (collective) and the checkpoint to resume */
int tr_prepare_out_dir(trainer *t, kd_err *e);
int tr_check_out_shared(trainer *t, kd_err *e);
int tr_check_resume_shared(trainer *t, kd_err *e);
/* run.c */
int tr_run_one(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_train_cfg *eff, kd_err *e);
/* setup.c */
int tr_check_setup(trainer *t, kd_err *e);
int tr_build(trainer *t, kd_err *e);
int tr_config_items(trainer *t, kd_err *e);
int tr_terms_alone(const trainer *t, int64_t epoch);
void tr_free(trainer *t);
/* data.c */
int tr_probe_data(trainer *t, kd_err *e);
int tr_load_data(trainer *t, kd_err *e);
int tr_check_targets(trainer *t, kd_err *e);
int tr_fingerprint(trainer *t, kd_err *e);
int tr_preprocess(trainer *t, kd_err *e);
/* shards.c */
int tr_open_sets(trainer *t, kd_err *e);
int tr_probe_set(trainer *t, int *classes, kd_err *e);
uint64_t tr_set_fingerprint(const uint64_t *parts, int n);
int tr_check_set_provenance(trainer *t, const uint64_t *data_fp, kd_err *e);
/* rows.c */
int tr_plan_rows(trainer *t, kd_err *e);
int tr_open_stream(trainer *t, int64_t lo, int64_t hi, kd_err *e);
int tr_open_rows(trainer *t, kd_err *e);
const char *tr_order_item(const trainer *t, char *buf, size_t n);
/* resume.c */
int tr_open_resume(trainer *t, const kd_train_cfg *cli, kd_err *e);
int tr_restore_params(trainer *t, kd_run_state *saved, kd_err *e);
int tr_restore_state(trainer *t, const kd_run_state *saved, kd_err *e);
/* step.c */
int tr_step(trainer *t, int64_t s, phase_clock *clock, tr_step_out *o, kd_err *e);
/* loop.c */
int tr_run_loop(trainer *t, kd_train_result *res, kd_err *e);
/* checkpoint.c */
int tr_evaluate(trainer *t, kd_eval_result *ev, int *have, kd_err *e);
int tr_checkpoint(trainer *t, const kd_eval_result *ev, kd_err *e);
int tr_check_replicas(trainer *t, kd_err *e);
int tr_bcast_floats(float *buf, size_t n, int from, MPI_Comm comm, kd_err *e);
/* online.c */
int tr_online_open(trainer *t, kd_err *e);
int tr_online_forward(trainer *t, kd_err *e);
int tr_online_check_inputs(trainer *t, kd_err *e);
void tr_online_free(tr_online *o);
/* xtok.c */
/* Before the online teacher: the file's teacher rows are there and the run can use them (collective). */
int tr_xtok_probe(trainer *t, kd_err *e);
/* After it: this rank's teacher rows, checked, and the shared ids (collective). */
int tr_xtok_load(trainer *t, kd_err *e);
/* The step's teacher rows into xtok.in, for the batch's rows (collective-free). */
int tr_xtok_gather(trainer *t, kd_err *e);
/* alpha CE at every target and (1 - alpha) T^2 D at aligned positions (collective-free). */
void tr_xtok_loss(trainer *t, float scale, kd_loss_sums *ls);
void tr_xtok_free(tr_xtok *x);
/* rollout.c */
int tr_rollout_open(trainer *t, kd_err *e);
/* Is step an on-policy step (the same answer on every rank)? */
int tr_rollout_step(const trainer *t, int64_t step);
/* The batch's rows become their prompts and the student's samples (collective-free). */
int tr_rollout(trainer *t, int64_t step, kd_err *e);
void tr_rollout_free(tr_rollout_state *r);
/* selfdistill.c */
int tr_refresh_snapshot(trainer *t, int keep_current, kd_err *e);
/* Streamed: the snapshot's logits of this step's batch into the batch's teacher logits. */
int tr_snapshot_forward(trainer *t, kd_err *e);
/* generations.c */
int tr_run_chain(const kd_train_cfg *cli, MPI_Comm comm, kd_train_result *res, kd_err *e);
/* report.c */
void tr_print_banner(const trainer *t);
void tr_print_epoch(trainer *t, int64_t epoch, const double *sums, double sps, double elapsed, double eta);
int tr_finish_run(trainer *t, kd_train_result *res, kd_err *e);

#endif
