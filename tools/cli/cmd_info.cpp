// heterokv info — what a GGUF model is: configuration, weight types, tokenizer, optionally tensors.
#include <cstdio>

#include "commands.h"
#include "model/model.h"

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
        auto m = Model::load(o->model);
        if (!m.ok()) return fail(m.status());
        const ModelConfig& c = (*m)->config();
        const Tokenizer& t = (*m)->tokenizer();
        std::printf("name            %s\n", c.name.c_str());
        std::printf("architecture    %s\n", c.arch.c_str());
        std::printf("layers          %d\n", c.n_layer);
        std::printf("embedding       %d\n", c.n_embd);
        std::printf("heads           %d query, %d kv, head_dim %d\n", c.n_head, c.n_head_kv, c.head_dim);
        std::printf("feed-forward    %d\n", c.n_ff);
        std::printf("context (train) %d\n", c.n_ctx_train);
        std::printf("rope            %s, n_rot %d, base %g, scale %g%s\n",
                    c.rope.style == RopeStyle::kNeox ? "neox" : "norm", c.rope.n_rot, c.rope.freq_base,
                    c.rope.freq_scale, c.rope.freq_factors ? ", freq factors" : c.rope_factors_long ? ", LongRoPE" : "");
        if (c.n_swa > 0) {
            int n_local = 0;
            for (int il = 0; il < c.n_layer; ++il) n_local += c.layer_swa(il);
            std::printf("sliding window  %d positions on %d of %d layers (their rope base %g)\n", c.n_swa, n_local,
                        c.n_layer, c.rope_swa.freq_base);
        }
        std::printf("weights         %.1f MiB: %s%s\n", double((*m)->weight_bytes()) / 1048576.0,
                    (*m)->weight_type_summary().c_str(), (*m)->tied_embeddings() ? " (tied embeddings)" : "");
        std::printf("tokenizer       %s%s%s, %d tokens, bos %d, eos %d\n", t.data().model.c_str(),
                    t.data().pre.empty() ? "" : "/", t.data().pre.c_str(), t.n_vocab(), t.bos(), t.eos());
        std::printf("kv per token    %lld bytes (f16)\n",
                    (long long)(2LL * c.n_layer * c.n_head_kv * c.head_dim * 2));
        if (o->tensors) {
            for (const GgufTensor& ten : (*m)->gguf().tensors()) {
                std::printf("  %-32s %-6s [%lld, %lld, %lld, %lld]\n", ten.name.c_str(), dtype_name(ten.type),
                            (long long)ten.ne[0], (long long)ten.ne[1], (long long)ten.ne[2], (long long)ten.ne[3]);
            }
        }
        return 0;
    };
}

}  // namespace hkv::cli
