// policy/registry.cpp — spec parsing and the name -> factory registry.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>

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

// ---- the catalog (heterokv policies, README's table): one PolicyDoc per entry ----
// Options every compressing policy takes for its size; listed first in each policy's options.
#define HKV_SIZE_OPTIONS(budget_meaning)                                                                       \
    {"budget", "required*", budget_meaning},                                                                   \
    {"ratio", "none", "*or: fraction of the prompt's tokens kept (0 < F <= 1), resolved per prompt: budget = floor(F * n_prompt)"}, \
    {"compression_ratio", "none", "*or: kvpress's compression ratio, the fraction removed (ratio = 1 - F)"}
#define HKV_SNAP_OPTIONS                                                                                      \
    {"window", "32", "the last `window` prompt queries score the slots, and the window itself is kept (a budget <= sinks + 32 without window=: half of budget - sinks)"}, \
    {"kernel", "7", "pooling kernel over token scores (odd, or auto: max(7, scored slots / 64), odd)"},         \
    {"pool", "max", "pooling: max or avg"},                                                                    \
    {"sinks", "0", "first tokens always kept"}

constexpr PolicyOptionDoc kStreamingOpts[] = {
    HKV_SIZE_OPTIONS("slots per layer and KV head: the sinks + the most recent"),
    {"sinks", "4", "first tokens always kept (attention sinks)"},
};
constexpr PolicyOptionDoc kH2oOpts[] = {
    HKV_SIZE_OPTIONS("slots per layer and KV head"),
    {"window", "budget/2", "most recent tokens always kept"},
    {"sinks", "0", "first tokens always kept"},
    {"slack", "64", "decode: evict back to budget whenever a head holds budget + slack slots"},
};
constexpr PolicyOptionDoc kSnapOpts[] = {HKV_SIZE_OPTIONS("slots per layer and KV head"), HKV_SNAP_OPTIONS};
constexpr PolicyOptionDoc kPyramidOpts[] = {
    HKV_SIZE_OPTIONS("mean slots per layer and KV head (layer budgets decrease with depth)"), HKV_SNAP_OPTIONS,
    {"beta", "20", "pyramid steepness: the last layer selects 1/beta of the mean selected slots"},
};
constexpr PolicyOptionDoc kAdaOpts[] = {
    HKV_SIZE_OPTIONS("mean slots per KV head (a layer's heads share budget x heads)"), HKV_SNAP_OPTIONS,
    {"alpha", "0.2", "floor: each head gets at least alpha of the mean budget"},
};
constexpr PolicyOptionDoc kChunkOpts[] = {
    HKV_SIZE_OPTIONS("slots per layer and KV head"), HKV_SNAP_OPTIONS,
    {"chunk", "10", "tokens per chunk (without chunk=: at most budget - window - sinks)"},
    {"reuse", "1", "layers sharing one layer's chunk indices"},
};
constexpr PolicyOptionDoc kQuestOpts[] = {
    HKV_SIZE_OPTIONS("tokens attended per KV head at each decode step (all are kept)"),
    {"page", "16", "tokens per selected page (must divide --kv-page-size)"},
    {"dense", "2", "first layers attend to everything"},
};
constexpr PolicyOptionDoc kKnormOpts[] = {
    HKV_SIZE_OPTIONS("slots per layer and KV head"),
    {"window", "0", "most recent tokens always kept"},
    {"sinks", "0", "first tokens always kept"},
};
constexpr PolicyOptionDoc kTovaOpts[] = {
    HKV_SIZE_OPTIONS("slots per layer (the same tokens in every KV head)"),
    {"slack", "64", "decode: evict back to budget whenever a head holds budget + slack slots (0: every step)"},
};
constexpr PolicyOptionDoc kEmsOpts[] = {
    HKV_SIZE_OPTIONS("slots per layer and KV head (kept and merged centres)"),
    {"window", "32", "recent tokens kept; the local score's queries; decode slack (a budget <= sinks + 32 without window=: half of budget - sinks)"},
    {"sinks", "4", "first tokens always kept"},
    {"kernel", "auto", "pooling kernel over token scores: auto (max(7, scored slots / 64), odd) or an odd width"},
    {"pool", "max", "pooling: max or avg"},
    {"score", "local", "local (last window queries), max (the paper's Global-Local), sum, global"},
    {"mode", "etm", "etm (evict-then-merge), evict, merge"},
    {"theta", "per head", "fixed cosine threshold for merging in [-1, 1] (mode=etm)"},
    {"norm", "keep", "merged key norm: keep (the centre's) or mean"},
    {"adaptive", "0", "1: AdaKV-style per-head budgets"},
    {"alpha", "0.2", "adaptive=1: floor share of each head's budget"},
    {"decode", "1", "0: no compaction while decoding (generated tokens appended)"},
    {"weights", "attn", "merge weights: attn (attention-consistent) or score (the paper's)"},
};
constexpr PolicyOptionDoc kDynsplitOpts[] = {
    HKV_SIZE_OPTIONS("slots per layer and KV head (evict); tokens attended per KV head (select)"),
    {"mode", "evict", "evict (keep whole blocks at the prompt's end) or select (keep all, attend to the best blocks)"},
    {"at", "end", "evict: end (once at each prompt's end) or chunk (after every prefill chunk: prefill memory bounded)"},
    {"split", "dd", "block boundaries: dd (DD-Select), fixed (every interval), punct (every delimiter)"},
    {"interval", "16", "split=fixed: block length"},
    {"min_len", "4", "split=dd: minimum distance between accepted delimiters"},
    {"max_len", "min(64, budget-window-sinks)", "longer blocks are split"},
    {"target", "16", "split=dd, accept=target: mean block length aimed at"},
    {"accept", "target", "split=dd: target or adaptive (scores >= mean + lambda sd)"},
    {"lambda", "0.5", "accept=adaptive: threshold in standard deviations"},
    {"candidates", "punct", "split=dd: punct (delimiter tokens) or all (every slot)"},
    {"alpha", "1", "split=dd: score r - alpha (1 - r)"},
    {"band", "32", "split=dd: queries after a candidate that score it"},
    {"qstride", "4", "split=dd: every qstride-th query of a chunk"},
    {"norm", "full", "split=dd: full (whole attention row) or band"},
    {"block_score", "mean", "evict: block importance: mean, max or sqrt"},
    {"heads", "shared", "evict: shared (one selection per layer), each (per KV head) or adaptive (per KV head, Ada-KV budgets)"},
    {"floor", "0.2", "heads=adaptive: least share of a head, a fraction of the uniform one"},
    {"page", "16", "slots per mapping page"},
    {"window", "32 (select: 1)", "recent tokens always kept"},
    {"sinks", "4 (select: 0)", "first tokens always kept"},
    {"kernel", "7", "evict: pooling kernel over token scores (odd, or auto: max(7, scored slots / 64), odd)"},
    {"pool", "max", "evict: pooling: max or avg"},
    {"dense", "2", "select: first layers attend to everything"},
};
constexpr PolicyOptionDoc kHeteroOpts[] = {
    {"taxonomy", "required", "head taxonomy JSON (make one with heterokv calibrate)"},
    {"ratio", "0.5", "fraction of the full prompt KV kept hot, full heads included (> their share)"},
    {"compression_ratio", "none", "or: kvpress's meaning, the fraction removed (ratio = 1 - F)"},
    {"window", "5", "decode steps between drift checks"},
    {"tau", "0.5", "refresh when the median overlap < tau"},
    {"refresh", "drift", "drift, never (static) or always"},
    {"weights", "adaptive", "per-head caps: adaptive, taxonomy (the reference's) or uniform"},
    {"alpha", "0.2", "weights=adaptive: floor share of each head's cap"},
    {"layers", "flat", "compressed heads' slots across layers: flat, or pyramid (PyramidKV's linear schedule, same total)"},
    {"beta", "20", "layers=pyramid: PyramidKV's beta, top / bottom layer = 1 / (2 beta - 1) before clipping (1: flat)"},
    {"select", "topk", "refresh rows: topk or reference"},
    {"pool", "5", "avg-pool kernel (odd)"},
    {"obs", "32", "prompt queries scoring anchors and satellites (1: the reference's last query)"},
    {"recent", "obs", "the prompt's last slots anchors and satellites always keep (obs=1: 0, the reference)"},
    {"spill", "end", "end (cut at the prompt's end) or chunk (after every prefill chunk: prompts larger than memory)"},
    {"kv", "none", "per-class cache types CLASS:TYPE[+VTYPE]/..., e.g. volatile:f16/pivot:f16/anchor:q8_0/satellite:q8_0"},
};
#undef HKV_SIZE_OPTIONS
#undef HKV_SNAP_OPTIONS

