// tests/consumer/consumer.cpp — a user's program on the installed library: loads a model, prints what
// it is, generates greedily under a policy and prints the text, then the cache's statistics and the
// engine's bound for that run on stderr.
//   consumer MODEL.gguf [N_PREDICT] [POLICY]
// stdout is exactly `heterokv run -m MODEL -p "" -n N_PREDICT --temp 0 -c 512 --policy POLICY`'s.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "heterokv/heterokv.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: consumer MODEL.gguf [N_PREDICT] [POLICY]\n");
        return 2;
    }
    const int n_predict = argc > 2 ? std::atoi(argv[2]) : 200;
    hkv::ContextParams cp;
    cp.n_ctx = 512;
    cp.policy = argc > 3 ? argv[3] : "full";
    auto fail = [](const hkv::Status& s) {
        std::fprintf(stderr, "consumer: %s\n", s.to_string().c_str());
        return 1;
    };
    auto model = hkv::model_load(argv[1]);
    if (!model.ok()) return fail(model.status());
    const hkv::ModelInfo info = hkv::model_info(**model);
    std::fprintf(stderr, "consumer: %s, %d layers, %d/%d heads, head_dim %d, %s\n", info.arch.c_str(), info.n_layer,
                 info.n_head, info.n_head_kv, info.head_dim, info.weight_types.c_str());
    auto ctx = hkv::Context::create(*model, cp);
    if (!ctx.ok()) return fail(ctx.status());
    auto sampler = hkv::Sampler::create({.temp = 0.0f});
    if (!sampler.ok()) return fail(sampler.status());
    const hkv::Tokenizer& tok = hkv::model_tokenizer(**model);
    const std::vector<int32_t> prompt = tok.encode("", true);
    std::string text;
    hkv::Status st = hkv::generate(**ctx, *sampler, prompt, n_predict, false, [&](int32_t id) {
        text += tok.token_to_piece(id);
        return true;
    });
    if (!st.ok()) return fail(st);
    std::printf("%s\n\n", text.c_str());
    const hkv::KvStats kv = (*ctx)->kv_stats();
    auto bound = hkv::kv_bytes_bound(**model, cp, int32_t(prompt.size()), n_predict);
    if (!bound.ok()) return fail(bound.status());
    std::fprintf(stderr, "consumer: KV %lld bytes in %lld slots (bound %lld), policy %s\n", (long long)kv.bytes_in_use,
                 (long long)kv.slots_total, (long long)*bound, cp.policy.c_str());
    return kv.bytes_in_use <= *bound ? 0 : 1;
}
