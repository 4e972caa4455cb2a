// server/metrics.h — counters for GET /metrics in the Prometheus text format (version 0.0.4).
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace hkv::server {

// Point-in-time values the server reads when /metrics is requested.
struct MetricsGauges {
    int32_t slots_total = 0;
    int32_t slots_active = 0;
    int32_t queued = 0;
    int64_t kv_budget_bytes = 0;    // 0 = unlimited
    int64_t kv_reserved_bytes = 0;  // sum of running requests' estimates
    int64_t rss_bytes = 0;          // process resident set
    int64_t kv_kept_bytes = 0;      // contexts idle slots keep for prompt reuse (counted in the budget)
};

class Metrics {
public:
    // One finished HTTP request on `path` with its status and wall time.
    void on_request(const std::string& path, int status, double seconds);
    void add_tokens(int64_t n_prompt, int64_t n_gen);
    // KV bytes in use by running generations: each adds its change.
    void add_kv_in_use(int64_t delta) { kv_in_use_ += delta; }
    int64_t kv_in_use() const { return kv_in_use_.load(); }
    std::string render(const MetricsGauges& g) const;

    static constexpr std::array<double, 10> kBuckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, int64_t> requests_;  // (path, status) -> count
    std::array<int64_t, kBuckets.size()> latency_le_{};        // cumulative per bucket
    int64_t latency_count_ = 0;
    double latency_sum_ = 0.0;
    int64_t tokens_prompt_ = 0, tokens_gen_ = 0;
    std::atomic<int64_t> kv_in_use_{0};
};

}  // namespace hkv::server
