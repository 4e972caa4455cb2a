// model/model_info.cpp — the public view of a loaded model (include/heterokv/model.h).
#include <new>

#include "heterokv/model.h"
#include "model/model.h"

namespace hkv {

Expected<std::shared_ptr<const Model>> model_load(const std::string& path) {
    auto m = Model::load(path);
    if (!m.ok()) return m.status();
    return std::shared_ptr<const Model>(std::move(m).value());
}

ModelInfo model_info(const Model& model) {
    const ModelConfig& c = model.config();
    ModelInfo i;
    i.arch = c.arch;
    i.name = c.name;
    i.n_vocab = c.n_vocab;
    i.n_ctx_train = c.n_ctx_train;
    i.n_embd = c.n_embd;
    i.n_layer = c.n_layer;
    i.n_head = c.n_head;
    i.n_head_kv = c.n_head_kv;
    i.head_dim = c.head_dim;
    i.n_ff = c.n_ff;
    i.rms_eps = c.rms_eps;
    i.qkv_bias = c.qkv_bias;
    i.rope_style = c.rope.style == RopeStyle::kNeox ? "neox" : "norm";
    i.rope_n_rot = c.rope.n_rot;
    i.rope_freq_base = c.rope.freq_base;
    i.rope_freq_scale = c.rope.freq_scale;
    i.rope_freq_factors = c.rope.freq_factors != nullptr;
    i.rope_longrope = c.rope_factors_long != nullptr;
    i.n_swa = c.n_swa;
    for (int32_t il = 0; il < c.n_layer; ++il) i.n_swa_layers += c.layer_swa(il) ? 1 : 0;
    i.rope_swa_freq_base = c.rope_swa.freq_base;
    i.attn_softcap = c.attn_softcap;
    i.final_softcap = c.final_softcap;
    i.weight_bytes = int64_t(model.weight_bytes());
    i.weight_bytes_decode = i.weight_bytes;
    if (!model.tied_embeddings()) {  // the embedding table is read one row per token, not whole
        i.weight_bytes_decode -= int64_t(model.tok_embd().row_bytes() * size_t(model.tok_embd().n_out));
    }
    i.weight_types = model.weight_type_summary();
    i.tied_embeddings = model.tied_embeddings();
    i.chat_template = model.tokenizer().data().chat_template;
    return i;
}

std::vector<TensorInfo> model_tensors(const Model& model) {
    std::vector<TensorInfo> out;
    for (const GgufTensor& t : model.gguf().tensors()) {
        TensorInfo ti;
        ti.name = t.name;
        ti.type = dtype_name(t.type);
        for (int d = 0; d < 4; ++d) ti.ne[d] = t.ne[d];
        ti.n_bytes = int64_t(t.nbytes);
        out.push_back(std::move(ti));
    }
    return out;
}

const Tokenizer& model_tokenizer(const Model& model) { return model.tokenizer(); }

}  // namespace hkv
