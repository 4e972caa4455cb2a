// policy/chunkkv.cpp — ChunkKV (Liu et al. 2025): keeps whole fixed-length chunks of the prompt.
// At the end of the prompt, per layer: token scores are SnapKV's (observation window = the last
// `window` queries, kernel 7 maxpool), summed over the layer's KV heads; the non-window slots
// [sinks, n - window) are cut into chunks of `chunk` slots (the last one may be shorter); a chunk's
// score is the mean of its token scores; chunks are taken best first while they fit in
// budget - window - sinks, and every head of the layer keeps the same chunks plus sinks and window.
// Room that whole chunks cannot fill (less than a chunk) goes to the latest candidates not taken,
// i.e. the recent window grows, so a head holds exactly `budget` slots (the paper keeps
// floor((budget - window) / chunk) chunks and leaves the rest unused).
// Layer-wise index reuse: with reuse=R, layers il with il % R != 0 keep the positions chosen by
// layer il - il % R instead of scoring their own (the paper reports high cross-layer similarity).
// Defaults: chunk=10 (the paper; kvpress uses 20), reuse=1 (every layer scores its own), window 32.
// No compression during decoding; a later segment is compressed at its end the same way, over the
// survivors and the new tokens.
#include <algorithm>
#include <numeric>

#include "policy/select.h"

namespace hkv {
namespace {

class ChunkKvPolicy final : public SnapFamilyPolicy {
public:
    ChunkKvPolicy(const SnapOptions& o, int32_t chunk, int32_t reuse)
        : SnapFamilyPolicy("chunkkv", o), chunk_(chunk), reuse_(reuse) {}

    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, opt_.evict.budget);
        kept_il_ = -1;
        kept_pos_.clear();
        return Status();
    }

    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        const int32_t nh = v.n_head_kv, n = v.n_live[0];
        for (int32_t ih = 1; ih < nh; ++ih) {
            if (v.n_live[size_t(ih)] != n) {
                return Status::internal("chunkkv: layer %d heads hold different slot counts (%d, %d)", v.il, n,
                                        v.n_live[size_t(ih)]);
            }
        }
        if (n <= opt_.evict.budget) return Status();
        const int32_t leader = v.il - v.il % reuse_;
        if (leader != v.il && kept_il_ == leader) return reuse(v, plan);
        choose(v);
        const int32_t k = int32_t(keep_.size());
        for (int32_t ih = 0; ih < nh; ++ih) {
            std::copy(keep_.begin(), keep_.end(), plan.head(ih));
            plan.n_keep[size_t(ih)] = k;
        }
        kept_il_ = v.il;
        kept_pos_.resize(size_t(k));
        for (int32_t i = 0; i < k; ++i) kept_pos_[size_t(i)] = v.pos[0][keep_[size_t(i)]];
        return Status();
    }

