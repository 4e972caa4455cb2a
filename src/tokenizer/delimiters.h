// tokenizer/delimiters.h — which vocabulary entries are sentence/clause delimiters.
//
// DynSplit-KV (src/policy/dynsplit.cpp) splits a prompt into semantic blocks at delimiter tokens.
// A token is a delimiter candidate when its decoded bytes (Tokenizer::token_to_piece, so SPM "▁"
// is a space and <0x0A> is a newline) contain one of the separators of SepLLM's set:
//   . , ; : ! ?  newline  and closing quotes/brackets  " ' ) ] }
// plus the full-width CJK forms 。 ， ； ： ！ ？ 」 』 ） (UTF-8). Control tokens decode to nothing and are
// never delimiters.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hkv {

// True when the bytes hold a separator (see above).
bool text_has_delimiter(std::string_view text);

// [n_vocab] 1 = token id is a delimiter candidate. O(total piece bytes).
std::vector<uint8_t> tokenizer_delimiter_mask(const Tokenizer& tok);

}  // namespace hkv
