// policy/blocks.h — the pieces of DynSplit-KV (src/policy/dynsplit.cpp) that are pure logic over
// arrays, so they are unit-tested and benchmarked on their own:
//   * splitting a span of slots into blocks: DD-Select (importance-aware delimiters), fixed
//     intervals, fixed punctuation delimiters;
//   * the uniform mapping of variable-length blocks onto fixed-size pages (page -> block table and
//     valid lengths), and block scores computed through it as regular [n_pages, P] reductions;
//   * budgeted selection of whole blocks.
//
// Conventions: a split of the slot span [b, e) is its boundary array `bounds` = b = bounds[0] <
// bounds[1] < ... < bounds[M] = e; block j covers slots [bounds[j], bounds[j + 1]). A candidate
// boundary i (b < i < e) means "a block may start at slot i" (the slot before it holds a delimiter).
// Ties between equal scores always go to the lower index, so every result is deterministic.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace hkv {

enum class SplitKind { kDd, kFixed, kPunct };     // split=dd|fixed|punct
enum class AcceptKind { kTarget, kAdaptive };     // accept=target|adaptive (DD-Select stop rule)
enum class BlockScoreKind { kMean, kMax, kSqrt }; // block_score=mean|max|sqrt (sum / sqrt(len))

struct SplitOptions {
    SplitKind kind = SplitKind::kDd;
    int32_t interval = 16;                 // fixed: block length
    int32_t min_len = 4;                   // dd: no accepted boundary closer than this to another
    int32_t max_len = 64;                  // dd, punct: longer blocks are split (see split_cap)
    int32_t target = 16;                   // dd + target: accept until the mean block length <= target
    AcceptKind accept = AcceptKind::kTarget;
    float lambda = 0.5f;                   // dd + adaptive: accept candidates with s >= mean + lambda*sd
};

// DD-Select over [b, e): candidates i with cand[i] != 0 are taken in descending score[i] order and
// accepted when at least min_len slots from every accepted boundary (b and e included); with
// kTarget acceptance stops once ceil((e - b) / target) blocks exist, with kAdaptive only candidates
// scoring >= mean + lambda * sd (over the candidates) are considered. Then split_cap. cand, score:
// indexed by slot, valid on (b, e). bounds is overwritten.
void split_dd(const uint8_t* cand, const float* score, int32_t b, int32_t e, const SplitOptions& o,
              std::vector<int32_t>& bounds);
// Fixed intervals: b, b + interval, b + 2 interval, ..., e.
void split_fixed(int32_t b, int32_t e, int32_t interval, std::vector<int32_t>& bounds);
// Fixed delimiters: every candidate is a boundary; then split_cap (with min_len 1).
void split_punct(const uint8_t* cand, int32_t b, int32_t e, const SplitOptions& o, std::vector<int32_t>& bounds);
// Splits every block longer than max_len: at its best-scoring inner candidate at least min_len
// from both ends (score may be null: the first such candidate), repeatedly, and where no candidate
// qualifies at fixed intervals of max_len. Keeps bounds ascending.
void split_cap(const uint8_t* cand, const float* score, const SplitOptions& o, std::vector<int32_t>& bounds);

// ---- uniform mapping ----
// Blocks laid onto fixed-size logical pages of `page` slots: block j occupies pages
// [block_page[j], block_page[j + 1]), its last page padded; page p covers slots
// [page_start[p], page_start[p] + page_valid[p]) of block page_block[p].
struct BlockPages {
    int32_t page = 16;                  // P
    std::vector<int32_t> bounds;        // [M + 1] block boundaries (slots)
    std::vector<int32_t> block_page;    // [M + 1] first page of each block; [M] = n_pages
    std::vector<int32_t> page_block;    // [n_pages] block of each page
    std::vector<int32_t> page_start;    // [n_pages] first slot of each page
    std::vector<int32_t> page_valid;    // [n_pages] valid slots, 1..P
    int32_t n_blocks() const { return int32_t(bounds.size()) - 1; }
    int32_t n_pages() const { return int32_t(page_block.size()); }
};
void block_pages_build(std::span<const int32_t> bounds, int32_t page, BlockPages& out);

// Block scores through the mapping: token scores (indexed by slot) gathered into a padded
// tile [n_pages, P], per-page sum and max (fixed shape), then a segmented combine over each
// block's consecutive pages. out: [M].
struct PagedScratch {
    std::vector<float> tile;            // [n_pages, P]
    std::vector<float> page_sum, page_max;  // [n_pages]
};
void block_scores_paged(const BlockPages& bp, const float* token, BlockScoreKind kind, PagedScratch& scratch,
                        std::vector<float>& out);
// The same scores straight from the ragged blocks (reference for tests and the benchmark).
void block_scores_ragged(std::span<const int32_t> bounds, const float* token, BlockScoreKind kind,
                         std::vector<float>& out);

// Greedy budgeted selection: blocks in descending score (ties to the lower index), each taken when
// its length fits in what is left of `room` (a block that does not fit is skipped for smaller
// ones). taken: [M] 0/1. Returns the slots taken.
int32_t blocks_select(std::span<const float> score, std::span<const int32_t> bounds, int32_t room,
                      std::vector<int32_t>& order, std::vector<uint8_t>& taken);

}  // namespace hkv
