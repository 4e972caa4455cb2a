// tokenizer/pretokenize.h — the word splitters that run before byte-level BPE (internal).
//
// Each pre-tokenizer is the regex list llama.cpp uses for that `pre` name, hand-written as a
// scanner over codepoint classes (no std::regex). As in llama.cpp, the regexes run as successive
// passes: each pass splits every fragment left by the previous one, keeping the text between
// matches as fragments of its own, and a fragment's end acts as the end of the text (so `(?!\S)`
// succeeds there).
//
//   kGpt2    "gpt2"/"gpt-2" (also mpt, olmo, ...):
//            's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
//   kSmollm  "smollm" (also starcoder, refact, command-r, ...): \p{N} then the gpt2 regex
//   kLlama3  "llama-bpe" (also llama3, dbrx, smaug-bpe):
//            (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   kQwen2   "qwen2" (also stablelm2): the llama3 regex with \p{N} instead of \p{N}{1,3}
//   kDefault "default" (llama.cpp's fallback): [\p{P}\$\+<=>\^~\|]+, then the gpt2 regex,
//            then \p{N}+, then [0-9][0-9][0-9]
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace hkv {

enum class PreType { kGpt2, kSmollm, kLlama3, kQwen2, kDefault };

// Maps a tokenizer.ggml.pre name to its splitter; false if the name is not supported.
bool pre_type_from_name(std::string_view name, PreType* out);

// Splits the codepoints into words; returns the word lengths in codepoints (they sum to
// cpts.size(); no zero lengths).
std::vector<size_t> pretokenize(PreType type, const std::vector<uint32_t>& cpts);

}  // namespace hkv
