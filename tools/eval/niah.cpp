// tools/eval/niah.cpp — needle-in-a-haystack runner (see niah.h).
#include "eval/niah.h"

#include <random>
#include <sstream>

#include "heterokv/file_io.h"
#include "heterokv/sampler.h"

namespace hkv::eval {
namespace {

const char* const kDefaultKeys[] = {
    "apple", "river", "garden", "window", "violin", "castle", "pencil", "forest", "rocket", "lantern",
    "mirror", "harbor", "blanket", "compass", "feather", "island", "jacket", "kettle", "ladder", "meadow",
    "needle", "orchard", "pillow", "quarry", "saddle", "teapot", "umbrella", "valley", "wagon", "zebra",
    "anchor", "bottle", "candle", "dragon", "engine", "falcon", "glacier", "helmet", "igloo", "jungle"};

std::string substitute(std::string s, const std::string& key, const std::string& value) {
    for (const auto& [pat, rep] : {std::pair<std::string, std::string>{"{key}", key}, {"{value}", value}}) {
        for (size_t p = s.find(pat); p != std::string::npos; p = s.find(pat, p + rep.size())) s.replace(p, pat.size(), rep);
    }
    return s;
}

bool ends_sentence(const std::string& piece) {
    for (size_t i = piece.size(); i-- > 0;) {
        const char c = piece[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        return c == '.' || c == '!' || c == '?';
    }
    return false;
}

}  // namespace

double NiahResult::accuracy() const {
    int64_t t = 0, c = 0;
    for (const NiahCell& cell : cells) t += cell.trials, c += cell.correct;
    return t ? double(c) / double(t) : 0.0;
}

Expected<NiahResult> niah_run(std::shared_ptr<const Model> model, ContextParams params, const std::string& policy,
                              const NiahConfig& cfg, const NiahProgress& progress) {
    if (cfg.haystack_files.empty()) return Status::invalid("niah: no haystack files");
    if (cfg.trials < 1 || cfg.n_gen < 1 || cfg.value_digits < 1 || cfg.value_digits > 18) {
        return Status::invalid("niah: trials and n_gen must be >= 1, value digits in [1, 18]");
    }
    std::string hay;
    for (const std::string& f : cfg.haystack_files) {
        auto text = file_read(f, kFileMaxText, "niah: haystack");
        if (!text.ok()) return text.status();
        hay += *text;
        hay += "\n\n";
    }
    const Tokenizer& tok = model_tokenizer(*model);
    const std::vector<int32_t> hay_ids = tok.encode(hay, false);
    std::vector<bool> sentence_end(hay_ids.size());
    for (size_t i = 0; i < hay_ids.size(); ++i) sentence_end[i] = ends_sentence(tok.token_to_piece(hay_ids[i]));

    int32_t max_len = 0;
    for (int32_t l : cfg.lengths) max_len = std::max(max_len, l);
    params.policy = policy;
    if (params.n_ctx < max_len + cfg.n_gen) params.n_ctx = max_len + cfg.n_gen;
    auto ctx = Context::create(model, params);
    if (!ctx.ok()) return ctx.status();
    Context& cx = **ctx;

    std::vector<std::string> keys = cfg.keys;
    if (keys.empty()) keys.assign(std::begin(kDefaultKeys), std::end(kDefaultKeys));
    std::mt19937_64 rng(cfg.seed);
    NiahResult res;
    res.policy = policy;
    const size_t total = cfg.lengths.size() * cfg.depths.size();
    for (int32_t length : cfg.lengths) {
        for (double depth : cfg.depths) {
            if (depth < 0.0 || depth > 1.0) return Status::invalid("niah: depth %g not in [0, 1]", depth);
            NiahCell cell;
            cell.length = length;
            cell.depth = depth;
            for (int32_t t = 0; t < cfg.trials; ++t) {
                const std::string key = keys[rng() % keys.size()];
                std::string value;
                value += char('1' + rng() % 9);
                while (int32_t(value.size()) < cfg.value_digits) value += char('0' + rng() % 10);
                const std::vector<int32_t> needle = tok.encode(substitute(cfg.needle, key, value), false);
                const std::vector<int32_t> question = tok.encode(substitute(cfg.question, key, value), false);
                const int32_t n_bos = tok.add_bos() && tok.bos() >= 0 ? 1 : 0;
                const int64_t n_hay = int64_t(length) - n_bos - int64_t(needle.size()) - int64_t(question.size());
                if (n_hay < 16) return Status::invalid("niah: length %d is too short for the needle and question", length);
                if (n_hay > int64_t(hay_ids.size())) {
                    return Status::invalid("niah: the haystack has %zu tokens, fewer than the %lld needed for length %d",
                                           hay_ids.size(), (long long)n_hay, length);
                }
                int64_t at = std::llround(depth * double(n_hay));
                while (at > 0 && at < n_hay && !sentence_end[size_t(at - 1)]) --at;  // after a sentence end
                std::vector<int32_t> context;
                context.reserve(size_t(length));
                if (n_bos) context.push_back(tok.bos());
                context.insert(context.end(), hay_ids.begin(), hay_ids.begin() + at);
                context.insert(context.end(), needle.begin(), needle.end());
                context.insert(context.end(), hay_ids.begin() + at, hay_ids.begin() + n_hay);
                cx.reset();
                if (cfg.query_aware) context.insert(context.end(), question.begin(), question.end());
                HKV_TRY(cx.eval(context));
                cell.kv_bytes_context += double(cx.kv_bytes()) / double(cfg.trials);
                if (!cfg.query_aware) HKV_TRY(cx.eval(question));
                std::string answer;
                for (int32_t g = 0; g < cfg.n_gen; ++g) {
                    const int32_t next = sample_greedy(cx.logits());
                    if (tok.is_eog(next)) break;
                    answer += tok.token_to_piece(next);
                    if (g + 1 < cfg.n_gen) HKV_TRY(cx.eval({&next, 1}));
                }
                cell.trials++;
                cell.correct += answer.find(value) != std::string::npos;
                cell.answers.push_back(answer);
                cell.expected.push_back(value);
                cell.kv_bytes = cx.kv_bytes();
                cell.prompt_tokens = int32_t(context.size() + (cfg.query_aware ? 0 : question.size()));
            }
            res.cells.push_back(cell);
            if (progress) progress(policy, res.cells.size(), total, cell);
        }
    }
    return res;
}

}  // namespace hkv::eval
