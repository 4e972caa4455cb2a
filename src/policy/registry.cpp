// policy/registry.cpp — spec parsing and the name -> factory registry.
#include <cerrno>
#include <cstdlib>

#include "policy/spec.h"

namespace hkv {

// ---- the table of policies (one file each in src/policy/) ----
Expected<std::unique_ptr<Policy>> full_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> streaming_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> h2o_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> snapkv_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> pyramidkv_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> adakv_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> chunkkv_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> quest_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> knorm_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> tova_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> ems_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> dynsplit_create(PolicySpec& spec);
Expected<std::unique_ptr<Policy>> heterocache_create(PolicySpec& spec);

namespace {

const PolicyEntry kPolicies[] = {
    {"full", "keeps every token (no compression); no options", full_create},
    {"streaming", "StreamingLLM: sinks + recent window; budget=N (required), sinks=4, window=budget-sinks",
     streaming_create},
    {"h2o", "H2O: heavy hitters by accumulated attention + recent window, evicted at prompt end and every "
            "slack tokens; budget=N (required), window=budget/2, sinks=0, slack=64",
     h2o_create},
    {"snapkv", "SnapKV: top pooled window-attention slots + window, at prompt end only; budget=N (required), "
               "window=32, kernel=7, pool=max|avg (max), sinks=0",
     snapkv_create},
    {"pyramidkv", "PyramidKV: SnapKV with layer budgets decreasing linearly with depth, mean budget; "
                  "budget=N (required), beta=20, window=32, kernel=7, pool=max, sinks=0",
     pyramidkv_create},
    {"adakv", "Ada-KV: SnapKV with per-head budgets from the layer's global top scores, floor alpha; "
              "budget=N (mean per head, required), alpha=0.2, window=32, kernel=7, pool=max, sinks=0",
     adakv_create},
    {"chunkkv", "ChunkKV: whole fixed-length chunks by mean SnapKV score, shared by a layer's heads; "
                "budget=N (required), chunk=10, reuse=1 (layers sharing indices), window=32, kernel=7, pool=max",
     chunkkv_create},
    {"quest", "Quest: keeps all KV, attends per KV head to the max(3, budget/page) pages of highest "
              "bound + the last page; budget=N tokens (required), page=16 (tokens per selected page; "
              "divides --kv-page-size), dense=2 (first layers dense)",
     quest_create},
    {"knorm", "Knorm: the keys of smallest L2 norm, at prompt end only (kvpress KnormPress); budget=N "
              "(required), window=0, sinks=0",
     knorm_create},
    {"tova", "TOVA: the latest query's attention averaged over the layer's heads, the same tokens for every "
             "head + the latest, at prompt end and every slack tokens; budget=N (required), slack=64 (0: every step)",
     tova_create},
    {"ems", "EMS: Global-Local score (causal-corrected global, local window, max), evict-then-merge per head "
            "with a zero class, at prompt end and when a head exceeds budget+window; budget=N (required), "
            "window=32, sinks=4, kernel=7, pool=max|avg, score=local|max|sum|global, mode=etm|evict|merge, "
            "theta=X (fixed threshold; default per-head mean), norm=keep|mean, adaptive=0|1, alpha=0.2, decode=1 (0: no decode compaction), weights=attn|score (merge weights; the paper: score=max,weights=score)",
     ems_create},
    {"dynsplit", "DynSplit-KV: whole variable-length semantic blocks (DD-Select delimiters) on fixed-size pages; "
                 "budget=N (required), mode=evict|select (evict: after every prefill chunk; select: Quest-style "
                 "block bounds at decode), split=dd|fixed|punct (dd), interval=16, min_len=4, max_len=min(64, budget-window-sinks), "
                 "target=16, accept=target|adaptive, lambda=0.5, candidates=punct|all, alpha=1, band=32, qstride=4, "
                 "norm=full|band, block_score=mean|max|sqrt, page=16, window=32 (select: 1), sinks=4 (select: 0), kernel=7, pool=max, dense=2",
     dynsplit_create},
    {"heterocache", "HeteroCache: per-head roles from a taxonomy (heterokv calibrate); pivots/volatile full, anchors "
                    "static, satellites hot set + cold tier refreshed on pivot drift; taxonomy=PATH (required), "
                    "ratio=0.5, window=5, tau=0.5, refresh=drift|never|always, weights=adaptive|taxonomy|uniform, alpha=0.2, "
                    "select=topk|reference, pool=5, obs=32 (prompt queries scoring anchors/satellites; 1: the reference's last query), spill=end|chunk",
     heterocache_create},
};

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return s.substr(i);
}

}  // namespace

