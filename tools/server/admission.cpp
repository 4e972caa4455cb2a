// server/admission.cpp — slots, FIFO queue and KV budget (see admission.h).
#include "server/admission.h"

#include <algorithm>

namespace hkv::server {

Lease& Lease::operator=(Lease&& o) noexcept {
    if (this != &o) {
        release();
        owner_ = o.owner_;
        slot_ = o.slot_;
        bytes_ = o.bytes_;
        o.owner_ = nullptr;
    }
    return *this;
}

void Lease::release() {
    if (owner_ != nullptr) owner_->release(slot_, bytes_);
    owner_ = nullptr;
}

Admission::Admission(const AdmissionConfig& cfg) : cfg_(cfg) {
    cfg_.n_slots = std::max(1, cfg_.n_slots);
    cfg_.max_queue = std::max(0, cfg_.max_queue);
    busy_.assign(size_t(cfg_.n_slots), false);
}

Expected<Lease> Admission::acquire(int64_t bytes, std::chrono::milliseconds timeout) {
    if (cfg_.budget_bytes > 0 && bytes > cfg_.budget_bytes) {
        return Status::out_of_range("the request needs %.2f MiB of KV cache; the server's whole budget is %.2f MiB",
                                    double(bytes) / 1048576.0, double(cfg_.budget_bytes) / 1048576.0);
    }
    std::unique_lock<std::mutex> lk(mu_);
    if (shutdown_) return Status::out_of_memory("the server is shutting down");
    const int32_t waiting = int32_t(queue_.size());
    const bool can_run_now = waiting == 0 && active_ < cfg_.n_slots &&
                             (cfg_.budget_bytes == 0 || reserved_ + bytes <= cfg_.budget_bytes);
    if (!can_run_now && waiting >= cfg_.max_queue) {
        return Status::out_of_memory("server busy: %d requests running and %d queued (the queue limit); retry later",
                                     active_, waiting);
    }
    const uint64_t ticket = next_ticket_++;
    queue_.push_back(ticket);
    auto ready = [&] {
        return shutdown_ || (queue_.front() == ticket && active_ < cfg_.n_slots &&
                             (cfg_.budget_bytes == 0 || reserved_ + bytes <= cfg_.budget_bytes));
    };
    const bool ok = cv_.wait_for(lk, timeout, ready);
    if (!ok || shutdown_) {
        queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
        cv_.notify_all();  // the next in line may be ready now
        if (shutdown_) return Status::out_of_memory("the server is shutting down");
        return Status::out_of_memory("server busy: waited %lld ms in the queue; retry later",
                                     (long long)timeout.count());
    }
    queue_.pop_front();
    Lease lease;
    lease.owner_ = this;
    lease.bytes_ = bytes;
    for (int32_t i = 0; i < cfg_.n_slots; ++i) {
        if (!busy_[size_t(i)]) {
            busy_[size_t(i)] = true;
            lease.slot_ = i;
            break;
        }
    }
    ++active_;
    reserved_ += bytes;
    cv_.notify_all();  // the next ticket may fit too
    return lease;
}

void Admission::release(int32_t slot, int64_t bytes) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (slot >= 0) busy_[size_t(slot)] = false;
        --active_;
        reserved_ -= bytes;
    }
    cv_.notify_all();
}

void Admission::shutdown() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        shutdown_ = true;
    }
    cv_.notify_all();
}

Admission::Stats Admission::stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return Stats{active_, int32_t(queue_.size()), reserved_};
}

}  // namespace hkv::server
