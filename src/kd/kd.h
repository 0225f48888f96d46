/* libkd: what a program embedding it needs. */
#ifndef KD_KD_H
#define KD_KD_H

#include "kd/error.h"
#include "kd/data.h"
#include "kd/teacher.h"
#include "kd/model.h"
#include "kd/registry.h"
#include "kd/loss.h"
#include "kd/ckpt.h"
#include "kd/train.h"
#include "kd/infer.h"

#ifndef KD_VERSION
#define KD_VERSION "0.1.0"
#endif

#endif
