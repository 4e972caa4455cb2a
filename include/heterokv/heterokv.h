// heterokv/heterokv.h — the whole public API in one include.
//
//   engine.h     model_load, Context (eval, logits, KV statistics and views), kv_bytes_bound
//   generate.h   the generation loop of `heterokv run`
//   model.h      ModelInfo, tensors, the model's tokenizer
//   tokenizer.h  text <-> token ids, special tokens
//   sampler.h    the sampling chain (penalty, top-k, top-p, min-p, temperature)
//   score.h      per-token scoring: log-sum-exp, KL divergence (eval ppl, Python score())
//   policy.h     the KV compression policy interface and policy_create / policy_names
//   types.h      KvType
//   calibrate.h  HeteroCache calibration and head taxonomies
//   synthetic.h  GGUF files with synthetic weights
//   system.h     CPU, memory and bandwidth figures for reports
//   status.h     Status / Expected errors;  log.h  the logging sink
#pragma once

#include "heterokv/calibrate.h"
#include "heterokv/engine.h"
#include "heterokv/generate.h"
#include "heterokv/log.h"
#include "heterokv/model.h"
#include "heterokv/policy.h"
#include "heterokv/sampler.h"
#include "heterokv/score.h"
#include "heterokv/status.h"
#include "heterokv/synthetic.h"
#include "heterokv/system.h"
#include "heterokv/tokenizer.h"
#include "heterokv/types.h"
