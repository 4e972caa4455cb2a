// python/score.cpp — heterokv.score() (see score.h).
#include "score.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "heterokv/model.h"
#include "heterokv/policy.h"
#include "heterokv/sampler.h"
#include "heterokv/score.h"

namespace hkv::python {

std::vector<int32_t> score_tokens(const Model& model, const std::string& text) {
    const Tokenizer& tok = model_tokenizer(model);
    std::vector<int32_t> ids;
    if (tok.add_bos() && tok.bos() >= 0) ids.push_back(tok.bos());
    const std::vector<int32_t> t = tok.encode(text, /*add_special=*/false);
    ids.insert(ids.end(), t.begin(), t.end());
    return ids;
}

namespace {

// The window under cp's policy: on_row(j, logits) sees the prediction of token C + j.
template <typename OnRow>
Status run(const std::shared_ptr<const Model>& model, const ContextParams& cp, const std::vector<int32_t>& tokens,
           int32_t n_context, const Context::CancelFn& cancel, ScoreResult* r, OnRow&& on_row) {
    HKV_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::create(model, cp));
    HKV_TRY(ctx->eval(std::span(tokens).first(size_t(n_context)), nullptr, {}, cancel));
    r->kv_bytes_context = ctx->kv_bytes();
    for (size_t i = size_t(n_context); i < tokens.size(); ++i) {
        on_row(int32_t(i) - n_context, ctx->logits());
        HKV_TRY(ctx->eval(std::span(tokens).subspan(i, 1), nullptr, {}, cancel));
    }
    r->kv_bytes_end = ctx->kv_bytes();
    return Status();
}

}  // namespace

Expected<std::vector<ScoreResult>> score_window(std::shared_ptr<const Model> model, const std::vector<int32_t>& tokens,
                                                const std::vector<std::string>& policies, int32_t n_context,
                                                ContextParams cp, const Context::CancelFn& cancel) {
    const int32_t w = int32_t(std::min<size_t>(tokens.size(), INT32_MAX));
    if (w < 2) return Status::invalid("score: a window of %d tokens; at least 2 are needed", w);
    if (n_context < 1 || n_context >= w) {
        return Status::invalid("score: context of %d tokens: expected 1 .. %d for a window of %d tokens", n_context,
                               w - 1, w);
    }
    for (const std::string& spec : policies) HKV_TRY(policy_validate(spec, *model, w, cp.kv_page_size));
    cp.n_ctx = w;
    if (cp.n_batch == 0) cp.n_batch = n_context;
    const size_t nv = size_t(model_info(*model).n_vocab);
    const size_t ns = size_t(w - n_context);
    std::vector<float> base;    // [ns, nv] full's rows
    std::vector<double> lse_b;  // [ns]
    std::vector<int32_t> top_b;  // [ns]
    try {
        base.resize(ns * nv);
        lse_b.resize(ns);
        top_b.resize(ns);
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("score: no memory for %zu rows of %zu logits", ns, nv);
    }
    std::vector<ScoreResult> out;
    for (size_t ip = 0; ip <= policies.size(); ++ip) {
        const bool is_base = ip == 0;
        ScoreResult r;
        r.policy = is_base ? std::string("full") : policies[ip - 1];
        cp.policy = r.policy;
        double nll = 0.0, kld = 0.0;
        int64_t agree = 0;
        Status st = run(model, cp, tokens, n_context, cancel, &r, [&](int32_t j, std::span<const float> row) {
            const size_t jj = size_t(j);
            if (is_base) {
                std::copy(row.begin(), row.end(), base.begin() + std::ptrdiff_t(jj * nv));
                lse_b[jj] = log_sum_exp(row);
                top_b[jj] = sample_greedy(row);
            }
            const double lse = is_base ? lse_b[jj] : log_sum_exp(row);
            nll += lse - double(row[size_t(tokens[size_t(n_context + j)])]);
            const double kl = kl_divergence(std::span(base).subspan(jj * nv, nv), lse_b[jj], row, lse);
            kld += kl;
            r.kld_max = std::max(r.kld_max, kl);
            agree += sample_greedy(row) == top_b[jj] ? 1 : 0;
        });
        if (!st.ok()) return st.with_context("score: policy '" + r.policy + "'");
        r.n_scored = int64_t(ns);
        r.nll_mean = nll / double(ns);
        r.ppl = std::exp(r.nll_mean);
        r.kld_mean = kld / double(ns);
        r.top1 = double(agree) / double(ns);
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace hkv::python
