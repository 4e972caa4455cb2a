// heterokv info — what a GGUF model is: configuration, weight types, tokenizer, optionally tensors.
#include <cstdio>

#include "commands.h"
#include "heterokv/model.h"

namespace hkv::cli {

Runner add_info(CLI::App& app) {
    struct Opts {
        std::string model;
        bool tensors = false;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
    app.add_flag("--tensors", o->tensors, "also list every tensor");
    return [o]() -> int {
        auto m = model_load(o->model);
        if (!m.ok()) return fail(m.status());
        const ModelInfo c = model_info(**m);
        const Tokenizer& t = model_tokenizer(**m);
        std::printf("name            %s\n", c.name.c_str());
        std::printf("architecture    %s\n", c.arch.c_str());
        std::printf("layers          %d\n", c.n_layer);
        std::printf("embedding       %d\n", c.n_embd);
        std::printf("heads           %d query, %d kv, head_dim %d\n", c.n_head, c.n_head_kv, c.head_dim);
        std::printf("feed-forward    %d\n", c.n_ff);
        std::printf("context (train) %d\n", c.n_ctx_train);
        std::printf("rope            %s, n_rot %d, base %g, scale %g%s\n",
                    c.rope_style.c_str(), c.rope_n_rot, c.rope_freq_base, c.rope_freq_scale,
                    c.rope_freq_factors ? ", freq factors" : c.rope_longrope ? ", LongRoPE" : "");
        if (c.n_swa > 0) {
            std::printf("sliding window  %d positions on %d of %d layers (their rope base %g)\n", c.n_swa,
                        c.n_swa_layers, c.n_layer, c.rope_swa_freq_base);
        }
        std::printf("weights         %.1f MiB: %s%s\n", double(c.weight_bytes) / 1048576.0, c.weight_types.c_str(),
                    c.tied_embeddings ? " (tied embeddings)" : "");
        std::printf("tokenizer       %s%s%s, %d tokens, bos %d, eos %d\n", t.data().model.c_str(),
                    t.data().pre.empty() ? "" : "/", t.data().pre.c_str(), t.n_vocab(), t.bos(), t.eos());
        std::printf("kv per token    %lld bytes (f16)\n",
                    (long long)(2LL * c.n_layer * c.n_head_kv * c.head_dim * 2));
        if (o->tensors) {
            for (const TensorInfo& ten : model_tensors(**m)) {
                std::printf("  %-32s %-6s [%lld, %lld, %lld, %lld]\n", ten.name.c_str(), ten.type.c_str(),
                            (long long)ten.ne[0], (long long)ten.ne[1], (long long)ten.ne[2], (long long)ten.ne[3]);
            }
        }
        return 0;
    };
}

}  // namespace hkv::cli
