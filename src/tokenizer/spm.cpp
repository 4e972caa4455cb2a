// tokenizer/spm.cpp — SentencePiece-style BPE by token scores, as llama.cpp's SPM tokenizer.
//
// The text is split into UTF-8 characters. Every adjacent pair whose concatenation is a token is
// a candidate; the candidate whose token has the highest score (ties: leftmost) is merged, and the
// merged symbol forms new candidates with its neighbours, until none is left. A final symbol that
// is not a token (only single characters can be) is emitted as byte-fallback tokens.
#include <algorithm>
#include <queue>

#include "tokenizer/unicode.h"
#include "tokenizer/merge.h"
#include "tokenizer/vocab_tables.h"

namespace hkv {

namespace {

using Symbol = MergeSymbol;

struct Candidate {
    float score;
    int32_t left, right;
    uint32_t size;  // bytes of left + right when the candidate was made
};

struct LowerPriority {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

void spm_encode(const VocabTables& v, std::string_view text, std::vector<int32_t>* out) {
    std::vector<Symbol> sym;
    sym.reserve(text.size());
    for (size_t off = 0; off < text.size();) {
        const size_t n = std::min(utf8_len(uint8_t(text[off])), text.size() - off);
        const int32_t i = int32_t(sym.size());
        sym.push_back({i - 1, off + n == text.size() ? -1 : i + 1, uint32_t(off), uint32_t(n)});
        off += n;
    }
    if (sym.empty()) return;

    std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> queue;
    auto try_add = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const uint32_t size = sym[size_t(left)].n + sym[size_t(right)].n;
        const int32_t id = v.find(text.substr(sym[size_t(left)].off, size));
        if (id < 0) return;
        queue.push({v.score(id), left, right, size});
    };
    merge_best_pairs(sym, queue, try_add);

    for (int32_t i = 0; i != -1; i = sym[size_t(i)].next) {
        const Symbol& s = sym[size_t(i)];
        const int32_t id = v.find(text.substr(s.off, s.n));
        if (id >= 0) {
            out->push_back(id);
            continue;
        }
        for (uint32_t k = 0; k < s.n; ++k) {
            const int32_t b = v.byte_token[uint8_t(text[s.off + k])];
            if (b >= 0) out->push_back(b);
        }
    }
}

}  // namespace hkv
