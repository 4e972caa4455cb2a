// model/model.cpp — GGUF -> ModelConfig + weight views + tokenizer, with every tensor validated.
#include "model/model.h"

#include <map>
#include <new>

#include "backend/cpu/quant.h"
#include "model/vocab_gguf.h"

namespace hkv {

extern const ArchSpec kArchLlama;
extern const ArchSpec kArchQwen2;

namespace {

const ArchSpec* const kArchs[] = {&kArchLlama, &kArchQwen2};

// Reads an integer key that must lie in [lo, hi].
Status read_int(const GgufFile& f, const std::string& key, int64_t lo, int64_t hi, int32_t* out,
                const int64_t* def = nullptr) {
    Expected<int64_t> v = def ? f.get_int_or(key, *def) : f.get_int(key);
    if (!v.ok()) return v.status();
    if (*v < lo || *v > hi) {
        return Status::corrupt("model: %s = %lld is out of range [%lld, %lld]", key.c_str(),
                               (long long)*v, (long long)lo, (long long)hi);
    }
    *out = int32_t(*v);
    return Status();
}

}  // namespace

const ArchSpec* arch_find(const std::string& arch) {
    for (const ArchSpec* a : kArchs) {
        if (arch == a->name) return a;
    }
    return nullptr;
}

std::string arch_list() {
    std::string s;
    for (const ArchSpec* a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a->name);
    return s;
}

Expected<std::unique_ptr<Model>> Model::load(const std::string& path) {
    auto file = GgufFile::open(path);
    if (!file.ok()) return file.status();
    auto m = from_gguf(std::move(file).value());
    if (!m.ok()) return m.status().with_context(path);
    return m;
}

Expected<std::unique_ptr<Model>> Model::from_gguf(std::unique_ptr<GgufFile> file) {
    try {
        std::unique_ptr<Model> m(new Model());
        HKV_TRY(m->init(std::move(file)));
        return m;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("model: out of memory while loading");
    }
}

Status Model::init(std::unique_ptr<GgufFile> file) {
    file_ = std::move(file);
    const GgufFile& f = *file_;
    ModelConfig& c = config_;

    auto arch = f.get_str("general.architecture");
    if (!arch.ok()) return arch.status().with_context("model");
    const ArchSpec* spec = arch_find(*arch);
    if (!spec) {
        return Status::unsupported("model: architecture '%s' is not supported (supported: %s)",
                                   arch->c_str(), arch_list().c_str());
    }
    c.arch = *arch;
    if (auto name = f.get_str("general.name"); name.ok()) c.name = *name;
    const std::string p = c.arch + ".";

    const int64_t kMaxDim = 1 << 20;
    HKV_TRY(read_int(f, p + "block_count", 1, 4096, &c.n_layer));
    HKV_TRY(read_int(f, p + "embedding_length", 1, kMaxDim, &c.n_embd));
    HKV_TRY(read_int(f, p + "feed_forward_length", 1, kMaxDim * 4, &c.n_ff));
    HKV_TRY(read_int(f, p + "attention.head_count", 1, 4096, &c.n_head));
    const int64_t def_kv = c.n_head;
    HKV_TRY(read_int(f, p + "attention.head_count_kv", 1, c.n_head, &c.n_head_kv, &def_kv));
    if (c.n_head % c.n_head_kv) {
        return Status::corrupt("model: head_count %d is not a multiple of head_count_kv %d", c.n_head,
                               c.n_head_kv);
    }
    const int64_t def_ctx = 2048;
    HKV_TRY(read_int(f, p + "context_length", 1, int64_t(1) << 30, &c.n_ctx_train, &def_ctx));
    const int64_t def_hd = c.n_embd / c.n_head;
    HKV_TRY(read_int(f, p + "attention.key_length", 1, 4096, &c.head_dim, &def_hd));
    if (c.head_dim % 2) return Status::corrupt("model: head dimension %d is odd", c.head_dim);
    const int64_t def_rot = c.head_dim;
    HKV_TRY(read_int(f, p + "rope.dimension_count", 2, c.head_dim, &c.rope.n_rot, &def_rot));
    if (c.rope.n_rot % 2) return Status::corrupt("model: rope.dimension_count %d is odd", c.rope.n_rot);
    HKV_ASSIGN_OR_RETURN(c.rms_eps, f.get_f32_or(p + "attention.layer_norm_rms_epsilon", 1e-5f));
    HKV_ASSIGN_OR_RETURN(c.rope.freq_base, f.get_f32_or(p + "rope.freq_base", 10000.0f));
    if (!(c.rms_eps > 0.0f) || !(c.rope.freq_base > 0.0f)) {
        return Status::corrupt("model: rms epsilon and rope.freq_base must be > 0");
    }
    c.rope.style = spec->rope_style;
    c.qkv_bias = spec->qkv_bias;
    if (const GgufValue* st = f.find(p + "rope.scaling.type")) {
        const std::string type = st->type == GgufType::kString ? st->str : "?";
        if (type == "linear") {
            HKV_ASSIGN_OR_RETURN(float factor, f.get_f32(p + "rope.scaling.factor"));
            if (!(factor > 0.0f)) return Status::corrupt("model: rope.scaling.factor must be > 0");
            c.rope.freq_scale = 1.0f / factor;
        } else if (type != "none") {
            return Status::unsupported("model: rope scaling type '%s' is not supported (none, linear)",
                                       type.c_str());
        }
    }

    // ---- tokenizer ----
    HKV_ASSIGN_OR_RETURN(TokenizerData td, tokenizer_data_from_gguf(f));
    HKV_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::create(td));
    c.n_vocab = tokenizer_->n_vocab();

