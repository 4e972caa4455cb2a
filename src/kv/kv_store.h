// kv/kv_store.h — the KV cache: per layer, per KV head, a variable number of slots in fixed-size pages.
//
// Layout (FlashInfer-style paged, but ragged per head):
//   head (il, ih) owns a page table: k_pages[i] -> [page_size, head_dim] k_type, v_pages[i] ->
//   [page_size, head_dim] v_type (one allocation holds page i's K rows then its V rows)
//   A row of a block type (q8_0, q4_0; hq4, backend/cpu/kv_hq4.h) is head_dim / 32 blocks of 34 or 18
//   bytes (llama.cpp's layouts; hq4: iq4_nl blocks of the rotated row), so a q8_0 head
//   really takes 34/64 of the bytes of an f16 one.
//   slot s lives in page s / page_size, row s % page_size; pos[s] is its original token position.
//   The position lane is uint16 (2 bytes a slot) when every position is known to be < 65536
//   (KvStoreConfig::n_ctx in [1, 65536]), else int32 (kv/pos_vec.h); positions() reads either.
// Keys are stored after RoPE, so a slot keeps its position forever, whatever is evicted around it.
// Pages come from a pool with a free list; a head holding n slots owns ceil(n / page_size) K pages
// and as many V pages, so a head that keeps 5% of the tokens holds ~5% of the memory.
// Compressed heads: once a head has been compacted, its LAST page is a short page sized to its
// rows rounded up to tail_granule slots (shrunk at compaction, grown granule by granule as rows are
// appended, replaced by a whole pool page when it fills), so a head compacted to cap slots holds
// cap + less than tail_granule slots, not a whole page: equal budgets mean equal bytes. Heads that
// were never compacted (the `full` policy) only ever hold whole pages. Readers address slot s as
// page s / page_size, row s % page_size for s < n_slot, whatever the last page's size.
//
// Per-head precision (issue 19 item 5): each head may have its own K and V types
// (KvStoreConfig::head_types, a policy's choice such as HeteroCache's kv= option): a head's rows,
// pages and bytes are those of its types, so a q8_0 head really holds q8_0 bytes next to an f16
// one. The heads of one (K, V) type pair share a page pool.
// Accounting: bytes_in_use() counts the pages owned by heads (short last pages at their size) plus
// the position (and score) lanes of their slots, exactly, and max_bytes limits all of it; so a head
// of n slots never costs more than ceil(n / page_size) * page_cost(config), what the engine's KV
// bound counts. bytes_reserved() adds the pool's free pages (returned to the system by trim()).
// Not thread-safe for writes; view() results stay valid until the next mutation of that head.
// The store is the only thing that mutates the cache: policies plan, apply() carries the plan out
// (compaction, merged rows, and the cold tier — full-precision rows of compressed heads kept in
// host RAM or files, kv/cold_tier.h — with its background refreshes).
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "core/dtype.h"
#include "heterokv/policy.h"
#include "heterokv/status.h"
#include "kv/pos_vec.h"

