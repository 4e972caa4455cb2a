// tokenizer/unicode.cpp — UTF-8, codepoint classes, GPT-2 byte alphabet.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace hkv {

namespace unicode_detail {
extern const uint32_t kCptRuns[][2];
extern const size_t kCptRunsCount;
}  // namespace unicode_detail

namespace {

constexpr uint32_t kWhitespaceBit = 0x8;

CptInfo info_from_entry(uint32_t v) {
    CptInfo info;
    info.cls = static_cast<CptClass>(v & 0x7);
    info.space = (v & kWhitespaceBit) != 0;
    info.valid = true;
    return info;
}

// ASCII is by far the most common case: a direct table.
struct AsciiTable {
    std::array<CptInfo, 128> info;
    AsciiTable() {
        for (uint32_t c = 0; c < 128; ++c) {
            // runs are sorted; the ASCII ones are at the front
            size_t i = 0;
            while (i + 1 < unicode_detail::kCptRunsCount && unicode_detail::kCptRuns[i + 1][0] <= c) ++i;
            info[c] = info_from_entry(unicode_detail::kCptRuns[i][1]);
        }
    }
};

struct Gpt2Alphabet {
    std::array<std::string, 256> to_text;
    std::array<int16_t, 512> from_cpt;  // all alphabet codepoints are < 512
    Gpt2Alphabet() {
        from_cpt.fill(-1);
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            const uint32_t cpt = printable ? uint32_t(b) : next++;
            utf8_append(cpt, &to_text[b]);
            from_cpt[cpt] = int16_t(b);
        }
    }
};

const Gpt2Alphabet& gpt2_alphabet() {
    static const Gpt2Alphabet a;
    return a;
}

}  // namespace

CptInfo cpt_info(uint32_t cpt) {
    static const AsciiTable ascii;
    if (cpt < 128) return ascii.info[cpt];
    if (cpt > 0x10FFFF) return CptInfo{};
    const auto* runs = unicode_detail::kCptRuns;
    const size_t n = unicode_detail::kCptRunsCount;
    // last run whose first codepoint is <= cpt
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        const size_t mid = (lo + hi) / 2;
        if (runs[mid][0] <= cpt) lo = mid; else hi = mid;
    }
    return info_from_entry(runs[lo][1]);
}

uint32_t utf8_decode_one(std::string_view s, size_t* pos) {
    const size_t i = *pos;
    const uint8_t b0 = uint8_t(s[i]);
    const size_t len = (b0 & 0x80) == 0 ? 1 : (b0 & 0xE0) == 0xC0 ? 2 : (b0 & 0xF0) == 0xE0 ? 3
                     : (b0 & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 1) {
        *pos = i + 1;
        return b0;
    }
    if (len == 0 || i + len > s.size()) {
        *pos = i + 1;
        return 0xFFFD;
    }
    uint32_t cpt = b0 & (0xFF >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
        const uint8_t b = uint8_t(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            *pos = i + 1;
            return 0xFFFD;
        }
        cpt = (cpt << 6) | (b & 0x3F);
    }
    *pos = i + len;
    return cpt;
}

std::vector<uint32_t> utf8_to_cpts(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) out.push_back(utf8_decode_one(s, &pos));
    return out;
}

void utf8_append(uint32_t cpt, std::string* out) {
    if (cpt < 0x80) {
        out->push_back(char(cpt));
    } else if (cpt < 0x800) {
        out->push_back(char(0xC0 | (cpt >> 6)));
        out->push_back(char(0x80 | (cpt & 0x3F)));
    } else if (cpt < 0x10000) {
        out->push_back(char(0xE0 | (cpt >> 12)));
        out->push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cpt & 0x3F)));
    } else {
        out->push_back(char(0xF0 | ((cpt >> 18) & 0x07)));
        out->push_back(char(0x80 | ((cpt >> 12) & 0x3F)));
        out->push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cpt & 0x3F)));
    }
}

const std::string& byte_to_gpt2(uint8_t b) { return gpt2_alphabet().to_text[b]; }

int gpt2_to_byte(uint32_t cpt) { return cpt < 512 ? gpt2_alphabet().from_cpt[cpt] : -1; }

}  // namespace hkv
