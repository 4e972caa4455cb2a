// model/vocab_gguf.cpp — TokenizerData <-> tokenizer.ggml.* metadata.
//
// Defaults when a key is absent (as llama.cpp does): add_bos = true for "llama" (SPM) and false
// otherwise, add_eos = false, add_space_prefix = true for "llama" and false otherwise, special ids
// -1. Converters write "no such token" as u32 0xFFFFFFFF; it reads as -1.
#include "model/vocab_gguf.h"

#include <cinttypes>
#include <new>

namespace hkv {
namespace {

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTokenType = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kEot = "tokenizer.ggml.eot_token_id";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr const char* kChatTemplate = "tokenizer.chat_template";

// A special token id: absent, -1 or the unsigned "none" sentinels give -1; else it must be < n_vocab.
Status read_token_id(const GgufFile& file, const char* key, size_t n_vocab, int32_t& out) {
    out = -1;
    const GgufValue* v = file.find(key);
    if (!v) return Status();
    if (!v->is_integer()) {
        return Status::corrupt("gguf vocab: %s has type %s, expected an integer", key, gguf_type_name(v->type));
    }
    const bool is_unsigned = v->type == GgufType::kU8 || v->type == GgufType::kU16 ||
                             v->type == GgufType::kU32 || v->type == GgufType::kU64;
    if (is_unsigned ? (v->u == UINT32_MAX || v->u == UINT64_MAX) : v->i == -1) return Status();
    if (is_unsigned ? v->u >= n_vocab : (v->i < 0 || uint64_t(v->i) >= n_vocab)) {
        return Status::corrupt("gguf vocab: %s = %" PRId64 " is outside [0, %zu)", key,
                               is_unsigned ? int64_t(v->u) : v->i, n_vocab);
    }
    out = int32_t(v->as_int());
    return Status();
}

Status read_bool_or(const GgufFile& file, const char* key, bool def, bool& out) {
    out = def;
    if (!file.find(key)) return Status();
    HKV_ASSIGN_OR_RETURN(out, file.get_bool(key));
    return Status();
}

Status read_data(const GgufFile& file, TokenizerData& d) {
    HKV_ASSIGN_OR_RETURN(d.tokens, file.get_str_array(kTokens));
    const size_t n = d.tokens.size();
    if (n == 0) return Status::corrupt("gguf vocab: %s is empty", kTokens);
    if (n > size_t(INT32_MAX)) return Status::corrupt("gguf vocab: %zu tokens do not fit int32 ids", n);
    HKV_ASSIGN_OR_RETURN(d.model, file.get_str(kModel));
    if (file.find(kPre)) {
        HKV_ASSIGN_OR_RETURN(d.pre, file.get_str(kPre));
    }
    if (file.find(kScores)) {
        HKV_ASSIGN_OR_RETURN(d.scores, file.get_f32_array(kScores));
        if (d.scores.size() != n) {
            return Status::corrupt("gguf vocab: %s has %zu entries for %zu tokens", kScores, d.scores.size(), n);
        }
    }
    if (file.find(kTokenType)) {
        HKV_ASSIGN_OR_RETURN(std::vector<int64_t> types, file.get_int_array(kTokenType));
        if (types.size() != n) {
            return Status::corrupt("gguf vocab: %s has %zu entries for %zu tokens", kTokenType, types.size(), n);
        }
        d.token_type.resize(n);
        for (size_t k = 0; k < n; ++k) {
            if (types[k] < INT32_MIN || types[k] > INT32_MAX) {
                return Status::corrupt("gguf vocab: %s[%zu] = %" PRId64 " does not fit int32", kTokenType, k,
                                       types[k]);
            }
            d.token_type[k] = int32_t(types[k]);
        }
    }
    if (file.find(kMerges)) {
        HKV_ASSIGN_OR_RETURN(d.merges, file.get_str_array(kMerges));
    }
    HKV_TRY(read_token_id(file, kBos, n, d.bos_id));
    HKV_TRY(read_token_id(file, kEos, n, d.eos_id));
    HKV_TRY(read_token_id(file, kUnk, n, d.unk_id));
    HKV_TRY(read_token_id(file, kPad, n, d.pad_id));
    HKV_TRY(read_token_id(file, kEot, n, d.eot_id));
    const bool spm = d.model == "llama";
    HKV_TRY(read_bool_or(file, kAddBos, spm, d.add_bos));
    HKV_TRY(read_bool_or(file, kAddEos, false, d.add_eos));
    HKV_TRY(read_bool_or(file, kAddSpacePrefix, spm, d.add_space_prefix));
    if (file.find(kChatTemplate)) {
        HKV_ASSIGN_OR_RETURN(d.chat_template, file.get_str(kChatTemplate));
    }
    return Status();
}

}  // namespace

Expected<TokenizerData> tokenizer_data_from_gguf(const GgufFile& file) {
    try {
        TokenizerData d;
        HKV_TRY(read_data(file, d));
        return d;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf vocab: out of memory");
    }
}

void tokenizer_data_to_gguf(const TokenizerData& d, GgufWriter& w) {
    w.set_str(kModel, d.model);
    if (!d.pre.empty()) w.set_str(kPre, d.pre);
    w.set_str_array(kTokens, d.tokens);
    if (!d.scores.empty()) w.set_f32_array(kScores, d.scores);
    if (!d.token_type.empty()) w.set_i32_array(kTokenType, d.token_type);
    if (!d.merges.empty()) w.set_str_array(kMerges, d.merges);
    const std::pair<const char*, int32_t> ids[] = {
        {kBos, d.bos_id}, {kEos, d.eos_id}, {kUnk, d.unk_id}, {kPad, d.pad_id}, {kEot, d.eot_id}};
    for (const auto& [key, id] : ids) {
        if (id >= 0) w.set_u32(key, uint32_t(id));  // absent means -1
    }
    w.set_bool(kAddBos, d.add_bos);
    w.set_bool(kAddEos, d.add_eos);
    w.set_bool(kAddSpacePrefix, d.add_space_prefix);
    if (!d.chat_template.empty()) w.set_str(kChatTemplate, d.chat_template);
}

Expected<TokenizerData> tokenizer_data_load(const std::string& path) {
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) {
        HKV_ASSIGN_OR_RETURN(auto f, GgufFile::open(path));
        return tokenizer_data_from_gguf(*f);
    }
    return tokenizer_data_from_hf_json(path);
}

}  // namespace hkv
