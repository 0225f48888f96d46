/* libkd umbrella header. */
#ifndef KD_KD_H
#define KD_KD_H

#include "kd/error.h"
#include "kd/rng.h"
#include "kd/gemm.h"
#include "kd/kernels.h"
#include "kd/model.h"
#include "kd/mlp.h"
#include "kd/loss.h"
#include "kd/optim.h"
#include "kd/h5io.h"
#include "kd/data.h"
#include "kd/dist.h"
#include "kd/options.h"
#include "kd/metrics.h"
#include "kd/train.h"
#include "kd/synth.h"
#include "kd/weights.h"
#include "kd/hint.h"
#include "kd/ckpt.h"
#include "kd/eval.h"
#include "kd/infer.h"
#include "kd/idx.h"
#include "kd/logits.h"

#ifndef KD_VERSION
#define KD_VERSION "0.1.0"
#endif

#endif
