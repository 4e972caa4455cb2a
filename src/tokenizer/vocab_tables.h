// tokenizer/vocab_tables.h — the lookup tables a Tokenizer is built into (internal).
//
// VocabTables is immutable after build; the SPM and BPE encoders only read it, so encoding is
// thread-safe. All ids index TokenizerData::tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace hkv {

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct VocabTables {
    TokenizerData data;
    bool is_spm = false;        // model "llama"; else byte-level BPE ("gpt2")
    PreType pre = PreType::kDefault;
    bool ignore_merges = false; // BPE: a pre-tokenized word that is a token is taken whole (llama3)
    std::vector<TokenAttr> attr;       // [n_vocab]
    StringIdMap token_to_id;           // text -> id; the last of duplicate texts wins
    StringIdMap merge_rank;            // "left right" -> rank (BPE)
    int32_t byte_token[256] = {};      // SPM byte fallback: <0xNN>, else the 1-byte token, else unk, else -1
    std::vector<std::string> piece;    // [n_vocab] token_to_piece(id, render_special = false)
    std::vector<int32_t> specials;     // control/user-defined/unknown ids, longest text first
    std::vector<uint8_t> eog;          // [n_vocab] 1 = end of generation

    int32_t find(std::string_view text) const {
        auto it = token_to_id.find(text);
        return it == token_to_id.end() ? -1 : it->second;
    }
    float score(int32_t id) const { return data.scores.empty() ? 0.0f : data.scores[size_t(id)]; }
};

// SentencePiece-style BPE over text whose spaces are already "▁" (llama.cpp's SPM tokenizer).
void spm_encode(const VocabTables& v, std::string_view text, std::vector<int32_t>* out);
// Pre-tokenize, map bytes to the GPT-2 alphabet, merge by rank (llama.cpp's BPE tokenizer).
void bpe_encode(const VocabTables& v, std::string_view text, std::vector<int32_t>* out);

}  // namespace hkv
