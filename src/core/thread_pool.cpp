// core/thread_pool.cpp — fork-join pool: lock-free publish, bounded spin, then sleep.
//
// run() publishes (fn, ctx) and bumps generation_; idle workers spin on generation_ for up to
// kSpinNs before sleeping on cv_. The shares ith = 1 .. n-1 are claimed through claim_ (op sequence
// in the high 32 bits, next ith in the low 32) by whichever thread gets there first: the caller,
// once done with share 0, takes the shares of workers that have not started yet, so a worker the
// OS has descheduled (2 cores shared with other jobs) costs nothing instead of a scheduling period. Back-to-back ops (a decode step is ~8 per layer) therefore never
// touch the mutex: a worker that is spinning sees the new generation within a few hundred cycles.
// The mutex and cv are used only when some worker is asleep (sleepers_ > 0). The store of
// generation_ and the load of sleepers_ in run(), and the increment of sleepers_ and the load of
// generation_ under the mutex in the worker, are all seq_cst: either run() sees the sleeper and
// notifies under the mutex, or the sleeper sees the new generation before waiting.
#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace hkv {
namespace {
inline void cpu_relax() {
#if defined(__x86_64__)
    _mm_pause();
#endif
}
// Spin this long for the next op before sleeping: covers the serial gaps of a decode step
// (sampling a 128K vocabulary included) without burning a core when the pool is really idle.
constexpr int64_t kSpinNs = 1'000'000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
    n_threads_ = n_threads;
    workers_.reserve(size_t(n_threads - 1));
    for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
}

// Claims the next share of op `seq`; -1 when that op has none left (or is over).
int ThreadPool::claim(uint64_t seq) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    for (;;) {
        if ((v >> 32) != seq || int(v & 0xffffffffu) >= n_threads_) return -1;
        if (claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return int(v & 0xffffffffu);
    }
}

void ThreadPool::run(TaskFn fn, void* ctx) {
    if (n_threads_ == 1) { fn(ctx, 0, 1); return; }
    const uint64_t seq = ++seq_;
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    n_done_.store(0, std::memory_order_relaxed);
    claim_.store(seq << 32 | 1u, std::memory_order_release);
    generation_.fetch_add(1);  // seq_cst: publishes fn_/ctx_/claim_
    if (sleepers_.load() > 0) {
        { std::lock_guard<std::mutex> lock(mu_); }
        cv_.notify_all();
    }
    fn(ctx, 0, n_threads_);
    int done_here = 0;
    for (int ith; (ith = claim(seq)) >= 0; ++done_here) fn(ctx, ith, n_threads_);
    const int n_other = n_threads_ - 1 - done_here;
    while (n_done_.load(std::memory_order_acquire) != n_other) cpu_relax();
}

void ThreadPool::worker_main(int) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = generation_.load(std::memory_order_acquire);
        if (gen == seen) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int spin = 1; gen == seen; ++spin) {
                cpu_relax();
                gen = generation_.load(std::memory_order_acquire);
                if (spin % 1024 == 0 && std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::steady_clock::now() - t0)
                                                .count() > kSpinNs)
                    break;
            }
        }
        if (gen == seen) {
            std::unique_lock<std::mutex> lock(mu_);
            sleepers_.fetch_add(1);
            cv_.wait(lock, [&] { return generation_.load() != seen; });
            sleepers_.fetch_sub(1);
            gen = generation_.load();
        }
        seen = gen;
        if (stop_.load()) return;
        // The op this generation announced, or a later one: claim() only hands out shares of the
        // op in claim_, and fn_/ctx_ stay that op's until all its shares are done.
        const uint64_t seq = claim_.load(std::memory_order_acquire) >> 32;
        for (int ith; (ith = claim(seq)) >= 0;) {
            fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), ith, n_threads_);
            n_done_.fetch_add(1, std::memory_order_acq_rel);
        }
    }
}

}  // namespace hkv
