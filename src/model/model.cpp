// model/model.cpp — GGUF -> ModelConfig + weight views + tokenizer, with every tensor validated.
#include "model/model.h"

#include <sys/mman.h>

#include <algorithm>
#include <map>
#include <new>
#include <system_error>
#include <thread>

#include "backend/cpu/quant.h"
#include "backend/cpu/repack.h"
#include "core/env.h"
#include "model/vocab_gguf.h"

namespace hkv {

extern const ArchSpec kArchLlama;
extern const ArchSpec kArchQwen2;
extern const ArchSpec kArchQwen3;
extern const ArchSpec kArchGemma2;
extern const ArchSpec kArchGemma3;
extern const ArchSpec kArchPhi3;

namespace {

const ArchSpec* const kArchs[] = {&kArchLlama, &kArchQwen2, &kArchQwen3, &kArchGemma2, &kArchGemma3, &kArchPhi3};

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

// TensorLoader over the GGUF's tensor table; counts bytes and types of what was used.
class GgufTensorLoader final : public TensorLoader {
public:
    explicit GgufTensorLoader(const GgufFile& f) : f_(f) {}
    bool has(const std::string& name) const override { return f_.find_tensor(name) != nullptr; }
    Status matrix(const std::string& name, int64_t n_in, int64_t n_out, WeightView* out) override {
        const GgufTensor* t = f_.find_tensor(name);
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
        bytes_ += t->nbytes;
        ++type_count_[di->name];
        return Status();
    }
    Status vector(const std::string& name, int64_t n, std::vector<float>* out) override {
        WeightView w;
        HKV_TRY(matrix(name, n, 1, &w));
        out->resize(size_t(n));
        dequantize_row_ref(w.type, w.data, out->data(), n);
        return Status();
    }
    size_t bytes() const { return bytes_; }
    const std::map<std::string, int>& type_count() const { return type_count_; }

private:
    const GgufFile& f_;
    size_t bytes_ = 0;
    std::map<std::string, int> type_count_;
};

}  // namespace

WeightView weight_rows(const WeightView& w, int64_t r0, int64_t n) {
    return WeightView{static_cast<const uint8_t*>(w.data) + size_t(r0) * w.row_bytes(), w.type, w.n_in, n};
}

Status read_sliding_window(const GgufFile& f, ModelConfig& c, bool required) {
    const std::string key = c.arch + ".attention.sliding_window";
    if (!f.find(key)) {
        if (required) return Status::not_found("model: %s is missing", key.c_str());
        c.n_swa = 0;
        return Status();
    }
    HKV_TRY(read_int(f, key, 0, int64_t(1) << 30, &c.n_swa));
    return Status();
}

Status read_swa_pattern(const GgufFile& f, ModelConfig& c, int32_t def) {
    if (c.n_swa <= 0) return Status::corrupt("model: %s.attention.sliding_window must be > 0", c.arch.c_str());
    const std::string key = c.arch + ".attention.sliding_window_pattern";
    const GgufValue* v = f.find(key);
    if (v && v->type == GgufType::kArray) {
        if (v->arr.size() != size_t(c.n_layer)) {
            return Status::corrupt("model: %s has %zu entries for %d layers", key.c_str(), v->arr.size(), c.n_layer);
        }
        for (size_t il = 0; il < v->arr.size(); ++il) {
            const GgufValue& e = v->arr[il];
            if (e.type != GgufType::kBool && !e.is_integer()) {
                return Status::corrupt("model: %s must hold booleans or integers", key.c_str());
            }
            c.swa_layers[il] = e.type == GgufType::kBool ? e.b : e.as_int() != 0;
        }
        return Status();
    }
    int32_t n = def;
    if (v) HKV_TRY(read_int(f, key, 1, 1 << 20, &n));
    for (int32_t il = 0; il < c.n_layer; ++il) c.swa_layers[size_t(il)] = il % n < n - 1;
    return Status();
}

RopeParams ModelConfig::rope_for(int32_t il, int32_t n_ctx) const {
    RopeParams r = layer_swa(il) ? rope_swa : rope;
    if (rope_factors_long) r.freq_factors = n_ctx > n_ctx_orig ? rope_factors_long : rope_factors_short;
    return r;
}

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
    HKV_ASSIGN_OR_RETURN(c.rope.attn_factor, f.get_f32_or(p + "rope.scaling.attn_factor", 1.0f));
    if (!(c.rope.attn_factor > 0.0f)) return Status::corrupt("model: rope.scaling.attn_factor must be > 0");

    c.rope_swa = c.rope;
    c.swa_layers.assign(size_t(c.n_layer), 0);
    HKV_TRY(spec->read_hparams(f, c));

