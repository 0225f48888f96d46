/* kd train: its option table is the trainer's (src/train/config.c), which
 * is also the schema of a checkpoint's /config. */
#include <string.h>

#include "cmd/cmd.h"
#include "kd/train.h"
#include "train/config.h"

int cmd_train(int argc, char **argv, kd_err *e) {
  if (cmd_wants_help(argc, argv)) {
    cmd_help("usage: kd train --data FILE [--teacher FILE] --student SPEC --out DIR [OPTIONS]\n\n"
             "Loss per labelled row: alpha*CE(y, softmax(z_s)) + (1-alpha)*T^2*KL(softmax(z_t/T) || softmax(z_s/T)),\n"
             "averaged over the global batch. Without --teacher (or with --alpha 1) it is plain supervised training.\n\n"
             "options:\n",
             kd_train_opts, KD_TRAIN_N_OPTS);
    return KD_OK;
  }
  kd_train_cfg cfg;
  if (kd_train_cfg_parse(&cfg, argc, argv, e)) return e->code;
  if (!cfg.resume[0] && kd_train_cfg_check(&cfg, e)) return e->code;
  kd_train_result res;
  return kd_train_run(&cfg, MPI_COMM_WORLD, &res, e);
}