int64_t KvBudget::total() const {
    int64_t t = 0;
    for (int32_t v : n_keep) t += v > 0 ? v : 0;
    return t;
}

std::span<const PolicyEntry> policy_entries() { return kPolicies; }

std::string policy_names() {
    std::string r;
    for (const PolicyEntry& e : kPolicies) r += (r.empty() ? "" : ", ") + std::string(e.name);
    return r;
}

Expected<PolicySpec> PolicySpec::parse(std::string_view spec_in) {
    if (spec_in.size() > 4096) return Status::invalid("policy spec longer than 4096 characters");
    std::string spec(spec_in);
    PolicySpec out;
    const size_t colon = spec.find(':');
    out.name_ = trim(spec.substr(0, colon));
    if (out.name_.empty()) return Status::invalid("policy spec '%s': no policy name", spec.c_str());
    if (colon == std::string::npos) return out;
    std::string rest = spec.substr(colon + 1);
    size_t start = 0;
    while (start <= rest.size()) {
        size_t comma = rest.find(',', start);
        if (comma == std::string::npos) comma = rest.size();
        const std::string item = trim(rest.substr(start, comma - start));
        start = comma + 1;
        if (item.empty()) {
            if (comma == rest.size()) break;
            return Status::invalid("policy spec '%s': empty option", spec.c_str());
        }
        const size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
            return Status::invalid("policy spec '%s': option '%s' is not key=value", spec.c_str(), item.c_str());
        }
        const std::string key = trim(item.substr(0, eq));
        if (out.kv_.count(key)) return Status::invalid("policy spec '%s': option '%s' given twice", spec.c_str(), key.c_str());
        out.kv_[key] = trim(item.substr(eq + 1));
    }
    return out;
}

Expected<int64_t> PolicySpec::get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
    read_.insert(key);
    auto it = kv_.find(key);
    if (it == kv_.end()) return def;
    const char* s = it->second.c_str();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) {
        return Status::invalid("%s: option %s='%s' is not an integer", name_.c_str(), key.c_str(), s);
    }
    if (v < lo || v > hi) {
        return Status::invalid("%s: option %s=%lld is out of range [%lld, %lld]", name_.c_str(), key.c_str(), v,
                               (long long)lo, (long long)hi);
    }
    return int64_t(v);
}

Expected<double> PolicySpec::get_float(const std::string& key, double def, double lo, double hi) {
    read_.insert(key);
    auto it = kv_.find(key);
    if (it == kv_.end()) return def;
    const char* s = it->second.c_str();
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || v != v) {
        return Status::invalid("%s: option %s='%s' is not a number", name_.c_str(), key.c_str(), s);
    }
    if (v < lo || v > hi) {
        return Status::invalid("%s: option %s=%g is out of range [%g, %g]", name_.c_str(), key.c_str(), v, lo, hi);
    }
    return v;
}

Expected<std::string> PolicySpec::get_choice(const std::string& key, const std::string& def,
                                             const std::set<std::string>& choices) {
    read_.insert(key);
    auto it = kv_.find(key);
    if (it == kv_.end()) return def;
    if (!choices.count(it->second)) {
        std::string list;
        for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
        return Status::invalid("%s: option %s='%s' is not one of: %s", name_.c_str(), key.c_str(),
                               it->second.c_str(), list.c_str());
    }
    return it->second;
}

