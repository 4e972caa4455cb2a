// model/synthetic.cpp — deterministic synthetic GGUF models of named shapes.
#include "model/synthetic.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <utility>

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
    // issue 20: the published configs of Qwen3, Gemma 2/3, Phi-3.5-mini and Mistral 7B v0.1
    {.preset = "qwen3-0.6b", .arch = "qwen3", .n_vocab = 151936, .n_ctx = 40960, .n_embd = 1024, .n_layer = 28,
     .n_head = 16, .n_head_kv = 8, .n_ff = 3072, .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 128, .chat_style = "chatml"},
    {.preset = "qwen3-4b", .arch = "qwen3", .n_vocab = 151936, .n_ctx = 40960, .n_embd = 2560, .n_layer = 36,
     .n_head = 32, .n_head_kv = 8, .n_ff = 9728, .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 128, .chat_style = "chatml"},
    {.preset = "gemma2-2b", .arch = "gemma2", .n_vocab = 256000, .n_ctx = 8192, .n_embd = 2304, .n_layer = 26,
     .n_head = 8, .n_head_kv = 4, .n_ff = 9216, .rope_base = 10000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 256, .n_swa = 4096, .attn_softcap = 50.0f, .final_softcap = 30.0f, .vocab_style = "gemma", .chat_style = "gemma"},
    {.preset = "gemma3-1b", .arch = "gemma3", .n_vocab = 262144, .n_ctx = 32768, .n_embd = 1152, .n_layer = 26,
     .n_head = 4, .n_head_kv = 1, .n_ff = 6912, .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 256, .n_swa = 512, .vocab_style = "gemma", .chat_style = "gemma"},
    {.preset = "gemma3-4b", .arch = "gemma3", .n_vocab = 262208, .n_ctx = 131072, .n_embd = 2560, .n_layer = 34,
     .n_head = 8, .n_head_kv = 4, .n_ff = 10240, .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 256, .n_swa = 1024, .rope_linear = 8.0f, .vocab_style = "gemma", .chat_style = "gemma"},
    {.preset = "phi-3.5-mini", .arch = "phi3", .n_vocab = 32064, .n_ctx = 131072, .n_embd = 3072, .n_layer = 32,
     .n_head = 32, .n_head_kv = 32, .n_ff = 8192, .rope_base = 10000.0f, .rms_eps = 1e-5f, .tied = false,
     .n_swa = 262144, .n_ctx_orig = 4096, .vocab_style = "phi3", .chat_style = "phi3"},
    {.preset = "mistral-7b", .arch = "llama", .n_vocab = 32000, .n_ctx = 32768, .n_embd = 4096, .n_layer = 32,
     .n_head = 32, .n_head_kv = 8, .n_ff = 14336, .rope_base = 10000.0f, .rms_eps = 1e-5f, .tied = false,
     .n_swa = 4096, .chat_style = "mistral"},
    // test shapes: windows shorter than the test prompts, small soft-caps so that they matter,
    // LongRoPE's long factors at any test context (original context 256), partial RoPE; 64 tokens
    // beyond SmolLM2's vocabulary for the family's chat tokens
    // tiny-llama with stories260K's 512-token vocabulary, one layer: a quantized copy is committed (0.3 MB)
    {.preset = "tiny-llama-512", .arch = "llama", .n_vocab = 512, .n_ctx = 2048, .n_embd = 256, .n_layer = 1,
     .n_head = 4, .n_head_kv = 2, .n_ff = 256, .rope_base = 10000.0f, .rms_eps = 1e-5f, .tied = true},
    {.preset = "tiny-qwen3", .arch = "qwen3", .n_vocab = 49216, .n_ctx = 2048, .n_embd = 256, .n_layer = 2,
     .n_head = 4, .n_head_kv = 2, .n_ff = 512, .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 128},
    {.preset = "tiny-gemma2", .arch = "gemma2", .n_vocab = 49216, .n_ctx = 2048, .n_embd = 256, .n_layer = 4,
     .n_head = 4, .n_head_kv = 2, .n_ff = 512, .rope_base = 10000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 128, .n_swa = 32, .attn_softcap = 4.0f, .final_softcap = 8.0f, .vocab_style = "gemma", .chat_style = "gemma"},
    {.preset = "tiny-gemma3", .arch = "gemma3", .n_vocab = 49216, .n_ctx = 2048, .n_embd = 256, .n_layer = 6,
     .n_head = 4, .n_head_kv = 1, .n_ff = 512, .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied = true,
     .head_dim = 128, .n_swa = 32, .rope_linear = 8.0f, .vocab_style = "gemma", .chat_style = "gemma"},
    {.preset = "tiny-phi3", .arch = "phi3", .n_vocab = 49216, .n_ctx = 4096, .n_embd = 256, .n_layer = 2,
     .n_head = 4, .n_head_kv = 4, .n_ff = 512, .rope_base = 10000.0f, .rms_eps = 1e-5f, .tied = false,
     .n_rot = 48, .n_ctx_orig = 256, .vocab_style = "phi3", .chat_style = "phi3"},
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