    // ---- tensors ----
    std::map<std::string, int> type_count;
    auto matrix = [&](const std::string& name, int64_t n_in, int64_t n_out, WeightView* out) -> Status {
        const GgufTensor* t = f.find_tensor(name);
        if (!t) return Status::not_found("model: tensor '%s' is missing", name.c_str());
        if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1) {
            return Status::corrupt("model: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                                   name.c_str(), (long long)t->ne[0], (long long)t->ne[1],
                                   (long long)t->ne[2], (long long)t->ne[3], (long long)n_in, (long long)n_out);
        }
        const DTypeInfo* di = dtype_info(t->type);
        if (!di || !di->supported) {
            return Status::unsupported("model: tensor '%s' has weight type %s, which is not supported",
                                       name.c_str(), dtype_name(t->type));
        }
        *out = WeightView{t->data, t->type, n_in, n_out};
        weight_bytes_ += t->nbytes;
        ++type_count[di->name];
        return Status();
    };
    auto vector = [&](const std::string& name, int64_t n, std::vector<float>* out) -> Status {
        WeightView w;
        HKV_TRY(matrix(name, n, 1, &w));
        out->resize(size_t(n));
        dequantize_row_ref(w.type, w.data, out->data(), n);
        return Status();
    };

    const int64_t n_q = int64_t(c.n_head) * c.head_dim;
    const int64_t n_kv = int64_t(c.n_head_kv) * c.head_dim;
    HKV_TRY(matrix("token_embd.weight", c.n_embd, c.n_vocab, &tok_embd_));
    HKV_TRY(vector("output_norm.weight", c.n_embd, &output_norm_));
    if (f.find_tensor("output.weight")) {
        HKV_TRY(matrix("output.weight", c.n_embd, c.n_vocab, &output_));
    } else {
        output_ = tok_embd_;
        tied_ = true;
    }
    if (f.find_tensor("rope_freqs.weight")) {
        HKV_TRY(vector("rope_freqs.weight", c.rope.n_rot / 2, &rope_freqs_));
        c.rope.freq_factors = rope_freqs_.data();
    }
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < c.n_layer; ++il) {
        LayerWeights& L = layers_[size_t(il)];
        const std::string b = "blk." + std::to_string(il) + ".";
        HKV_TRY(vector(b + "attn_norm.weight", c.n_embd, &L.attn_norm));
        HKV_TRY(matrix(b + "attn_q.weight", c.n_embd, n_q, &L.wq));
        HKV_TRY(matrix(b + "attn_k.weight", c.n_embd, n_kv, &L.wk));
        HKV_TRY(matrix(b + "attn_v.weight", c.n_embd, n_kv, &L.wv));
        HKV_TRY(matrix(b + "attn_output.weight", n_q, c.n_embd, &L.wo));
        if (c.qkv_bias) {
            HKV_TRY(vector(b + "attn_q.bias", n_q, &L.bq));
            HKV_TRY(vector(b + "attn_k.bias", n_kv, &L.bk));
            HKV_TRY(vector(b + "attn_v.bias", n_kv, &L.bv));
        }
        HKV_TRY(vector(b + "ffn_norm.weight", c.n_embd, &L.ffn_norm));
        HKV_TRY(matrix(b + "ffn_gate.weight", c.n_embd, c.n_ff, &L.w_gate));
        HKV_TRY(matrix(b + "ffn_up.weight", c.n_embd, c.n_ff, &L.w_up));
        HKV_TRY(matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, &L.w_down));
    }
    for (const auto& [name, n] : type_count) {
        if (!summary_.empty()) summary_ += ", ";
        summary_ += name + " x " + std::to_string(n);
    }
    return Status();
}

}  // namespace hkv
