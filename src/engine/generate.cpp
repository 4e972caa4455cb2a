// engine/generate.cpp — the generation loop of `heterokv run` (include/heterokv/generate.h).
#include "heterokv/generate.h"

#include "heterokv/model.h"

namespace hkv {

Status generate(Context& ctx, Sampler& sampler, std::span<const int32_t> prompt, int32_t n_predict, bool ignore_eos,
                const TokenFn& on_token, const Context::ProgressFn& progress, const Context::CancelFn& cancel) {
    const Tokenizer& tok = model_tokenizer(ctx.model());
    for (int32_t id : prompt) sampler.accept(id);
    HKV_TRY(ctx.eval(prompt, nullptr, progress, cancel));
    const int32_t limit = n_predict < 0 ? ctx.n_ctx() : n_predict;
    for (int32_t n_gen = 0; n_gen < limit && ctx.n_past() < ctx.n_ctx();) {
        const int32_t next = sampler.sample(ctx.logits());
        if (tok.is_eog(next) && !ignore_eos) break;
        sampler.accept(next);
        ++n_gen;
        if (on_token && !on_token(next)) break;
        if (n_gen == limit || ctx.n_past() >= ctx.n_ctx()) break;
        HKV_TRY(ctx.eval({&next, 1}));
    }
    return Status();
}

}  // namespace hkv