int64_t head_dim_of(const SynthShape& s) { return s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head; }
int64_t n_rot_of(const SynthShape& s) { return s.n_rot > 0 ? s.n_rot : head_dim_of(s); }

// The matrix type of a mixed file for weight type wt: K-quant / IQ4 files keep the output matrix in q6_K.
DType output_type(DType wt) {
    switch (wt) {
        case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kIQ4_NL: case DType::kIQ4_XS:
            return DType::kQ6_K;
        default: return wt;
    }
}

// Filler values of the LongRoPE factors, [n_rot/2]: short ~1 (1 .. 1.1), long rising to 40 (cubic),
// the shape of Phi-3.5's factors. Marked by amp -2 (short) and -3 (long) in the plan.
float longrope_factor(bool long_f, int64_t i, int64_t n) {
    const float t = n > 1 ? float(i) / float(n - 1) : 0.0f;
    return long_f ? 1.0f + 39.0f * t * t * t : 1.0f + 0.1f * t;
}

std::vector<TensorPlan> plan_tensors(const SynthShape& s, DType wt) {
    std::vector<TensorPlan> p;
    const int64_t hd = head_dim_of(s);
    const int64_t nq = int64_t(s.n_head) * hd, nkv = int64_t(s.n_head_kv) * hd;
    const float k3 = std::sqrt(3.0f);
    auto mat = [&](const std::string& name, int64_t n_in, int64_t n_out, float std_, DType t) {
        p.push_back({name, synth_type_for_row(t, n_in), n_in, n_out, std_ * k3, 0.0f});
    };
    auto vec = [&](const std::string& name, int64_t n, float fill, float jitter) {
        p.push_back({name, DType::kF32, n, 1, jitter, fill});
    };
    const DType out_t = output_type(wt);
    // Q and K at 1/sqrt(n_embd) give attention logits of std ~1: larger scales make the random model
    // chaotic (argmax flips between two summation orders of the same math), useless for comparisons.
    const float in_std = 1.0f / std::sqrt(float(s.n_embd));
    const float res_scale = 1.0f / std::sqrt(2.0f * float(s.n_layer));
    mat("token_embd.weight", s.n_embd, s.n_vocab, 2.0f * in_std, s.tied ? out_t : wt);
    vec("output_norm.weight", s.n_embd, 1.0f, 0.0f);
    if (!s.tied) mat("output.weight", s.n_embd, s.n_vocab, 2.0f * in_std, out_t);
    if (s.llama3_rope_factor > 0.0f) p.push_back({"rope_freqs.weight", DType::kF32, hd / 2, 1, -1.0f, 0.0f});
    if (s.n_ctx_orig > 0) {
        p.push_back({"rope_factors_long.weight", DType::kF32, n_rot_of(s) / 2, 1, -3.0f, 0.0f});
        p.push_back({"rope_factors_short.weight", DType::kF32, n_rot_of(s) / 2, 1, -2.0f, 0.0f});
    }
    const bool gemma = s.arch == "gemma2" || s.arch == "gemma3";
    const bool phi3 = s.arch == "phi3";
    // Gemma's post-norms scale what each sublayer adds to the residual stream: res_scale keeps the
    // stream tame as the 1/sqrt(2 n_layer) output projections do for the others.
    const float post = res_scale;
    const float out_std = gemma ? 1.0f : res_scale;
    for (int il = 0; il < s.n_layer; ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        vec(b + "attn_norm.weight", s.n_embd, 1.0f, 0.1f);
        if (phi3) {
            mat(b + "attn_qkv.weight", s.n_embd, nq + 2 * nkv, in_std, wt);
        } else {
            mat(b + "attn_q.weight", s.n_embd, nq, in_std, wt);
            mat(b + "attn_k.weight", s.n_embd, nkv, in_std, wt);
            mat(b + "attn_v.weight", s.n_embd, nkv, in_std, wt);
        }
        if (s.arch == "qwen2") {
            vec(b + "attn_q.bias", nq, 0.0f, 0.1f);
            vec(b + "attn_k.bias", nkv, 0.0f, 0.1f);
            vec(b + "attn_v.bias", nkv, 0.0f, 0.1f);
        }
        if (s.arch == "qwen3" || s.arch == "gemma3") {
            vec(b + "attn_q_norm.weight", hd, 1.0f, 0.1f);
            vec(b + "attn_k_norm.weight", hd, 1.0f, 0.1f);
        }
        mat(b + "attn_output.weight", nq, s.n_embd, out_std / std::sqrt(float(nq)), wt);
        if (gemma) vec(b + "post_attention_norm.weight", s.n_embd, post, 0.1f * post);
        vec(b + "ffn_norm.weight", s.n_embd, 1.0f, 0.1f);
        if (phi3) {
            mat(b + "ffn_up.weight", s.n_embd, 2 * int64_t(s.n_ff), in_std, wt);  // rows: gate, then up
        } else {
            mat(b + "ffn_gate.weight", s.n_embd, s.n_ff, in_std, wt);
            mat(b + "ffn_up.weight", s.n_embd, s.n_ff, in_std, wt);
        }
        mat(b + "ffn_down.weight", s.n_ff, s.n_embd, out_std / std::sqrt(float(s.n_ff)), wt);
        if (gemma) vec(b + "post_ffw_norm.weight", s.n_embd, post, 0.1f * post);
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
    if (t == DType::kQ2_K || t == DType::kQ3_K || t == DType::kIQ4_XS) return DType::kIQ4_NL;
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

Expected<SynthType> synth_type_parse(std::string_view name) {
    std::string n(name);
    for (char& ch : n) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    const std::pair<const char*, SynthType> types[] = {
        {"f32", SynthType::kF32},   {"f16", SynthType::kF16},   {"q8_0", SynthType::kQ8_0},
        {"q2_k", SynthType::kQ2_K}, {"q3_k", SynthType::kQ3_K}, {"q4_k", SynthType::kQ4_K},
        {"iq4_nl", SynthType::kIQ4_NL}, {"iq4_xs", SynthType::kIQ4_XS}};
    for (const auto& [tn, t] : types) {
        if (n == tn) return t;
    }
    return Status::invalid("'%s': expected f32, f16, q8_0, q2_k, q3_k, q4_k, iq4_nl or iq4_xs", std::string(name).c_str());
}

uint64_t synth_weight_bytes(const SynthShape& shape, SynthType wt) {
    return synth_weight_bytes(shape, DType(uint32_t(wt)));  // SynthType values are GGML / DType ids
}

Status synth_model_write(const SynthShape& shape, const TokenizerData& tok, const SynthOptions& opt,
                         const std::string& path) {
    ThreadPool pool(opt.n_threads);
    return synth_model_write(shape, tok, opt, pool, path);
}

std::string synth_chat_template(const std::string& style) {
    // Written for heterokv: the turn markup of each family, nothing more (no tools, no reasoning).
    if (style == "chatml") {
        return "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    }
    if (style == "gemma") {
        return "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else 'user' %}"
               "{{ '<start_of_turn>' + role + '\\n' + m['content'] + '<end_of_turn>\\n' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";
    }
    if (style == "phi3") {
        return "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
    }
    if (style == "mistral") {
        return "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
               "{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}";
    }
    return "";
}

Expected<TokenizerData> synth_vocab(const SynthShape& s, const TokenizerData& tok_in) {
    TokenizerData tok = tok_in;
    if (tok.token_type.empty()) tok.token_type.assign(tok.tokens.size(), int32_t(TokenAttr::kNormal));
    if (tok.scores.empty()) tok.scores.assign(tok.tokens.size(), 0.0f);
    auto add_control = [&](const std::string& text) {
        for (size_t i = 0; i < tok.tokens.size(); ++i) {
            if (tok.tokens[i] == text) return int32_t(i);
        }
        tok.tokens.push_back(text);
        tok.scores.push_back(0.0f);
        tok.token_type.push_back(int32_t(TokenAttr::kControl));
        return int32_t(tok.tokens.size() - 1);
    };
    if (s.vocab_style == "gemma") {
        add_control("<start_of_turn>");
        tok.eot_id = add_control("<end_of_turn>");
        if (tok.model == "llama") tok.add_space_prefix = false;  // Gemma's SentencePiece model adds no space
    } else if (s.vocab_style == "phi3") {
        // llama.cpp expects Phi-3's <unk>, <s> and </s> as well (its Phi-3 token attributes)
        for (const char* t : {"<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|system|>", "<|user|>"})
            add_control(t);
        tok.eot_id = add_control("<|end|>");
    } else if (!s.vocab_style.empty()) {
        return Status::invalid("make-model: unknown vocabulary style '%s'", s.vocab_style.c_str());
    }
    if (tok.chat_template.empty()) tok.chat_template = synth_chat_template(s.chat_style);
    if (int64_t(tok.tokens.size()) > s.n_vocab) {
        return Status::invalid("make-model: tokenizer has %zu tokens, more than the shape's vocabulary %d",
                               tok.tokens.size(), s.n_vocab);
    }
    for (int32_t i = int32_t(tok.tokens.size()); i < s.n_vocab; ++i) {
        tok.tokens.push_back("<pad_" + std::to_string(i) + ">");
        tok.scores.push_back(0.0f);
        tok.token_type.push_back(int32_t(TokenAttr::kUnused));
    }
    return tok;
}

Status synth_model_write(const SynthShape& s, const TokenizerData& tok_in, const SynthOptions& opt,
                         ThreadPool& pool, const std::string& path) {
    const DType wt = DType(uint32_t(opt.weight_type));  // SynthType values are GGML / DType ids
    uint32_t file_type = 0;  // llama.cpp's general.file_type of the mix
    switch (wt) {
        case DType::kF32: file_type = 0; break;
        case DType::kF16: file_type = 1; break;
        case DType::kQ8_0: file_type = 7; break;
        case DType::kQ2_K: file_type = 10; break;
        case DType::kQ3_K: file_type = 12; break;
        case DType::kQ4_K: file_type = 15; break;
        case DType::kIQ4_NL: file_type = 25; break;
        case DType::kIQ4_XS: file_type = 30; break;
        default:
            return Status::invalid("make-model: weight type %s not offered (f32, f16, q8_0, q2_K, q3_K, q4_K, "
                                   "iq4_nl, iq4_xs)", dtype_name(wt));
    }
    if (s.n_head <= 0 || s.n_head_kv <= 0 || s.n_head % s.n_head_kv ||
        (s.head_dim == 0 && s.n_embd % s.n_head)) {
        return Status::invalid("make-model: inconsistent head counts");
    }
    HKV_ASSIGN_OR_RETURN(const TokenizerData tok, synth_vocab(s, tok_in));

    GgufWriter w;
    const std::string a = s.arch + ".";
    const int64_t hd = head_dim_of(s), n_rot = n_rot_of(s);
    w.set_str("general.architecture", s.arch);
    w.set_str("general.name", "heterokv synthetic " + s.preset);
    w.set_u32("general.file_type", file_type);
    w.set_u32("general.quantization_version", 2);
    w.set_u32(a + "context_length", uint32_t(s.n_ctx));
    w.set_u32(a + "embedding_length", uint32_t(s.n_embd));
    w.set_u32(a + "block_count", uint32_t(s.n_layer));
    w.set_u32(a + "feed_forward_length", uint32_t(s.n_ff));
    w.set_u32(a + "attention.head_count", uint32_t(s.n_head));
    w.set_u32(a + "attention.head_count_kv", uint32_t(s.n_head_kv));
    if (s.head_dim > 0) {
        w.set_u32(a + "attention.key_length", uint32_t(hd));
        w.set_u32(a + "attention.value_length", uint32_t(hd));
    }
    w.set_f32(a + "attention.layer_norm_rms_epsilon", s.rms_eps);
    w.set_f32(a + "rope.freq_base", s.rope_base);
    w.set_u32(a + "rope.dimension_count", uint32_t(n_rot));
    if (s.n_swa > 0) w.set_u32(a + "attention.sliding_window", uint32_t(s.n_swa));
    if (s.rope_linear > 0.0f) {
        w.set_str(a + "rope.scaling.type", "linear");
        w.set_f32(a + "rope.scaling.factor", s.rope_linear);
    }
    if (s.n_ctx_orig > 0) {  // as llama.cpp's converter writes Phi-3's LongRoPE
        const float scale = float(s.n_ctx) / float(s.n_ctx_orig);
        w.set_u32(a + "rope.scaling.original_context_length", uint32_t(s.n_ctx_orig));
        w.set_f32(a + "rope.scaling.attn_factor",
                  scale > 1.0f ? std::sqrt(1.0f + std::log(scale) / std::log(float(s.n_ctx_orig))) : 1.0f);
    }
    if (s.attn_softcap > 0.0f) w.set_f32(a + "attn_logit_softcapping", s.attn_softcap);
    if (s.final_softcap > 0.0f) w.set_f32(a + "final_logit_softcapping", s.final_softcap);
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
                    if (t.amp == -1.0f) v = rope_freqs[size_t(i)];
                    else if (t.amp < 0.0f) v = longrope_factor(t.amp == -3.0f, i, t.n_in);
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
