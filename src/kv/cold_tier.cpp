// kv/cold_tier.cpp — see cold_tier.h.
#include "kv/cold_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace hkv {

ColdTier::ColdTier(const ColdTierConfig& cfg) : cfg_(cfg) {}

Expected<std::unique_ptr<ColdTier>> ColdTier::create(const ColdTierConfig& cfg) {
    const bool per_head = !cfg.head_row_bytes.empty();
    bool rows_ok = per_head || (cfg.k_row_bytes > 0 && cfg.v_row_bytes > 0);
    for (const auto& [kb, vb] : cfg.head_row_bytes) rows_ok = rows_ok && kb > 0 && vb > 0;
    if (cfg.n_layer <= 0 || cfg.n_head_kv <= 0 || !rows_ok ||
        (per_head && cfg.head_row_bytes.size() != size_t(cfg.n_layer) * size_t(cfg.n_head_kv))) {
        return Status::invalid("cold tier: bad shape (%d layers, %d heads, %zu-byte K / %zu-byte V rows, %zu per-head "
                               "row sizes)",
                               cfg.n_layer, cfg.n_head_kv, cfg.k_row_bytes, cfg.v_row_bytes, cfg.head_row_bytes.size());
    }
    std::unique_ptr<ColdTier> t(new ColdTier(cfg));
    t->heads_.resize(size_t(cfg.n_layer) * size_t(cfg.n_head_kv));
    if (!cfg.dir.empty()) {
        t->fds_.assign(size_t(cfg.n_layer), -1);
        t->ends_.assign(size_t(cfg.n_layer), 0);
        for (int32_t il = 0; il < cfg.n_layer; ++il) {
            std::string tmpl = cfg.dir + "/hkv-cold-" + std::to_string(::getpid()) + "-L" + std::to_string(il) + "-XXXXXX";
            std::vector<char> name(tmpl.begin(), tmpl.end());
            name.push_back('\0');
            const int fd = ::mkstemp(name.data());
            if (fd < 0) {
                const int e = errno;
                for (int f : t->fds_) if (f >= 0) ::close(f);
                t->fds_.clear();
                return Status::io_error("cold tier: cannot create a file in --kv-cold-dir %s: %s", cfg.dir.c_str(),
                                        std::strerror(e));
            }
            ::unlink(name.data());  // the file lives while the descriptor is open
            t->fds_[size_t(il)] = fd;
        }
    }
    t->io_ = std::thread([p = t.get()] { p->io_loop(); });
    return t;
}

ColdTier::~ColdTier() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (io_.joinable()) io_.join();
    for (int fd : fds_) if (fd >= 0) ::close(fd);
}

void ColdTier::io_loop() {
    for (;;) {
        std::packaged_task<Status()> job;
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stop_ and drained
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job();
    }
}

std::future<Status> ColdTier::submit(std::function<Status()> job) {
    std::packaged_task<Status()> task([j = std::move(job)] {
        try {
            return j();
        } catch (const std::bad_alloc&) {
            return Status::out_of_memory("cold tier: out of memory in a gather");
        }
    });
    std::future<Status> f = task.get_future();
    {
        std::lock_guard<std::mutex> lk(mu_);
        jobs_.push_back(std::move(task));
    }
    cv_.notify_one();
    return f;
}

Status ColdTier::append(int32_t il, int32_t ih, int32_t n, const void* k, const void* v, const int32_t* pos) {
    if (il < 0 || il >= cfg_.n_layer || ih < 0 || ih >= cfg_.n_head_kv || n < 0) {
        return Status::invalid("cold tier: append of %d rows to layer %d head %d out of range", n, il, ih);
    }
    if (n == 0) return Status();
    Head& h = head(il, ih);
    const auto [kb, vb] = row_bytes(size_t(il) * size_t(cfg_.n_head_kv) + size_t(ih));
    const size_t k_bytes = size_t(n) * kb, v_bytes = size_t(n) * vb;
    try {
        if (!on_disk()) {
            h.k.insert(h.k.end(), static_cast<const uint8_t*>(k), static_cast<const uint8_t*>(k) + k_bytes);
            h.v.insert(h.v.end(), static_cast<const uint8_t*>(v), static_cast<const uint8_t*>(v) + v_bytes);
        } else {
            const int fd = fds_[size_t(il)];
            const int64_t off = ends_[size_t(il)];
            const void* bufs[2] = {k, v};
            const size_t sizes[2] = {k_bytes, v_bytes};
            for (int part = 0; part < 2; ++part) {
                const auto* p = static_cast<const uint8_t*>(bufs[part]);
                const size_t bytes = sizes[part];
                const int64_t at = off + (part == 1 ? int64_t(k_bytes) : 0);
                size_t done = 0;
                while (done < bytes) {
                    const ssize_t w = ::pwrite(fd, p + done, bytes - done, at + int64_t(done));
                    if (w < 0 && errno == EINTR) continue;
                    if (w <= 0) {
                        return Status::io_error("cold tier: writing %zu bytes to --kv-cold-dir %s failed: %s", bytes,
                                                cfg_.dir.c_str(), w < 0 ? std::strerror(errno) : "no progress");
                    }
                    done += size_t(w);
                }
            }
            h.extents.push_back(Extent{int32_t(h.pos.size()), n, n, off});
            ends_[size_t(il)] = off + int64_t(k_bytes + v_bytes);
        }
        h.pos.insert(h.pos.end(), pos, pos + n);
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("cold tier: no memory for %d rows of layer %d head %d", n, il, ih);
    }
    bytes_stored_ += int64_t(k_bytes + v_bytes);
    return Status();
}