std::string PolicySpec::get_string(const std::string& key, const std::string& def) {
    read_.insert(key);
    auto it = kv_.find(key);
    return it == kv_.end() ? def : it->second;
}

Status PolicySpec::finish() const {
    for (const auto& [key, value] : kv_) {
        if (!read_.count(key)) {
            std::string known;
            for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
            return Status::invalid("%s: unknown option '%s' (options: %s)", name_.c_str(), key.c_str(),
                                   known.empty() ? "none" : known.c_str());
        }
    }
    return Status();
}

Status read_evict_options(PolicySpec& spec, int32_t def_window, int32_t def_sinks, EvictOptions* out) {
    if (!spec.has("budget")) return Status::invalid("%s: option budget=N (slots per KV head) is required", spec.name().c_str());
    HKV_ASSIGN_OR_RETURN(int64_t budget, spec.get_int("budget", 0, 1, int64_t(1) << 30));
    HKV_ASSIGN_OR_RETURN(int64_t window, spec.get_int("window", def_window, 0, int64_t(1) << 30));
    HKV_ASSIGN_OR_RETURN(int64_t sinks, spec.get_int("sinks", def_sinks, 0, int64_t(1) << 30));
    if (window >= budget) {
        return Status::invalid("%s: window=%lld must be smaller than budget=%lld", spec.name().c_str(),
                               (long long)window, (long long)budget);
    }
    if (sinks + window >= budget) {
        return Status::invalid("%s: sinks=%lld + window=%lld must be smaller than budget=%lld", spec.name().c_str(),
                               (long long)sinks, (long long)window, (long long)budget);
    }
    out->budget = int32_t(budget);
    out->window = int32_t(window);
    out->sinks = int32_t(sinks);
    return Status();
}

Status policy_plan(Policy& policy, const ModelShape& shape, const Segment& prompt, KvBudget& budget) {
    const std::string name(policy.name());
    budget = KvBudget();
    HKV_TRY(policy.begin(shape, prompt, budget));
    if (budget.n_layer != shape.n_layer || budget.n_head_kv != shape.n_head_kv ||
        budget.n_keep.size() != size_t(shape.n_layer) * size_t(shape.n_head_kv)) {
        return Status::internal("policy %s planned a budget of the wrong shape", name.c_str());
    }
    for (int32_t b : budget.n_keep) {
        if (b == 0 || b < -1) return Status::invalid("policy %s: a head budget of %d slots is impossible", name.c_str(), b);
    }
    return Status();
}

Status policy_validate(std::string_view spec, const ModelShape& shape) {
    if (shape.n_layer <= 0 || shape.n_head <= 0 || shape.n_head_kv <= 0 || shape.head_dim <= 0 || shape.n_ctx <= 0) {
        return Status::invalid("policy: cannot check a spec against a model of %d layers, %d/%d heads, head size %d "
                               "and a context of %d tokens", shape.n_layer, shape.n_head, shape.n_head_kv,
                               shape.head_dim, shape.n_ctx);
    }
    HKV_ASSIGN_OR_RETURN(std::unique_ptr<Policy> p, policy_create(spec));
    KvBudget budget;
    return policy_plan(*p, shape, Segment{0, 0, shape.n_ctx}, budget);
}

Expected<std::unique_ptr<Policy>> policy_create(std::string_view spec_str) {
    HKV_ASSIGN_OR_RETURN(PolicySpec spec, PolicySpec::parse(spec_str));
    const PolicyEntry* entry = nullptr;
    for (const PolicyEntry& e : kPolicies) {
        if (spec.name() == e.name) entry = &e;
    }
    if (!entry) {
        return Status::invalid("unknown policy '%s' (policies: %s)", spec.name().c_str(), policy_names().c_str());
    }
    auto p = entry->create(spec);
    if (!p.ok()) return p.status();
    HKV_TRY(spec.finish());
    return p;
}

}  // namespace hkv
