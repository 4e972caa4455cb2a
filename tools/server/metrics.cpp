// server/metrics.cpp — Prometheus text rendering (see metrics.h).
#include "server/metrics.h"

#include <cstdarg>
#include <cstdio>

namespace hkv::server {
namespace {

void line(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void line(std::string* out, const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    *out += buf;
    *out += '\n';
}

void header(std::string* out, const char* name, const char* type, const char* help) {
    line(out, "# HELP %s %s", name, help);
    line(out, "# TYPE %s %s", name, type);
}

}  // namespace

void Metrics::on_request(const std::string& path, int status, double seconds) {
    std::lock_guard<std::mutex> lk(mu_);
    ++requests_[{path, status}];
    for (size_t i = 0; i < kBuckets.size(); ++i) {
        if (seconds <= kBuckets[i]) ++latency_le_[i];
    }
    ++latency_count_;
    latency_sum_ += seconds;
}

void Metrics::add_tokens(int64_t n_prompt, int64_t n_gen) {
    std::lock_guard<std::mutex> lk(mu_);
    tokens_prompt_ += n_prompt;
    tokens_gen_ += n_gen;
}

std::string Metrics::render(const MetricsGauges& g) const {
    std::string out;
    std::lock_guard<std::mutex> lk(mu_);
    header(&out, "heterokv_requests_total", "counter", "HTTP requests by path and status code");
    for (const auto& [key, n] : requests_) {
        line(&out, "heterokv_requests_total{path=\"%s\",status=\"%d\"} %lld", key.first.c_str(), key.second,
             (long long)n);
    }
    header(&out, "heterokv_request_duration_seconds", "histogram", "HTTP request wall time");
    for (size_t i = 0; i < kBuckets.size(); ++i) {
        line(&out, "heterokv_request_duration_seconds_bucket{le=\"%g\"} %lld", kBuckets[i], (long long)latency_le_[i]);
    }
    line(&out, "heterokv_request_duration_seconds_bucket{le=\"+Inf\"} %lld", (long long)latency_count_);
    line(&out, "heterokv_request_duration_seconds_sum %.6f", latency_sum_);
    line(&out, "heterokv_request_duration_seconds_count %lld", (long long)latency_count_);
    header(&out, "heterokv_prompt_tokens_total", "counter", "prompt tokens prefilled");
    line(&out, "heterokv_prompt_tokens_total %lld", (long long)tokens_prompt_);
    header(&out, "heterokv_generated_tokens_total", "counter", "tokens generated");
    line(&out, "heterokv_generated_tokens_total %lld", (long long)tokens_gen_);
    header(&out, "heterokv_kv_bytes_in_use", "gauge", "KV cache bytes held by running requests");
    line(&out, "heterokv_kv_bytes_in_use %lld", (long long)kv_in_use_.load());
    header(&out, "heterokv_kv_bytes_reserved", "gauge", "KV cache bytes reserved by admission for running requests");
    line(&out, "heterokv_kv_bytes_reserved %lld", (long long)g.kv_reserved_bytes);
    header(&out, "heterokv_kv_bytes_kept", "gauge", "KV cache bytes idle slots keep for prompt reuse");
    line(&out, "heterokv_kv_bytes_kept %lld", (long long)g.kv_kept_bytes);
    header(&out, "heterokv_kv_bytes_budget", "gauge", "KV cache budget (--kv-budget-mb); 0 = unlimited");
    line(&out, "heterokv_kv_bytes_budget %lld", (long long)g.kv_budget_bytes);
    header(&out, "heterokv_slots", "gauge", "generation slots (--parallel)");
    line(&out, "heterokv_slots %d", g.slots_total);
    header(&out, "heterokv_slots_active", "gauge", "slots running a request");
    line(&out, "heterokv_slots_active %d", g.slots_active);
    header(&out, "heterokv_queue_length", "gauge", "requests waiting for a slot or KV memory");
    line(&out, "heterokv_queue_length %d", g.queued);
    header(&out, "heterokv_resident_memory_bytes", "gauge", "process resident set size");
    line(&out, "heterokv_resident_memory_bytes %lld", (long long)g.rss_bytes);
    return out;
}

}  // namespace hkv::server
