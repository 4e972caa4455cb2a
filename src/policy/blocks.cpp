// policy/blocks.cpp — see blocks.h.
#include "policy/blocks.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

namespace hkv {

namespace {

// Appends the boundaries of [x, y) split so no block exceeds max_len (x included, y not).
void cap_range(const uint8_t* cand, const float* score, const SplitOptions& o, int32_t x, int32_t y,
               std::vector<int32_t>& out) {
    if (y - x <= o.max_len) {
        out.push_back(x);
        return;
    }
    int32_t best = -1;
    const int32_t lo = x + std::max(1, o.min_len), hi = y - std::max(1, o.min_len);
    for (int32_t i = lo; i <= hi && cand; ++i) {
        if (!cand[i]) continue;
        if (!score) {
            best = i;
            break;
        }
        if (!std::isfinite(score[i])) continue;
        if (best < 0 || score[i] > score[best]) best = i;
    }
    if (best < 0) {
        for (int32_t k = x; k < y; k += o.max_len) out.push_back(k);
        return;
    }
    cap_range(cand, score, o, x, best, out);
    cap_range(cand, score, o, best, y, out);
}

}  // namespace

void split_cap(const uint8_t* cand, const float* score, const SplitOptions& o, std::vector<int32_t>& bounds) {
    if (bounds.size() < 2) return;
    std::vector<int32_t> out;
    out.reserve(bounds.size());
    for (size_t j = 0; j + 1 < bounds.size(); ++j) cap_range(cand, score, o, bounds[j], bounds[j + 1], out);
    out.push_back(bounds.back());
    bounds.swap(out);
}

void split_fixed(int32_t b, int32_t e, int32_t interval, std::vector<int32_t>& bounds) {
    bounds.clear();
    for (int32_t k = b; k < e; k += interval) bounds.push_back(k);
    bounds.push_back(e);
}

void split_punct(const uint8_t* cand, int32_t b, int32_t e, const SplitOptions& o, std::vector<int32_t>& bounds) {
    bounds.clear();
    bounds.push_back(b);
    for (int32_t i = b + 1; i < e; ++i) {
        if (cand[i]) bounds.push_back(i);
    }
    bounds.push_back(e);
    SplitOptions c = o;
    c.min_len = 1;
    split_cap(nullptr, nullptr, c, bounds);
}

void split_dd(const uint8_t* cand, const float* score, int32_t b, int32_t e, const SplitOptions& o,
              std::vector<int32_t>& bounds) {
    bounds.assign({b, e});
    if (e - b <= 1) return;
    std::vector<int32_t> order;
    for (int32_t i = b + 1; i < e; ++i) {
        if (cand[i] && std::isfinite(score[i])) order.push_back(i);
    }
    if (o.accept == AcceptKind::kAdaptive && !order.empty()) {
        double sum = 0.0, sq = 0.0;
        for (int32_t i : order) sum += score[i];
        const double mean = sum / double(order.size());
        for (int32_t i : order) sq += (score[i] - mean) * (score[i] - mean);
        const double thr = mean + double(o.lambda) * std::sqrt(sq / double(order.size()));
        std::erase_if(order, [&](int32_t i) { return double(score[i]) < thr; });
    }
    std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return score[x] > score[y]; });
    const size_t want = o.accept == AcceptKind::kTarget ? size_t((e - b + o.target - 1) / o.target) : SIZE_MAX;
    std::set<int32_t> acc = {b, e};
    for (int32_t i : order) {
        if (acc.size() - 1 >= want) break;
        const auto hi = acc.lower_bound(i);
        const auto lo = std::prev(hi);
        if (i - *lo >= o.min_len && *hi - i >= o.min_len) acc.insert(i);
    }
    bounds.assign(acc.begin(), acc.end());
    split_cap(cand, score, o, bounds);
}

