// tokenizer/pretokenize.cpp — hand-written equivalents of llama.cpp's pre-tokenizer regexes.
#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

namespace hkv {

namespace {

// Per-codepoint class bits. Only the classes the regexes name matter.
enum : uint8_t {
    kWs = 1,      // \s (Unicode White_Space)
    kL = 2,       // \p{L}
    kN = 4,       // \p{N}
    kP = 8,       // [\p{P}\$\+<=>\^~\|] (the "default" pre-tokenizer's first pass)
    kValid = 16,  // a codepoint at all (0 = past the end of the fragment)
};
constexpr uint32_t kNoCpt = 0xFFFFFFFF;

bool is_other(uint8_t k) { return (k & kValid) && !(k & (kWs | kL | kN)); }

std::vector<uint8_t> classify(const std::vector<uint32_t>& cpts) {
    std::vector<uint8_t> out(cpts.size());
    for (size_t i = 0; i < cpts.size(); ++i) {
        const uint32_t c = cpts[i];
        const CptInfo in = cpt_info(c);
        uint8_t k = in.valid ? kValid : 0;
        if (in.space) k |= kWs;
        else if (in.letter()) k |= kL;
        else if (in.number()) k |= kN;
        if (c < 128) {
            // ASCII punctuation and symbols except the backtick
            const bool p = (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x5F) ||
                           (c >= 0x7B && c <= 0x7E);
            if (p) k |= kP;
        } else if (!in.space && in.cls == CptClass::kPunct) {
            k |= kP;
        }
        out[i] = k;
    }
    return out;
}

// One fragment [ini, end) of the text being split; words are appended to *out as lengths.
struct Fragment {
    const uint32_t* cpts;
    const uint8_t* cls;
    size_t ini, end;
    std::vector<size_t>* out;
    size_t prev;

    uint32_t cpt(size_t p) const { return p < end ? cpts[p] : kNoCpt; }
    uint8_t k(size_t p) const { return p < end ? cls[p] : 0; }
    // Ends the current word at `to`; returns `to`.
    size_t emit(size_t to) {
        if (to > prev) out->push_back(to - prev);
        prev = to;
        return to;
    }
};

uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d (case-insensitive if asked). Returns the match length or 0.
size_t match_contraction(const Fragment& f, size_t pos, bool icase) {
    if (f.cpt(pos) != '\'' || pos + 1 >= f.end) return 0;
    auto low = [&](uint32_t c) { return icase ? ascii_lower(c) : c; };
    const uint32_t c1 = low(f.cpt(pos + 1));
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= f.end) return 0;
    const uint32_t c2 = low(f.cpt(pos + 2));
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)   (and \s+ as a fallback)
void split_gpt2(Fragment f) {
    size_t pos = f.ini;
    while (pos < f.end) {
        if (size_t n = match_contraction(f, pos, false)) {
            pos = f.emit(pos + n);
            continue;
        }
        const uint32_t c = f.cpt(pos);
        const uint8_t k2 = c == ' ' ? f.k(pos + 1) : f.k(pos);  // class after an optional space
        if (k2 & (kL | kN)) {
            const uint8_t want = k2 & (kL | kN);
            pos += (c == ' ');
            while (f.k(pos) & want) ++pos;
            f.emit(pos);
            continue;
        }
        if (is_other(k2)) {
            pos += (c == ' ');
            while (is_other(f.k(pos))) ++pos;
            f.emit(pos);
            continue;
        }
        size_t n_ws = 0;
        while (f.k(pos + n_ws) & kWs) ++n_ws;
        if (n_ws > 1 && pos + n_ws < f.end) {  // \s+(?!\S): leave the last space to the next word
            pos = f.emit(pos + n_ws - 1);
        } else if (n_ws > 0) {
            pos = f.emit(pos + n_ws);
        } else {
            pos = f.emit(pos + 1);
        }
    }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void split_llama3(Fragment f, size_t max_digits) {
    size_t pos = f.ini;
    while (pos < f.end) {
        if (size_t n = match_contraction(f, pos, true)) {
            pos = f.emit(pos + n);
            continue;
        }
        const uint32_t c = f.cpt(pos);
        const uint8_t k = f.k(pos);
        if (c != '\r' && c != '\n' && !(k & kN) && ((k & kL) || (f.k(pos + 1) & kL))) {
            ++pos;  // the optional leading non-letter, or the first letter
            while (f.k(pos) & kL) ++pos;
            f.emit(pos);
            continue;
        }
        if (k & kN) {
            size_t run = 0;
            while (f.k(pos) & kN) {
                ++pos;
                if (++run == max_digits) {
                    f.emit(pos);
                    run = 0;
                }
            }
            f.emit(pos);
            continue;
        }
        const uint8_t k2 = c == ' ' ? f.k(pos + 1) : k;
        if (!(k2 & (kWs | kL | kN)) && (k & kValid)) {
            pos += (c == ' ');
            while (is_other(f.k(pos))) ++pos;
            while (f.cpt(pos) == '\r' || f.cpt(pos) == '\n') ++pos;
            f.emit(pos);
            continue;
        }
        size_t n_ws = 0, end_rn = 0;
        while (f.k(pos + n_ws) & kWs) {
            const uint32_t w = f.cpt(pos + n_ws);
            ++n_ws;
            if (w == '\r' || w == '\n') end_rn = pos + n_ws;
        }
        if (end_rn > 0) {  // \s*[\r\n]+ ends at the last line break of the run
            pos = f.emit(end_rn);
        } else if (n_ws > 1 && pos + n_ws < f.end) {
            pos = f.emit(pos + n_ws - 1);
        } else if (n_ws > 0) {
            pos = f.emit(pos + n_ws);
        } else {
            pos = f.emit(pos + 1);
        }
    }
}

// Matches of [class]{1} (each its own word) or [class]+ runs; text between matches is kept.
void split_class(Fragment f, uint8_t cls, bool runs) {
    for (size_t pos = f.ini; pos < f.end;) {
        if (!(f.k(pos) & cls)) {
            ++pos;
            continue;
        }
        f.emit(pos);
        ++pos;
        if (runs) while (f.k(pos) & cls) ++pos;
        f.emit(pos);
    }
    f.emit(f.end);
}

// [0-9][0-9][0-9], matched left to right without overlap; text between matches is kept.
void split_ascii_digit_triples(Fragment f) {
    auto digit = [&](size_t p) { return p < f.end && f.cpts[p] >= '0' && f.cpts[p] <= '9'; };
    for (size_t pos = f.ini; pos < f.end;) {
        if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
            f.emit(pos);
            pos = f.emit(pos + 3);
        } else {
            ++pos;
        }
    }
    f.emit(f.end);
}

enum class Pass { kGpt2, kLlama3, kQwen2, kEachNumber, kNumberRuns, kPunctRuns, kDigitTriples };

std::vector<size_t> run_pass(Pass pass, const std::vector<uint32_t>& cpts, const std::vector<uint8_t>& cls,
                             const std::vector<size_t>& frags) {
    std::vector<size_t> out;
    out.reserve(frags.size() + cpts.size() / 4);
    size_t start = 0;
    for (size_t len : frags) {
        Fragment f{cpts.data(), cls.data(), start, start + len, &out, start};
        switch (pass) {
            case Pass::kGpt2: split_gpt2(f); break;
            case Pass::kLlama3: split_llama3(f, 3); break;
            case Pass::kQwen2: split_llama3(f, 1); break;
            case Pass::kEachNumber: split_class(f, kN, false); break;
            case Pass::kNumberRuns: split_class(f, kN, true); break;
            case Pass::kPunctRuns: split_class(f, kP, true); break;
            case Pass::kDigitTriples: split_ascii_digit_triples(f); break;
        }
        start += len;
    }
    return out;
}

}  // namespace

