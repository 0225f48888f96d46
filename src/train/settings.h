/* kd train's options, parsed once into typed settings by what reads them (the optimizer, the loss, the
 * intermediate terms, gradient synchronisation, the data, the model); every choice an enum, resolved when the
 * run is set up, so no step compares option strings. kd_train_cfg stays the option table's record (the
 * command line, a checkpoint's /config); this is what the trainer computes with. */
#ifndef KD_TRAIN_SETTINGS_H
#define KD_TRAIN_SETTINGS_H

#include <stdint.h>

#include "kd/data.h"
#include "kd/loss.h"
#include "kd/train.h"
#include "loss/attn.h"
#include "loss/xtok.h"
#include "optim/optim.h"

typedef enum tr_switch { TR_AUTO = 0, TR_ON = 1, TR_OFF = 2 } tr_switch;
typedef enum tr_metric { TR_BEST_AUTO = 0, TR_BEST_ACCURACY = 1, TR_BEST_NLL = 2 } tr_metric;

typedef struct tr_optim_settings {
  kd_optim_cfg optim;          /* the update rule and its constants */
  kd_sched_kind schedule;
  double lr, clip;             /* clip 0: off */
  int64_t warmup;
} tr_optim_settings;

typedef struct tr_loss_settings {
  double alpha, temperature;
  kd_divergence div;           /* --divergence */
  kd_xtok_kind xtok;           /* --cross-tokenizer (KD_XTOK_OFF: the teacher shares the student's ids) */
  int skip_nonfinite;          /* --on-nonfinite skip */
  int64_t chunk;               /* positions per chunk of the head GEMM and loss (0 auto, -1 whole batch) */
} tr_loss_settings;

typedef struct tr_inter_settings {
  int relations;               /* MiniLM relations asked for */
  int maps;                    /* 0: none; KD_ATTN_PROBS or KD_ATTN_SCORES (TinyBERT attention maps) */
  int hidden;                  /* TinyBERT hidden states asked for */
} tr_inter_settings;

typedef struct tr_sync_settings {
  tr_switch overlap, shard;    /* gradient buckets during backward; reduce-scatter + allgather */
  int64_t bucket_kib;
} tr_sync_settings;

typedef struct tr_data_settings {
  kd_norm normalize;
  int64_t train_rows, val_rows;
  double labelled_fraction;
  tr_switch stream;            /* --stream */
  double memory_budget;        /* --memory-budget in bytes (0: the default) */
  int64_t shuffle_window;      /* 0: the default */
} tr_data_settings;

typedef struct tr_model_settings {
  tr_metric best;              /* which evaluation ranks checkpoints (auto: resolved by the student's input) */
  double dropout;
} tr_model_settings;

typedef struct tr_settings {
  tr_optim_settings optim;
  tr_loss_settings loss;
  tr_inter_settings inter;
  tr_sync_settings sync;
  tr_data_settings data;
  tr_model_settings model;
} tr_settings;

/* From the options (already checked by kd_train_cfg_check): a choice outside its table is a usage error. */
int tr_settings_parse(tr_settings *s, const kd_train_cfg *c, kd_err *e);

#endif
