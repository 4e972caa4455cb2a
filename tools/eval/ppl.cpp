// tools/eval/ppl.cpp — windowed perplexity, KL divergence and top-1 agreement against `full`.
#include "eval/ppl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <new>

#include "eval/ppl_dump.h"
#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "heterokv/model.h"
#include "heterokv/system.h"

namespace hkv::eval {

// ---- per-token arithmetic ----

int32_t argmax(std::span<const float> logits) {
    int32_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > logits[size_t(best)]) best = int32_t(i);
    }
    return best;
}

double percentile(std::vector<float> values, double pct) {
    if (values.empty()) return 0.0;
    size_t rank = size_t(std::ceil(pct / 100.0 * double(values.size())));
    rank = std::clamp<size_t>(rank, 1, values.size());
    std::nth_element(values.begin(), values.begin() + std::ptrdiff_t(rank - 1), values.end());
    return double(values[rank - 1]);
}

// ---- windows ----

Expected<PplPlan> ppl_plan(int64_t n_text, bool bos, int32_t n_ctx_limit, const PplParams& p) {
    const int32_t w = p.n_window;
    if (w < 2) return Status::invalid("window of %d tokens: at least 2 are needed", w);
    if (w > n_ctx_limit) {
        return Status::out_of_range("window of %d tokens exceeds the model's context of %d tokens (-c raises the limit)",
                                    w, n_ctx_limit);
    }
    PplPlan plan;
    plan.bos = bos;
    plan.n_context = p.stream ? 0 : p.n_context;
    if (!p.stream && (p.n_context < 1 || p.n_context >= w)) {
        return Status::invalid("context of %d tokens: expected 1 .. %d for a window of %d tokens", p.n_context,
                               w - 1, w);
    }
    plan.n_scored = p.stream ? w - 1 : w - p.n_context;
    if (p.max_windows < 0) return Status::invalid("max windows %d: expected >= 0 (0 = all)", p.max_windows);
    const int32_t per_window = w - (bos ? 1 : 0);  // text tokens per window
    if (n_text > int64_t(1) << 40) return Status::out_of_range("text of %lld tokens is too long", (long long)n_text);
    if (n_text < per_window) {
        return Status::out_of_range("the text has %lld tokens; one window of %d needs %d text tokens%s",
                                    (long long)n_text, w, per_window, bos ? " after BOS" : "");
    }
    plan.n_text = int32_t(std::min<int64_t>(n_text, INT32_MAX));
    const int64_t avail = n_text / per_window;
    plan.n_available = int32_t(std::min<int64_t>(avail, INT32_MAX));
    const int64_t k = p.max_windows == 0 ? avail : std::min<int64_t>(avail, p.max_windows);
    for (int64_t i = 0; i < k; ++i) plan.starts.push_back(i * avail / k * per_window);
    return plan;
}

std::vector<int32_t> ppl_tokenize(const Model& model, std::string_view text) {
    std::vector<int32_t> ids = model_tokenizer(model).encode(text, /*add_special=*/false);
    return ids;
}

namespace {

// Resets the kernel's resident high-water mark to the current RSS (Linux >= 4.0); false if denied.
bool rss_peak_reset() {
    std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    const bool ok = std::fputs("5", f) >= 0;
    return std::fclose(f) == 0 && ok;
}

// The shared baseline of one window: its scored logits rows and what is derived from them.
struct Baseline {
    std::vector<float> logits;  // [n_scored, n_vocab]
    std::vector<double> lse;    // [n_scored]
    std::vector<int32_t> top;   // [n_scored]
};

// Running sums of one policy over all windows.
struct Accum {
    double nll = 0.0, kld = 0.0, kld_max = 0.0, kv_ctx = 0.0, kv_end = 0.0, seconds = 0.0;
    int64_t n = 0, agree = 0, n_windows = 0;
    std::vector<float> klds;  // [n_scored total]
    size_t rss = 0;
};

struct RunKv {
    size_t bytes_context = 0, bytes_end = 0;
};

// Runs one window under a policy with the schedule of the plan; on_context(ctx) sees the cache
// right after the context, on_row(j, logits) the j-th scored prediction (of token first + j)
// before that token is fed.
template <typename OnContext, typename OnRow>
Expected<RunKv> run_window(const std::shared_ptr<const Model>& model, const ContextParams& cp,
                           std::span<const int32_t> tokens, int32_t n_first, OnContext&& on_context,
                           OnRow&& on_row) {
    auto ctx = Context::create(model, cp);
    if (!ctx.ok()) return ctx.status();
    Context& cx = **ctx;
    RunKv kv;
    HKV_TRY(cx.eval(tokens.first(size_t(n_first))));
    kv.bytes_context = size_t(cx.kv_bytes());
    HKV_TRY(on_context(cx));
    for (size_t it = size_t(n_first); it < tokens.size(); ++it) {
        HKV_TRY(on_row(int32_t(it) - n_first, cx.logits()));
        HKV_TRY(cx.eval(tokens.subspan(it, 1)));
    }
    kv.bytes_end = size_t(cx.kv_bytes());
    return kv;
}

}  // namespace

