// tokenizer/delimiters.cpp — see delimiters.h.
#include "tokenizer/delimiters.h"

namespace hkv {

bool text_has_delimiter(std::string_view text) {
    for (char c : text) {
        switch (c) {
            case '.': case ',': case ';': case ':': case '!': case '?': case '\n':
            case '"': case '\'': case ')': case ']': case '}':
                return true;
            default:
                break;
        }
    }
    static constexpr std::string_view kWide[] = {"。", "，", "；", "：", "！", "？", "」", "』", "）"};
    for (std::string_view w : kWide) {
        if (text.find(w) != std::string_view::npos) return true;
    }
    return false;
}

std::vector<uint8_t> tokenizer_delimiter_mask(const Tokenizer& tok) {
    std::vector<uint8_t> mask(size_t(tok.n_vocab()), 0);
    for (int32_t id = 0; id < tok.n_vocab(); ++id) mask[size_t(id)] = text_has_delimiter(tok.token_to_piece(id)) ? 1 : 0;
    return mask;
}

}  // namespace hkv