Status ColdTier::read_at(int32_t il, int64_t offset, size_t n, void* dst) const {
    auto* p = static_cast<uint8_t*>(dst);
    size_t done = 0;
    while (done < n) {
        const ssize_t r = ::pread(fds_[size_t(il)], p + done, n - done, offset + int64_t(done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            return Status::io_error("cold tier: reading %zu bytes of layer %d from --kv-cold-dir %s failed: %s", n, il,
                                    cfg_.dir.c_str(), r < 0 ? std::strerror(errno) : "unexpected end of file");
        }
        done += size_t(r);
    }
    return Status();
}

Expected<ColdTier::RamRows> ColdTier::ram_rows(int32_t il, int32_t ih) const {
    if (fail_gathers_) return Status::io_error("cold tier: injected read failure (layer %d head %d)", il, ih);
    if (on_disk()) return Status::invalid("cold tier: rows of layer %d head %d are in a file, not in RAM", il, ih);
    if (il < 0 || il >= cfg_.n_layer || ih < 0 || ih >= cfg_.n_head_kv) {
        return Status::invalid("cold tier: rows of layer %d head %d out of range", il, ih);
    }
    const Head& h = head(il, ih);
    const auto [kb, vb] = row_bytes(size_t(il) * size_t(cfg_.n_head_kv) + size_t(ih));
    return RamRows{h.k.data(), h.v.data(), h.pos.data(), kb, vb, int32_t(h.pos.size())};
}

Status ColdTier::gather(int32_t il, int32_t ih, const int32_t* idx, int32_t n, void* k_out, void* v_out,
                        int32_t* pos_out) const {
    if (fail_gathers_) return Status::io_error("cold tier: injected read failure (layer %d head %d)", il, ih);
    if (il < 0 || il >= cfg_.n_layer || ih < 0 || ih >= cfg_.n_head_kv) {
        return Status::invalid("cold tier: gather from layer %d head %d out of range", il, ih);
    }
    const Head& h = head(il, ih);
    const int32_t rows = int32_t(h.pos.size());
    const auto [kb, vb] = row_bytes(size_t(il) * size_t(cfg_.n_head_kv) + size_t(ih));
    auto* ko = static_cast<uint8_t*>(k_out);
    auto* vo = static_cast<uint8_t*>(v_out);
    for (int32_t i = 0; i < n;) {
        const int32_t r = idx[i];
        if (r < 0 || r >= rows) {
            return Status::invalid("cold tier: row %d of layer %d head %d (holds %d)", r, il, ih, rows);
        }
        if (!on_disk()) {
            std::memcpy(ko + size_t(i) * kb, h.k.data() + size_t(r) * kb, kb);
            std::memcpy(vo + size_t(i) * vb, h.v.data() + size_t(r) * vb, vb);
            pos_out[i] = h.pos[size_t(r)];
            ++i;
            continue;
        }
        // the record holding row r, and the run of consecutive indices inside it
        auto it = std::upper_bound(h.extents.begin(), h.extents.end(), r,
                                   [](int32_t x, const Extent& e) { return x < e.row0; });
        const Extent& e = *(it - 1);
        int32_t m = 1;
        while (i + m < n && idx[i + m] == r + m && r + m < e.row0 + e.n) ++m;
        const int64_t k_at = e.offset + int64_t(r - e.row0) * int64_t(kb);
        const int64_t v_at = e.offset + int64_t(e.written) * int64_t(kb) + int64_t(r - e.row0) * int64_t(vb);
        HKV_TRY(read_at(il, k_at, size_t(m) * kb, ko + size_t(i) * kb));
        HKV_TRY(read_at(il, v_at, size_t(m) * vb, vo + size_t(i) * vb));
        for (int32_t j = 0; j < m; ++j) pos_out[i + j] = h.pos[size_t(r + j)];
        i += m;
    }
    return Status();
}

void ColdTier::drop_from(int32_t pos) {
    if (pos <= 0) {
        clear();
        return;
    }
    for (size_t hi = 0; hi < heads_.size(); ++hi) {
        Head& h = heads_[hi];
        const auto [kb, vb] = row_bytes(hi);
        const int32_t keep = int32_t(std::lower_bound(h.pos.begin(), h.pos.end(), pos) - h.pos.begin());
        const int32_t rows = int32_t(h.pos.size());
        if (keep == rows) continue;
        bytes_stored_ -= int64_t(rows - keep) * int64_t(kb + vb);
        h.pos.resize(size_t(keep));
        if (!on_disk()) {
            h.k.resize(size_t(keep) * kb);
            h.v.resize(size_t(keep) * vb);
            continue;
        }
        // records past the cut are forgotten (their bytes stay as dead space in the unlinked file)
        while (!h.extents.empty() && h.extents.back().row0 >= keep) h.extents.pop_back();
        if (!h.extents.empty()) {
            Extent& e = h.extents.back();
            e.n = std::min(e.n, keep - e.row0);
        }
    }
}

void ColdTier::clear() {
    for (Head& h : heads_) {
        h = Head();
    }
    for (size_t il = 0; il < fds_.size(); ++il) {
        if (ends_[il] > 0 && ::ftruncate(fds_[il], 0) != 0) {
            // a failed truncate only leaves dead bytes in an unlinked file; later writes start at 0 anyway
        }
        ends_[il] = 0;
    }
    bytes_stored_ = 0;
}

}  // namespace hkv
