// tokenizer/bpe.cpp — byte-level BPE by merge rank, as llama.cpp's BPE tokenizer.
//
// The text is split into words by the pre-tokenizer; each word's UTF-8 bytes are mapped to the
// GPT-2 alphabet; then, within the word, the adjacent pair with the lowest merge rank (ties:
// leftmost) is merged until no pair has a rank. Each final symbol is its token, or, if it is not
// in the vocabulary, the tokens of its single bytes (those that exist).
#include <algorithm>
#include <queue>

#include "tokenizer/unicode.h"
#include "tokenizer/merge.h"
#include "tokenizer/vocab_tables.h"

namespace hkv {

namespace {

using Symbol = MergeSymbol;

struct Candidate {
    int32_t rank;
    int32_t left, right;
    uint32_t size;
};

struct LowerPriority {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

// Buffers reused across the words of one encode() call.
struct Workspace {
    std::vector<Symbol> sym;
    std::string key;
};

void merge_word(const VocabTables& v, std::string_view word, Workspace* ws, std::vector<int32_t>* out) {
    if (v.ignore_merges) {
        const int32_t id = v.find(word);
        if (id >= 0) {
            out->push_back(id);
            return;
        }
    }
    std::vector<Symbol>& sym = ws->sym;
    sym.clear();
    for (size_t off = 0; off < word.size();) {
        const size_t n = std::min(utf8_len(uint8_t(word[off])), word.size() - off);
        const int32_t i = int32_t(sym.size());
        sym.push_back({i - 1, off + n == word.size() ? -1 : i + 1, uint32_t(off), uint32_t(n)});
        off += n;
    }

    std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> queue;
    auto try_add = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = sym[size_t(left)];
        const Symbol& r = sym[size_t(right)];
        ws->key.assign(word.substr(l.off, l.n));
        ws->key.push_back(' ');
        ws->key.append(word.substr(r.off, r.n));
        auto it = v.merge_rank.find(ws->key);
        if (it == v.merge_rank.end()) return;
        queue.push({it->second, left, right, l.n + r.n});
    };
    merge_best_pairs(sym, queue, try_add);

    for (int32_t i = sym.empty() ? -1 : 0; i != -1; i = sym[size_t(i)].next) {
        const Symbol& s = sym[size_t(i)];
        const std::string_view text = word.substr(s.off, s.n);
        const int32_t id = v.find(text);
        if (id >= 0) {
            out->push_back(id);
            continue;
        }
        for (size_t k = 0; k < text.size(); ++k) {
            const int32_t b = v.find(text.substr(k, 1));
            if (b >= 0) out->push_back(b);
        }
    }
}

}  // namespace

void bpe_encode(const VocabTables& v, std::string_view text, std::vector<int32_t>* out) {
    const std::vector<uint32_t> cpts = utf8_to_cpts(text);
    const std::vector<size_t> words = pretokenize(v.pre, cpts);
    Workspace ws;
    std::string word, utf8;
    size_t start = 0;
    for (size_t len : words) {
        word.clear();
        for (size_t i = start; i < start + len; ++i) {
            utf8.clear();
            utf8_append(cpts[i], &utf8);
            for (char b : utf8) word += byte_to_gpt2(uint8_t(b));
        }
        start += len;
        merge_word(v, word, &ws, out);
    }
}

}  // namespace hkv
