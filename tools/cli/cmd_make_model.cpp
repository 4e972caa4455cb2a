// heterokv make-model — writes a GGUF with deterministic synthetic weights of a named shape.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "core/thread_pool.h"
#include "model/synthetic.h"

namespace hkv::cli {

Runner add_make_model(CLI::App& app) {
    struct Opts {
        std::string preset, out, tokenizer, type = "q8_0";
        std::string chat_template;  // file whose text becomes tokenizer.chat_template
        uint64_t seed = 1;
        int32_t n_threads = 0;
        int32_t n_ctx = 0;
    };
    auto o = std::make_shared<Opts>();
    std::string presets;
    for (const std::string& n : synth_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
    app.add_option("--preset", o->preset, "shape preset: " + presets)->required();
    app.add_option("-o,--output", o->out, "output GGUF path")->required();
    app.add_option("--tokenizer", o->tokenizer, "Hugging Face tokenizer.json to embed (padded to the preset's vocabulary)")
        ->required()->check(CLI::ExistingFile);
    app.add_option("--type", o->type, "weight type: f32, f16, q8_0, q4_k (q4_k: Q4_K_M-like, output q6_K)")
        ->capture_default_str();
    app.add_option("--seed", o->seed, "weight seed (same seed, same file)")->capture_default_str();
    app.add_option("-c,--ctx-size", o->n_ctx, "context length written to the metadata (0: the preset's)")
        ->capture_default_str();
    app.add_option("--chat-template", o->chat_template,
                   "file holding a Jinja chat template to write as tokenizer.chat_template (default: the tokenizer's, if any)")
        ->check(CLI::ExistingFile);
    app.add_option("-t,--threads", o->n_threads, "threads for quantization (0: all cores)")->capture_default_str();
    return [o]() -> int {
        auto shape = synth_preset(o->preset);
        if (!shape.ok()) return fail(shape.status());
        if (o->n_ctx < 0) return fail(Status::invalid("--ctx-size %d < 0", o->n_ctx));
        if (o->n_ctx > 0) shape->n_ctx = o->n_ctx;
        SynthOptions so;
        if (o->type == "f32") so.weight_type = DType::kF32;
        else if (o->type == "f16") so.weight_type = DType::kF16;
        else if (o->type == "q8_0") so.weight_type = DType::kQ8_0;
        else if (o->type == "q4_k" || o->type == "q4_K") so.weight_type = DType::kQ4_K;
        else return fail(Status::invalid("--type '%s': expected f32, f16, q8_0 or q4_k", o->type.c_str()));
        so.seed = o->seed;
        auto tok = tokenizer_data_from_hf_json(o->tokenizer);
        if (!tok.ok()) return fail(tok.status());
        if (!o->chat_template.empty()) {
            std::ifstream in(o->chat_template, std::ios::binary);
            std::stringstream ss;
            ss << in.rdbuf();
            if (!in.good() && !in.eof()) return fail(Status::io_error("cannot read %s", o->chat_template.c_str()));
            tok->chat_template = ss.str();
        }
        const double total_mb = double(synth_weight_bytes(*shape, so.weight_type)) / 1048576.0;
        std::fprintf(stderr, "heterokv: writing %s (%s, %s, %.1f MiB of weights) to %s\n", o->preset.c_str(),
                     shape->arch.c_str(), o->type.c_str(), total_mb, o->out.c_str());
        so.progress = [&](size_t done, size_t total, uint64_t bytes) {
            std::fprintf(stderr, "\rheterokv: tensor %zu/%zu, %.1f/%.1f MiB", done, total, double(bytes) / 1048576.0,
                         total_mb);
            if (done == total) std::fprintf(stderr, "\n");
        };
        ThreadPool pool(o->n_threads);
        Status st = synth_model_write(*shape, *tok, so, pool, o->out);
        if (!st.ok()) return fail(st);
        std::fprintf(stderr, "heterokv: wrote %s\n", o->out.c_str());
        return 0;
    };
}

}  // namespace hkv::cli
