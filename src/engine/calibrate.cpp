// engine/calibrate.cpp — HeteroCache calibration on a Context (include/heterokv/calibrate.h).
#include "heterokv/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "engine/policy_check.h"
#include "heterokv/engine.h"
#include "model/model.h"
#include "policy/heterocache_profile.h"
#include "sample/sampler.h"

namespace hkv {

namespace {

// Tokens of the text's beginning: at least n_want when the text has them (BOS first when the model
// adds one, no trailing EOS). Large files are tokenized by growing prefixes cut at whitespace.
std::vector<int32_t> tokenize_prefix(const Model& model, std::string_view text, int32_t n_want) {
    const Tokenizer& tok = model.tokenizer();
    size_t len = std::min(text.size(), size_t(n_want) * 16 + 4096);
    for (;;) {
        size_t cut = len;
        if (cut < text.size()) {  // end at whitespace so no word (or UTF-8 sequence) is split
            while (cut > 0 && text[cut - 1] != ' ' && text[cut - 1] != '\n') --cut;
            if (cut == 0) cut = len;
        }
        std::vector<int32_t> ids = tok.encode(text.substr(0, cut), /*add_special=*/tok.add_bos());
        if (!ids.empty() && tok.eos() >= 0 && ids.back() == tok.eos()) ids.pop_back();
        if (tok.add_bos() && tok.bos() >= 0 && (ids.empty() || ids[0] != tok.bos())) ids.insert(ids.begin(), tok.bos());
        if (int64_t(ids.size()) >= n_want || len >= text.size()) return ids;
        len = std::min(text.size(), len * 2);
    }
}

// The observer's state: one row and one set buffer, reused for every head.
struct Capture {
    HcProfiler* profiler = nullptr;
    int32_t n_prompt = 0, topk = 0;
    std::vector<float> row, scratch;  // [L0]
    std::vector<int32_t> set;         // [topk]
    int64_t n_prefill_obs = 0, n_decode_obs = 0;