Expected<PplReport> ppl_run(std::shared_ptr<const Model> model, std::span<const int32_t> text,
                            std::span<const std::string> policies, const PplParams& params,
                            const PplProgressFn& progress) {
    if (!model) return Status::invalid("eval ppl: no model");
    const ModelInfo c = model_info(*model);
    const Tokenizer& tok = model_tokenizer(*model);
    const bool bos = tok.add_bos() && tok.bos() >= 0;
    const int32_t limit = params.n_ctx > 0 ? params.n_ctx : c.n_ctx_train;
    HKV_ASSIGN_OR_RETURN(PplPlan plan, ppl_plan(int64_t(text.size()), bos, limit, params));
    for (const std::string& spec : policies) {  // every spec is checked against the model before any work
        HKV_TRY(policy_validate(spec, *model, params.n_window > 0 ? params.n_window : limit, params.kv_page_size));
    }
    if (params.n_batch < 0) return Status::invalid("batch size %d: expected >= 0 (0 = the whole context)", params.n_batch);

    const int32_t w = params.n_window;
    const int32_t n_first = params.stream ? 1 : plan.n_context;
    const int32_t ns = plan.n_scored;
    const size_t nv = size_t(c.n_vocab);
    ContextParams cp;
    cp.n_ctx = w;
    cp.n_threads = params.n_threads;
    cp.n_batch = params.n_batch > 0 ? params.n_batch : std::max(n_first, 1);
    cp.kv_type = params.kv_type;
    cp.type_k = params.type_k;
    cp.type_v = params.type_v;
    cp.kv_page_size = params.kv_page_size;
    cp.kv_cold_dir = params.kv_cold_dir;

    Baseline base;
    std::vector<Accum> acc(policies.size() + 1);
    try {
        base.logits.resize(size_t(ns) * nv);
        base.lse.resize(size_t(ns));
        base.top.resize(size_t(ns));
        for (Accum& a : acc) a.klds.reserve(plan.starts.size() * size_t(ns));
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("eval ppl: no memory for %d baseline rows of %zu logits", ns, nv);
    }
    PplReport report;
    report.n_window = w;
    report.rss_per_policy = rss_peak_reset();

    const int64_t n_runs = int64_t(plan.starts.size()) * int64_t(acc.size());
    int64_t n_done = 0;
    std::vector<int32_t> tokens(static_cast<size_t>(w));  // [W] the window
    for (int64_t start : plan.starts) {
        size_t o = 0;
        if (bos) tokens[o++] = tok.bos();
        std::copy_n(text.begin() + start, size_t(w) - o, tokens.begin() + std::ptrdiff_t(o));
        if (params.dump) params.dump->begin_window(start, tokens);

        for (size_t ip = 0; ip < acc.size(); ++ip) {
            const bool is_base = ip == 0;
            cp.policy = is_base ? std::string("full") : policies[ip - 1];
            const bool base_own_type = is_base && params.base_type.has_value();
            cp.kv_type = base_own_type ? *params.base_type : params.kv_type;
            cp.type_k = base_own_type ? std::nullopt : params.type_k;
            cp.type_v = base_own_type ? std::nullopt : params.type_v;
            Accum& a = acc[ip];
            const bool reset = rss_peak_reset();
            report.rss_per_policy = report.rss_per_policy && reset;
            const auto t0 = std::chrono::steady_clock::now();
            auto on_context = [&](const Context& cx) {
                return params.dump ? params.dump->begin_run(int32_t(ip), cx) : Status();
            };
            auto on_row = [&](int32_t j, std::span<const float> row) -> Status {
                const size_t jj = size_t(j);
                std::span<const float> b(base.logits.data() + jj * nv, nv);
                if (is_base) {
                    std::copy(row.begin(), row.end(), base.logits.begin() + std::ptrdiff_t(jj * nv));
                    base.lse[jj] = log_sum_exp(row);
                    base.top[jj] = argmax(row);
                }
                const double lse = is_base ? base.lse[jj] : log_sum_exp(row);
                const int32_t target = tokens[size_t(n_first + j)];
                a.nll += lse - double(row[size_t(target)]);
                const double kl = kl_divergence(b, base.lse[jj], row, lse);
                a.kld += kl;
                a.kld_max = std::max(a.kld_max, kl);
                a.klds.push_back(float(kl));
                a.agree += argmax(row) == base.top[jj] ? 1 : 0;
                a.n += 1;
                return params.dump ? params.dump->row(row, kl, lse - double(row[size_t(target)])) : Status();
            };
            auto kv = run_window(model, cp, tokens, n_first, on_context, on_row);
            if (!kv.ok()) {
                return kv.status().with_context("eval ppl: policy '" + cp.policy + "', window at text token " +
                                                std::to_string(start));
            }
            a.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            a.kv_ctx += double(kv->bytes_context);
            a.kv_end += double(kv->bytes_end);
            a.n_windows += 1;
            a.rss = std::max(a.rss, rss_peak_bytes());
            if (progress) progress(++n_done, n_runs);
        }
    }

    for (size_t ip = 0; ip < acc.size(); ++ip) {
        const Accum& a = acc[ip];
        PplResult r;
        r.baseline = ip == 0;
        r.policy = ip == 0 ? "full" : policies[ip - 1];
        r.n_scored = a.n;
        const double n = double(std::max<int64_t>(a.n, 1));
        r.nll_mean = a.nll / n;
        r.ppl = std::exp(r.nll_mean);
        r.kld_mean = a.kld / n;
        r.kld_p99 = percentile(a.klds, 99.0);
        r.kld_max = a.kld_max;
        r.top1 = double(a.agree) / n;
        const double nw = double(std::max<int64_t>(a.n_windows, 1));
        r.kv_bytes_context = a.kv_ctx / nw;
        r.kv_bytes_end = a.kv_end / nw;
        r.rss_peak = a.rss;
        r.seconds = a.seconds;
        report.results.push_back(std::move(r));
    }
    report.plan = std::move(plan);
    return report;
}

}  // namespace hkv::eval
