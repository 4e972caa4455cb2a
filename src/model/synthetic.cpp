// model/synthetic.cpp — deterministic synthetic GGUF models of named shapes.
#include "model/synthetic.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/quant.h"
#include "core/fp16.h"
#include "model/gguf.h"
#include "model/vocab_gguf.h"

namespace hkv {
namespace {

const SynthShape kPresets[] = {
    // preset, arch, vocab, ctx, embd, layer, head, head_kv, ff, rope_base, eps, tied, llama3 factor
    {"smollm2-135m", "llama", 49152, 8192, 576, 30, 9, 3, 1536, 100000.0f, 1e-5f, true, 0.0f},
    {"qwen2.5-0.5b", "qwen2", 151936, 32768, 896, 24, 14, 2, 4864, 1000000.0f, 1e-6f, true, 0.0f},
    {"llama-3.2-1b", "llama", 128256, 131072, 2048, 16, 32, 8, 8192, 500000.0f, 1e-5f, true, 32.0f},
    {"llama-3.1-8b", "llama", 128256, 131072, 4096, 32, 32, 8, 14336, 500000.0f, 1e-5f, false, 8.0f},
    {"tiny-llama", "llama", 49152, 2048, 256, 2, 4, 2, 512, 10000.0f, 1e-5f, true, 0.0f},
    {"tiny-qwen2", "qwen2", 49152, 2048, 256, 2, 4, 2, 512, 1000000.0f, 1e-6f, true, 0.0f},
    {"tiny-llama3", "llama", 49152, 2048, 256, 2, 4, 2, 512, 500000.0f, 1e-5f, false, 8.0f},
};

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    return h;
}

// Uniform in [-a, a] (std a/sqrt(3)) from (key, index): counter-based, so order-independent.
inline float synth_uniform(uint64_t key, uint64_t i, float a) {
    const uint64_t r = splitmix64(key ^ splitmix64(i));
    return a * (float(r >> 40) * (2.0f / 16777216.0f) - 1.0f);
}

struct TensorPlan {
    std::string name;
    DType type;
    int64_t n_in, n_out;  // dims {n_in, n_out}; n_out = 1 for vectors
    float amp;            // uniform amplitude; 0 = constant `fill`
    float fill;
};

std::vector<TensorPlan> plan_tensors(const SynthShape& s, DType wt) {
    std::vector<TensorPlan> p;
    const int64_t hd = s.n_embd / s.n_head;
    const int64_t nq = int64_t(s.n_head) * hd, nkv = int64_t(s.n_head_kv) * hd;
    const float k3 = std::sqrt(3.0f);
    auto mat = [&](const std::string& name, int64_t n_in, int64_t n_out, float std_, DType t) {
        p.push_back({name, synth_type_for_row(t, n_in), n_in, n_out, std_ * k3, 0.0f});
    };
    auto vec = [&](const std::string& name, int64_t n, float fill, float jitter) {
        p.push_back({name, DType::kF32, n, 1, jitter, fill});
    };
    const DType out_t = wt == DType::kQ4_K ? DType::kQ6_K : wt;
    // Q and K at 1/sqrt(n_embd) give attention logits of std ~1: larger scales make the random model
    // chaotic (argmax flips between two summation orders of the same math), useless for comparisons.
    const float in_std = 1.0f / std::sqrt(float(s.n_embd));
    const float res_scale = 1.0f / std::sqrt(2.0f * float(s.n_layer));
    mat("token_embd.weight", s.n_embd, s.n_vocab, 2.0f * in_std, s.tied ? out_t : wt);
    vec("output_norm.weight", s.n_embd, 1.0f, 0.0f);
    if (!s.tied) mat("output.weight", s.n_embd, s.n_vocab, 2.0f * in_std, out_t);
    if (s.llama3_rope_factor > 0.0f) p.push_back({"rope_freqs.weight", DType::kF32, hd / 2, 1, -1.0f, 0.0f});
    for (int il = 0; il < s.n_layer; ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        vec(b + "attn_norm.weight", s.n_embd, 1.0f, 0.1f);
        mat(b + "attn_q.weight", s.n_embd, nq, in_std, wt);
        mat(b + "attn_k.weight", s.n_embd, nkv, in_std, wt);
        mat(b + "attn_v.weight", s.n_embd, nkv, in_std, wt);
        if (s.arch == "qwen2") {
            vec(b + "attn_q.bias", nq, 0.0f, 0.1f);
            vec(b + "attn_k.bias", nkv, 0.0f, 0.1f);
            vec(b + "attn_v.bias", nkv, 0.0f, 0.1f);
        }
        mat(b + "attn_output.weight", nq, s.n_embd, res_scale / std::sqrt(float(nq)), wt);
        vec(b + "ffn_norm.weight", s.n_embd, 1.0f, 0.1f);
        mat(b + "ffn_gate.weight", s.n_embd, s.n_ff, in_std, wt);
        mat(b + "ffn_up.weight", s.n_embd, s.n_ff, in_std, wt);
        mat(b + "ffn_down.weight", s.n_ff, s.n_embd, res_scale / std::sqrt(float(s.n_ff)), wt);
    }
    return p;
}

// Llama-3 frequency factors (rope_type "llama3": low_freq_factor 1, high_freq_factor 4, original 8192).
std::vector<float> llama3_rope_freqs(int64_t n, float base, float factor) {
    const float low = 1.0f, high = 4.0f, orig = 8192.0f;
    const float low_wl = orig / low, high_wl = orig / high;
    std::vector<float> f(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const float freq = 1.0f / std::pow(base, float(2 * i) / float(2 * n));
        const float wl = 2.0f * float(M_PI) / freq;
        if (wl < high_wl) {
            f[size_t(i)] = 1.0f;
        } else if (wl > low_wl) {
            f[size_t(i)] = factor;
        } else {
            const float smooth = (orig / wl - low) / (high - low);
            f[size_t(i)] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
    return f;
}

}  // namespace

DType synth_type_for_row(DType t, int64_t n_in) {
    if (n_in % 256 == 0) return t;
    if (t == DType::kQ4_K || t == DType::kQ5_K) return DType::kQ5_0;
    if (t == DType::kQ6_K) return DType::kQ8_0;
    return t;
}

Expected<SynthShape> synth_preset(const std::string& name) {
    for (const SynthShape& s : kPresets) {
        if (s.preset == name) return s;
    }
    std::string names;
    for (const std::string& n : synth_preset_names()) names += (names.empty() ? "" : ", ") + n;
    return Status::not_found("make-model: unknown preset '%s' (presets: %s)", name.c_str(), names.c_str());
}

std::vector<std::string> synth_preset_names() {
    std::vector<std::string> v;
    for (const SynthShape& s : kPresets) v.push_back(s.preset);
    return v;
}

uint64_t synth_weight_bytes(const SynthShape& shape, DType wt) {
    uint64_t b = 0;
    for (const TensorPlan& t : plan_tensors(shape, wt)) b += dtype_row_size(t.type, t.n_in) * uint64_t(t.n_out);
    return b;
}

Status synth_model_write(const SynthShape& s, const TokenizerData& tok_in, const SynthOptions& opt,
                         ThreadPool& pool, const std::string& path) {
    const DType wt = opt.weight_type;
    if (wt != DType::kF32 && wt != DType::kF16 && wt != DType::kQ8_0 && wt != DType::kQ4_K) {
        return Status::invalid("make-model: weight type %s not offered (f32, f16, q8_0, q4_K)", dtype_name(wt));
    }
    if (s.n_embd % s.n_head || s.n_head % s.n_head_kv) return Status::invalid("make-model: inconsistent head counts");
    if (int64_t(tok_in.tokens.size()) > s.n_vocab) {
        return Status::invalid("make-model: tokenizer has %zu tokens, more than the shape's vocabulary %d",
                               tok_in.tokens.size(), s.n_vocab);
    }
    TokenizerData tok = tok_in;
    if (tok.token_type.empty()) tok.token_type.assign(tok.tokens.size(), int32_t(TokenAttr::kNormal));
    if (tok.scores.empty()) tok.scores.assign(tok.tokens.size(), 0.0f);
    for (int32_t i = int32_t(tok.tokens.size()); i < s.n_vocab; ++i) {
        tok.tokens.push_back("<pad_" + std::to_string(i) + ">");
        tok.scores.push_back(0.0f);
        tok.token_type.push_back(int32_t(TokenAttr::kUnused));
    }

    GgufWriter w;
    const std::string a = s.arch + ".";
    const int64_t hd = s.n_embd / s.n_head;
    w.set_str("general.architecture", s.arch);
    w.set_str("general.name", "heterokv synthetic " + s.preset);
    w.set_u32("general.file_type", wt == DType::kF32 ? 0u : wt == DType::kF16 ? 1u : wt == DType::kQ8_0 ? 7u : 15u);
    w.set_u32("general.quantization_version", 2);
    w.set_u32(a + "context_length", uint32_t(s.n_ctx));
    w.set_u32(a + "embedding_length", uint32_t(s.n_embd));
    w.set_u32(a + "block_count", uint32_t(s.n_layer));
    w.set_u32(a + "feed_forward_length", uint32_t(s.n_ff));
    w.set_u32(a + "attention.head_count", uint32_t(s.n_head));
    w.set_u32(a + "attention.head_count_kv", uint32_t(s.n_head_kv));
    w.set_f32(a + "attention.layer_norm_rms_epsilon", s.rms_eps);
    w.set_f32(a + "rope.freq_base", s.rope_base);
    w.set_u32(a + "rope.dimension_count", uint32_t(hd));
    w.set_u32(a + "vocab_size", uint32_t(s.n_vocab));
    tokenizer_data_to_gguf(tok, w);

    const std::vector<TensorPlan> plan = plan_tensors(s, wt);
    for (const TensorPlan& t : plan) {
        std::vector<int64_t> dims = {t.n_in};
        if (t.n_out > 1) dims.push_back(t.n_out);
        HKV_TRY(w.add_tensor(t.name, t.type, dims));
    }
    const std::vector<float> rope_freqs =
        s.llama3_rope_factor > 0.0f ? llama3_rope_freqs(hd / 2, s.rope_base, s.llama3_rope_factor) : std::vector<float>();
    const QuantKernels& qk = quant_kernels();
    uint64_t written = 0;
    return w.write(path, [&](size_t idx, const std::string& name, std::span<uint8_t> out) -> Status {
        const TensorPlan& t = plan[idx];
        const uint64_t key = splitmix64(opt.seed) ^ hash_name(name);
        const size_t row_bytes = dtype_row_size(t.type, t.n_in);
        pool.parallel_for(t.n_out, [&](int64_t b, int64_t e, int) {
            std::vector<float> row(size_t(t.n_in));
            for (int64_t r = b; r < e; ++r) {
                for (int64_t i = 0; i < t.n_in; ++i) {
                    float v;
                    if (t.amp < 0.0f) v = rope_freqs[size_t(i)];
                    else v = t.fill + (t.amp > 0.0f ? synth_uniform(key, uint64_t(r * t.n_in + i), t.amp) : 0.0f);
                    row[size_t(i)] = v;
                }
                uint8_t* dst = out.data() + size_t(r) * row_bytes;
                if (t.type == DType::kF32) std::memcpy(dst, row.data(), row_bytes);
                else qk.quantize_row(t.type, row.data(), dst, t.n_in);
            }
        });
        written += out.size();
        if (opt.progress) opt.progress(idx + 1, plan.size(), written);
        return Status();
    });
}

}  // namespace hkv
