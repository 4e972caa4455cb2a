// heterokv run — load a model, prefill a prompt, stream generated text to stdout, timings to stderr.
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <algorithm>
#include <random>

#include "commands.h"
#include "progress.h"
#include "heterokv/engine.h"
#include "heterokv/generate.h"
#include "heterokv/policy.h"
#include "heterokv/sampler.h"

namespace hkv::cli {
namespace {

struct RunOptions {
    std::string model, prompt, prompt_file;
    bool prompt_set = false;
    int32_t n_predict = 128;
    GenOptions gen;
    bool ignore_eos = false;
    bool no_bos = false;
    bool special = false;
    bool no_echo = false;
};

}  // namespace

Expected<KvType> parse_kv_type(const std::string& s) {
    auto t = kv_type_parse(s);
    if (!t.ok()) return Status::invalid("--kv-type %s", t.status().message().c_str());
    return t;
}

void KvTypeOptions::add(CLI::App& app) {
    app.add_option("--kv-type", both, "KV cache element type of K and V: f16, bf16, f32, q8_0, q4_0, hq4")
        ->capture_default_str();
    // -ctk / -ctv (llama.cpp's spelling) are rewritten to these names in main.cpp
    app.add_option("--cache-type-k", k, "KV cache type of K, also -ctk (overrides --kv-type): f16, bf16, f32, q8_0, q4_0, hq4");
    app.add_option("--cache-type-v", v, "KV cache type of V, also -ctv (overrides --kv-type): f16, bf16, f32, q8_0, q4_0, hq4");
}

Status KvTypeOptions::parse(KvType out[3]) const {
    const std::string* names[3] = {&both, &k, &v};
    const char* opts[3] = {"--kv-type", "--cache-type-k", "--cache-type-v"};
    for (int i = 0; i < 3; ++i) {
        if (i > 0 && names[i]->empty()) continue;
        auto t = kv_type_parse(*names[i]);
        if (!t.ok()) return Status::invalid("%s %s", opts[i], t.status().message().c_str());
        out[i] = *t;
    }
    return Status();
}

std::string KvTypeOptions::label() const {
    const std::string kk = k.empty() ? both : k, vv = v.empty() ? both : v;
    return kk == vv ? kk : kk + "/" + vv;
}

Expected<std::optional<uint64_t>> parse_seed(const std::string& s, const char* opt) {
    if (s == "-1") return std::optional<uint64_t>();
    uint64_t v = 0;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, v);
    if (s.empty() || ec != std::errc() || p != end) {
        return Status::invalid("%s '%s': expected -1 (random) or an integer in [0, 18446744073709551615]", opt,
                               s.c_str());
    }
    return std::optional<uint64_t>(v);
}

Status check_kv_cold_dir(const std::string& dir, const std::vector<std::string>& policies) {
    if (dir.empty()) return Status();
    // TODO(#16): ask the policy whether it has a cold tier once the public API says so.
    bool used = false;
    for (const std::string& p : policies) used = used || p.substr(0, p.find(':')) == "heterocache";
    if (!used) {
        return Status::invalid("--kv-cold-dir %s: no policy given has a cold tier (only heterocache keeps one); "
                               "drop the option or use --policy heterocache:...", dir.c_str());
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        return Status::invalid("--kv-cold-dir %s: %s", dir.c_str(),
                               std::filesystem::exists(dir, ec) ? "not a folder" : "no such folder");
    }
    return Status();
}

void add_kv_cold_gather(CLI::App& app, std::string* value) {
    app.add_option("--kv-cold-gather", *value,
                   "how a RAM cold tier gathers a refresh: thread (its I/O thread, while computing), fence (when "
                   "the layer needs the rows, over the compute threads), auto (thread when a core is spare)")
        ->check(CLI::IsMember({"auto", "thread", "fence"}))
        ->capture_default_str();
}

ContextParams::ColdGather kv_cold_gather(const std::string& value) {
    return value == "thread"  ? ContextParams::ColdGather::kThread
           : value == "fence" ? ContextParams::ColdGather::kFence
                              : ContextParams::ColdGather::kAuto;
}

