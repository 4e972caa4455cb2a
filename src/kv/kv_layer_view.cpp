// kv/kv_layer_view.cpp — heterokv/policy.h KvLayerView over a KvStore: the one place where a
// policy's row reads meet the store's pages and element type (and, later, quantized blocks).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/scores.h"
#include "core/thread_pool.h"
#include "heterokv/policy.h"
#include "kv/kv_store.h"

namespace hkv {

int32_t KvLayerView::head_dim() const { return kv_->config().head_dim; }
int32_t KvLayerView::n_slot(int32_t ih) const { return kv_->n_slot(il_, ih); }
int32_t KvLayerView::page_size() const { return kv_->config().page_size; }
uint64_t KvLayerView::epoch() const { return kv_->epoch(); }
int32_t KvLayerView::cold_rows(int32_t ih) const { return kv_->cold_rows(il_, ih); }

namespace {

void rows_f32(const KvStoreConfig& c, DType t, const void* const* pages, int32_t s0, int32_t n, float* out) {
    for (int32_t i = 0; i < n; ++i) {
        kv_read_row(t, pages, c.page_size, c.head_dim, s0 + i, out + size_t(i) * size_t(c.head_dim));
    }
}

}  // namespace

void KvLayerView::keys(int32_t ih, int32_t s0, int32_t n, float* out) const {
    rows_f32(kv_->config(), kv_->types(il_, ih).k, kv_->view(il_, ih).k_pages, s0, n, out);
}

void KvLayerView::values(int32_t ih, int32_t s0, int32_t n, float* out) const {
    rows_f32(kv_->config(), kv_->types(il_, ih).v, kv_->view(il_, ih).v_pages, s0, n, out);
}

void KvLayerView::key_dots(int32_t ih, const float* q, int32_t n_row, int32_t n, float* out, int64_t stride) const {
    const KvStoreConfig& c = kv_->config();
    const AttnKvHead h = kv_->view(il_, ih);
    if (pool_) {
        qk_dots(*pool_, h.k_type, h.k_pages, c.page_size, c.head_dim, q, n_row, n, out, stride);
    } else {
        qk_dots(h.k_type, h.k_pages, c.page_size, c.head_dim, q, n_row, n, out, stride);
    }
}

void KvLayerView::key_probs(int32_t ih, const float* q, int32_t n_row, int32_t n, float scale, float* out,
                            int64_t stride) const {
    key_dots(ih, q, n_row, n, out, stride);
    parallel_for(n_row, [&](int32_t r, int32_t) { scaled_softmax(out + size_t(r) * size_t(stride), n, scale); });
}

void KvLayerView::scaled_softmax(float* row, int32_t n, float scale) {
    for (int32_t s = 0; s < n; ++s) row[s] *= scale;
    softmax(row, n);  // vectorised: max, exp, a sum in double lanes, one multiply
}

int32_t KvLayerView::n_threads() const { return pool_ ? pool_->n_threads() : 1; }

void KvLayerView::parallel_for(int32_t n, const std::function<void(int32_t, int32_t)>& fn) const {
    if (!pool_) {
        for (int32_t i = 0; i < n; ++i) fn(i, 0);
        return;
    }
    pool_->for_each(n, [&](int64_t i, int ith) { fn(int32_t(i), ith); });
}

void KvLayerView::key_extremes(int32_t ih, int32_t s0, int32_t s1, float* mn, float* mx) const {
    const KvStoreConfig& c = kv_->config();
    const AttnKvHead h = kv_->view(il_, ih);
    thread_local std::vector<float> row;  // [head_dim]
    row.resize(size_t(c.head_dim));
    for (int32_t s = s0; s < s1; ++s) {
        kv_read_row(h.k_type, h.k_pages, c.page_size, c.head_dim, s, row.data());
        for (int32_t d = 0; d < c.head_dim; ++d) {
            mn[d] = std::min(mn[d], row[size_t(d)]);
            mx[d] = std::max(mx[d], row[size_t(d)]);
        }
    }
}

}  // namespace hkv