constexpr std::span<const PolicyOptionDoc> none() { return {}; }

const char* const kAppendsText = "grows by one slot per generated token (compresses at the prompt's end only)";

const PolicyDoc kDocs[] = {
    {"full", "no compression", "every token", "grows by one slot per token", "the reference; short contexts",
     DecodeKv::kAppends, false, none()},
    {"streaming", "StreamingLLM (Xiao et al. 2024)", "the first `sinks` tokens and the most recent ones",
     "bounded: back to budget whenever a head holds budget + 64 slots",
     "endless generation in fixed memory; loses everything between the sinks and the window",
     DecodeKv::kEvicts, false, kStreamingOpts},
    {"h2o", "H2O (Zhang et al. 2023)", "a recent window + the heavy hitters by attention accumulated over every query",
     "bounded: back to budget whenever a head holds budget + slack slots",
     "long generations in bounded memory", DecodeKv::kEvicts, false, kH2oOpts},
    {"snapkv", "SnapKV (Li et al. 2024)", "the window + the slots the last `window` prompt queries attend to most (pooled)",
     kAppendsText, "long prompts, short answers (question at the end of the prompt)", DecodeKv::kAppends, false,
     kSnapOpts},
    {"pyramidkv", "PyramidKV (Cai et al. 2024)", "SnapKV's slots with budgets decreasing linearly with depth",
     kAppendsText, "as snapkv, when lower layers need more context", DecodeKv::kAppends, false, kPyramidOpts},
    {"adakv", "Ada-KV (Feng et al. 2024)", "SnapKV's slots with a layer's budget spread over its heads by their top scores",
     kAppendsText, "as snapkv at small budgets", DecodeKv::kAppends, false, kAdaOpts},
    {"chunkkv", "ChunkKV (Liu et al. 2025)", "whole chunks by mean SnapKV score, the same for a layer's heads",
     kAppendsText, "as snapkv when meaning spans several tokens", DecodeKv::kAppends, false, kChunkOpts},
    {"quest", "Quest (Tang et al. 2024)", "everything; each decode step attends to the pages of highest q.k bound",
     "grows by one slot per token (saves decode time, not memory)",
     "faster decoding at depth when memory is not the limit", DecodeKv::kAppends, true, kQuestOpts},
    {"knorm", "Knorm (kvpress KnormPress)", "the keys of smallest L2 norm", kAppendsText,
     "a statistic-free baseline", DecodeKv::kAppends, false, kKnormOpts},
    {"tova", "TOVA (Oren et al. 2024)", "the latest query's attention averaged over the layer's heads + the latest token",
     "bounded: back to budget whenever a head holds budget + slack slots",
     "long generations in bounded memory", DecodeKv::kEvicts, false, kTovaOpts},
    {"ems", "EMS (methods.md section 3)", "sinks, window, the top keys as centres; other keys merged into similar centres or dropped",
     "bounded: back to budget whenever a head holds budget + window slots (decode=0: grows)",
     "bounded memory while decoding, merging keys instead of dropping them (below h2o's KLD in docs/accuracy.md)", DecodeKv::kEvicts, false, kEmsOpts},
    {"dynsplit", "DynSplit-KV (methods.md section 2)", "whole variable-length semantic blocks (evict); everything (select)",
     "evict: grows by one slot per generated token; select: grows, attends to the best blocks",
     "keeping sentences and clauses whole (docs/accuracy.md, DynSplit section)", DecodeKv::kAppends, false, kDynsplitOpts},
    {"heterocache", "HeteroCache (methods.md section 1)",
     "per-head roles from a taxonomy: pivot and volatile heads everything, anchors and satellites a hot set",
     "grows by one slot per generated token; satellites' prompt KV in a cold tier (RAM or --kv-cold-dir)",
     "very long prompts with a calibrated model", DecodeKv::kAppends, false, kHeteroOpts},
};