void block_pages_build(std::span<const int32_t> bounds, int32_t page, BlockPages& out) {
    out.page = page;
    out.bounds.assign(bounds.begin(), bounds.end());
    out.block_page.clear();
    out.page_block.clear();
    out.page_start.clear();
    out.page_valid.clear();
    for (size_t j = 0; j + 1 < bounds.size(); ++j) {
        out.block_page.push_back(int32_t(out.page_block.size()));
        for (int32_t s = bounds[j]; s < bounds[j + 1]; s += page) {
            out.page_block.push_back(int32_t(j));
            out.page_start.push_back(s);
            out.page_valid.push_back(std::min(page, bounds[j + 1] - s));
        }
    }
    out.block_page.push_back(int32_t(out.page_block.size()));
}

void block_scores_paged(const BlockPages& bp, const float* token, BlockScoreKind kind, PagedScratch& sc,
                        std::vector<float>& out) {
    const int32_t P = bp.page, np = bp.n_pages();
    const bool want_max = kind == BlockScoreKind::kMax;
    const float pad = want_max ? -INFINITY : 0.0f;
    // gather: [n_pages, P], padded
    sc.tile.resize(size_t(np) * size_t(P));
    for (int32_t p = 0; p < np; ++p) {
        float* row = sc.tile.data() + size_t(p) * size_t(P);
        const int32_t v = bp.page_valid[size_t(p)];
        std::copy_n(token + bp.page_start[size_t(p)], v, row);
        std::fill(row + v, row + P, pad);
    }
    // fixed-shape page reductions
    sc.page_sum.resize(size_t(np));
    sc.page_max.resize(size_t(np));
    for (int32_t p = 0; p < np; ++p) {
        const float* row = sc.tile.data() + size_t(p) * size_t(P);
        if (want_max) {
            float m = -INFINITY;
            for (int32_t k = 0; k < P; ++k) m = std::max(m, row[k]);
            sc.page_max[size_t(p)] = m;
        } else {
            float s = 0.0f;
            for (int32_t k = 0; k < P; ++k) s += row[k];
            sc.page_sum[size_t(p)] = s;
        }
    }
    // segmented combine over each block's pages
    const int32_t M = bp.n_blocks();
    out.resize(size_t(M));
    for (int32_t j = 0; j < M; ++j) {
        const int32_t p0 = bp.block_page[size_t(j)], p1 = bp.block_page[size_t(j) + 1];
        const float len = float(bp.bounds[size_t(j) + 1] - bp.bounds[size_t(j)]);
        if (want_max) {
            float m = -INFINITY;
            for (int32_t p = p0; p < p1; ++p) m = std::max(m, sc.page_max[size_t(p)]);
            out[size_t(j)] = m;
        } else {
            float s = 0.0f;
            for (int32_t p = p0; p < p1; ++p) s += sc.page_sum[size_t(p)];
            out[size_t(j)] = kind == BlockScoreKind::kMean ? s / len : s / std::sqrt(len);
        }
    }
}

void block_scores_ragged(std::span<const int32_t> bounds, const float* token, BlockScoreKind kind,
                         std::vector<float>& out) {
    const int32_t M = int32_t(bounds.size()) - 1;
    out.resize(size_t(std::max(M, 0)));
    for (int32_t j = 0; j < M; ++j) {
        const int32_t b = bounds[size_t(j)], e = bounds[size_t(j) + 1];
        if (kind == BlockScoreKind::kMax) {
            float m = -INFINITY;
            for (int32_t i = b; i < e; ++i) m = std::max(m, token[i]);
            out[size_t(j)] = m;
        } else {
            float s = 0.0f;
            for (int32_t i = b; i < e; ++i) s += token[i];
            out[size_t(j)] = kind == BlockScoreKind::kMean ? s / float(e - b) : s / std::sqrt(float(e - b));
        }
    }
}

int32_t blocks_select(std::span<const float> score, std::span<const int32_t> bounds, int32_t room,
                      std::vector<int32_t>& order, std::vector<uint8_t>& taken) {
    const int32_t M = int32_t(score.size());
    order.resize(size_t(M));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return score[size_t(a)] > score[size_t(b)]; });
    taken.assign(size_t(M), 0);
    int32_t used = 0;
    for (int32_t j : order) {
        const int32_t len = bounds[size_t(j) + 1] - bounds[size_t(j)];
        if (len <= room - used) {
            taken[size_t(j)] = 1;
            used += len;
        }
    }
    return used;
}

}  // namespace hkv
