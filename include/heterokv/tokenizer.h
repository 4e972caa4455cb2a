// heterokv/tokenizer.h — text <-> token ids for the two GGUF tokenizer families.
//
//   "llama": SentencePiece-style BPE driven by token scores, with "▁" for spaces, an added leading
//            space (add_space_prefix), and <0xNN> byte-fallback tokens.
//   "gpt2":  byte-level BPE driven by merge ranks, after a pre-tokenizer split chosen by the
//            `pre` name: "llama-bpe" (Llama 3), "qwen2", "smollm" (and "default"/"gpt2").
// Special/control tokens in the text are matched as whole tokens when parse_special is true.
//
// Built from TokenizerData, which comes from a model's GGUF metadata (model_tokenizer() in
// heterokv/model.h gives a loaded model's) or from a Hugging Face tokenizer.json
// (tokenizer_data_from_hf_json below). Immutable after creation; all methods are const and
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "heterokv/status.h"

namespace hkv {

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenAttr : int32_t {
    kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

// Everything a tokenizer is made from; field names follow the GGUF keys tokenizer.ggml.*.
struct TokenizerData {
    std::string model;                 // "llama" | "gpt2"
    std::string pre;                   // gpt2 pre-tokenizer name ("llama-bpe", "qwen2", "smollm", ...)
    std::vector<std::string> tokens;   // [n_vocab] token text (SPM: with ▁; gpt2: byte-level unicode)
    std::vector<float> scores;         // [n_vocab] or empty
    std::vector<int32_t> token_type;   // [n_vocab] TokenAttr values, or empty (= all normal)
    std::vector<std::string> merges;   // gpt2 only: "a b" in rank order
    int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
    int32_t eot_id = -1;               // optional end-of-turn token (e.g. <|im_end|>)
    bool add_bos = false, add_eos = false;
    bool add_space_prefix = true;      // llama (SPM) only
    // Whitespace right after a control or user-defined token (but <unk>, <s>, <|endoftext|>) is
    // dropped: Phi-3's tokenizer marks its added tokens rstrip (llama.cpp sets the same attribute for
    // Phi-3 models). Not a GGUF key: set by the architecture (model/arch/phi3.cpp).
    bool special_rstrip = false;
    std::string chat_template;         // tokenizer.chat_template, may be empty
};

// Reads a Hugging Face tokenizer.json (BPE model: byte-level or SentencePiece-style) into
// TokenizerData, choosing the pre-tokenizer name from its pre_tokenizer section. Errors name the
// unsupported or malformed part.
Expected<TokenizerData> tokenizer_data_from_hf_json(const std::string& path);
// A path ending in ".gguf": the tokenizer.ggml.* metadata of that GGUF (any GGUF with a tokenizer,
// e.g. stories260K.gguf for a SentencePiece vocabulary); otherwise a Hugging Face tokenizer.json.
Expected<TokenizerData> tokenizer_data_load(const std::string& path);

class Tokenizer {
public:
    // Validates data (sizes agree, ids in range, merges parse) and builds the lookup tables.
    static Expected<std::unique_ptr<Tokenizer>> create(const TokenizerData& data);
    ~Tokenizer();

    int32_t n_vocab() const;
    int32_t bos() const;  // -1 if none
    int32_t eos() const;  // -1 if none
    bool is_eog(int32_t id) const;  // eos, eot, or another end-of-generation control token
    bool add_bos() const;
    const TokenizerData& data() const;

    // Encodes text. add_special: prepend BOS (and append EOS) as the metadata says.
    // parse_special: "<|im_start|>" etc. in the text become their control tokens.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;
    // As encode(text, add_special, true), except inside the `literal` byte ranges {offset, length}
    // of text (sorted, not overlapping; e.g. the messages' content in a rendered chat), where
    // control-token text is plain text, as with parse_special = false: a user cannot write
    // "<|im_end|>" into a conversation and have it become the control token.
    std::vector<int32_t> encode(std::string_view text, bool add_special,
                                std::span<const std::pair<size_t, size_t>> literal) const;
    // The bytes a token stands for (byte tokens give their byte; control tokens give "" unless
    // render_special). Concatenating pieces of consecutive tokens gives the decoded text (for SPM
    // the leading space of the first token after BOS is removed by decode(), as the reference does).
    std::string token_to_piece(int32_t id, bool render_special = false) const;
    std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

private:
    Tokenizer();
    std::vector<int32_t> encode_impl(std::string_view text, bool add_special, bool parse_special,
                                     std::span<const std::pair<size_t, size_t>> literal) const;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hkv