private:
    // Fills keep_ with the slots to keep (ascending), the same for every head.
    void choose(const LayerView& v) {
        const int32_t n = v.n_live[0], w = opt_.evict.window, s = opt_.evict.sinks;
        const int32_t prefix = n - w;
        token_.assign(size_t(prefix), 0.0f);
        pooled_.resize(size_t(prefix));
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            pool1d(v.stats[0].head(ih), prefix, snap_kernel(opt_.kernel, prefix), opt_.pool, pooled_.data());
            for (int32_t i = 0; i < prefix; ++i) token_[size_t(i)] += pooled_[size_t(i)];
        }
        const int32_t n_chunk = (prefix - s + chunk_ - 1) / chunk_;
        chunk_score_.resize(size_t(n_chunk));
        for (int32_t c = 0; c < n_chunk; ++c) {
            const int32_t b = s + c * chunk_, e = std::min(prefix, b + chunk_);
            float sum = 0.0f;
            for (int32_t i = b; i < e; ++i) sum += token_[size_t(i)];
            chunk_score_[size_t(c)] = sum / float(e - b);
        }
        order_.resize(size_t(n_chunk));
        std::iota(order_.begin(), order_.end(), 0);
        std::stable_sort(order_.begin(), order_.end(),
                         [&](int32_t a, int32_t b) { return chunk_score_[size_t(a)] > chunk_score_[size_t(b)]; });
        taken_.assign(size_t(n_chunk), 0);
        int32_t room = opt_.evict.budget - w - s;
        for (int32_t c : order_) {
            const int32_t len = std::min(prefix, s + (c + 1) * chunk_) - (s + c * chunk_);
            if (len <= room) {
                taken_[size_t(c)] = 1;
                room -= len;
            }
        }
        // [prefix] the candidates kept: the taken chunks, then the room whole chunks left goes to the
        // latest candidates not taken (the recent window grows), so the budget is used exactly
        token_kept_.assign(size_t(prefix), 0);
        for (int32_t c = 0; c < n_chunk; ++c) {
            if (!taken_[size_t(c)]) continue;
            for (int32_t i = s + c * chunk_; i < std::min(prefix, s + (c + 1) * chunk_); ++i) token_kept_[size_t(i)] = 1;
        }
        for (int32_t i = prefix - 1; i >= s && room > 0; --i) {
            if (!token_kept_[size_t(i)]) token_kept_[size_t(i)] = 1, --room;
        }
        keep_.clear();
        for (int32_t i = 0; i < s; ++i) keep_.push_back(i);
        for (int32_t i = s; i < prefix; ++i) {
            if (token_kept_[size_t(i)]) keep_.push_back(i);
        }
        for (int32_t i = prefix; i < n; ++i) keep_.push_back(i);
    }

    // Keeps, in every head, the slots holding the positions layer kept_il_ kept.
    Status reuse(const LayerView& v, LayerPlan& plan) const {
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            const PosLane::iterator pos = v.pos[size_t(ih)].begin();
            const int32_t n = v.n_live[size_t(ih)];
            int32_t* idx = plan.head(ih);
            int32_t k = 0;
            for (int32_t p : kept_pos_) {
                const PosLane::iterator it = std::lower_bound(pos, pos + n, p);
                if (it == pos + n || *it != p) {
                    return Status::internal("chunkkv: layer %d head %d holds no slot at position %d of layer %d",
                                            v.il, ih, p, kept_il_);
                }
                idx[k++] = int32_t(it - pos);
            }
            plan.n_keep[size_t(ih)] = k;
        }
        return Status();
    }

    int32_t chunk_, reuse_;
    int32_t kept_il_ = -1;            // the layer whose choice kept_pos_ holds
    std::vector<int32_t> kept_pos_;   // [kept] positions kept by layer kept_il_
    std::vector<float> token_, pooled_, chunk_score_;
    std::vector<int32_t> order_, keep_;
    std::vector<char> taken_, token_kept_;
};

}  // namespace

Expected<std::unique_ptr<Policy>> chunkkv_create(PolicySpec& spec) {
    SnapOptions o;
    HKV_TRY(read_snap_options(spec, &o));
    HKV_ASSIGN_OR_RETURN(int64_t chunk, spec.get_int("chunk", 10, 1, 1 << 20));
    HKV_ASSIGN_OR_RETURN(int64_t reuse, spec.get_int("reuse", 1, 1, 1 << 20));
    const int32_t room = o.evict.budget - o.evict.window - o.evict.sinks;
    if (!spec.has("chunk") && chunk > room) chunk = room;  // a small budget in a sweep: the default shrinks
    if (chunk > room) {
        return Status::invalid("chunkkv: chunk=%lld does not fit in budget - window - sinks = %d (lower chunk= or "
                               "window=, or raise budget=)", (long long)chunk, room);
    }
    return std::unique_ptr<Policy>(new ChunkKvPolicy(o, int32_t(chunk), int32_t(reuse)));
}

}  // namespace hkv
