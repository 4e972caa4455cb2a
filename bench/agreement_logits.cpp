// bench/agreement_logits.cpp — heterokv's next-token log-probabilities along llama.cpp's greedy path.
//
//   hkv_agreement MODEL.gguf PROBS.json [threads] [tol]
//
// PROBS.json is scripts/golden_probs.py's output (prompt token ids, the reference's greedy tokens
// and its top log-probabilities per step). The prompt ids are evaluated as given (no tokenizer in
// the loop), then the reference's tokens are fed one by one (teacher forcing). For each step prints
// the reference's top-2 gap, heterokv's top-2 tokens and gap, and whether the argmaxes agree; ends
// with the first step where they differ and a summary: agreeing steps, the largest |log-probability
// difference| over the reference's top tokens, and whether every disagreement is a near-tie (the
// reference's top-2 gap below tol, default 0.25 nats). Exit status 3 when fewer than all but one
// step agree or a disagreement is not a near-tie (scripts/check_agreement.sh). Used for
// docs/performance.md and docs/models.md ("Agreement with llama.cpp").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "heterokv/engine.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL.gguf PROBS.json [threads]\n", argv[0]);
        return 2;
    }
    std::ifstream f(argv[2]);
    const nlohmann::json g = nlohmann::json::parse(f);
    auto model = hkv::model_load(argv[1]);
    if (!model.ok()) {
        std::fprintf(stderr, "error: %s\n", model.status().to_string().c_str());
        return 1;
    }
    const std::vector<int32_t> prompt = g["prompt_tokens"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ref = g["tokens"].get<std::vector<int32_t>>();
    hkv::ContextParams cp;
    cp.n_ctx = int32_t(prompt.size() + ref.size() + 1);
    cp.n_threads = argc > 3 ? std::atoi(argv[3]) : 2;
    auto ctx = hkv::Context::create(*model, cp);
    if (!ctx.ok()) {
        std::fprintf(stderr, "error: %s\n", ctx.status().to_string().c_str());
        return 1;
    }
    hkv::Context& cx = **ctx;
    const double tol = argc > 4 ? std::atof(argv[4]) : 0.25;
    if (auto st = cx.eval(prompt); !st.ok()) return 1;
    int first_diff = -1, n_agree = 0;
    bool ties_only = true;
    double max_lp_diff = 0.0;
    std::printf("step ref_top1 ref_gap hkv_top1 hkv_top2 hkv_gap hkv_lp(ref_top1) agree\n");
    for (size_t i = 0; i < ref.size(); ++i) {
        const std::span<const float> lg = cx.logits();  // [n_vocab]
        const float mx = *std::max_element(lg.begin(), lg.end());
        double z = 0;
        for (float v : lg) z += std::exp(double(v - mx));
        const double lz = double(mx) + std::log(z);
        int32_t a = 0, b = -1;
        for (int32_t t = 1; t < int32_t(lg.size()); ++t) {
            if (lg[size_t(t)] > lg[size_t(a)]) b = a, a = t;
            else if (b < 0 || lg[size_t(t)] > lg[size_t(b)]) b = t;
        }
        const auto& top = g["steps"][i]["top"];
        const double ref_gap = top.size() > 1 ? top[0][1].get<double>() - top[1][1].get<double>() : NAN;
        const bool agree = a == ref[i];
        if (!agree && first_diff < 0) first_diff = int(i);
        n_agree += agree;
        if (!agree && !(ref_gap < tol)) ties_only = false;
        for (const auto& t : top) {
            const double lp = double(lg[t[0].get<size_t>()]) - lz;
            max_lp_diff = std::max(max_lp_diff, std::abs(lp - t[1].get<double>()));
        }
        std::printf("%zu %d %.4f %d %d %.4f %.4f %s\n", i, ref[i], ref_gap, a, b,
                    double(lg[size_t(a)] - lg[size_t(b)]), double(lg[size_t(ref[i])]) - lz, agree ? "yes" : "NO");
        if (auto st = cx.eval({&ref[i], 1}); !st.ok()) return 1;
    }
    std::printf("first divergent step: %d\n", first_diff);
    const bool pass = n_agree + 1 >= int(ref.size()) && ties_only;
    std::printf("summary: top-1 %d/%zu, disagreements %s near-ties (ref top-2 gap < %.3g), max |logprob diff| %.4f: %s\n",
                n_agree, ref.size(), ties_only ? "all" : "NOT all", tol, max_lp_diff, pass ? "pass" : "FAIL");
    return pass ? 0 : 3;
}
