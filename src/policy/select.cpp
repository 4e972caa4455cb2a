// policy/select.cpp — see select.h.
#include "policy/select.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>


namespace hkv {

Status read_snap_options(PolicySpec& spec, SnapOptions* out, bool kernel_auto) {
    HKV_TRY(read_evict_options(spec, 32, 0, &out->evict));
    if (out->evict.window < 1) {
        return Status::invalid("%s: window=0: the observation window needs at least one query", spec.name().c_str());
    }
    HKV_TRY(read_kernel_option(spec, kernel_auto, &out->kernel));
    HKV_ASSIGN_OR_RETURN(std::string pool, spec.get_choice("pool", "max", {"max", "avg"}));
    out->pool = pool == "max" ? PoolKind::kMax : PoolKind::kAvg;
    return Status();
}

int32_t snap_kernel(int32_t kernel, int32_t n) {
    if (kernel != kKernelAuto) return kernel;
    return std::clamp((std::max(n, 0) / kKernelPerSlots) | 1, 7, 255);
}

Status read_kernel_option(PolicySpec& spec, bool auto_default, int32_t* kernel) {
    const std::string v = spec.get_string("kernel", auto_default ? "auto" : "7");
    if (v == "auto") {
        *kernel = kKernelAuto;
        return Status();
    }
    HKV_ASSIGN_OR_RETURN(int64_t k, spec.get_int("kernel", 7, 1, 255));
    if (k % 2 == 0) {
        return Status::invalid("%s: kernel=%lld must be odd or auto (the pooled sequence keeps its length)",
                               spec.name().c_str(), (long long)k);
    }
    *kernel = int32_t(k);
    return Status();
}

void pool1d_range(const float* in, int32_t n, int32_t kernel, PoolKind kind, int32_t i0, int32_t i1, float* out) {
    const int32_t r = kernel / 2;
    // the edges, whose windows are clipped at 0 or n (all of it when n <= 2r)
    auto edge = [&](int32_t i) {
        const int32_t lo = std::max(0, i - r), hi = std::min(n - 1, i + r);
        if (kind == PoolKind::kMax) {
            float m = in[lo];
            for (int32_t j = lo + 1; j <= hi; ++j) m = std::max(m, in[j]);
            out[i - i0] = m;
        } else {
            float s = 0.0f;
            for (int32_t j = lo; j <= hi; ++j) s += in[j];
            out[i - i0] = s / float(kernel);
        }
    };
    // interior [a, b): whole windows
    const int32_t a = std::clamp(r, i0, i1), b = std::clamp(n - r, a, i1);
    for (int32_t i = i0; i < a; ++i) edge(i);
    for (int32_t i = b; i < i1; ++i) edge(i);
    if (b <= a) return;
    // The interior, one window offset at a time over all slots (vectorisable loops), adding in the
    // edges' order (in[i - r] first), so every output is bit for bit the edge loop's.
    float* o = out + (a - i0);
    const float* base = in + a - r;
    const int32_t m = b - a;
    for (int32_t i = 0; i < m; ++i) o[i] = kind == PoolKind::kAvg ? 0.0f + base[i] : base[i];
    for (int32_t j = 1; j < kernel; ++j) {
        const float* x = base + j;
        if (kind == PoolKind::kMax) {
            for (int32_t i = 0; i < m; ++i) o[i] = std::max(o[i], x[i]);
        } else {
            for (int32_t i = 0; i < m; ++i) o[i] += x[i];
        }
    }
    if (kind == PoolKind::kAvg) {
        const float kf = float(kernel);
        for (int32_t i = 0; i < m; ++i) o[i] /= kf;
    }
}

void pool1d(const float* in, int32_t n, int32_t kernel, PoolKind kind, float* out) {
    pool1d_range(in, n, kernel, kind, 0, n, out);
}

namespace {

// The k-th largest key v among c candidates and the output scan: every candidate whose key is above v,
// then those equal to v until k are taken, in candidate order (ascending slots). key(i): candidate i's
// key (NaN already mapped to -inf); slot(i): its slot. sel: the selection's copy of the keys [c].
template <class Key, class Slot>
void top_k_among(int32_t c, int32_t k, Key key, Slot slot, int32_t* out, std::vector<float>& sel) {
    sel.resize(size_t(c));
    for (int32_t i = 0; i < c; ++i) sel[size_t(i)] = key(i);
    std::nth_element(sel.begin(), sel.begin() + (k - 1), sel.end(), std::greater<float>());
    const float v = sel[size_t(k - 1)];
    int32_t above = 0;
    for (int32_t i = 0; i < c; ++i) above += key(i) > v;
    int32_t ties = k - above, j = 0;
    for (int32_t i = 0; i < c && j < k; ++i) {
        const float x = key(i);
        if (x > v || (x == v && ties-- > 0)) out[j++] = slot(i);
    }
}

}  // namespace

void top_k_indices(const float* score, int32_t n, int32_t k, int32_t* out) {
    if (k <= 0) return;
    if (k >= n) {
        std::iota(out, out + n, 0);
        return;
    }
    // The k-th largest value v by a selection over the values themselves (no index indirection),
    // then one scan in slot order: every slot above v, and the lowest-indexed slots equal to v until
    // k are taken. That is the order "score descending, then index ascending" cut after k, already
    // sorted by index. NaN ranks below every number (a total order, so the selection is defined).
    thread_local std::vector<float> sel, fv;  // the selection's copy; the candidates' keys [c]
    thread_local std::vector<int32_t> fi;     // the candidates' slots [c], ascending
    constexpr int32_t kStride = 8;            // the sample: every 8th slot
    if (n >= 4096 && k <= n / 4) {
        // Long vectors, k a small part of them (HeteroCache's monitor: 2184 of 32768): a lower bound
        // lb on v from a strided sample (its j-th largest, j a quarter above k / stride: about 1.25 k
        // slots pass), one pass keeps the slots with key >= lb, and the selection runs over those.
        // Exact: when at least k slots pass, v >= lb, so every slot ranked in the top k passed, in
        // slot order; otherwise (an unlucky sample) the full selection below.
        const int32_t m = n / kStride;
        const int32_t j = std::min(m, k / kStride + k / (4 * kStride) + 8);
        sel.resize(size_t(m));
        for (int32_t i = 0; i < m; ++i) {
            const float x = score[size_t(i) * kStride];
            sel[size_t(i)] = std::isnan(x) ? -INFINITY : x;
        }
        std::nth_element(sel.begin(), sel.begin() + (j - 1), sel.end(), std::greater<float>());
        const float lb = sel[size_t(j - 1)];
        if (lb > -INFINITY) {  // NaN and -inf keys fail x >= lb, as they rank below lb
            fv.resize(size_t(n));
            fi.resize(size_t(n));
            int32_t c = 0;
            for (int32_t s = 0; s < n; ++s) {  // branch-free: write every slot, advance on a pass
                const float x = score[s];
                fv[size_t(c)] = x;
                fi[size_t(c)] = s;
                c += x >= lb;
            }
            if (c >= k) {  // the candidates passed x >= lb > -inf, so none is NaN
                top_k_among(
                    c, k, [&](int32_t i) { return fv[size_t(i)]; }, [&](int32_t i) { return fi[size_t(i)]; }, out, sel);
                return;
            }
        }
    }
    top_k_among(
        n, k, [score](int32_t s) { return std::isnan(score[s]) ? -INFINITY : score[s]; }, [](int32_t s) { return s; },
        out, sel);
}

int32_t keep_scored(const float* scores, int32_t n, int32_t keep, const SnapOptions& o, int32_t* out,
                    SelectScratch& sc) {
    if (n <= keep) {
        std::iota(out, out + n, 0);
        return n;
    }
    const int32_t s = o.evict.sinks, w = o.evict.window;
    const int32_t prefix = n - w;  // > keep - w > s
    const int32_t k = keep - s - w;
    sc.pooled.resize(size_t(prefix));
    const float* ranked = scores;
    const int32_t kernel = snap_kernel(o.kernel, prefix);
    if (kernel > 1) {
        pool1d(scores, prefix, kernel, o.pool, sc.pooled.data());
        ranked = sc.pooled.data();
    }
    int32_t m = 0;
    for (int32_t i = 0; i < s; ++i) out[m++] = i;
    top_k_indices(ranked + s, prefix - s, k, out + m);
    for (int32_t i = 0; i < k; ++i) out[m + i] += s;
    m += k;
    for (int32_t i = prefix; i < n; ++i) out[m++] = i;
    return m;
}

std::vector<int32_t> round_to_total(const std::vector<double>& want, int64_t total) {
    std::vector<int32_t> r(want.size());
    int64_t sum = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        r[i] = int32_t(std::floor(want[i]));
        sum += r[i];
    }
    std::vector<size_t> order(want.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return want[a] - std::floor(want[a]) > want[b] - std::floor(want[b]); });
    for (size_t i = 0; sum < total && i < order.size(); ++i, ++sum) ++r[order[i]];
    return r;
}