void add_gen_options(CLI::App& app, GenOptions& o) {
    app.add_option("-c,--ctx-size", o.n_ctx, "context size in tokens (0: the model's training context)")
        ->capture_default_str();
    app.add_option("-t,--threads", o.n_threads, "threads (0: all cores)")->capture_default_str();
    app.add_option("-b,--batch-size", o.n_batch, "prefill chunk size in tokens")->capture_default_str();
    o.kv_types.add(app);
    app.add_option("--kv-page-size", o.page_size, "KV cache page size in slots")->capture_default_str();
    app.add_option("--kv-cold-dir", o.kv_cold_dir, "folder for the cold tier of policies that have one (heterocache: satellites' full prompt KV); default: host RAM");
    add_kv_cold_gather(app, &o.kv_cold_gather);
    app.add_option("--policy", o.policy, "KV compression policy spec, e.g. snapkv:budget=256 (policies: " +
                   policy_names() + ")")->capture_default_str();
    app.add_option("--temp", o.temp, "temperature (0: greedy)")->capture_default_str();
    app.add_option("--top-k", o.top_k, "top-k filter (0: off)")->capture_default_str();
    app.add_option("--top-p", o.top_p, "top-p (nucleus) filter (1: off)")->capture_default_str();
    app.add_option("--min-p", o.min_p, "min-p filter (0: off)")->capture_default_str();
    app.add_option("--repeat-penalty", o.repeat_penalty, "repetition penalty (1: off)")->capture_default_str();
    app.add_option("--repeat-last-n", o.repeat_last_n, "tokens the repetition penalty looks back")
        ->capture_default_str();
    app.add_option("-s,--seed", o.seed, "random seed in [0, 2^64-1] (-1: random, printed to stderr)")
        ->capture_default_str();
    app.add_flag("--swa-full", o.swa_full, "keep every slot of sliding-window layers (default: free what leaves the window)");
}

Expected<ContextParams> gen_context_params(const GenOptions& o) {
    HKV_TRY(check_kv_cold_dir(o.kv_cold_dir, {o.policy}));
    ContextParams cp;
    HKV_TRY(o.kv_types.apply(cp));
    cp.n_ctx = o.n_ctx;
    cp.n_threads = o.n_threads;
    cp.n_batch = o.n_batch;
    cp.kv_page_size = o.page_size;
    cp.kv_cold_dir = o.kv_cold_dir;
    cp.kv_cold_gather = kv_cold_gather(o.kv_cold_gather);
    cp.policy = o.policy;
    cp.swa_full = o.swa_full;
    return cp;
}

Expected<SamplerParams> gen_sampler_params(const GenOptions& o) {
    HKV_ASSIGN_OR_RETURN(const std::optional<uint64_t> seed_opt, parse_seed(o.seed, "--seed"));
    const uint64_t seed = seed_opt.value_or(std::random_device{}());
    if (!seed_opt.has_value() && o.temp > 0.0f) {  // greedy decoding (--temp 0) draws no random numbers
        std::fprintf(stderr, "heterokv: seed %llu\n", (unsigned long long)seed);
    }
    return SamplerParams{o.temp, o.top_k, o.top_p, o.min_p, o.repeat_penalty, o.repeat_last_n, seed};
}

