// tools/eval/ruler.cpp — RULER scoring and the runner (ruler.h); the generators are in ruler_gen.cpp.
#include <algorithm>
#include <cctype>

#include "eval/generate.h"
#include "eval/ruler.h"
#include "heterokv/model.h"

namespace hkv::eval {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view strip(std::string_view s) {  // Python's str.strip(): ASCII whitespace
    auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

// RULER: strip, replace [\x00-\x1f] by '\n', strip again.
std::string ruler_postprocess(std::string_view pred) {
    std::string s(strip(pred));
    for (char& c : s) {
        if (static_cast<unsigned char>(c) < 0x20) c = '\n';
    }
    return std::string(strip(s));
}

double ruler_string_match_all(std::string_view pred, const std::vector<std::string>& refs) {
    if (refs.empty()) return 0.0;
    const std::string p = lower(ruler_postprocess(pred));
    double hit = 0.0;
    for (const std::string& r : refs) hit += p.find(lower(r)) != std::string::npos ? 1.0 : 0.0;
    return hit / double(refs.size());
}

double ruler_string_match_part(std::string_view pred, const std::vector<std::string>& refs) {
    const std::string p = lower(ruler_postprocess(pred));
    double best = 0.0;
    for (const std::string& r : refs) best = std::max(best, p.find(lower(r)) != std::string::npos ? 1.0 : 0.0);
    return best;
}

double RulerResult::score() const {
    if (scores.empty()) return 0.0;
    double s = 0.0;
    for (double x : scores) s += x;
    return 100.0 * s / double(scores.size());
}

Expected<RulerResult> ruler_run(std::shared_ptr<const Model> model, ContextParams params, const std::string& policy,
                                const RulerTask& task, const std::vector<RulerSample>& samples, bool query_aware,
                                int32_t n_gen, const RulerProgress& progress) {
    if (samples.empty()) return Status::invalid("ruler: no samples");
    if (n_gen <= 0) n_gen = task.tokens_to_generate;
    const Tokenizer& tok = model_tokenizer(*model);
    const bool bos = tok.add_bos() && tok.bos() >= 0;
    // Tokenized once: [BOS] context | question (+ answer prefix), split at question_at.
    std::vector<std::vector<int32_t>> ctx_ids, q_ids;
    int32_t longest = 0;
    for (const RulerSample& s : samples) {
        if (s.question_at > s.input.size()) return Status::invalid("ruler: sample %d: bad question offset", s.index);
        std::vector<int32_t> c;
        if (bos) c.push_back(tok.bos());
        const std::vector<int32_t> body = tok.encode(std::string_view(s.input).substr(0, s.question_at), false);
        c.insert(c.end(), body.begin(), body.end());
        std::vector<int32_t> q = tok.encode(std::string_view(s.input).substr(s.question_at), false);
        if (query_aware) c.insert(c.end(), q.begin(), q.end()), q.clear();
        longest = std::max(longest, int32_t(c.size() + q.size()));
        ctx_ids.push_back(std::move(c));
        q_ids.push_back(std::move(q));
    }
    params.policy = policy;
    params.n_ctx = std::max(params.n_ctx, longest + n_gen);
    auto ctx = Context::create(model, params);
    if (!ctx.ok()) return ctx.status();
    RulerResult res;
    res.policy = policy;
    res.task = task.name;
    GenerateOptions opt;
    opt.n_gen = n_gen;
    for (size_t i = 0; i < samples.size(); ++i) {
        auto answer = generate_greedy(**ctx, ctx_ids[i], q_ids[i], opt);
        if (!answer.ok()) return answer.status();
        res.scores.push_back(ruler_string_match_all(*answer, samples[i].outputs));
        res.predictions.push_back(std::move(*answer));
        res.kv_bytes = (*ctx)->kv_bytes();
        if (progress) progress(i + 1, samples.size());
    }
    return res;
}

}  // namespace hkv::eval
