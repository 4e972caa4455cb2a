// heterokv/generate.h — the generation loop of `heterokv run`, for any front end (the Python
// bindings use it, so their text equals the CLI's byte for byte).
//
//   auto sampler = hkv::Sampler::create({.temp = 0});
//   std::string text;
//   hkv::generate(*ctx, *sampler, prompt, 200, false, [&](int32_t id) {
//       text += tok.token_to_piece(id);
//       return true;
//   });
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "heterokv/engine.h"
#include "heterokv/sampler.h"
#include "heterokv/status.h"

namespace hkv {

// Called with each generated token, in order, before it is evaluated; false stops generation.
using TokenFn = std::function<bool(int32_t token)>;

// Evaluates `prompt` on ctx (one eval() call: the policy's prompt; progress as Context::eval), then
// samples a token from the logits, reports it, and evaluates it, until n_predict tokens were
// generated (n_predict < 0: no limit), an end-of-generation token was sampled (not reported; unless
// ignore_eos), on_token returned false, or the context is full. The prompt's tokens and every
// generated token are accepted by the sampler (repetition penalty). The last generated token is
// reported but not evaluated. Errors: the context's (eval) — a context that already holds a
// sequence continues it; kCancelled when cancel (the prompt's eval cancel hook, Context::CancelFn)
// stopped the prompt.
Status generate(Context& ctx, Sampler& sampler, std::span<const int32_t> prompt, int32_t n_predict, bool ignore_eos,
                const TokenFn& on_token, const Context::ProgressFn& progress = {},
                const Context::CancelFn& cancel = {});

}  // namespace hkv
