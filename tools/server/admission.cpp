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
        kept_ = o.kept_;
        o.owner_ = nullptr;
    }
    return *this;
}

void Lease::release() {
    if (owner_ != nullptr) owner_->release(slot_, bytes_, std::clamp<int64_t>(kept_, 0, bytes_));
    owner_ = nullptr;
}

Admission::Admission(const AdmissionConfig& cfg) : cfg_(cfg) {
    cfg_.n_slots = std::max(1, cfg_.n_slots);
    cfg_.max_queue = std::max(0, cfg_.max_queue);
    busy_.assign(size_t(cfg_.n_slots), false);
    kept_.assign(size_t(cfg_.n_slots), 0);
    released_.assign(size_t(cfg_.n_slots), 0);
}

int32_t Admission::pick(int32_t prefer) const {
    if (prefer >= 0 && prefer < cfg_.n_slots && !busy_[size_t(prefer)]) return prefer;
    int32_t best = -1;
    for (int32_t i = 0; i < cfg_.n_slots; ++i) {
        if (busy_[size_t(i)]) continue;
        if (kept_[size_t(i)] == 0) return i;
        if (best < 0 || released_[size_t(i)] < released_[size_t(best)]) best = i;
    }
    return best;
}

bool Admission::make_room(int32_t slot, int64_t bytes) {
    if (cfg_.budget_bytes == 0) return true;
    if (reserved_ + bytes > cfg_.budget_bytes) return false;  // running requests hold the rest
    for (int32_t i = 0; i < cfg_.n_slots && reserved_ + kept_total_ - kept_[size_t(slot)] + bytes > cfg_.budget_bytes;
         ++i) {
        if (i == slot || busy_[size_t(i)] || kept_[size_t(i)] == 0) continue;
        if (drop_kept_) drop_kept_(i);
        kept_total_ -= kept_[size_t(i)];
        kept_[size_t(i)] = 0;
    }
    return true;
}

Expected<Lease> Admission::acquire(int64_t bytes, std::chrono::milliseconds timeout, int32_t prefer) {
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
    int32_t slot = -1;
    auto ready = [&] {
        if (shutdown_) return true;
        if (queue_.front() != ticket || active_ >= cfg_.n_slots) return false;
        slot = pick(prefer);
        return slot >= 0 && make_room(slot, bytes);
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
    Lease lease = grant(slot, bytes);
    cv_.notify_all();  // the next ticket may fit too
    return lease;
}

Lease Admission::grant(int32_t slot, int64_t bytes) {
    Lease lease;
    lease.owner_ = this;
    lease.bytes_ = bytes;
    lease.slot_ = slot;
    busy_[size_t(slot)] = true;
    kept_total_ -= kept_[size_t(slot)];  // the request's reservation covers the slot's context now
    kept_[size_t(slot)] = 0;
    ++active_;
    reserved_ += bytes;
    return lease;
}

Expected<Lease> Admission::acquire_slot(int32_t slot, int64_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    if (slot < 0 || slot >= cfg_.n_slots) {
        return Status::invalid("no slot %d (the server has %d: --parallel)", slot, cfg_.n_slots);
    }
    if (shutdown_) return Status::out_of_memory("the server is shutting down");
    if (busy_[size_t(slot)]) return Status(StatusCode::kCancelled, "slot " + std::to_string(slot) + " is busy");
    if (bytes < 0) bytes = kept_[size_t(slot)];
    if (!make_room(slot, bytes)) {
        return Status::out_of_memory("%.2f MiB of KV cache do not fit the server's budget now; retry later",
                                     double(bytes) / 1048576.0);
    }
    return grant(slot, bytes);
}

void Admission::release(int32_t slot, int64_t bytes, int64_t kept) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (slot >= 0) {
            busy_[size_t(slot)] = false;
            kept_[size_t(slot)] = kept;
            kept_total_ += kept;
            released_[size_t(slot)] = ++n_released_;
        }
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
    return Stats{active_, int32_t(queue_.size()), reserved_, kept_total_};
}

}  // namespace hkv::server
