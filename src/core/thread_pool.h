// core/thread_pool.h — a small fork-join pool with low per-op overhead.
//
// run(fn) executes fn(ith, nth) on every thread of the pool (the calling thread is ith = 0) and
// returns when all have finished (the caller runs the shares of workers that have not started by the
// time it is done with its own, so fn must not rely on ith mapping to an OS thread). Workers spin on an atomic generation counter for a few
// milliseconds after each op before sleeping on a condition variable, so back-to-back ops (one per
// matmul during decode) cost about a microsecond and take no lock. An idle pool sleeps.
// Not reentrant: run() must not be called from inside fn. One pool is owned by one engine; calls
// from several threads at once are not supported.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace hkv {

class ThreadPool {
public:
    // n_threads >= 1 total, including the caller. n_threads <= 0 means hardware_concurrency().
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int n_threads() const { return n_threads_; }

    using TaskFn = void (*)(void* ctx, int ith, int nth);
    void run(TaskFn fn, void* ctx);

    // fn(ith, nth) on every thread; F is any callable. The lambda is referenced, not copied.
    template <typename F>
    void run(F&& f) {
        auto tramp = [](void* ctx, int ith, int nth) { (*static_cast<std::remove_reference_t<F>*>(ctx))(ith, nth); };
        run(+tramp, const_cast<void*>(static_cast<const void*>(&f)));
    }

    // Splits [0, n) into contiguous chunks, one per thread: fn(begin, end, ith).
    template <typename F>
    void parallel_for(int64_t n, F&& f) {
        if (n <= 0) return;
        if (n_threads_ == 1 || n == 1) { f(int64_t(0), n, 0); return; }
        run([&](int ith, int nth) {
            const int64_t per = (n + nth - 1) / nth;
            const int64_t b = std::min<int64_t>(n, per * ith), e = std::min<int64_t>(n, b + per);
            if (b < e) f(b, e, ith);
        });
    }

    // fn(i, ith) for every i in [0, n), each thread claiming the next unclaimed item (items of uneven
    // cost do not idle a thread); which thread runs an item never changes what it computes.
    template <typename F>
    void for_each(int64_t n, F&& f) {
        if (n <= 0) return;
        if (n_threads_ == 1 || n == 1) {
            for (int64_t i = 0; i < n; ++i) f(i, 0);
            return;
        }
        std::atomic<int64_t> next{0};
        run([&](int ith, int) {
            for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) f(i, ith);
        });
    }

private:
    void worker_main(int ith);
    int claim(uint64_t seq);

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> n_done_{0};       // shares 1 .. n-1 finished by workers in the current op
    std::atomic<uint64_t> claim_{0};   // op sequence << 32 | next unclaimed share
    uint64_t seq_ = 0;                 // ops started (caller thread only)
    std::atomic<int> sleepers_{0};  // workers waiting on cv_
    std::atomic<bool> stop_{false};
    std::atomic<TaskFn> fn_{nullptr};  // published by the generation_ increment
    std::atomic<void*> ctx_{nullptr};
};

}  // namespace hkv