    Status observe(const AttnObservation& ob) {
        for (int32_t ih = 0; ih < ob.n_head_kv; ++ih) {
            row.assign(size_t(n_prompt), 0.0f);
            const size_t off = size_t(ih) * size_t(ob.n_slot);
            for (int32_t s = 0; s < ob.n_live[size_t(ih)]; ++s) {
                const int32_t p = ob.pos[off + size_t(s)];
                if (p >= 0 && p < n_prompt) row[size_t(p)] = ob.attn[off + size_t(s)];
            }
            hc_topk_set(row, topk, scratch, set);
            HKV_TRY(ob.decode ? profiler->add_decode(ob.il, ih, set) : profiler->add_prefill(ob.il, ih, set));
        }
        ++(ob.decode ? n_decode_obs : n_prefill_obs);
        return Status();
    }
};

}  // namespace

Expected<int32_t> calibrate_topk(double topk, int32_t n_prompt) {
    if (!(topk > 0.0) || !std::isfinite(topk)) return Status::invalid("--topk %g: expected a count >= 1 or a fraction in (0, 1)", topk);
    if (n_prompt < 1) return Status::invalid("calibrate: no prompt tokens");
    double k = topk;
    if (topk < 1.0) {
        k = std::max(1.0, std::round(topk * double(n_prompt)));
    } else if (topk != std::floor(topk)) {
        return Status::invalid("--topk %g: a count must be an integer (or give a fraction in (0, 1))", topk);
    }
    return int32_t(std::min(k, double(n_prompt)));
}

Expected<CalibrateResult> calibrate_run(std::shared_ptr<const Model> model, std::string_view text,
                                        const CalibrateParams& p, const CalibrateProgressFn& progress) {
    if (!model) return Status::invalid("calibrate: no model");
    if (p.n_decode < 1) return Status::invalid("--decode %d: at least one decode step is needed (stability is a median over them)", p.n_decode);
    if (p.n_tokens < 8) return Status::invalid("--tokens %d: at least 8 calibration tokens are needed", p.n_tokens);
    if (!(p.tau_stable >= 0.0 && p.tau_stable <= 1.0)) return Status::invalid("--tau-stable %g: expected [0, 1]", p.tau_stable);
    if (!(p.tau_sim > 0.0 && p.tau_sim <= 1.0)) return Status::invalid("--tau-sim %g: expected (0, 1]", p.tau_sim);
    const ModelConfig& c = model->config();

    ContextParams cp;
    cp.n_ctx = p.n_ctx;
    cp.n_threads = p.n_threads;
    cp.n_batch = p.n_batch;
    cp.kv_type = p.kv_type;
    cp.type_k = p.type_k;
    cp.type_v = p.type_v;
    auto ctx = Context::create(model, cp);
    if (!ctx.ok()) return ctx.status();
    Context& cx = **ctx;
    const int32_t room = cx.n_ctx() - p.n_decode;
    if (room < 8) {
        return Status::out_of_range("calibrate: a context of %d tokens leaves %d for the prompt after %d decode steps "
                                    "(at least 8 needed; raise -c or lower --decode)", cx.n_ctx(), room, p.n_decode);
    }
    const int32_t want = std::min(p.n_tokens, room);

    CalibrateResult r;
    r.n_cap = want;
    std::vector<int32_t> ids = tokenize_prefix(*model, text, want);
    if (int32_t(ids.size()) < 8) return Status::invalid("calibrate: the text gives %zu tokens (at least 8 needed)", ids.size());
    ids.resize(size_t(std::min<int64_t>(int64_t(ids.size()), want)));
    r.n_prompt = int32_t(ids.size());
    auto k = calibrate_topk(p.topk, r.n_prompt);
    if (!k.ok()) return k.status();
    r.topk = *k;

    HcProfileParams hp;
    hp.tau_stable = p.tau_stable;
    hp.tau_sim = p.tau_sim;
    hp.local_layers = model_local_layers(*model, cx.n_ctx());  // Gemma's sliding-window layers
    HcProfiler profiler(c.n_layer, c.n_head_kv, hp);
    Capture cap;
    cap.profiler = &profiler;
    cap.n_prompt = r.n_prompt;
    cap.topk = r.topk;
    cx.set_attn_observer([&cap](const AttnObservation& ob) { return cap.observe(ob); });

    const auto t0 = std::chrono::steady_clock::now();
    HKV_TRY(cx.eval(ids, nullptr, [&](int64_t done, int64_t total) {
        if (progress) progress("prefill", done, total);
    }));
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<int32_t> gen;
    int32_t next = sample_greedy(cx.logits());
    for (int32_t step = 0; step < p.n_decode; ++step) {
        gen.push_back(next);
        HKV_TRY(cx.eval({&next, 1}));
        next = sample_greedy(cx.logits());
        if (progress) progress("decode", step + 1, p.n_decode);
    }
    const auto t2 = std::chrono::steady_clock::now();
    r.prefill_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    r.decode_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
    r.n_decode = p.n_decode;
    r.generated = model->tokenizer().decode(gen);
    if (cap.n_prefill_obs != c.n_layer || cap.n_decode_obs != int64_t(c.n_layer) * p.n_decode) {
        return Status::internal("calibrate: observed %lld prefill and %lld decode layer steps, expected %d and %lld",
                                (long long)cap.n_prefill_obs, (long long)cap.n_decode_obs, c.n_layer,
                                (long long)c.n_layer * p.n_decode);
    }
    auto t = profiler.finish();
    if (!t.ok()) return t.status();
    r.taxonomy = std::move(t).value();
    r.taxonomy.topk = r.topk;
    return r;
}

std::string taxonomy_summary(const Taxonomy& t) {
    std::string out;
    char buf[256];
    const int32_t n = t.n_layer * t.n_head_kv;
    std::snprintf(buf, sizeof buf,
                  "%d layers x %d KV heads = %d heads: anchor %d, volatile %d, pivot %d, satellite %d; full KV "
                  "(volatile + pivot) %d = %.1f%%\n",
                  t.n_layer, t.n_head_kv, n, t.count(HeadRole::kAnchor), t.count(HeadRole::kVolatile),
                  t.count(HeadRole::kPivot), t.count(HeadRole::kSatellite), t.n_full(),
                  n > 0 ? 100.0 * t.n_full() / n : 0.0);
    out += buf;
    std::vector<double> ratios;
    for (double q : t.ratio) {
        if (q > 0) ratios.push_back(q);
    }
    if (!ratios.empty()) {
        std::sort(ratios.begin(), ratios.end());
        std::snprintf(buf, sizeof buf, "budget ratios of the %zu compressed heads: min %.3f, median %.3f, max %.3f\n",
                      ratios.size(), ratios.front(), hc_median(ratios), ratios.back());
        out += buf;
    }
    std::snprintf(buf, sizeof buf, "thresholds: tau_stable %g, tau_sim %g; topk %d%s%s\n", t.tau_stable, t.tau_sim,
                  t.topk, t.source.empty() ? "" : "; ", t.source.c_str());
    out += buf;
    out += "roles: A = anchor, V = volatile, P = pivot, S = satellite\n";
    out += "| layer | roles | A | V | P | S | clusters (pivot: satellites) |";
    if (!t.stability.empty()) out += " stability min / median / max |";
    out += "\n|---|---|---|---|---|---|---|";
    if (!t.stability.empty()) out += "---|";
    out += "\n";
    for (int32_t il = 0; il < t.n_layer; ++il) {
        std::string roles;
        int cnt[5] = {};
        for (int32_t ih = 0; ih < t.n_head_kv; ++ih) {
            const HeadRole r = t.role_of(il, ih);
            roles += "?AVPS"[int(r)];
            ++cnt[int(r)];
        }
        std::string cl;
        for (const HeadCluster& c : t.clusters[size_t(il)]) {
            if (!cl.empty()) cl += "; ";
            cl += std::to_string(c.pivot) + ":";
            for (size_t i = 0; i < c.satellites.size(); ++i) {
                if (i > 0) cl += ',';
                cl += std::to_string(c.satellites[i]);
            }
        }
        std::snprintf(buf, sizeof buf, "| %d | %s | %d | %d | %d | %d | %s |", il, roles.c_str(), cnt[1], cnt[2], cnt[3],
                      cnt[4], cl.empty() ? "-" : cl.c_str());
        out += buf;
        if (!t.stability.empty()) {
            std::vector<double> s(t.stability.begin() + long(t.at(il, 0)),
                                  t.stability.begin() + long(t.at(il, 0)) + t.n_head_kv);
            std::sort(s.begin(), s.end());
            std::snprintf(buf, sizeof buf, " %.3f / %.3f / %.3f |", s.front(), hc_median(s), s.back());
            out += buf;
        }
        out += "\n";
    }
    return out;
}

}  // namespace hkv