Runner add_run(CLI::App& app) {
    auto o = std::make_shared<RunOptions>();
    app.add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
    app.add_option("-p,--prompt", o->prompt, "prompt text (default: empty, generation starts from BOS)");
    app.add_option("-f,--file", o->prompt_file, "read the prompt from a file")->check(CLI::ExistingFile);
    app.add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1: until EOS or the context is full)")
        ->capture_default_str();
    add_gen_options(app, o->gen);
    app.add_flag("--ignore-eos", o->ignore_eos, "keep generating after an end-of-generation token");
    app.add_flag("--no-bos", o->no_bos, "do not add the BOS token even if the model asks for it");
    app.add_flag("--special", o->special, "parse special tokens in the prompt and print them in the output");
    app.add_flag("--no-echo", o->no_echo, "do not print the prompt before the generated text");
    return [o, &app]() -> int {
        o->prompt_set = app.count("--prompt") > 0;
        if (o->prompt_set && !o->prompt_file.empty()) {
            return fail(Status::invalid("give either -p or -f, not both"));
        }
        std::string prompt = o->prompt;
        if (!o->prompt_file.empty()) {
            auto text = file_read(o->prompt_file, kFileMaxText, "-f");
            if (!text.ok()) return fail(text.status());
            prompt = std::move(*text);
        }
        if (o->n_predict < -1) return fail(Status::invalid("-n %d: expected >= -1", o->n_predict));
        // Sampling options and the cold-tier folder are checked before the model is loaded.
        auto cp = gen_context_params(o->gen);
        if (!cp.ok()) return fail(cp.status());
        auto sp = gen_sampler_params(o->gen);
        if (!sp.ok()) return fail(sp.status());
        auto sampler = Sampler::create(*sp);
        if (!sampler.ok()) return fail(sampler.status());

        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        const ModelInfo c = model_info(**model);
        std::fprintf(stderr, "heterokv: %s (%s), %d layers, %d/%d heads, head_dim %d, vocab %d, %s\n",
                     c.name.empty() ? "model" : c.name.c_str(), c.arch.c_str(), c.n_layer, c.n_head,
                     c.n_head_kv, c.head_dim, c.n_vocab, c.weight_types.c_str());

        auto ctx = Context::create(*model, *cp);
        if (!ctx.ok()) return fail(ctx.status());
        Context& cx = **ctx;
        if (c.n_ctx_train > 0 && cx.n_ctx() > c.n_ctx_train) {
            std::fprintf(stderr, "heterokv: warning: the context (-c %d) is longer than the model's training context "
                         "(%d tokens); beyond it the output usually degrades\n", cx.n_ctx(), c.n_ctx_train);
        }


        const Tokenizer& tok = model_tokenizer(**model);
        std::vector<int32_t> ids = tok.encode(prompt, !o->no_bos, o->special);
        if (o->no_bos && !ids.empty() && ids[0] == tok.bos()) ids.erase(ids.begin());
        if (ids.empty()) {
            if (tok.bos() < 0) return fail(Status::invalid("empty prompt and the model has no BOS token"));
            ids.push_back(tok.bos());
        }
        if (int64_t(ids.size()) >= cx.n_ctx()) {
            return fail(Status::out_of_range("the prompt has %zu tokens; the context holds %d (use -c)",
                                             ids.size(), cx.n_ctx()));
        }
        if (!o->no_echo) {  // the prompt's token pieces, as the reference engine echoes them
            std::string echo;
            for (int32_t id : ids) echo += tok.token_to_piece(id, o->special);
            std::fwrite(echo.data(), 1, echo.size(), stdout);
            std::fflush(stdout);
        }
        // generation stops when the context is full: say so before, not only by stopping short
        const int64_t room = int64_t(cx.n_ctx()) - int64_t(ids.size());
        if (o->n_predict > room) {
            std::fprintf(stderr, "heterokv: warning: -n %d: the context (-c %d) holds %lld more tokens after the "
                         "%zu-token prompt; generation stops there (raise -c)\n", o->n_predict, cx.n_ctx(),
                         (long long)room, ids.size());
        }
        const bool show_progress = ids.size() > size_t(2 * o->gen.n_batch);
        Progress bar("prefill", "tokens");
        int64_t n_generated = 0;
        Status st = generate(cx, *sampler, ids, o->n_predict, o->ignore_eos, [&](int32_t next) {
            ++n_generated;
            std::string piece = tok.token_to_piece(next, o->special);
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
        }, [&](int64_t done, int64_t total) {
            if (show_progress) bar.update(done, total);
        });
        bar.end();
        if (!st.ok()) return fail(st);
        std::fputs("\n\n", stdout);  // llama-completion ends its output the same way
        std::fflush(stdout);
        const Timings& t = cx.timings();
        std::fprintf(stderr, "heterokv: prefill %lld tokens in %.1f ms (%.1f tok/s)\n", (long long)t.n_prefill,
                     t.prefill_ms, t.prefill_ms > 0 ? 1000.0 * double(t.n_prefill) / t.prefill_ms : 0.0);
        std::fprintf(stderr, "heterokv: decode  %lld tokens in %.1f ms (%.1f tok/s)\n", (long long)t.n_decode,
                     t.decode_ms, t.decode_ms > 0 ? 1000.0 * double(t.n_decode) / t.decode_ms : 0.0);
        const KvStats kv = cx.kv_stats();
        // against what the full cache would hold for the same prompt and generated tokens
        ContextParams full = *cp;
        full.policy = "full";
        full.kv_cold_dir.clear();
        full.kv_page_size = 8;  // a head's last page holds its rows rounded up to 8 slots, as the store cuts it
        const int32_t n_prompt = int32_t(ids.size());
        const int32_t n_gen = int32_t(std::min<int64_t>(n_generated, int64_t(cx.n_ctx()) - n_prompt));
        auto full_bytes = kv_bytes_bound(**model, full, n_prompt, std::max(n_gen - 1, 0));
        if (full_bytes.ok() && *full_bytes > 0) {
            std::fprintf(stderr, "heterokv: KV cache %.2f MiB in use (%lld slots); the full cache: %.2f MiB (%.1f%%)\n",
                         double(kv.bytes_in_use) / (1024.0 * 1024.0), (long long)kv.slots_total,
                         double(*full_bytes) / (1024.0 * 1024.0), 100.0 * double(kv.bytes_in_use) / double(*full_bytes));
        } else {
            std::fprintf(stderr, "heterokv: KV cache %.2f MiB in use (%lld slots)\n",
                         double(kv.bytes_in_use) / (1024.0 * 1024.0), (long long)kv.slots_total);
        }
        if (!cx.policy_report().empty()) std::fprintf(stderr, "heterokv: %s\n", cx.policy_report().c_str());
        return 0;
    };
}

}  // namespace hkv::cli