namespace hkv {

class ColdTier;  // kv/cold_tier.h
class ThreadPool;  // core/thread_pool.h

// Counters of the cold tier (KvStore::cold_stats), for reports.
struct ColdStats {
    bool exists = false, on_disk = false;
    int64_t bytes_stored = 0;    // K/V bytes held (RAM or file)
    int64_t bytes_gathered = 0;  // K/V bytes written back into the cache by refreshes
    int64_t refreshes = 0;       // refresh plans applied (one per layer and drift check)
    double io_ms = 0.0;          // gather time on the I/O thread
    double wait_ms = 0.0;        // time the engine waited for gathers (the exposed part of io_ms)
};

// The element types of one head's K and V rows.
struct KvRowTypes {
    DType k = DType::kF16;
    DType v = DType::kF16;
    bool operator==(const KvRowTypes&) const = default;
};

struct KvStoreConfig {
    int32_t n_layer = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;
    int32_t page_size = 64;       // slots per page
    DType k_type = DType::kF16;   // K rows: f16 (default), bf16, f32, q8_0, q4_0 or hq4
    DType v_type = DType::kF16;   // V rows: the same choices
    int64_t max_bytes = 0;        // page memory limit (K+V); 0 = unlimited. Exceeding it: kOutOfMemory
    bool score_lane = false;      // keep a float per slot (accumulated attention) that moves with compaction
    int32_t tail_granule = 8;     // slots per size step of a compacted head's short last page; values
                                  // >= page_size (or 0) keep whole pages everywhere
    std::string cold_dir;         // where a cold tier keeps its rows: "" = host RAM, else a folder
    // How refreshes are gathered: true = on the tier's I/O thread while the engine computes, into
    // staging buffers copied over the slots at the fence (apply_pending); false (RAM tier only) =
    // at the fence itself, straight from the tier's rows into the slots, split over the caller's
    // pool: half the copies, and no third thread taking a core from the compute threads when
    // there is no spare one (issue 22). A file tier always gathers on its I/O thread.
    bool cold_async = true;
    int32_t n_ctx = 0;            // positions are < n_ctx (the context's length): 1..65536 = a 16-bit
                                  // position lane (2 bytes a slot; larger positions are refused),
                                  // 0 or more = int32 (4 bytes)
    // [n_layer * n_head_kv] each head's K / V types (per-head precision); empty = k_type / v_type
    // for every head. Each entry takes the same choices as k_type / v_type.
    std::vector<KvRowTypes> head_types;
    // Head (il, ih)'s types.
    KvRowTypes types(int32_t il, int32_t ih) const {
        return head_types.empty() ? KvRowTypes{k_type, v_type}
                                  : head_types[size_t(il) * size_t(n_head_kv) + size_t(ih)];
    }
};

class KvStore {
public:
    static Expected<std::unique_ptr<KvStore>> create(const KvStoreConfig& cfg);
    // The checks create() makes (sizes > 0, page size in [1, 65536], cache types, a head_dim of whole
    // blocks for block types, max_bytes >= 0, head_types empty or one entry per head).
    static Status validate(const KvStoreConfig& cfg);
    // Bytes of one slot's position lane: 2 when cfg.n_ctx is in [1, 65536], else 4.
    static size_t pos_bytes(const KvStoreConfig& cfg) {
        return cfg.n_ctx > 0 && cfg.n_ctx <= PosVec::kNarrowMax + 1 ? sizeof(uint16_t) : sizeof(int32_t);
    }
    // The most bytes one page of head (il, ih) costs: a whole K and V page of its types and the lanes
    // of page_size slots (position, pos_bytes(cfg), and a float score with score_lane). cfg must be valid.
    static size_t page_cost(const KvStoreConfig& cfg, int32_t il, int32_t ih);
    // The largest page_cost over the heads.
    static size_t page_cost(const KvStoreConfig& cfg);
    ~KvStore();
    KvStore(const KvStore&) = delete;
    KvStore& operator=(const KvStore&) = delete;

    const KvStoreConfig& config() const { return cfg_; }
    // Changes the page memory limit (0 = unlimited); what the cache holds already stays.
    void set_max_bytes(int64_t bytes) { cfg_.max_bytes = bytes; }
    int32_t n_slot(int32_t il, int32_t ih) const { return int32_t(head(il, ih).pos.size()); }

    // Appends n slots to head (il, ih). k, v: [n, head_dim] f32 rows at the given row strides
    // (in floats); pos: [n]. Converts (quantizes) to k_type / v_type. kOutOfMemory if max_bytes would be exceeded,
    // kInvalidArgument for a position a 16-bit lane cannot hold (the head is left unchanged).
    Status append(int32_t il, int32_t ih, int32_t n, const float* k, int64_t k_stride,
                  const float* v, int64_t v_stride, const int32_t* pos);

    // Keeps only the slots keep[0..n_keep) (strictly ascending slot indices) of head (il, ih),
    // compacting them to the front in order, and frees the pages no longer needed.
    Status compact(int32_t il, int32_t ih, const int32_t* keep, int32_t n_keep);