bool pre_type_from_name(std::string_view name, PreType* out) {
    struct Entry {
        std::string_view name;
        PreType type;
    };
    static constexpr Entry kNames[] = {
        {"default", PreType::kDefault}, {"gpt2", PreType::kGpt2},       {"gpt-2", PreType::kGpt2},
        {"mpt", PreType::kGpt2},        {"olmo", PreType::kGpt2},       {"jais", PreType::kGpt2},
        {"smollm", PreType::kSmollm},   {"starcoder", PreType::kSmollm}, {"refact", PreType::kSmollm},
        {"command-r", PreType::kSmollm}, {"codeshell", PreType::kSmollm}, {"exaone", PreType::kSmollm},
        {"minerva-7b", PreType::kSmollm}, {"llama-bpe", PreType::kLlama3}, {"llama3", PreType::kLlama3},
        {"dbrx", PreType::kLlama3},     {"smaug-bpe", PreType::kLlama3}, {"qwen2", PreType::kQwen2},
        {"stablelm2", PreType::kQwen2},
    };
    for (const Entry& e : kNames) {
        if (e.name == name) {
            *out = e.type;
            return true;
        }
    }
    return false;
}

std::vector<size_t> pretokenize(PreType type, const std::vector<uint32_t>& cpts) {
    if (cpts.empty()) return {};
    const std::vector<uint8_t> cls = classify(cpts);
    std::vector<size_t> frags = {cpts.size()};
    auto pass = [&](Pass p) { frags = run_pass(p, cpts, cls, frags); };
    switch (type) {
        case PreType::kGpt2: pass(Pass::kGpt2); break;
        case PreType::kSmollm: pass(Pass::kEachNumber); pass(Pass::kGpt2); break;
        case PreType::kLlama3: pass(Pass::kLlama3); break;
        case PreType::kQwen2: pass(Pass::kQwen2); break;
        case PreType::kDefault:
            pass(Pass::kPunctRuns);
            pass(Pass::kGpt2);
            pass(Pass::kNumberRuns);
            pass(Pass::kDigitTriples);
            break;
    }
    return frags;
}

}  // namespace hkv
