// tokenizer/tokenizer.cpp — Tokenizer: validation, table building, special-token partition,
// encode/decode. The merge algorithms are in spm.cpp and bpe.cpp, word splitting in
// pretokenize.cpp.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "heterokv/log.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab_tables.h"

namespace hkv {

struct Tokenizer::Impl : VocabTables {};

namespace {

const char* const kSpmSpace = "\xE2\x96\x81";  // U+2581 "▁"

// Texts that end generation whatever the metadata says (the list llama.cpp uses).
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // <｜end▁of▁sentence｜>
};

// "<0xNN>" -> NN, else -1.
int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
    auto hex = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    const int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string replace_all(const std::string& s, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(s.size());
    for (size_t pos = 0;;) {
        const size_t hit = s.find(from, pos);
        if (hit == std::string::npos) {
            out.append(s, pos, std::string::npos);
            return out;
        }
        out.append(s, pos, hit - pos);
        out.append(to);
        pos = hit + from.size();
    }
}

// Byte-level BPE token text -> bytes. Codepoints outside the GPT-2 alphabet are kept as UTF-8.
std::string gpt2_decode(const std::string& t) {
    std::string out;
    size_t pos = 0;
    while (pos < t.size()) {
        const size_t start = pos;
        const uint32_t cpt = utf8_decode_one(t, &pos);
        const int b = gpt2_to_byte(cpt);
        if (b >= 0) out.push_back(char(b));
        else out.append(t, start, pos - start);
    }
    return out;
}

Status validate(const TokenizerData& d) {
    const size_t n = d.tokens.size();
    if (d.model != "llama" && d.model != "gpt2")
        return Status::unsupported("tokenizer: model '%s' (supported: llama, gpt2)", d.model.c_str());
    if (n == 0) return Status::invalid("tokenizer: empty vocabulary");
    if (n > size_t(INT32_MAX)) return Status::invalid("tokenizer: %zu tokens", n);
    if (!d.scores.empty() && d.scores.size() != n)
        return Status::invalid("tokenizer: %zu scores for %zu tokens", d.scores.size(), n);
    if (!d.token_type.empty() && d.token_type.size() != n)
        return Status::invalid("tokenizer: %zu token types for %zu tokens", d.token_type.size(), n);
    for (size_t i = 0; i < d.token_type.size(); ++i) {
        if (d.token_type[i] < 0 || d.token_type[i] > int32_t(TokenAttr::kByte))
            return Status::invalid("tokenizer: token %zu has type %d", i, d.token_type[i]);
    }
    const struct {
        const char* name;
        int32_t id;
    } ids[] = {{"bos", d.bos_id}, {"eos", d.eos_id}, {"unk", d.unk_id}, {"pad", d.pad_id}, {"eot", d.eot_id}};
    for (const auto& x : ids) {
        if (x.id < -1 || x.id >= int32_t(n))
            return Status::invalid("tokenizer: %s id %d is outside the vocabulary of %zu", x.name, x.id, n);
    }
    if (d.add_bos && d.bos_id < 0) return Status::invalid("tokenizer: add_bos is set but there is no bos token");
    if (d.add_eos && d.eos_id < 0) return Status::invalid("tokenizer: add_eos is set but there is no eos token");
    return Status::ok_status();
}

}  // namespace

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