    // Overwrites the K and V rows of slot `slot` of head (il, ih) (merging policies); k, v:
    // [head_dim] f32, converted (requantized) to k_type / v_type. The slot keeps its position. Bumps epoch().
    Status write_row(int32_t il, int32_t ih, int32_t slot, const float* k, const float* v);
    // HeteroCache refresh: overwrites slots [slot0, slot0 + n) of head (il, ih) in place with raw
    // rows k: [n, k_row_bytes(il, ih)], v: [n, v_row_bytes(il, ih)] and positions pos: [n]. The slot count is
    // unchanged; the caller keeps the head's slots in position order. kInvalidArgument when the
    // range is not inside the head's live slots, or a position does not fit the lane.
    Status overwrite_slots(int32_t il, int32_t ih, int32_t slot0, int32_t n, const void* k, const void* v,
                           const int32_t* pos);
    // One K / V row of head (il, ih): head_dim values of its K / V type.
    size_t k_row_bytes(int32_t il, int32_t ih) const { return cls(head(il, ih)).k_row; }
    size_t v_row_bytes(int32_t il, int32_t ih) const { return cls(head(il, ih)).v_row; }
    // Head (il, ih)'s element types.
    KvRowTypes types(int32_t il, int32_t ih) const { return cls(head(il, ih)).t; }

    // Applies a policy's plan for layer il (heterokv/policy.h LayerPlan), in this order: cold-tier
    // spills, row writes (RowWrite, with their score-lane values), the compaction of every head
    // whose n_keep is set, cold-tier refreshes (gathered in the background; applied by
    // apply_pending before the layer's next attention). The caller has checked the plan against
    // the budgets; indices are checked here (kInvalidArgument), cold-tier I/O errors are kIoError.
    Status apply(int32_t il, const LayerPlan& plan);
    // Waits for the cold-tier refreshes planned for layer il and writes them over their slots
    // (the asynchronous fence: called before the layer's attention). No-op when none is pending.
    Status apply_pending(int32_t il, ThreadPool* pool = nullptr);
    // Rows the cold tier holds for head (il, ih); 0 without a tier.
    int32_t cold_rows(int32_t il, int32_t ih) const;
    const ColdTier* cold_tier() const { return cold_.get(); }
    ColdStats cold_stats() const;

    // A sliding-window layer's slots that left its window: frees, in every head of layer il, the
    // leading pages whose slots all hold positions < pos_min (whole pages only, never the last, so
    // nothing is copied: a head keeps at most page_size - 1 older slots). Slot indices shift down by
    // the slots freed; bumps epoch() when any were. Returns the slots freed. For heads whose slots
    // are in position order and hold no cold-tier rows (layers no policy compresses).
    int64_t drop_before(int32_t il, int32_t pos_min);

    // Removes, from every head, the slots whose position is >= pos (used to undo a failed step and
    // to rewind), and the cold-tier rows of those positions; pending refreshes are dropped.
    void drop_from(int32_t pos);

    // Read-only view for attention; valid until this head is next mutated.
    AttnKvHead view(int32_t il, int32_t ih) const;
    // Head (il, ih)'s positions, [n_slot]: 16-bit or int32 (pos_bytes), read as int32_t either way.
    PosLane positions(int32_t il, int32_t ih) const { return head(il, ih).pos.lane(); }
    // The K / V row of slot s of head (il, ih): k_row_bytes(il, ih) / v_row_bytes(il, ih) bytes.
    // 0 <= s < n_slot(il, ih).
    const uint8_t* k_row(int32_t il, int32_t ih, int64_t s) const { return k_ptr(head(il, ih), s); }
    const uint8_t* v_row(int32_t il, int32_t ih, int64_t s) const { return v_ptr(head(il, ih), s); }
    // The score lane of head (il, ih): [n_slot] floats, zero for new slots (config().score_lane only).
    float* scores(int32_t il, int32_t ih) { return head(il, ih).score.data(); }
    const float* scores(int32_t il, int32_t ih) const { return head(il, ih).score.data(); }

