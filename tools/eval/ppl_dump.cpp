// tools/eval/ppl_dump.cpp — see ppl_dump.h.
#include "eval/ppl_dump.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>


namespace hkv::eval {

namespace {

std::string base_name(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

Status rename_into_place(const std::string& from, const std::string& to) {
    if (std::rename(from.c_str(), to.c_str()) != 0) {
        const int e = errno;
        std::remove(from.c_str());
        return Status::io_error("eval ppl --dump: cannot rename %s to %s: %s", from.c_str(), to.c_str(), std::strerror(e));
    }
    return Status();
}

}  // namespace

Expected<std::unique_ptr<PplDump>> PplDump::open(const std::string& prefix) {
    if (prefix.empty()) return Status::invalid("eval ppl --dump: empty prefix");
    std::unique_ptr<PplDump> d(new PplDump());
    d->prefix_ = prefix;
    const std::string tmp = prefix + ".logits.f32.tmp";
    d->logits_ = std::fopen(tmp.c_str(), "wb");
    if (!d->logits_) {
        return Status::io_error("eval ppl --dump: cannot write %s: %s", tmp.c_str(), std::strerror(errno));
    }
    return d;
}

PplDump::~PplDump() {
    if (logits_) {  // not finished: leave nothing behind
        std::fclose(logits_);
        std::remove((prefix_ + ".logits.f32.tmp").c_str());
    }
}

void PplDump::begin_window(int64_t start, std::span<const int32_t> tokens) {
    starts_.push_back(start);
    tokens_.emplace_back(tokens.begin(), tokens.end());
}

Status PplDump::begin_run(int32_t ip, const Context& ctx) {
    Run r;
    r.window = int32_t(tokens_.size()) - 1;
    r.policy = ip;
    const KvStats kv = ctx.kv_stats();
    n_layer_ = kv.n_layer;
    n_head_kv_ = kv.n_head_kv;
    r.kept.resize(size_t(n_layer_));
    for (int32_t il = 0; il < n_layer_; ++il) {
        r.kept[size_t(il)].resize(size_t(n_head_kv_));
        for (int32_t ih = 0; ih < n_head_kv_; ++ih) {
            HKV_ASSIGN_OR_RETURN(const KvHeadView h, ctx.kv_head(il, ih));
            r.kept[size_t(il)][size_t(ih)].assign(h.pos.begin(), h.pos.end());
        }
    }
    runs_.push_back(std::move(r));
    return Status();
}

Status PplDump::row(std::span<const float> logits, double kld, double nll) {
    if (runs_.empty()) return Status::internal("eval ppl --dump: a row before any run");
    if (std::fwrite(logits.data(), sizeof(float), logits.size(), logits_) != logits.size()) {
        return Status::io_error("eval ppl --dump: cannot write %s.logits.f32: %s", prefix_.c_str(), std::strerror(errno));
    }
    runs_.back().kld.push_back(float(kld));
    runs_.back().nll.push_back(float(nll));
    return Status();
}

Status PplDump::finish(const PplDumpMeta& meta) {
    const std::string logits_tmp = prefix_ + ".logits.f32.tmp";
    const bool closed = std::fclose(logits_) == 0;
    logits_ = nullptr;
    if (!closed) {
        std::remove(logits_tmp.c_str());
        return Status::io_error("eval ppl --dump: cannot write %s", logits_tmp.c_str());
    }
    nlohmann::json j;
    j["format"] = "heterokv-ppl-dump-1";
    j["model"] = base_name(meta.model);
    j["file"] = base_name(meta.file);
    j["commit"] = meta.commit;
    j["kv_type"] = meta.kv_type;
    j["window"] = meta.n_window;
    j["context"] = meta.n_context;
    j["scored"] = meta.n_scored;
    j["n_vocab"] = meta.n_vocab;
    j["n_layer"] = n_layer_;
    j["n_head_kv"] = n_head_kv_;
    j["policies"] = meta.policies;
    j["windows"] = nlohmann::json::array();
    for (size_t i = 0; i < starts_.size(); ++i) {
        j["windows"].push_back({{"start", starts_[i]}, {"tokens", tokens_[i]}});
    }
    j["runs"] = nlohmann::json::array();
    for (const Run& r : runs_) {
        j["runs"].push_back({{"window", r.window}, {"policy", r.policy}, {"kept", r.kept}, {"kld", r.kld}, {"nll", r.nll}});
    }
    j["logits"] = {{"file", base_name(prefix_) + ".logits.f32"},
                   {"layout", "[window][policy][scored][n_vocab] float32 little-endian"}};
    const std::string json_tmp = prefix_ + ".json.tmp";
    std::FILE* f = std::fopen(json_tmp.c_str(), "wb");
    if (!f) {
        std::remove(logits_tmp.c_str());
        return Status::io_error("eval ppl --dump: cannot write %s: %s", json_tmp.c_str(), std::strerror(errno));
    }
    const std::string text = j.dump() + "\n";
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) {
        std::remove(json_tmp.c_str());
        std::remove(logits_tmp.c_str());
        return Status::io_error("eval ppl --dump: cannot write %s", json_tmp.c_str());
    }
    HKV_TRY(rename_into_place(logits_tmp, prefix_ + ".logits.f32"));
    return rename_into_place(json_tmp, prefix_ + ".json");
}

}  // namespace hkv::eval
