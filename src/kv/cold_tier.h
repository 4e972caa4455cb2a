// kv/cold_tier.h — the cold tier of the KV store (HeteroCache's, ../shared/docs/methods.md §1.4,
// §1.7): the full prompt K/V rows (post-RoPE, kv_type) and positions of the heads whose hot set is
// compressed, and a background I/O thread that gathers rows from it while the engine computes.
// Owned and driven by KvStore (a policy plans ColdOps; KvStore::apply carries them out).
//
// Storage: in host RAM (one K and one V buffer per (layer, head)), or, with a folder, in one file
// per layer (records appended with pwrite at prefill, rows read back with pread; the files are
// unlinked as soon as they are opened, so they vanish with the process). Positions ([n] int32 per
// head) always stay in RAM: 4 bytes per row against k_row_bytes + v_row_bytes of K and V.
//
// Threading: append() and clear() run on the engine's thread and must not overlap pending gathers
// (the owner waits for its tickets first); gather() is const and may run on the I/O thread.
// Errors (ENOSPC, EIO, short reads) are Status values returned by the call or by the ticket.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "heterokv/status.h"

namespace hkv {

struct ColdTierConfig {
    int32_t n_layer = 0;
    int32_t n_head_kv = 0;
    size_t k_row_bytes = 0;  // one K row as the cache stores it (quantized types: whole blocks)
    size_t v_row_bytes = 0;  // one V row
    std::string dir;       // "" = host RAM, else a folder for one file per layer
    // [n_layer * n_head_kv] each head's (K, V) row bytes (a cache with per-head types); empty =
    // k_row_bytes / v_row_bytes for every head.
    std::vector<std::pair<size_t, size_t>> head_row_bytes;
};

class ColdTier {
public:
    // kInvalidArgument for a bad shape; kIoError when a file cannot be created in dir.
    static Expected<std::unique_ptr<ColdTier>> create(const ColdTierConfig& cfg);
    ~ColdTier();  // stops the I/O thread (running jobs finish), closes the files
    ColdTier(const ColdTier&) = delete;
    ColdTier& operator=(const ColdTier&) = delete;

    bool on_disk() const { return !cfg_.dir.empty(); }
    // Appends n rows to head (il, ih). k: [n, k_row_bytes], v: [n, v_row_bytes] contiguous; pos: [n].
    Status append(int32_t il, int32_t ih, int32_t n, const void* k, const void* v, const int32_t* pos);
    int32_t rows(int32_t il, int32_t ih) const { return int32_t(head(il, ih).pos.size()); }
    // Rows idx[0..n) (each < rows(il, ih)) of head (il, ih) into k_out, v_out (as append) and
    // pos_out: [n]. Consecutive indices are read in one call per record.
    Status gather(int32_t il, int32_t ih, const int32_t* idx, int32_t n, void* k_out, void* v_out,
                  int32_t* pos_out) const;
    // The RAM tier's rows of head (il, ih), read in place (KvStore's refresh at the fence): k:
    // [rows, k_bytes], v: [rows, v_bytes], pos: [rows]. kInvalidArgument on a file tier or out of
    // range; kIoError under inject_gather_failure (as gather()).
    struct RamRows {
        const uint8_t* k = nullptr;
        const uint8_t* v = nullptr;
        const int32_t* pos = nullptr;
        size_t k_bytes = 0, v_bytes = 0;
        int32_t rows = 0;
    };
    Expected<RamRows> ram_rows(int32_t il, int32_t ih) const;
    // Forgets every row (a new sequence); the files are truncated.
    void clear();
    // Forgets, in every head, the rows from the first one at a position >= pos on (rows are
    // appended in position order). Not while gathers are pending.
    void drop_from(int32_t pos);
    // Bytes of K/V held (RAM or file) since the last clear().
    int64_t bytes_stored() const { return bytes_stored_; }

    // Runs job on the I/O thread, in submission order; the future yields its Status.
    std::future<Status> submit(std::function<Status()> job);

    // Test hook: every later gather() fails with kIoError (as a failing disk would).
    void inject_gather_failure(bool on) { fail_gathers_ = on; }

private:
    struct Extent {            // a record of rows [row0, row0 + n) of one head
        int32_t row0 = 0, n = 0;
        int32_t written = 0;   // rows the record was written with (n shrinks in drop_from)
        int64_t offset = 0;    // file: K rows at offset, V rows at offset + written * k_row_bytes
    };
    struct Head {
        std::vector<int32_t> pos;           // [rows]
        std::vector<uint8_t> k, v;          // RAM tier: [rows, k_row_bytes], [rows, v_row_bytes]
        std::vector<Extent> extents;        // file tier
    };
    explicit ColdTier(const ColdTierConfig& cfg);
    Head& head(int32_t il, int32_t ih) { return heads_[size_t(il) * size_t(cfg_.n_head_kv) + size_t(ih)]; }
    const Head& head(int32_t il, int32_t ih) const {
        return heads_[size_t(il) * size_t(cfg_.n_head_kv) + size_t(ih)];
    }
    // Head i's (K, V) row bytes (i = il * n_head_kv + ih).
    std::pair<size_t, size_t> row_bytes(size_t i) const {
        return cfg_.head_row_bytes.empty() ? std::pair<size_t, size_t>{cfg_.k_row_bytes, cfg_.v_row_bytes}
                                           : cfg_.head_row_bytes[i];
    }
    Status read_at(int32_t il, int64_t offset, size_t n, void* dst) const;
    void io_loop();

    ColdTierConfig cfg_;
    std::vector<Head> heads_;     // [n_layer * n_head_kv]
    std::vector<int> fds_;        // [n_layer] file tier
    std::vector<int64_t> ends_;   // [n_layer] bytes written to each file
    int64_t bytes_stored_ = 0;
    std::atomic<bool> fail_gathers_{false};

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::packaged_task<Status()>> jobs_;
    bool stop_ = false;
    std::thread io_;
};

}  // namespace hkv