    // ---- saved contexts (kv/kv_state.cpp) ----
    // Whether head (il, ih) has been compacted (its last page may be short).
    bool head_fine(int32_t il, int32_t ih) const { return head(il, ih).fine; }
    // Fills the EMPTY head (il, ih) with n raw rows k: [n, k_row_bytes(il, ih)], v: [n, v_row_bytes(il, ih)],
    // positions pos: [n] (strictly ascending, >= 0) and score-lane values score: [n] (config().
    // score_lane; nullptr = zeros); fine: the head counts as compacted (short last page). Errors:
    // kInvalidArgument (a non-empty head, bad positions or ones the lane cannot hold), kOutOfMemory (max_bytes or allocation).
    Status import_head(int32_t il, int32_t ih, int32_t n, const void* k, const void* v, const int32_t* pos,
                       const float* score, bool fine);
    // Waits for and applies every pending cold-tier refresh (what the next step would do first).
    Status apply_all_pending();
    // Every row of head (il, ih)'s cold tier (none without a tier): k [rows, k_row_bytes(il, ih)], v, pos.
    Status cold_export(int32_t il, int32_t ih, std::vector<uint8_t>* k, std::vector<uint8_t>* v,
                       std::vector<int32_t>* pos) const;
    // Appends n rows to head (il, ih)'s cold tier (created on first use), as a spill would; the
    // head's tier must hold rows [0, n) at positions 0 .. n - 1 afterwards (kInvalidArgument).
    Status cold_import(int32_t il, int32_t ih, int32_t n, const void* k, const void* v, const int32_t* pos);

    // Drops every slot of every head (pages go back to the free list) and the cold tier's rows.
    void clear();
    // Counts the calls that may have removed or moved slots (compact, drop_from, clear): while it is
    // unchanged, every slot only ever gained rows after it, so caches keyed by slot or page stay valid.
    uint64_t epoch() const { return epoch_; }
    // Returns free pages to the system.
    void trim();

