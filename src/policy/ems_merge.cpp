// policy/ems_merge.cpp — see ems_merge.h.
#include "policy/ems_merge.h"

#include <algorithm>
#include <cmath>

#include "core/vec.h"

namespace hkv {

void EmsBatch::resize(int32_t heads, int32_t slots, int32_t dim, int32_t centers) {
    n_head = heads, n_slot = slots, head_dim = dim, n_center = centers;
    const size_t hs = size_t(heads) * size_t(slots), hc = size_t(heads) * size_t(centers + 1);
    khat.assign(hs * size_t(dim), 0.0f);
    v.assign(hs * size_t(dim), 0.0f);
    knorm.assign(hs, 0.0f), w.assign(hs, 0.0f), lane.assign(hs, 0.0f);
    role.assign(hs, kEmsFixed);
    center_slot.assign(hc, -1);
    best.assign(hs, 0.0f), arg.assign(hs, 0), cls.assign(hs, 0), wm.assign(hs, 0.0f);
    theta.assign(size_t(heads), 0.0f);
    count.assign(hc, 0);
    acc_w.assign(hc, 0.0f), acc_n.assign(hc, 0.0f), acc_lane.assign(hc, 0.0f);
    acc_k.assign(hc * size_t(dim), 0.0f), acc_v.assign(hc * size_t(dim), 0.0f);
    out_k.assign(hc * size_t(dim), 0.0f), out_v.assign(hc * size_t(dim), 0.0f);
}

namespace {

// Both variants use dot_f32 and axpy_f32 (core/vec.h), so their sums are bit-identical (explicit
// FMA, fixed order).

// Zeroes every class's sums.
void clear_sums(EmsBatch& b) {
    std::fill(b.count.begin(), b.count.end(), 0);
    std::fill(b.acc_w.begin(), b.acc_w.end(), 0.0f);
    std::fill(b.acc_n.begin(), b.acc_n.end(), 0.0f);
    std::fill(b.acc_lane.begin(), b.acc_lane.end(), 0.0f);
    std::fill(b.acc_k.begin(), b.acc_k.end(), 0.0f);
    std::fill(b.acc_v.begin(), b.acc_v.end(), 0.0f);
}

// Adds slot (h, s) to class c of head h.
void add_to_class(EmsBatch& b, int32_t h, int32_t s, int32_t c) {
    const int32_t D = b.head_dim;
    const size_t hs = size_t(h) * size_t(b.n_slot) + size_t(s);
    const size_t hc = size_t(h) * size_t(b.n_center + 1) + size_t(c);
    const float ww = b.wm[hs];
    b.acc_w[hc] += ww;
    b.acc_n[hc] = std::fma(ww, b.knorm[hs], b.acc_n[hc]);
    b.acc_lane[hc] += b.lane[hs];
    b.count[hc] += 1;
    axpy_f32(ww, b.khat.data() + hs * size_t(D), b.acc_k.data() + hc * size_t(D), D);
    axpy_f32(ww, b.v.data() + hs * size_t(D), b.acc_v.data() + hc * size_t(D), D);
}

// The merged row of centre c of head h from its class sums (classes with a centre only).
void finalise_class(EmsBatch& b, int32_t h, int32_t c) {
    const int32_t D = b.head_dim;
    const size_t hc = size_t(h) * size_t(b.n_center + 1) + size_t(c);
    const int32_t slot = b.center_slot[hc];
    if (slot < 0 || b.count[hc] == 0) return;
    const size_t hs = size_t(h) * size_t(b.n_slot) + size_t(slot);
    const float* ak = b.acc_k.data() + hc * size_t(D);
    const float* av = b.acc_v.data() + hc * size_t(D);
    float* ok = b.out_k.data() + hc * size_t(D);
    float* ov = b.out_v.data() + hc * size_t(D);
    const float aw = b.acc_w[hc];
    const float nr = b.norm == EmsNorm::kKeep ? b.knorm[hs] : (aw > 0.0f ? b.acc_n[hc] / aw : b.knorm[hs]);
    const float len = std::sqrt(dot_f32(ak, ak, D));
    const float* dir = len > 0.0f ? ak : b.khat.data() + hs * size_t(D);
    const float kscale = len > 0.0f ? nr / len : nr;
    const float vscale = aw > 0.0f ? 1.0f / aw : 0.0f;
    for (int32_t d = 0; d < D; ++d) ok[d] = dir[d] * kscale, ov[d] = av[d] * vscale;
}

// Merge weights wm of head h's slots from their classes (cls must be set): w as given, or with
// qscale the attention-consistent weights of EmsBatch::qscale, shifted per class by its largest
// exponent (the centre's is 0) so that every weight is at most its centre's w and none overflows.
void merge_weights(EmsBatch& b, int32_t h) {
    const int32_t S = b.n_slot, C1 = b.n_center + 1;
    const size_t h0 = size_t(h) * size_t(S);
    if (b.qscale.empty()) {
        std::copy_n(b.w.data() + h0, S, b.wm.data() + h0);
        return;
    }
    const float qs = b.qscale[size_t(h)];
    thread_local std::vector<float> x, top;  // [S] exponents, [C+1] their per-class maximum
    x.assign(size_t(S), 0.0f), top.assign(size_t(C1), 0.0f);
    for (int32_t s = 0; s < S; ++s) {
        const int32_t c = b.cls[h0 + size_t(s)];
        if (b.role[h0 + size_t(s)] != kEmsTbm || c == 0) continue;
        const int32_t r = b.center_slot[size_t(h) * size_t(C1) + size_t(c)];
        x[size_t(s)] = qs * (b.knorm[h0 + size_t(s)] * b.best[h0 + size_t(s)] - b.knorm[h0 + size_t(r)]);
        top[size_t(c)] = std::max(top[size_t(c)], x[size_t(s)]);
    }
    for (int32_t s = 0; s < S; ++s) {
        const size_t hs = h0 + size_t(s);
        const int32_t c = b.cls[hs], role = b.role[hs];
        if (c == 0 || role == kEmsFixed) {
            b.wm[hs] = b.w[hs];
            continue;
        }
        const int32_t r = b.center_slot[size_t(h) * size_t(C1) + size_t(c)];
        b.wm[hs] = b.w[h0 + size_t(r)] * std::exp(x[size_t(s)] - top[size_t(c)]);
    }
}

// theta[h] from the rule, given the sum and count of the head's TBM best similarities.
float threshold(const EmsBatch& b, double sum, int64_t n) {
    if (b.evict_only) return INFINITY;
    if (b.merge_all) return -INFINITY;
    if (b.has_fixed_theta) return b.fixed_theta;
    return n > 0 ? float(sum / double(n)) : INFINITY;
}

}  // namespace

void ems_merge_batched(EmsBatch& b) {
    const int32_t H = b.n_head, S = b.n_slot, D = b.head_dim, C1 = b.n_center + 1;
    // centre directions and the -inf bias of missing centres: [H, C+1, D], [H, C+1]
    thread_local std::vector<float> ck, bias;
    ck.assign(size_t(H) * size_t(C1) * size_t(D), 0.0f);
    bias.assign(size_t(H) * size_t(C1), -INFINITY);
    for (int32_t h = 0; h < H; ++h) {
        for (int32_t c = 1; c < C1; ++c) {
            const int32_t slot = b.center_slot[size_t(h) * size_t(C1) + size_t(c)];
            if (slot < 0) continue;
            std::copy_n(b.khat.data() + (size_t(h) * size_t(S) + size_t(slot)) * size_t(D), D,
                        ck.data() + (size_t(h) * size_t(C1) + size_t(c)) * size_t(D));
            bias[size_t(h) * size_t(C1) + size_t(c)] = 0.0f;
        }
    }
    // 1. best centre of every slot of every head: [H, S] x [H, C] similarities, row max / argmax
    for (int32_t h = 0; h < H; ++h) {
        const float* bh = bias.data() + size_t(h) * size_t(C1);
        for (int32_t s = 0; s < S; ++s) {
            const float* ks = b.khat.data() + (size_t(h) * size_t(S) + size_t(s)) * size_t(D);
            float best = -INFINITY;
            int32_t arg = 0;
            for (int32_t c = 1; c < C1; ++c) {
                const float sim = dot_f32(ks, ck.data() + (size_t(h) * size_t(C1) + size_t(c)) * size_t(D), D) + bh[c];
                const bool better = sim > best;
                best = better ? sim : best;
                arg = better ? c : arg;
            }
            b.best[size_t(h) * size_t(S) + size_t(s)] = best;
            b.arg[size_t(h) * size_t(S) + size_t(s)] = arg;
        }
    }
    // 2. thresholds: masked mean over each head's TBM slots
    for (int32_t h = 0; h < H; ++h) {
        double sum = 0.0;
        int64_t n = 0;
        for (int32_t s = 0; s < S; ++s) {
            const size_t hs = size_t(h) * size_t(S) + size_t(s);
            const bool in = b.role[hs] == kEmsTbm && b.best[hs] > -INFINITY;
            sum += in ? double(b.best[hs]) : 0.0;
            n += in ? 1 : 0;
        }
        b.theta[size_t(h)] = threshold(b, sum, n);
    }
    // 3. classes: centres their own, TBM slots their best centre or the zero class, the rest 0
    for (int32_t h = 0; h < H; ++h) {
        for (int32_t s = 0; s < S; ++s) {
            const size_t hs = size_t(h) * size_t(S) + size_t(s);
            const int32_t r = b.role[hs];
            const bool merged = r == kEmsTbm && b.best[hs] >= b.theta[size_t(h)];
            b.cls[hs] = r >= 1 ? r : (merged ? b.arg[hs] : 0);
        }
    }
    // 4. one scatter-add of every slot into its class (class 0 collects the dropped ones)
    clear_sums(b);
    for (int32_t h = 0; h < H; ++h) {
        merge_weights(b, h);
        for (int32_t s = 0; s < S; ++s) add_to_class(b, h, s, b.cls[size_t(h) * size_t(S) + size_t(s)]);
    }
    // 5. finalise classes 1..C; class 0 is discarded
    for (int32_t h = 0; h < H; ++h) {
        for (int32_t c = 1; c < C1; ++c) finalise_class(b, h, c);
    }
}

void ems_merge_per_head(EmsBatch& b) {
    const int32_t H = b.n_head, S = b.n_slot, D = b.head_dim, C1 = b.n_center + 1;
    clear_sums(b);
    std::vector<int32_t> centers, tbm;  // this head's centre ids, TBM slots
    for (int32_t h = 0; h < H; ++h) {
        const size_t h0 = size_t(h) * size_t(S);
        centers.clear(), tbm.clear();
        for (int32_t c = 1; c < C1; ++c) {
            if (b.center_slot[size_t(h) * size_t(C1) + size_t(c)] >= 0) centers.push_back(c);
        }
        for (int32_t s = 0; s < S; ++s) {
            b.best[h0 + size_t(s)] = -INFINITY, b.arg[h0 + size_t(s)] = 0, b.cls[h0 + size_t(s)] = 0;
            if (b.role[h0 + size_t(s)] == kEmsTbm) tbm.push_back(s);
        }
        double sum = 0.0;
        int64_t n = 0;
        for (int32_t s : tbm) {
            const float* ks = b.khat.data() + (h0 + size_t(s)) * size_t(D);
            float best = -INFINITY;
            int32_t arg = 0;
            for (int32_t c : centers) {
                const int32_t slot = b.center_slot[size_t(h) * size_t(C1) + size_t(c)];
                const float sim = dot_f32(ks, b.khat.data() + (h0 + size_t(slot)) * size_t(D), D) + 0.0f;
                if (sim > best) best = sim, arg = c;
            }
            b.best[h0 + size_t(s)] = best, b.arg[h0 + size_t(s)] = arg;
            if (best > -INFINITY) sum += double(best), ++n;
        }
        const float theta = threshold(b, sum, n);
        b.theta[size_t(h)] = theta;
        for (int32_t s = 0; s < S; ++s) {
            const int32_t r = b.role[h0 + size_t(s)];
            if (r >= 1) b.cls[h0 + size_t(s)] = r;
            else if (r == kEmsTbm && b.best[h0 + size_t(s)] >= theta) b.cls[h0 + size_t(s)] = b.arg[h0 + size_t(s)];
        }
        merge_weights(b, h);
        for (int32_t s = 0; s < S; ++s) {
            if (b.cls[h0 + size_t(s)] != 0) add_to_class(b, h, s, b.cls[h0 + size_t(s)]);
        }
        for (int32_t c : centers) finalise_class(b, h, c);
    }
}

}  // namespace hkv
