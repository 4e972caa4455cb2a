// engine/forward.cpp — the decoder layer of every architecture (model/arch/*.cpp), batched over a chunk.
#include "engine/forward.h"

#include <cmath>

#include "backend/cpu/quant.h"

namespace hkv {

void ForwardScratch::resize(const ModelConfig& c, int32_t nb, int32_t n_ctx) {
    n_batch = nb;
    const size_t n = size_t(nb);
    x.resize(n * size_t(c.n_embd));
    xn.resize(n * size_t(c.n_embd));
    out.resize(n * size_t(c.n_embd));
    q.resize(n * size_t(c.n_head) * size_t(c.head_dim));
    attn.resize(n * size_t(c.n_head) * size_t(c.head_dim));
    k.resize(n * size_t(c.n_head_kv) * size_t(c.head_dim));
    v.resize(n * size_t(c.n_head_kv) * size_t(c.head_dim));
    gate.resize(n * size_t(c.n_ff));
    up.resize(n * size_t(c.n_ff));
    pos.resize(n);
    heads.resize(size_t(c.n_head_kv));
    rope.resize(size_t(c.n_layer));
    for (int32_t il = 0; il < c.n_layer; ++il) rope[size_t(il)] = c.rope_for(il, n_ctx);
}

namespace {

// y[r] = rmsnorm(x[r]) * w for r in [0, n)
void rmsnorm_rows(ThreadPool& pool, const float* x, const float* w, float* y, int32_t n, int32_t d, float eps) {
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r) rmsnorm(x + r * d, w, y + r * d, d, eps);
    });
}

void add_bias_rows(float* y, const std::vector<float>& bias, int32_t n) {
    const int64_t d = int64_t(bias.size());
    for (int32_t r = 0; r < n; ++r) add_inplace(y + r * d, bias.data(), d);
}

// x[t] += W · in[t] for the n rows of the chunk (a sublayer's output added to the residual stream),
// or x[t] += rmsnorm(W · in[t]) * post_norm with a post-norm (gemma). Without one, decode adds
// inside the matvec's pool run instead of a separate pass.
void residual_matmul(ThreadPool& pool, const WeightView& w, const float* in, int32_t n, ForwardScratch& s,
                     const std::vector<float>& post_norm, float eps) {
    if (n == 1 && post_norm.empty()) {
        const MatvecOut o{&w, s.x.data(), true};
        matvec_multi(pool, &o, 1, in, s.mm_scratch);
        return;
    }
    matmul(pool, w, in, n, s.out.data(), s.mm_scratch);
    const int64_t d = w.n_out;
    if (!post_norm.empty()) rmsnorm_rows(pool, s.out.data(), post_norm.data(), s.out.data(), n, int32_t(d), eps);
    for (int32_t t = 0; t < n; ++t) add_inplace(s.x.data() + size_t(t) * d, s.out.data() + size_t(t) * d, d);
}

// RMSNorm of each of the n * n_head rows of head_dim values in place (QK norm).
void head_norm(ThreadPool& pool, float* x, const std::vector<float>& w, int32_t n, int32_t n_head, int32_t hd,
               float eps) {
    rmsnorm_rows(pool, x, w.data(), x, n * n_head, hd, eps);
}

}  // namespace