const PolicyEntry kPolicies[] = {
    {"full", full_create},
    {"streaming", streaming_create},
    {"h2o", h2o_create},
    {"snapkv", snapkv_create},
    {"pyramidkv", pyramidkv_create},
    {"adakv", adakv_create},
    {"chunkkv", chunkkv_create},
    {"quest", quest_create},
    {"knorm", knorm_create},
    {"tova", tova_create},
    {"ems", ems_create},
    {"dynsplit", dynsplit_create},
    {"heterocache", heterocache_create},
};
static_assert(std::size(kDocs) == std::size(kPolicies));

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
std::span<const PolicyDoc> policy_catalog() { return kDocs; }

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
    if (!spec.has("budget")) return Status::invalid("%s: option budget=N (slots per KV head) is required, or ratio=F (the fraction of the prompt kept)", spec.name().c_str());
    HKV_ASSIGN_OR_RETURN(int64_t budget, spec.get_int("budget", 0, 1, int64_t(1) << 30));
    HKV_ASSIGN_OR_RETURN(int64_t window, spec.get_int("window", def_window, 0, int64_t(1) << 30));
    HKV_ASSIGN_OR_RETURN(int64_t sinks, spec.get_int("sinks", def_sinks, 0, int64_t(1) << 30));
    // A default window that leaves no room (budget <= sinks + 32 in a budget sweep) shrinks to half
    // of what the sinks leave; a window the spec gives is checked as given.
    if (!spec.has("window") && sinks < budget && sinks + window >= budget) window = (budget - sinks) / 2;
    if (window >= budget) {
        return Status::invalid("%s: window=%lld must be smaller than budget=%lld (lower window= or raise budget=)",
                               spec.name().c_str(), (long long)window, (long long)budget);
    }
    if (sinks + window >= budget) {
        return Status::invalid("%s: sinks=%lld + window=%lld must be smaller than budget=%lld (lower sinks= or "
                               "window=, or raise budget=)", spec.name().c_str(), (long long)sinks, (long long)window,
                               (long long)budget);
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

namespace {

bool same_stats(const StatRequest& a, const StatRequest& b) {
    return a.kind == b.kind && a.steps == b.steps && a.n_query == b.n_query && a.segment_tail == b.segment_tail &&
           a.from_lse == b.from_lse && a.band == b.band && a.stride == b.stride && a.full_norm == b.full_norm;
}

// What the runtime reads from info() once, at the context's creation.
bool same_info(const PolicyInfo& a, const PolicyInfo& b) {
    if (a.calls != b.calls || a.decode != b.decode || a.decode_slack != b.decode_slack ||
        a.select_pages != b.select_pages || a.select_page != b.select_page || a.cold_tier != b.cold_tier ||
        a.stats.size() != b.stats.size()) {
        return false;
    }
    for (size_t i = 0; i < a.stats.size(); ++i) {
        if (!same_stats(a.stats[i], b.stats[i])) return false;
    }
    return true;
}

Expected<std::unique_ptr<Policy>> create_with(const PolicyEntry& e, PolicySpec spec) {
    auto p = e.create(spec);
    if (!p.ok()) return p.status();
    HKV_TRY(spec.finish());
    return p;
}

// A policy sized by ratio=F: the budget is F times the prompt's length, known at begin(). A probe
// created with a large budget checks the other options at creation and gives info(), which the
// runtime reads once; at begin() the policy is created again with the resolved budget, raised to
// the smallest one that the policy accepts with an unchanged info() (its window and sinks fit).
class RatioPolicy final : public Policy {
public:
    static constexpr int64_t kProbeBudget = int64_t(1) << 20;
    RatioPolicy(const PolicyEntry& e, PolicySpec spec, double keep, std::unique_ptr<Policy> probe)
        : entry_(e), spec_(std::move(spec)), keep_(keep), info_(probe->info()), inner_(std::move(probe)) {}

    PolicyInfo info() const override { return info_; }
    Status begin(const ModelShape& shape, const Segment& prompt, KvBudget& budget) override {
        const int64_t want = std::max<int64_t>(1, int64_t(std::floor(keep_ * double(prompt.n_tokens))));
        std::unique_ptr<Policy> p;
        int64_t b = want;
        if (!(p = try_budget(b))) {  // galloping search for the smallest budget that fits, then bisection
            int64_t lo = want, step = 1;
            while (!(p = try_budget(want + step)) && want + step < kProbeBudget) {
                lo = want + step;
                step *= 2;
            }
            if (!p) return Status::invalid("%s: ratio=%g of a %d-token prompt: no budget fits the options",
                                           spec_.name().c_str(), keep_, prompt.n_tokens);
            int64_t hi = want + step;
            while (hi - lo > 1) {
                const int64_t mid = lo + (hi - lo) / 2;
                if (auto q = try_budget(mid)) {
                    hi = mid;
                    p = std::move(q);
                } else {
                    lo = mid;
                }
            }
            b = hi;
        }
        inner_ = std::move(p);
        budget_ = int32_t(b);
        n_prompt_ = prompt.n_tokens;
        return inner_->begin(shape, prompt, budget);
    }
    Status on_layer(const LayerView& v, LayerPlan& plan) override { return inner_->on_layer(v, plan); }
    Status state(PolicyStateIO& io) override { return inner_->state(io); }
    std::string report() const override {
        std::string r = inner_->report();
        if (budget_ > 0) {
            char buf[128];
            std::snprintf(buf, sizeof(buf), "%sratio=%g of a %d-token prompt: budget=%d", r.empty() ? "" : "; ", keep_,
                          n_prompt_, budget_);
            r += buf;
        }
        return r;
    }

private:
    std::unique_ptr<Policy> try_budget(int64_t b) const {
        PolicySpec s = spec_;
        s.set("budget", std::to_string(b));
        auto p = create_with(entry_, s);
        if (!p.ok() || !same_info((*p)->info(), info_)) return nullptr;
        return std::move(p).value();
    }

    const PolicyEntry& entry_;
    PolicySpec spec_;  // without ratio / compression_ratio
    double keep_;
    PolicyInfo info_;
    std::unique_ptr<Policy> inner_;
    int32_t budget_ = 0, n_prompt_ = 0;
};

}  // namespace

Expected<std::unique_ptr<Policy>> policy_create(std::string_view spec_str) {
    HKV_ASSIGN_OR_RETURN(PolicySpec spec, PolicySpec::parse(spec_str));
    const PolicyEntry* entry = nullptr;
    for (const PolicyEntry& e : kPolicies) {
        if (spec.name() == e.name) entry = &e;
    }
    if (!entry) {
        return Status::invalid("unknown policy '%s' (policies: %s)", spec.name().c_str(), policy_names().c_str());
    }
    const std::string& name = spec.name();
    if (name == "full" || (!spec.has("ratio") && !spec.has("compression_ratio"))) return create_with(*entry, spec);
    // ratio= (fraction kept) or compression_ratio= (kvpress: fraction removed) instead of budget=
    const int given = int(spec.has("budget")) + int(spec.has("ratio")) + int(spec.has("compression_ratio"));
    if (given > 1) {
        return Status::invalid("%s: give one of %sratio=F or compression_ratio=F", name.c_str(),
                               name == "heterocache" ? "" : "budget=N, ");
    }
    double keep = 0.0;
    if (spec.has("ratio")) {
        HKV_ASSIGN_OR_RETURN(keep, spec.get_float("ratio", 1.0, 0.0, 1.0));
        if (keep <= 0.0) return Status::invalid("%s: ratio=0 keeps nothing (the fraction kept: 0 < ratio <= 1)", name.c_str());
        if (name == "heterocache") return create_with(*entry, spec);  // its own ratio
    } else {
        HKV_ASSIGN_OR_RETURN(double removed, spec.get_float("compression_ratio", 0.0, 0.0, 1.0));
        if (removed >= 1.0) {
            return Status::invalid("%s: compression_ratio=1 removes everything (the fraction removed: 0 <= F < 1)",
                                   name.c_str());
        }
        keep = 1.0 - removed;
        spec.erase("compression_ratio");
        if (name == "heterocache") {
            char buf[32];
            std::snprintf(buf, sizeof(buf), "%.17g", keep);
            spec.set("ratio", buf);
            return create_with(*entry, spec);
        }
    }
    spec.erase("ratio");
    PolicySpec probe_spec = spec;
    probe_spec.set("budget", std::to_string(RatioPolicy::kProbeBudget));
    HKV_ASSIGN_OR_RETURN(std::unique_ptr<Policy> probe, create_with(*entry, probe_spec));
    return std::unique_ptr<Policy>(new RatioPolicy(*entry, std::move(spec), keep, std::move(probe)));
}

}  // namespace hkv