Expected<std::unique_ptr<Tokenizer>> Tokenizer::create(const TokenizerData& data) {
    HKV_TRY(validate(data));
    std::unique_ptr<Tokenizer> tok(new Tokenizer());
    Impl& v = *tok->impl_;
    v.data = data;
    v.is_spm = data.model == "llama";
    const size_t n = data.tokens.size();

    if (!v.is_spm) {
        const std::string pre = data.pre.empty() ? "default" : data.pre;
        if (!pre_type_from_name(pre, &v.pre))
            return Status::unsupported("tokenizer: pre-tokenizer '%s' is not supported", pre.c_str());
        v.ignore_merges = pre == "llama-bpe" || pre == "llama3";
        v.merge_rank.reserve(data.merges.size());
        for (size_t i = 0; i < data.merges.size(); ++i) {
            const std::string& m = data.merges[i];
            const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
            if (sp == std::string::npos || sp + 1 >= m.size())
                return Status::invalid("tokenizer: merge %zu '%s' is not 'left right'", i, m.c_str());
            v.merge_rank.emplace(m, int32_t(i));  // the first (lowest) rank of a duplicate wins
        }
    }

    v.attr.resize(n, TokenAttr::kNormal);
    v.token_to_id.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        if (!data.token_type.empty()) v.attr[i] = TokenAttr(data.token_type[i]);
        else if (v.is_spm && parse_byte_token(data.tokens[i]) >= 0) v.attr[i] = TokenAttr::kByte;
        v.token_to_id[data.tokens[i]] = int32_t(i);
    }

    // end of generation; as in llama.cpp, an end-of-turn text is made a control token
    v.eog.assign(n, 0);
    for (int32_t id : {data.eos_id, data.eot_id}) {
        if (id >= 0) v.eog[size_t(id)] = 1;
    }
    for (std::string_view t : kEogTexts) {
        const int32_t id = v.find(t);
        if (id < 0) continue;
        v.eog[size_t(id)] = 1;
        if (v.attr[size_t(id)] != TokenAttr::kControl) {
            HKV_LOG_WARN("token %d '%s' ends generation but is not a control token; treating it as one", id,
                         data.tokens[size_t(id)].c_str());
            v.attr[size_t(id)] = TokenAttr::kControl;
        }
    }

    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        int32_t id = v.find(name);
        if (id < 0) id = v.find(std::string(1, char(b)));
        v.byte_token[b] = id >= 0 ? id : data.unk_id;
    }

    v.piece.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string& t = data.tokens[i];
        switch (v.attr[i]) {
            case TokenAttr::kNormal:
                v.piece[i] = v.is_spm ? replace_all(t, kSpmSpace, " ") : gpt2_decode(t);
                break;
            case TokenAttr::kByte: {
                const int b = parse_byte_token(t);
                v.piece[i] = b >= 0 ? std::string(1, char(b)) : t;
                break;
            }
            case TokenAttr::kUserDefined: v.piece[i] = t; break;
            default: break;  // control, unknown, unused, undefined: "" unless rendered
        }
        const TokenAttr a = v.attr[i];
        if ((a == TokenAttr::kControl || a == TokenAttr::kUserDefined || a == TokenAttr::kUnknown) && !t.empty())
            v.specials.push_back(int32_t(i));
    }
    std::stable_sort(v.specials.begin(), v.specials.end(), [&](int32_t a, int32_t b) {
        return data.tokens[size_t(a)].size() > data.tokens[size_t(b)].size();
    });
    return tok;
}

int32_t Tokenizer::n_vocab() const { return int32_t(impl_->data.tokens.size()); }
int32_t Tokenizer::bos() const { return impl_->data.bos_id; }
int32_t Tokenizer::eos() const { return impl_->data.eos_id; }
bool Tokenizer::add_bos() const { return impl_->data.add_bos; }
const TokenizerData& Tokenizer::data() const { return impl_->data; }

bool Tokenizer::is_eog(int32_t id) const {
    return id >= 0 && id < n_vocab() && impl_->eog[size_t(id)] != 0;
}