Status forward_chunk(const Model& model, KvStore& kv, ThreadPool& pool, ForwardScratch& s,
                     PolicyRuntime* rt, const ChunkInfo& info, const int32_t* tokens, int32_t n,
                     int32_t pos0, bool logits_all, float* logits) {
    const ModelConfig& c = model.config();
    const int32_t d = c.n_embd, hd = c.head_dim;
    const int32_t n_kv = c.n_head_kv * hd;

    // ---- embeddings: x[t] = tok_embd[tokens[t]] ----
    for (int32_t t = 0; t < n; ++t) {
        weight_row_dequantize(model.tok_embd(), tokens[t], s.x.data() + size_t(t) * d);
        s.pos[size_t(t)] = pos0 + t;
    }
    if (c.embd_scale > 0.0f) {
        for (size_t i = 0; i < size_t(n) * size_t(d); ++i) s.x[i] *= c.embd_scale;
    }

    AttnParams ap;
    ap.n_head = c.n_head;
    ap.n_head_kv = c.n_head_kv;
    ap.head_dim = hd;
    ap.page_size = kv.config().page_size;
    ap.scale = c.attn_scale > 0.0f ? c.attn_scale : 1.0f / std::sqrt(float(hd));
    ap.softcap = c.attn_softcap;

    for (int32_t il = 0; il < c.n_layer; ++il) {
        const LayerWeights& L = model.layers()[size_t(il)];
        ap.window = c.layer_swa(il) ? c.n_swa : 0;
        // ---- attention ----
        rmsnorm_rows(pool, s.x.data(), L.attn_norm.data(), s.xn.data(), n, d, c.rms_eps);
        if (n == 1) {  // decode: Q, K and V in one pool run
            const MatvecOut qkv[3] = {{&L.wq, s.q.data()}, {&L.wk, s.k.data()}, {&L.wv, s.v.data()}};
            matvec_multi(pool, qkv, 3, s.xn.data(), s.mm_scratch);
        } else {
            matmul(pool, L.wq, s.xn.data(), n, s.q.data(), s.mm_scratch);
            matmul(pool, L.wk, s.xn.data(), n, s.k.data(), s.mm_scratch);
            matmul(pool, L.wv, s.xn.data(), n, s.v.data(), s.mm_scratch);
        }
        if (c.qkv_bias) {
            add_bias_rows(s.q.data(), L.bq, n);
            add_bias_rows(s.k.data(), L.bk, n);
            add_bias_rows(s.v.data(), L.bv, n);
        }
        if (c.qk_norm) {
            head_norm(pool, s.q.data(), L.q_norm, n, c.n_head, hd, c.rms_eps);
            head_norm(pool, s.k.data(), L.k_norm, n, c.n_head_kv, hd, c.rms_eps);
        }
        const RopeParams& rp = s.rope[size_t(il)];
        rope(rp, s.q.data(), s.pos.data(), n, c.n_head, hd);
        rope(rp, s.k.data(), s.pos.data(), n, c.n_head_kv, hd);
        for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
            HKV_TRY(kv.append(il, ih, n, s.k.data() + size_t(ih) * hd, n_kv, s.v.data() + size_t(ih) * hd,
                              n_kv, s.pos.data()));
        }
        for (int32_t ih = 0; ih < c.n_head_kv; ++ih) s.heads[size_t(ih)] = kv.view(il, ih);
        AttnParams lap = ap;  // a sparse-attention policy may present the heads in finer pages
        if (rt) {
            HKV_TRY(rt->before_attention(il, info.step, pos0 + n, kv, pool, s.q.data(), s.heads.data(),
                                         &lap.page_size));
        }
        float* const lse = rt ? rt->lse_buffer(info.step, n) : nullptr;
        AttnColSums* const colsums = rt ? rt->colsum_buffer(il, info.step, n, s.heads.data()) : nullptr;
        attention(pool, lap, s.q.data(), s.pos.data(), n, s.heads.data(), s.attn.data(), lse, colsums);
        if (info.tap && info.step != kStepChunk) {
            HKV_TRY(info.tap->observe(il, info.step == kStepDecode, pos0 + n, kv, pool, ap, s.q.data(), s.pos.data(), n));
        }
        if (rt) HKV_TRY(rt->after_layer(il, info.step, pos0 + n, kv, pool, ap, s.q.data(), s.pos.data(), n));
        // the next query (position pos0 + n) sees positions > pos0 + n - window only
        if (info.window_evict && info.window_evict[il]) kv.drop_before(il, pos0 + n - ap.window + 1);
        residual_matmul(pool, L.wo, s.attn.data(), n, s, L.attn_post_norm, c.rms_eps);

        // ---- feed-forward (SwiGLU / GeGLU) ----
        rmsnorm_rows(pool, s.x.data(), L.ffn_norm.data(), s.xn.data(), n, d, c.rms_eps);
        if (n == 1) {  // decode: gate, up and the activation in one pool run
            matvec_swiglu(pool, L.w_gate, L.w_up, s.xn.data(), s.gate.data(), s.mm_scratch, c.ffn_act);
        } else {
            matmul(pool, L.w_gate, s.xn.data(), n, s.gate.data(), s.mm_scratch);
            matmul(pool, L.w_up, s.xn.data(), n, s.up.data(), s.mm_scratch);
            pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
                for (int64_t t = b; t < e; ++t) glu(c.ffn_act, s.gate.data() + t * c.n_ff, s.up.data() + t * c.n_ff, c.n_ff);
            });
        }
        residual_matmul(pool, L.w_down, s.gate.data(), n, s, L.ffn_post_norm, c.rms_eps);
    }

    // ---- output ----
    const int32_t first = logits_all ? 0 : n - 1;
    const int32_t rows = n - first;
    rmsnorm_rows(pool, s.x.data() + size_t(first) * d, model.output_norm().data(), s.xn.data(), rows, d, c.rms_eps);
    matmul(pool, model.output(), s.xn.data(), rows, logits, s.mm_scratch);
    if (c.final_softcap > 0.0f) {  // l -> cap * tanh(l / cap)
        const float cap = c.final_softcap;
        for (size_t i = 0; i < size_t(rows) * size_t(c.n_vocab); ++i) logits[i] = cap * std::tanh(logits[i] * (1.0f / cap));
    }
    return Status();
}

}  // namespace hkv
