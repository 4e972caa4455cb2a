// tokenizer/merge.h — the pair-merge loop shared by the byte-level BPE (merge ranks) and the
// SentencePiece-style BPE (token scores) tokenizers.
#pragma once

#include <cstdint>
#include <vector>

namespace hkv {

// One symbol of the word being merged; symbols form a doubly linked list in text order.
struct MergeSymbol {
    int32_t prev, next;
    uint32_t off, n;  // bytes of the text; n == 0 once merged into the left neighbour
};

// Offers every adjacent pair to try_add(left, right) (which pushes a candidate carrying left, right
// and the pair's byte size into `queue` if the pair can merge), then repeatedly merges the queue's
// best candidate, skipping stale ones, and offers the merged symbol's new neighbours.
template <typename Queue, typename TryAdd>
void merge_best_pairs(std::vector<MergeSymbol>& sym, Queue& queue, TryAdd&& try_add) {
    for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
        const auto c = queue.top();
        queue.pop();
        MergeSymbol& l = sym[size_t(c.left)];
        MergeSymbol& r = sym[size_t(c.right)];
        if (l.n == 0 || r.n == 0 || l.n + r.n != c.size) continue;  // stale
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) sym[size_t(r.next)].prev = c.left;
        try_add(l.prev, c.left);
        try_add(c.left, l.next);
    }
}

}  // namespace hkv