    // ---- tokenizer ----
    HKV_ASSIGN_OR_RETURN(TokenizerData td, tokenizer_data_from_gguf(f));
    if (spec->tokenizer_fixup) spec->tokenizer_fixup(td);
    HKV_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::create(td));
    c.n_vocab = tokenizer_->n_vocab();

    // ---- tensors ----
    GgufTensorLoader t(f);
    HKV_TRY(t.matrix("token_embd.weight", c.n_embd, c.n_vocab, &tok_embd_));
    HKV_TRY(t.vector("output_norm.weight", c.n_embd, &output_norm_));
    if (t.has("output.weight")) {
        HKV_TRY(t.matrix("output.weight", c.n_embd, c.n_vocab, &output_));
    } else {
        output_ = tok_embd_;
        tied_ = true;
    }
    if (t.has("rope_freqs.weight")) {
        HKV_TRY(t.vector("rope_freqs.weight", c.rope.n_rot / 2, &rope_freqs_));
        c.rope.freq_factors = rope_freqs_.data();
        c.rope_swa.freq_factors = rope_freqs_.data();
    }
    if (t.has("rope_factors_long.weight") || t.has("rope_factors_short.weight")) {  // LongRoPE
        HKV_TRY(t.vector("rope_factors_long.weight", c.rope.n_rot / 2, &rope_long_));
        HKV_TRY(t.vector("rope_factors_short.weight", c.rope.n_rot / 2, &rope_short_));
        if (c.rope.freq_factors) {
            return Status::unsupported("model: both rope_freqs and LongRoPE factors are present");
        }
        c.rope_factors_long = rope_long_.data();
        c.rope_factors_short = rope_short_.data();
    }
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < c.n_layer; ++il) HKV_TRY(spec->load_layer(t, c, il, layers_[size_t(il)]));
    weight_bytes_ = t.bytes();
    const std::map<std::string, int>& type_count = t.type_count();
    for (const auto& [name, n] : type_count) {
        if (!summary_.empty()) summary_ += ", ";
        summary_ += name + " x " + std::to_string(n);
    }
    return repack();
}

Model::~Model() {
    if (repacked_) munmap(repacked_, repacked_size_);
}

// The matrices the forward pass multiplies by (not an untied token embedding: only rows of it are
// read) go into the x16 layout when their type and row count allow. One anonymous mapping holds
// them all (transparent huge pages requested: decode streams all of it every token); each matrix's
// file pages are released once it is copied, so the resident set holds the weights once.
Status Model::repack() {
    if (!env_repack() || !x16_kernels()) return Status();
    std::vector<WeightView*> todo;
    auto want = [&](WeightView& w) {
        if (x16_supported(w.type) && w.n_out % kX16Rows == 0 && w.layout == WeightLayout::kRows) todo.push_back(&w);
    };
    want(output_);
    for (LayerWeights& L : layers_)
        for (WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) want(*w);
    if (todo.empty()) return Status();
    constexpr size_t kAlign = 64;
    size_t total = 0;
    for (const WeightView* w : todo) total += (w->row_bytes() * size_t(w->n_out) + kAlign - 1) / kAlign * kAlign;
    void* mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return Status::out_of_memory("model: %zu bytes for the repacked weights could not be mapped", total);
    }
    madvise(mem, total, MADV_HUGEPAGE);  // a hint: fine if the kernel declines
    repacked_ = mem, repacked_size_ = total;
    const int nth = std::clamp(int(std::thread::hardware_concurrency()), 1, 16);
    uint8_t* dst = static_cast<uint8_t*>(mem);
    for (WeightView* w : todo) {
        const size_t rb = w->row_bytes(), gb = rb * kX16Rows;
        const int64_t n_groups = w->n_out / kX16Rows;
        const uint8_t* src = static_cast<const uint8_t*>(w->data);
        auto pack = [&](int ith) {
            const int64_t per = (n_groups + nth - 1) / nth;
            for (int64_t g = per * ith; g < std::min(n_groups, per * (ith + 1)); ++g)
                x16_pack_group(w->type, w->n_in, src + size_t(g) * gb, rb, dst + size_t(g) * gb);
        };
        if (nth == 1 || n_groups < 4 * nth) {
            pack(0);
        } else {
            std::vector<std::thread> th;
            for (int i = 1; i < nth; ++i) {
                try {
                    th.emplace_back(pack, i);
                } catch (const std::system_error&) {
                    pack(i);  // no thread to be had: this one does the share
                }
            }
            pack(0);
            for (std::thread& t : th) t.join();
        }
        file_->release_pages(src, rb * size_t(w->n_out));
        const bool is_embd = tied_ && w == &output_;
        w->data = dst, w->layout = WeightLayout::kX16;
        if (is_embd) tok_embd_ = *w;
        dst += (rb * size_t(w->n_out) + kAlign - 1) / kAlign * kAlign;
    }
    return Status();
}

}  // namespace hkv
