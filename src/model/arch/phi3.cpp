// model/arch/phi3.cpp — the `phi3` architecture (Phi-3 mini/medium, Phi-3.5-mini, Phi-4-mini).
// The llama decoder with NEOX RoPE (partial when rope.dimension_count < head_dim, Phi-4-mini) and
// fused projections: attn_qkv.weight [n_embd, n_q + 2 n_kv] (rows Q, then K, then V; separate
// attn_q/k/v are accepted too) and ffn_up.weight [n_embd, 2 n_ff] (rows: the gate, then the up
// projection; there is no ffn_gate). Both are split into row views, without a copy. Long-context
// models carry LongRoPE factors (rope_factors_short/long.weight, [n_rot/2]): a context longer than
// rope.scaling.original_context_length uses the long ones (chosen per context, as llama.cpp does),
// and rope.scaling.attn_factor scales the rotated Q and K. A sliding window shorter than the training
// context (Phi-3-mini-4k: 2047) applies to every layer; llama.cpp currently disables it. Phi-3's
// SentencePiece tokenizer drops the whitespace after its chat tokens (rstrip): special_rstrip.
// NOTE: llama.cpp does the same only when general.name contains "phi-3" or "phi3".
#include "model/model.h"

namespace hkv {
namespace {

Status read_hparams(const GgufFile& f, ModelConfig& c) {
    const std::string p = c.arch + ".";
    HKV_ASSIGN_OR_RETURN(const int64_t orig, f.get_int_or(p + "rope.scaling.original_context_length", c.n_ctx_train));
    if (orig < 1 || orig > (int64_t(1) << 30)) {
        return Status::corrupt("model: rope.scaling.original_context_length %lld out of range", (long long)orig);
    }
    c.n_ctx_orig = int32_t(orig);
    HKV_TRY(read_sliding_window(f, c, false));
    if (c.n_swa > 0 && c.n_swa < c.n_ctx_train) c.swa_layers.assign(size_t(c.n_layer), 1);
    else c.n_swa = 0;
    return Status();
}

Status load_layer(TensorLoader& t, const ModelConfig& c, int32_t il, LayerWeights& L) {
    const int64_t n_q = int64_t(c.n_head) * c.head_dim;
    const int64_t n_kv = int64_t(c.n_head_kv) * c.head_dim;
    const std::string b = "blk." + std::to_string(il) + ".";
    HKV_TRY(t.vector(b + "attn_norm.weight", c.n_embd, &L.attn_norm));
    if (t.has(b + "attn_qkv.weight")) {
        WeightView qkv;
        HKV_TRY(t.matrix(b + "attn_qkv.weight", c.n_embd, n_q + 2 * n_kv, &qkv));
        L.wq = weight_rows(qkv, 0, n_q);
        L.wk = weight_rows(qkv, n_q, n_kv);
        L.wv = weight_rows(qkv, n_q + n_kv, n_kv);
    } else {
        HKV_TRY(t.matrix(b + "attn_q.weight", c.n_embd, n_q, &L.wq));
        HKV_TRY(t.matrix(b + "attn_k.weight", c.n_embd, n_kv, &L.wk));
        HKV_TRY(t.matrix(b + "attn_v.weight", c.n_embd, n_kv, &L.wv));
    }
    HKV_TRY(t.matrix(b + "attn_output.weight", n_q, c.n_embd, &L.wo));
    HKV_TRY(t.vector(b + "ffn_norm.weight", c.n_embd, &L.ffn_norm));
    WeightView up;
    HKV_TRY(t.matrix(b + "ffn_up.weight", c.n_embd, 2 * int64_t(c.n_ff), &up));
    L.w_gate = weight_rows(up, 0, c.n_ff);
    L.w_up = weight_rows(up, c.n_ff, c.n_ff);
    HKV_TRY(t.matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, &L.w_down));
    return Status();
}

void tokenizer_fixup(TokenizerData& td) {
    if (td.model == "llama") td.special_rstrip = true;
}

}  // namespace

extern const ArchSpec kArchPhi3;
const ArchSpec kArchPhi3 = {"phi3", RopeStyle::kNeox, /*qkv_bias=*/false, read_hparams, load_layer, tokenizer_fixup};
}  // namespace hkv
