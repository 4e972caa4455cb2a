// heterokv chat (and `heterokv run -cnv`) — a conversation with the GGUF's chat template: one
// line of input per user turn (from a terminal, with line editing, or a pipe), the reply streamed to
// stdout as it is generated, commands /reset, /stats, /save FILE, /load FILE, /exit. Each turn
// evaluates only its new tokens (server/chat_session.h).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "heterokv/calibrate.h"
#include "heterokv/engine.h"
#include "heterokv/model.h"
#include "heterokv/policy.h"
#include "heterokv/system.h"
#include "line_input.h"
#include "server/chat_session.h"

namespace hkv::cli {
namespace {

struct ChatCliOptions {
    std::string model, system, chat_template;
    int32_t n_predict = -1;
    GenOptions gen;
    bool special = false;
};

constexpr const char* kHelp =
    "commands: /reset (start over), /stats (KV cache), /save FILE, /load FILE (the conversation and its "
    "compressed KV), /exit (or end of input)";

// /save FILE: the context's state with the conversation (messages, the reply's pending token) as
// its application data.
Status chat_save(server::ChatSession& chat, const std::string& path) {
    if (path.empty()) return Status::invalid("/save needs a file name");
    if (chat.messages().empty()) return Status::invalid("/save: nothing to save yet (no turn so far)");
    nlohmann::json j = {{"heterokv_chat", 1}, {"pending", chat.pending()}, {"messages", nlohmann::json::array()}};
    for (const server::ChatMessage& m : chat.messages()) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
    auto n = chat.context().state_save_file(path, j.dump());
    if (!n.ok()) return n.status();
    std::fprintf(stderr, "heterokv: saved %d tokens (%.2f MiB) to %s\n", chat.context().n_past(),
                 double(*n) / 1048576.0, path.c_str());
    return Status();
}

// /load FILE: a conversation /save wrote, on the same model and options; on any error the
// conversation starts over.
Status chat_load(server::ChatSession& chat, const std::string& path) {
    if (path.empty()) return Status::invalid("/load needs a file name");
    std::string app;
    Status st = chat.context().state_load_file(path, &app);
    if (st.ok()) {
        const nlohmann::json j = nlohmann::json::parse(app, nullptr, false);
        std::vector<server::ChatMessage> messages;
        bool ok = j.is_object() && j.contains("heterokv_chat") && j["messages"].is_array() &&
                  j["pending"].is_number_integer();
        for (size_t i = 0; ok && i < j["messages"].size(); ++i) {
            const nlohmann::json& m = j["messages"][i];
            ok = m.is_object() && m["role"].is_string() && m["content"].is_string();
            if (ok) messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
        }
        st = ok ? chat.resume(std::move(messages), j["pending"].get<int32_t>())
                : Status::invalid("%s holds no conversation (it was not saved by heterokv chat)", path.c_str());
    }
    if (!st.ok()) {
        chat.reset();
        return st;
    }
    std::fprintf(stderr, "heterokv: loaded %zu messages, %d tokens from %s\n", chat.messages().size(),
                 chat.context().n_past(), path.c_str());
    return Status();
}

// The taxonomy file a heterocache spec names ("" for any other policy).
std::string taxonomy_of(const std::string& spec) {
    if (spec.rfind("heterocache", 0) != 0) return "";
    const size_t at = spec.find("taxonomy=");
    if (at == std::string::npos) return "";
    const size_t from = at + 9;
    return spec.substr(from, spec.find(',', from) - from);
}

// KV bytes and slots, and per class of head when the policy has classes (HeteroCache's roles).
std::string stats_text(const Context& ctx, const std::string& policy) {
    const KvStats kv = ctx.kv_stats();
    char line[512];
    std::snprintf(line, sizeof line, "KV cache: %.2f MiB in use (%.2f MiB reserved), %lld slots over %d layers x %d KV heads, %d of %d positions\n",
                  double(kv.bytes_in_use) / 1048576.0, double(kv.bytes_reserved) / 1048576.0,
                  (long long)kv.slots_total, kv.n_layer, kv.n_head_kv, ctx.n_past(), ctx.n_ctx());
    std::string out = line;
    struct Group {
        int64_t heads = 0, slots = 0;
        int32_t min = std::numeric_limits<int32_t>::max(), max = 0;
        void add(int32_t n) {
            ++heads;
            slots += n;
            min = std::min(min, n);
            max = std::max(max, n);
        }
    };
    auto row = [&](const char* name, const Group& g) {
        if (g.heads == 0) return;
        std::snprintf(line, sizeof line, "  %-10s %4lld heads, %8lld slots (per head %d..%d)\n", name,
                      (long long)g.heads, (long long)g.slots, g.min, g.max);
        out += line;
    };
    const std::string tax_path = taxonomy_of(policy);
    auto tax = tax_path.empty() ? Expected<Taxonomy>(Status::not_found("none")) : taxonomy_load(tax_path);
    if (tax.ok() && tax->n_layer == kv.n_layer && tax->n_head_kv == kv.n_head_kv) {
        const HeadRole roles[] = {HeadRole::kAnchor, HeadRole::kVolatile, HeadRole::kPivot, HeadRole::kSatellite};
        for (HeadRole r : roles) {
            Group g;
            for (int32_t il = 0; il < kv.n_layer; ++il) {
                for (int32_t ih = 0; ih < kv.n_head_kv; ++ih) {
                    if (tax->role_of(il, ih) == r) g.add(kv.n_slot[tax->at(il, ih)]);
                }
            }
            row(head_role_name(r), g);
        }
    } else {
        Group g;
        for (int32_t n : kv.n_slot) g.add(n);
        row("all", g);
    }
    if (!ctx.policy_report().empty()) out += "  " + ctx.policy_report() + "\n";
    const Timings& t = ctx.timings();  // cumulative: bench/chat_turns.sh takes differences per turn
    std::snprintf(line, sizeof line, "  process RSS %.2f MiB; prefill %lld tokens in %.1f ms; decode %lld tokens in %.1f ms\n",
                  double(rss_current_bytes()) / 1048576.0, (long long)t.n_prefill, t.prefill_ms,
                  (long long)t.n_decode, t.decode_ms);
    out += line;
    return out;
}

void print_timings(const Context& cx) {
    const Timings& t = cx.timings();
    std::fprintf(stderr, "heterokv: prefill %lld tokens in %.1f ms, decode %lld tokens in %.1f ms (%.1f tok/s)\n",
                 (long long)t.n_prefill, t.prefill_ms, (long long)t.n_decode, t.decode_ms,
                 t.decode_ms > 0 ? 1000.0 * double(t.n_decode) / t.decode_ms : 0.0);
}

}  // namespace

Runner add_chat(CLI::App& app) {
    auto o = std::make_shared<ChatCliOptions>();
    app.add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
    app.add_option("-p,--system-prompt", o->system, "system prompt (also -sys; as with llama.cpp's -cnv, -p sets it)");
    app.add_option("--chat-template", o->chat_template, "chat format: chatml, llama3, llama2, mistral, zephyr, phi3, gemma (default: from the GGUF)");
    app.add_option("-n,--n-predict", o->n_predict, "reply tokens at most (-1: until the end of the turn)")
        ->capture_default_str();
    add_gen_options(app, o->gen);
    app.add_flag("--special", o->special, "special-token text in messages becomes control tokens; print them");
    return [o]() -> int {
        auto cp = gen_context_params(o->gen);
        if (!cp.ok()) return fail(cp.status());
        auto sp = gen_sampler_params(o->gen);
        if (!sp.ok()) return fail(sp.status());
        server::ChatOptions co;
        co.system = o->system;
        co.n_predict = o->n_predict;
        co.parse_special = o->special;
        co.sampler = *sp;
        if (!o->chat_template.empty()) {
            co.family = server::chat_family_from_name(o->chat_template);
            if (co.family == server::ChatFamily::kUnknown) {
                return fail(Status::invalid("--chat-template '%s': expected one of %s", o->chat_template.c_str(),
                                            server::chat_family_list().c_str()));
            }
        }
        if (o->n_predict < -1) return fail(Status::invalid("-n %d: expected >= -1", o->n_predict));

        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        const ModelInfo info = model_info(**model);
        if (o->chat_template.empty()) co.family = server::chat_family_detect(info.chat_template);
        auto ctx = Context::create(*model, *cp);
        if (!ctx.ok()) return fail(ctx.status());
        Context& cx = **ctx;
        auto chat = server::ChatSession::create(cx, co);
        if (!chat.ok()) return fail(chat.status());
        std::fprintf(stderr, "heterokv: %s (%s), %s chat format, context %d tokens, policy %s\nheterokv: %s\n",
                     info.name.empty() ? "model" : info.name.c_str(), info.arch.c_str(),
                     server::chat_family_name(co.family), cx.n_ctx(), o->gen.policy.c_str(), kHelp);

        LineInput input("> ");
        std::string line;
        while (input.read(line)) {
            if (line.empty()) continue;
            if (line[0] == '/') {
                const size_t sp = line.find(' ');
                const std::string cmd = line.substr(0, sp);
                const size_t a = sp == std::string::npos ? std::string::npos : line.find_first_not_of(' ', sp);
                const std::string arg = a == std::string::npos ? "" : line.substr(a);
                if (cmd == "/exit" || cmd == "/quit") break;
                if (cmd == "/reset") {
                    (*chat)->reset();
                    std::fputs("heterokv: conversation reset\n", stderr);
                } else if (cmd == "/stats") {
                    std::fputs(stats_text(cx, o->gen.policy).c_str(), stderr);
                } else if (cmd == "/save" || cmd == "/load") {
                    const Status st = cmd == "/save" ? chat_save(**chat, arg) : chat_load(**chat, arg);
                    if (!st.ok()) {
                        std::fprintf(stderr, "heterokv: %s%s\n", st.message().c_str(),
                                     cmd == "/load" ? " (the conversation starts over)" : "");
                    }
                } else if (cmd == "/help") {
                    std::fprintf(stderr, "heterokv: %s\n", kHelp);
                } else {
                    std::fprintf(stderr, "heterokv: unknown command '%s'; %s\n", cmd.c_str(), kHelp);
                }
                continue;
            }
            auto turn = (*chat)->turn(line, [](std::string_view text) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
                return true;
            });
            if (!turn.ok()) return fail(turn.status());
            if (turn->n_eval > 0) std::fputc('\n', stdout);
            std::fflush(stdout);
            if (turn->finish == "context") {
                std::fprintf(stderr,
                             "heterokv: the context is full (%d of %d positions): the conversation ends here "
                             "(start it with a larger -c; a policy that evicts bounds the KV memory, not the "
                             "positions)\n",
                             cx.n_past(), cx.n_ctx());
                break;
            }
        }
        print_timings(cx);
        return 0;
    };
}

}  // namespace hkv::cli