namespace {

// A piece of the input: raw text [off, off + len) or one special token.
struct Fragment {
    int32_t token;  // -1 for raw text
    size_t off, len;
};

// Whether [off, off + len) overlaps one of the sorted literal ranges.
bool overlaps(std::span<const std::pair<size_t, size_t>> literal, size_t off, size_t len) {
    auto it = std::upper_bound(literal.begin(), literal.end(), off,
                               [](size_t o, const std::pair<size_t, size_t>& r) { return o < r.first + r.second; });
    return it != literal.end() && it->first < off + len;
}

// Splits out special tokens, longest text first, as llama.cpp's tokenizer_st_partition: each
// special token in turn is searched for in the raw fragments left by the longer ones.
// User-defined tokens always match; control and unknown tokens only with parse_special, and not
// inside the `literal` ranges. With data.special_rstrip, whitespace after a match (within its raw
// fragment) is dropped.
std::vector<Fragment> partition(const VocabTables& v, std::string_view text, bool parse_special,
                                std::span<const std::pair<size_t, size_t>> literal = {}) {
    std::vector<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    std::vector<Fragment> next;
    for (int32_t id : v.specials) {
        const TokenAttr a = v.attr[size_t(id)];
        if (!parse_special && (a == TokenAttr::kControl || a == TokenAttr::kUnknown)) continue;
        const std::string& s = v.data.tokens[size_t(id)];
        if (text.find(s) == std::string_view::npos) continue;
        const bool rstrip = v.data.special_rstrip && s != "<unk>" && s != "<s>" && s != "<|endoftext|>";
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t pos = f.off;
            const size_t end = f.off + f.len;
            const bool controlled = a == TokenAttr::kControl || a == TokenAttr::kUnknown;
            size_t from = pos;
            for (;;) {
                const size_t hit = text.find(s, from);
                if (hit == std::string_view::npos || hit + s.size() > end) break;
                if (controlled && !literal.empty() && overlaps(literal, hit, s.size())) {
                    from = hit + 1;  // plain text here: look for the next occurrence
                    continue;
                }
                if (hit > pos) next.push_back({-1, pos, hit - pos});
                next.push_back({id, hit, s.size()});
                pos = hit + s.size();
                if (rstrip) {
                    while (pos < end && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
                }
                from = pos;
            }
            if (end > pos) next.push_back({-1, pos, end - pos});
        }
        frags.swap(next);
    }
    return frags;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    return encode_impl(text, add_special, parse_special, {});
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       std::span<const std::pair<size_t, size_t>> literal) const {
    return encode_impl(text, add_special, true, literal);
}

std::vector<int32_t> Tokenizer::encode_impl(std::string_view text, bool add_special, bool parse_special,
                                            std::span<const std::pair<size_t, size_t>> literal) const {
    const Impl& v = *impl_;
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (add_special && v.data.add_bos) out.push_back(v.data.bos_id);
    bool prev_special = true;  // SPM: a space is prefixed to text at the start or after a special token
    std::string buf;
    for (const Fragment& f : partition(v, text, parse_special, literal)) {
        if (f.token >= 0) {
            out.push_back(f.token);
            prev_special = true;
            continue;
        }
        const std::string_view raw = text.substr(f.off, f.len);
        if (!v.is_spm) {
            bpe_encode(v, raw, &out);
            continue;
        }
        buf.clear();
        if (v.data.add_space_prefix && prev_special) buf += kSpmSpace;
        for (char c : raw) {
            if (c == ' ') buf += kSpmSpace;
            else buf.push_back(c);
        }
        spm_encode(v, buf, &out);
        prev_special = false;
    }
    if (add_special && v.data.add_eos) out.push_back(v.data.eos_id);
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
    const Impl& v = *impl_;
    if (id < 0 || id >= n_vocab()) return {};
    const TokenAttr a = v.attr[size_t(id)];
    if (render_special && (a == TokenAttr::kControl || a == TokenAttr::kUnknown)) return v.data.tokens[size_t(id)];
    return v.piece[size_t(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
    const Impl& v = *impl_;
    const bool strip_enabled = v.is_spm && v.data.add_space_prefix;
    std::string out;
    bool strip = strip_enabled;  // drop the leading space of the first token / the one after BOS
    for (int32_t id : ids) {
        std::string p = token_to_piece(id, render_special);
        if (strip && !p.empty() && p[0] == ' ') p.erase(0, 1);
        strip = strip_enabled && id == v.data.bos_id;
        out += p;
    }
    return out;
}

}  // namespace hkv
