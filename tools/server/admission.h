// server/admission.h — bounded admission of requests: a fixed number of slots (sequences computed
// at once), a bounded FIFO queue, and a KV memory budget shared by the running requests.
//
// A request asks for `bytes` of KV cache (its estimate, generate.h). acquire() grants a Lease when
// a slot is free and the bytes fit in what the running requests leave of the budget, in arrival
// order (a large request at the head of the queue is not overtaken). Errors:
//   kOutOfRange   bytes > the whole budget: it can never fit (HTTP 400)
//   kOutOfMemory  the queue is full, or the wait exceeded the timeout, or shutdown (HTTP 503)
// Kept contexts (prompt reuse): a lease may keep() the bytes of the context its slot holds after the
// request; they stay counted against the budget while the slot is idle, until a request acquires
// that slot (its reservation then covers them) or the room is needed: then the kept context of an
// idle slot is dropped (the drop_kept callback frees it, under the admission's lock) before any
// request waits for bytes that only kept contexts hold.
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "heterokv/status.h"

namespace hkv::server {

struct AdmissionConfig {
    int32_t n_slots = 1;
    int32_t max_queue = 8;        // requests waiting beyond the running ones
    int64_t budget_bytes = 0;     // KV bytes for all running requests; 0 = unlimited
};

class Admission;

// A granted slot and its KV reservation; released when destroyed. Move-only.
class Lease {
public:
    Lease() = default;
    Lease(Lease&& o) noexcept { *this = std::move(o); }
    Lease& operator=(Lease&& o) noexcept;
    ~Lease() { release(); }
    void release();
    // The slot keeps a context of `bytes` (at most bytes()) when the lease is released.
    void keep(int64_t bytes) { kept_ = bytes; }
    int32_t slot() const { return slot_; }
    int64_t bytes() const { return bytes_; }
    bool valid() const { return owner_ != nullptr; }

private:
    friend class Admission;
    Admission* owner_ = nullptr;
    int32_t slot_ = -1;
    int64_t bytes_ = 0;
    int64_t kept_ = 0;
};

class Admission {
public:
    explicit Admission(const AdmissionConfig& cfg);
    // prefer: the slot to take when it is free (the one holding the request's longest cached
    // prefix); otherwise a free slot with no kept context, else the free slot released longest ago
    // (so the conversations still going keep their contexts).
    Expected<Lease> acquire(int64_t bytes, std::chrono::milliseconds timeout, int32_t prefer = -1);
    // Slot actions (save, restore, erase a slot's kept context): slot `slot` now, without waiting,
    // with a reservation of `bytes` (-1: the bytes the slot keeps, which the lease then covers).
    // Errors:
    //   kInvalidArgument  no such slot
    //   kCancelled        the slot is running a request (HTTP 409)
    //   kOutOfMemory      shutting down, or the bytes do not fit the budget (HTTP 503)
    Expected<Lease> acquire_slot(int32_t slot, int64_t bytes);
    // Called (under the admission's lock: it must not call back into Admission) when the kept
    // context of idle slot s must be freed to make room.
    void set_drop_kept(std::function<void(int32_t slot)> fn) { drop_kept_ = std::move(fn); }
    // Wakes every waiter with kOutOfMemory; later acquire() calls fail at once.
    void shutdown();

    struct Stats {
        int32_t active = 0;
        int32_t queued = 0;
        int64_t reserved_bytes = 0;  // running requests' reservations
        int64_t kept_bytes = 0;      // contexts idle slots keep
    };
    Stats stats() const;
    const AdmissionConfig& config() const { return cfg_; }

private:
    friend class Lease;
    void release(int32_t slot, int64_t bytes, int64_t kept);
    // Under mu_: the free slot a request would take (-1: none).
    int32_t pick(int32_t prefer) const;
    // Under mu_: grants free slot `slot` with `bytes` reserved.
    Lease grant(int32_t slot, int64_t bytes);
    // Under mu_: whether `bytes` fit on `slot` once idle slots' kept contexts are dropped as needed
    // (then drops them).
    bool make_room(int32_t slot, int64_t bytes);
    AdmissionConfig cfg_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<bool> busy_;       // [n_slots]
    std::deque<uint64_t> queue_;   // tickets in arrival order
    uint64_t next_ticket_ = 0;
    int32_t active_ = 0;
    int64_t reserved_ = 0;
    std::vector<int64_t> kept_;    // [n_slots] bytes kept by idle slots
    std::vector<uint64_t> released_;  // [n_slots] release count at the slot's last release (LRU)
    uint64_t n_released_ = 0;
    int64_t kept_total_ = 0;
    std::function<void(int32_t)> drop_kept_;
    bool shutdown_ = false;
};

}  // namespace hkv::server