PolicyInfo SnapFamilyPolicy::info() const {
    PolicyInfo i;
    i.name = name_;
    i.calls = kStepSegmentEnd;
    // SnapKV: the observation window is the recent window, the segment's last `window` queries
    i.stats = {StatRequest{StatKind::kAttention, kStepSegmentEnd, opt_.evict.window, true}};
    return i;
}

Status SnapFamilyPolicy::on_layer(const LayerView& v, LayerPlan& plan) {
    const StatValues& sc = v.stats[0];
    for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
        const int32_t n = v.n_live[size_t(ih)];
        const int32_t b = v.budget->at(v.il, ih);
        if (b < 0 || n <= b) continue;
        plan.n_keep[size_t(ih)] = keep_scored(sc.head(ih), n, b, opt_, plan.head(ih), scratch_);
    }
    return Status();
}

void gqa_query_sum(std::span<const float> q, int32_t ih, int32_t group, int32_t head_dim, float* out) {
    std::fill(out, out + head_dim, 0.0f);
    for (int32_t g = 0; g < group; ++g) {
        const float* qh = q.data() + size_t(ih * group + g) * size_t(head_dim);  // [head_dim]
        for (int32_t d = 0; d < head_dim; ++d) out[d] += qh[d];
    }
}

void quest_bounds(const float* qsum, const float* mn, const float* mx, int32_t n, int32_t head_dim, float* out) {
    for (int32_t p = 0; p < n; ++p) {
        const float* lo = mn + size_t(p) * size_t(head_dim);
        const float* hi = mx + size_t(p) * size_t(head_dim);
        float b = 0.0f;
        for (int32_t d = 0; d < head_dim; ++d) b += std::max(qsum[d] * hi[d], qsum[d] * lo[d]);
        out[p] = b;
    }
}

}  // namespace hkv
