// heterokv make-model — writes a GGUF with deterministic synthetic weights of a named shape.
#include <cstdio>

#include "commands.h"
#include "progress.h"
#include "heterokv/synthetic.h"

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
    app.add_option("--tokenizer", o->tokenizer,
                   "Hugging Face tokenizer.json, or a GGUF whose tokenizer to take (e.g. stories260K.gguf for a "
                   "SentencePiece vocabulary), padded to the preset's vocabulary")
        ->required()->check(CLI::ExistingFile);
    app.add_option("--type", o->type,
                   "weight type: f32, f16, q8_0, q2_k, q3_k, q4_k, iq4_nl, iq4_xs (the K and IQ4 types keep the "
                   "output matrix in q6_K, as llama.cpp's Q*_K_M / IQ4 files)")
        ->capture_default_str();
    app.add_option("--seed", o->seed, "weight seed (same seed, same file)")->check(kU64Check)->capture_default_str();
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
        if (Status st = file_check_output(o->out, "-o"); !st.ok()) return fail(st);  // before any work
        if (o->n_ctx > 0) shape->n_ctx = o->n_ctx;
        SynthOptions so;
        auto type = synth_type_parse(o->type);
        if (!type.ok()) return fail(Status::invalid("--type %s", type.status().message().c_str()));
        so.weight_type = *type;
        so.seed = o->seed;
        so.n_threads = o->n_threads;
        auto tok = tokenizer_data_load(o->tokenizer);
        if (!tok.ok()) return fail(tok.status());
        if (!o->chat_template.empty()) {
            auto text = file_read(o->chat_template, kFileMaxSmall, "--chat-template");
            if (!text.ok()) return fail(text.status());
            tok->chat_template = std::move(*text);
        }
        const double total_mb = double(synth_weight_bytes(*shape, so.weight_type)) / 1048576.0;
        std::fprintf(stderr, "heterokv: writing %s (%s, %s, %.1f MiB of weights) to %s\n", o->preset.c_str(),
                     shape->arch.c_str(), o->type.c_str(), total_mb, o->out.c_str());
        Progress bar("writing", "tensors");
        so.progress = [&](size_t done, size_t total, uint64_t bytes) {
            char detail[64];
            std::snprintf(detail, sizeof(detail), "%.1f/%.1f MiB", double(bytes) / 1048576.0, total_mb);
            bar.update(int64_t(done), int64_t(total), detail);
        };
        Status st = synth_model_write(*shape, *tok, so, o->out);
        bar.end();
        if (!st.ok()) return fail(st);
        std::fprintf(stderr, "heterokv: wrote %s\n", o->out.c_str());
        return 0;
    };
}

}  // namespace hkv::cli
