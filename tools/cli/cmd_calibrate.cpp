// heterokv calibrate — HeteroCache's offline profiling (tools/eval/calibrate.h): writes a head
// taxonomy JSON in the reference schema; --show prints the summary of any taxonomy file.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "progress.h"
#include "heterokv/calibrate.h"
#include "heterokv/engine.h"

namespace hkv::cli {

Runner add_calibrate(CLI::App& app) {
    struct Opts {
        std::string model, file, output, show;
        KvTypeOptions kv_types;
        CalibrateParams p;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-m,--model", o->model, "GGUF model file (required unless --show)")->check(CLI::ExistingFile);
    app.add_option("-f,--file", o->file, "calibration text file (required unless --show)")->check(CLI::ExistingFile);
    app.add_option("-o,--output", o->output, "taxonomy JSON to write (default: <model stem>.hc-taxonomy.json)");
    app.add_option("--tokens", o->p.n_tokens,
                   "L0: calibration tokens, BOS included (capped to the context minus --decode, and to the text)")
        ->capture_default_str();
    app.add_option("--decode", o->p.n_decode, "greedy decode steps observed after the prefill")->capture_default_str();
    app.add_option("--topk", o->p.topk,
                   "top-k set size per head: a count, or a fraction of L0 in (0, 1). A count is clamped to L0; "
                   "for short contexts (L0 well below 5000) a count of 1024 covers most or all keys and makes every "
                   "head look stable and similar: give a fraction, e.g. 0.2 (the reference's 1024 / 5000)")
        ->capture_default_str();
    app.add_option("--tau-stable", o->p.tau_stable, "anchor if stability >= this, else volatile")->capture_default_str();
    app.add_option("--tau-sim", o->p.tau_sim, "similarity threshold of the head graph")->capture_default_str();
    app.add_option("-c,--ctx-size", o->p.n_ctx, "context size in tokens (0: the model's training context)")
        ->capture_default_str();
    app.add_option("-t,--threads", o->p.n_threads, "threads (0: all cores)")->capture_default_str();
    app.add_option("-b,--batch-size", o->p.n_batch, "prefill chunk size in tokens")->capture_default_str();
    o->kv_types.add(app);
    app.add_option("--show", o->show, "print the summary of a taxonomy file (ours or the reference's) and exit")
        ->check(CLI::ExistingFile);
    return [o]() -> int {
        if (!o->show.empty()) {
            auto t = taxonomy_load(o->show);
            if (!t.ok()) return fail(t.status());
            std::fputs(taxonomy_summary(*t).c_str(), stdout);
            return 0;
        }
        if (o->model.empty() || o->file.empty()) return fail(Status::invalid("calibrate needs -m MODEL and -f TEXT (or --show FILE)"));
        if (Status st = o->kv_types.apply(o->p); !st.ok()) return fail(st);
        auto text_read = file_read(o->file, kFileMaxText, "-f");
        if (!text_read.ok()) return fail(text_read.status());
        const std::string text = std::move(*text_read);
        const std::string out = !o->output.empty()
                                    ? o->output
                                    : std::filesystem::path(o->model).stem().string() + ".hc-taxonomy.json";
        // Before the long run: the output must be a new or regular file (never a device or FIFO).
        if (Status st = file_check_output(out, "-o"); !st.ok()) return fail(st);

        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        const ModelInfo c = model_info(**model);
        std::fprintf(stderr, "heterokv: calibrate %s: %d layers x %d KV heads (%d query heads)\n", o->model.c_str(),
                     c.n_layer, c.n_head_kv, c.n_head);
        std::unique_ptr<Progress> bar;
        std::string bar_phase;
        auto r = calibrate_run(*model, text, o->p, [&](const char* phase, int64_t done, int64_t total) {
            if (!bar || bar_phase != phase) bar = std::make_unique<Progress>(bar_phase = phase, "");
            bar->update(done, total);
        });
        if (bar) bar->end();
        if (!r.ok()) return fail(r.status());
        if (r->n_prompt < o->p.n_tokens) {
            std::fprintf(stderr, "heterokv: L0 = %d tokens (asked %d; %s)\n", r->n_prompt, o->p.n_tokens,
                         r->n_prompt < r->n_cap ? "the text is shorter" : "capped to the context minus --decode");
        }
        if (2 * int64_t(r->topk) > r->n_prompt) {
            std::fprintf(stderr, "heterokv: warning: top-k %d covers %.0f%% of the %d keys; sets that large overlap "
                         "whatever the attention does (the reference used 1024 of 5000 = 20%%; try --topk 0.2)\n",
                         r->topk, 100.0 * r->topk / r->n_prompt, r->n_prompt);
        }
        std::fprintf(stderr, "heterokv: prefill %d tokens %.1f s, decode %d steps %.1f s\n", r->n_prompt,
                     r->prefill_ms / 1000.0, r->n_decode, r->decode_ms / 1000.0);
        Taxonomy& t = r->taxonomy;
        char src[512];
        std::snprintf(src, sizeof src, "heterokv calibrate: model %s%s%s%s, text %s, L0 %d tokens, %d decode steps, topk %d",
                      std::filesystem::path(o->model).filename().string().c_str(), c.name.empty() ? "" : " (",
                      c.name.c_str(), c.name.empty() ? "" : ")",
                      std::filesystem::path(o->file).filename().string().c_str(), r->n_prompt, r->n_decode, r->topk);
        t.source = src;
        Status st = taxonomy_save(t, out);
        if (!st.ok()) return fail(st);
        std::fputs(taxonomy_summary(t).c_str(), stdout);
        std::fprintf(stderr, "heterokv: wrote %s\n", out.c_str());
        return 0;
    };
}

}  // namespace hkv::cli