    // One whole K / V page of head (il, ih).
    size_t page_bytes(int32_t il, int32_t ih) const { return k_row_bytes(il, ih) * size_t(cfg_.page_size); }
    size_t v_page_bytes(int32_t il, int32_t ih) const { return v_row_bytes(il, ih) * size_t(cfg_.page_size); }
    size_t bytes_in_use() const;
    size_t bytes_reserved() const;
    int64_t slots_total() const;

private:
    struct Head {
        std::vector<void*> k_pages, v_pages;  // [n_pages]
        PosVec pos;                           // [n_slot] positions, uint16 or int32
        std::vector<float> score;             // [n_slot] if score_lane, else empty
        int32_t last_cap = 0;                 // slots the last page holds: page_size, or less for a
                                              // short page (then it is not a pool page)
        bool fine = false;                    // compacted at least once: short last pages allowed
        int32_t cls = 0;                      // its type class (classes_)
    };
    // The heads of one (K, V) type pair: row sizes and a page pool. Pages are allocated as pairs:
    // one block of cap * (k_row + v_row) bytes, the K rows first; a head's k_pages[i] is the block,
    // v_pages[i] = k_pages[i] + cap * k_row.
    struct TypeClass {
        KvRowTypes t;
        size_t k_row = 0, v_row = 0;  // one K / V row
        size_t pair = 0;              // one K + V page pair of page_size slots
        std::vector<void*> free;      // pool free list
        int64_t allocated = 0;        // pool pairs, live + free
    };
    const TypeClass& cls(const Head& h) const { return classes_[size_t(h.cls)]; }
    explicit KvStore(const KvStoreConfig& cfg);
    Head& head(int32_t il, int32_t ih) { return heads_[size_t(il) * size_t(cfg_.n_head_kv) + size_t(ih)]; }
    const Head& head(int32_t il, int32_t ih) const {
        return heads_[size_t(il) * size_t(cfg_.n_head_kv) + size_t(ih)];
    }
    void* page_get(TypeClass& c);
    // A pair of cap slots of h's class: a pool pair when cap == page_size, else a short one (counted
    // in short_bytes_); page_free gives it back the same way (p: the block, i.e. the K page).
    void* page_alloc(const Head& h, int32_t cap);
    void page_free(const Head& h, void* p, int32_t cap);
    // Appends the pair p of cap slots to h's page tables.
    void push_pair(Head& h, void* p, int32_t cap);
    // A head's last page of `cap` slots (K and V) replaced by one of new_cap slots holding its
    // first `rows` rows; a whole-page new_cap comes from the pool. kOutOfMemory leaves it unchanged.
    Status last_page_resize(Head& h, int32_t rows, int32_t new_cap);
    // Frees a head's last page (to the pool, or a short page to the system).
    void release_last(Head& h);
    // K + V bytes of a head's pages.
    int64_t head_page_bytes(const Head& h) const;
    // kOutOfMemory when head h growing to pages_need pages (the last of cap_last slots) and n_add
    // more slots would pass max_bytes.
    Status check_limit(const Head& h, size_t pages_need, int32_t cap_last, int64_t n_add) const;
    // The error for a position the 16-bit lane cannot hold.
    Status lane_error(int32_t il, int32_t ih, int64_t pos) const;
    // Slots per short-page step (0: whole pages only).
    int32_t granule() const;
    // The last-page capacity of a fine head whose last page holds `rows` rows (1..page_size).
    int32_t fine_cap(int32_t rows) const;
    uint8_t* slot_ptr(const std::vector<void*>& pages, int64_t s, size_t row_bytes) const;
    uint8_t* k_ptr(const Head& h, int64_t s) const { return slot_ptr(h.k_pages, s, cls(h).k_row); }
    // Slot s of h takes a raw K row, V row (its class's sizes) and position; its score lane restarts.
    // The position must fit the lane (checked by the callers first).
    void write_raw(Head& h, int64_t s, const uint8_t* k, const uint8_t* v, int32_t pos);
    uint8_t* v_ptr(const Head& h, int64_t s) const { return slot_ptr(h.v_pages, s, cls(h).v_row); }
    // ---- cold tier (kv/kv_cold.cpp) ----
    struct Staged {                   // one head's refresh, gathered on the I/O thread
        int32_t ih = 0, slot0 = 0, n = 0;
        std::vector<int32_t> rows;    // [n] tier rows, ascending
        std::vector<uint8_t> k, v;    // [n, k_row_bytes(il, ih)], [n, v_row_bytes(il, ih)]
        std::vector<int32_t> pos;     // [n]
        // at the fence: the RAM tier's rows read in place ([rows, k_row], [rows, v_row], [rows])
        const uint8_t* src_k = nullptr;
        const uint8_t* src_v = nullptr;
        const int32_t* src_pos = nullptr;
    };
    struct Pending {                  // a layer's refresh in flight; buffers kept across refreshes
        bool active = false;
        bool at_fence = false;        // gathered by apply_pending itself (cold_async off, RAM tier)
        std::vector<Staged> heads;
        size_t n_heads = 0;
        std::future<Status> done;
        double io_ms = 0.0;           // written by the job, read after done.get()
    };
    Status cold_ensure();  // creates the tier (kv_cold.cpp)
    Status cold_spill(int32_t il, int32_t ih);
    Status cold_submit(int32_t il, const LayerPlan& plan);
    void cold_drain();                // waits for every gather in flight and drops it
    // cold_async off: copies the staged rows of layer il's refresh from the RAM tier over their slots.
    Status cold_copy_at_fence(int32_t il, Pending& p, ThreadPool* pool);
    // A refresh's bytes and count into cold_stats_.
    void count_refresh(int32_t il, const Pending& p);

    KvStoreConfig cfg_;
    std::vector<TypeClass> classes_;  // one per distinct (K, V) type pair, in order of first head
    std::vector<Head> heads_;     // [n_layer * n_head_kv]
    int64_t short_bytes_ = 0;     // K + V bytes of the short last pages owned by heads
    int64_t slots_ = 0;           // live slots over every head: their lanes hold slots_ * lane_bytes_
    size_t lane_bytes_ = 4;       // position (pos_bytes), + score with score_lane
    uint64_t epoch_ = 0;          // see epoch()
    std::unique_ptr<ColdTier> cold_;  // created at the first spill
    std::vector<Pending> pending_;    // [n_layer] cold-tier refreshes
    std::vector<int64_t> unit_first_;  // a fence refresh: [staged heads + 1] each head's first work unit
    std::vector<uint8_t> spill_k_, spill_v_;  // [n, k_row_bytes], [n, v_row_bytes] of the head: a spill's staging
    std::vector<int32_t> spill_pos_;          // [n] its positions
    ColdStats cold_stats_;
};

}  // namespace hkv
