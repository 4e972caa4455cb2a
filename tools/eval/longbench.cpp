// tools/eval/longbench.cpp — LongBench data, prompts and runner (longbench.h); metrics are in
// longbench_metrics.cpp.
#include "eval/longbench.h"

#include <cmath>
#include <sstream>
#include <nlohmann/json.hpp>

#include "eval/generate.h"
#include "heterokv/file_io.h"
#include "heterokv/model.h"

namespace hkv::eval {
namespace {

Expected<nlohmann::json> read_json(const std::string& path) {
    auto text = file_read(path, kFileMaxJson, "longbench:");
    if (!text.ok()) return text.status();
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid("longbench: %s is not a JSON object", path.c_str());
    return j;
}

}  // namespace

Expected<std::vector<LongBenchRow>> longbench_load(const std::string& path, int32_t max_rows) {
    auto text = file_read(path, kFileMaxText, "longbench:");
    if (!text.ok()) return text.status();
    std::istringstream in(std::move(*text));
    std::vector<LongBenchRow> rows;
    int64_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
        ++line_no;
        if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
        if (j.is_discarded() || !j.is_object() || !j.contains("context") || !j["context"].is_string() ||
            !j.contains("answers") || !j["answers"].is_array()) {
            return Status::invalid("longbench: %s:%lld is not a LongBench row (context, answers)", path.c_str(),
                                   (long long)line_no);
        }
        LongBenchRow r;
        r.id = str("_id"), r.dataset = str("dataset"), r.language = str("language");
        r.input = str("input"), r.context = str("context");
        for (const auto& a : j["answers"]) {
            if (a.is_string()) r.answers.push_back(a.get<std::string>());
        }
        if (j.contains("all_classes") && j["all_classes"].is_array()) {
            for (const auto& c : j["all_classes"]) {
                if (c.is_string()) r.all_classes.push_back(c.get<std::string>());
            }
        }
        if (j.contains("length") && j["length"].is_number_integer()) r.length = j["length"].get<int32_t>();
        rows.push_back(std::move(r));
        if (max_rows > 0 && int32_t(rows.size()) >= max_rows) break;
    }
    if (rows.empty()) return Status::invalid("longbench: %s has no rows", path.c_str());
    return rows;
}

Expected<LongBenchConfig> longbench_config_load(const std::string& dir) {
    auto prompts = read_json(dir + "/dataset2prompt.json");
    if (!prompts.ok()) return prompts.status();
    auto maxlen = read_json(dir + "/dataset2maxlen.json");
    if (!maxlen.ok()) return maxlen.status();
    LongBenchConfig cfg;
    for (const auto& [k, v] : prompts->items()) {
        if (v.is_string()) cfg.prompt[k] = v.get<std::string>();
    }
    for (const auto& [k, v] : maxlen->items()) {
        if (v.is_number_integer()) cfg.max_gen[k] = v.get<int32_t>();
    }
    return cfg;
}

std::string longbench_prompt(const std::string& tmpl, const LongBenchRow& row) {
    std::string out;
    for (size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl.compare(i, 2, "{{") == 0 || tmpl.compare(i, 2, "}}") == 0) {
            out += tmpl[i++];
        } else if (tmpl.compare(i, 9, "{context}") == 0) {
            out += row.context, i += 8;
        } else if (tmpl.compare(i, 7, "{input}") == 0) {
            out += row.input, i += 6;
        } else {
            out += tmpl[i];
        }
    }
    return out;
}

double LongBenchResult::score() const {
    if (scores.empty()) return 0.0;
    double s = 0.0;
    for (double x : scores) s += x;
    return std::round(100.0 * 100.0 * s / double(scores.size())) / 100.0;
}

Expected<LongBenchResult> longbench_run(std::shared_ptr<const Model> model, ContextParams params,
                                        const std::string& policy, const LongBenchConfig& cfg,
                                        const std::vector<LongBenchRow>& rows, int32_t max_length,
                                        const LongBenchProgress& progress) {
    if (rows.empty()) return Status::invalid("longbench: no rows");
    const std::string& dataset = rows[0].dataset;
    auto tmpl = cfg.prompt.find(dataset);
    auto gen = cfg.max_gen.find(dataset);
    if (tmpl == cfg.prompt.end() || gen == cfg.max_gen.end()) {
        return Status::invalid("longbench: no prompt template or generation length for dataset '%s'", dataset.c_str());
    }
    for (const LongBenchRow& r : rows) {
        if (r.dataset != dataset) return Status::invalid("longbench: rows mix datasets %s and %s", dataset.c_str(), r.dataset.c_str());
    }
    HKV_TRY(longbench_score(dataset, "", {}, {}).status());  // a metric exists
    const int32_t max_gen = gen->second;
    if (params.n_ctx <= 0) params.n_ctx = model_info(*model).n_ctx_train;
    if (max_length <= 0) max_length = params.n_ctx - max_gen;
    if (max_length < 16) return Status::invalid("longbench: max length %d leaves no room (context %d, %d generated)", max_length, params.n_ctx, max_gen);
    params.n_ctx = std::max(params.n_ctx, max_length + max_gen);
    params.policy = policy;
    auto ctx = Context::create(model, params);
    if (!ctx.ok()) return ctx.status();
    const Tokenizer& tok = model_tokenizer(*model);
    const bool bos = tok.add_bos() && tok.bos() >= 0;
    auto encode = [&](const std::string& text) {
        std::vector<int32_t> ids;
        if (bos) ids.push_back(tok.bos());
        const std::vector<int32_t> body = tok.encode(text, false);
        ids.insert(ids.end(), body.begin(), body.end());
        return ids;
    };
    LongBenchResult res;
    res.policy = policy;
    res.dataset = dataset;
    GenerateOptions opt;
    opt.n_gen = max_gen;
    opt.stop_at_newline = dataset == "samsum";
    for (size_t i = 0; i < rows.size(); ++i) {
        std::vector<int32_t> ids = encode(longbench_prompt(tmpl->second, rows[i]));
        const size_t half = size_t(max_length / 2);
        if (ids.size() > size_t(max_length)) {  // middle truncation, through text as LongBench does
            const std::span<const int32_t> all(ids);
            const std::string text = tok.decode(all.first(half)) + tok.decode(all.last(half));
            ids = encode(text);
        }
        if (ids.size() > size_t(max_length)) {  // re-tokenizing may merge differently: cut the middle again
            std::vector<int32_t> cut(ids.begin(), ids.begin() + long(half));
            cut.insert(cut.end(), ids.end() - long(size_t(max_length) - half), ids.end());
            ids = std::move(cut);
        }
        auto answer = generate_greedy(**ctx, ids, {}, opt);
        if (!answer.ok()) return answer.status();
        auto sc = longbench_score(dataset, *answer, rows[i].answers, rows[i].all_classes);
        if (!sc.ok()) return sc.status();
        res.scores.push_back(*sc);
        res.prompt_tokens.push_back(int32_t(ids.size()));
        res.predictions.push_back(std::move(*answer));
        res.kv_bytes = (*ctx)->kv_bytes();
        if (progress) progress(i + 1, rows.size());
    }
    return res;
}

}  // namespace hkv::eval
