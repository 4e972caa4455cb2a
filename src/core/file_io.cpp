// core/file_io.cpp — bounded reads and atomic writes of user-named files (heterokv/file_io.h).
#include "heterokv/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <new>

namespace hkv {
namespace {

std::string label(const std::string& path, const std::string& what) {
    return what.empty() ? path : what + " " + path;
}

const char* kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

Status not_regular(const std::string& path, const std::string& what, mode_t m) {
    return Status::invalid("%s: not a regular file (%s)", label(path, what).c_str(), kind_of(m));
}

Status stat_error(const std::string& path, const std::string& what, int err) {
    if (err == ENOENT || err == ENOTDIR) return Status::not_found("%s: no such file", label(path, what).c_str());
    return Status::io_error("%s: %s", label(path, what).c_str(), std::strerror(err));
}

}  // namespace

Expected<int> file_open_read(const std::string& path, uint64_t* size, const std::string& what) {
    // stat first: a FIFO or a device is refused without being opened (an open can block or have
    // side effects); then open without blocking and check the descriptor itself (the path may
    // have been replaced in between).
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) return stat_error(path, what, errno);
    if (!S_ISREG(sb.st_mode)) return not_regular(path, what, sb.st_mode);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return stat_error(path, what, errno);
    if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        const int err = errno;
        ::close(fd);
        return S_ISREG(sb.st_mode) ? stat_error(path, what, err) : not_regular(path, what, sb.st_mode);
    }
    // Regular files ignore O_NONBLOCK for reads, but clear it so the descriptor behaves normally.
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *size = uint64_t(sb.st_size);
    return fd;
}

Expected<std::string> file_read(const std::string& path, size_t max_bytes, const std::string& what) {
    uint64_t size = 0;
    HKV_ASSIGN_OR_RETURN(int fd, file_open_read(path, &size, what));
    auto too_large = [&](uint64_t n) {
        return Status::invalid("%s: %llu bytes or more is larger than the limit of %zu bytes",
                               label(path, what).c_str(), (unsigned long long)n, max_bytes);
    };
    if (size > max_bytes) {
        ::close(fd);
        return too_large(size);
    }
    std::string out;
    try {
        out.resize(size_t(size));
        size_t got = 0;
        // Read until EOF; the file may have grown since fstat, so one byte past the limit is
        // the most that is ever asked for.
        for (;;) {
            if (got == out.size()) {
                if (got > max_bytes) break;
                out.resize(std::min(max_bytes + 1, std::max<size_t>(got * 2, got + 4096)));
            }
            const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int err = errno;
                ::close(fd);
                return Status::io_error("%s: read failed: %s", label(path, what).c_str(), std::strerror(err));
            }
            if (n == 0) break;
            got += size_t(n);
        }
        ::close(fd);
        if (got > max_bytes) return too_large(got);
        out.resize(got);
        return out;
    } catch (const std::bad_alloc&) {
        ::close(fd);
        return Status::out_of_memory("%s: out of memory reading %llu bytes", label(path, what).c_str(),
                                     (unsigned long long)size);
    }
}

Status file_check_output(const std::string& path, const std::string& what) {
    if (path.empty()) return Status::invalid("%s: empty output path", what.empty() ? "output" : what.c_str());
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) {
        const int err = errno;
        if (err == ENOENT) return Status();  // absent (or a dangling link): a new file is written
        return stat_error(path, what, err);
    }
    if (!S_ISREG(sb.st_mode)) {
        return Status::invalid("%s: not a regular file (%s); refusing to replace it (write to a file path)",
                               label(path, what).c_str(), kind_of(sb.st_mode));
    }
    return Status();
}

Status file_write_atomic(const std::string& path, const std::function<Status(std::FILE*)>& write,
                         const std::string& what) {
    HKV_TRY(file_check_output(path, what));
    // A new name beside the target, created exclusively (O_EXCL with O_CREAT never follows a link
    // or opens an existing file); the umask applies to the 0666 mode as for any new file.
    static std::atomic<uint32_t> counter{0};
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
        tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0 && errno != EEXIST) {
            return Status::io_error("%s: cannot create %s: %s", label(path, what).c_str(), tmp.c_str(),
                                    std::strerror(errno));
        }
    }
    if (fd < 0) return Status::io_error("%s: cannot create a temporary file beside it", label(path, what).c_str());
    std::FILE* f = ::fdopen(fd, "wb");
    if (!f) {
        const int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return Status::io_error("%s: %s", label(path, what).c_str(), std::strerror(err));
    }
    Status st;
    try {
        st = write(f);
    } catch (const std::bad_alloc&) {
        st = Status::out_of_memory("%s: out of memory while writing", label(path, what).c_str());
    } catch (const std::exception& e) {
        st = Status::internal("%s: unexpected exception while writing: %s", label(path, what).c_str(), e.what());
    }
    if (std::fflush(f) != 0 && st.ok()) {
        st = Status::io_error("%s: write failed: %s", label(path, what).c_str(), std::strerror(errno));
    }
    if (std::ferror(f) && st.ok()) st = Status::io_error("%s: write failed", label(path, what).c_str());
    if (std::fclose(f) != 0 && st.ok()) {
        st = Status::io_error("%s: close failed: %s", label(path, what).c_str(), std::strerror(errno));
    }
    if (st.ok()) {
        // Checked again just before the rename: the target must still not be a special file.
        st = file_check_output(path, what);
        if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
            st = Status::io_error("%s: cannot rename %s over it: %s", label(path, what).c_str(), tmp.c_str(),
                                  std::strerror(errno));
        }
    }
    if (!st.ok()) ::unlink(tmp.c_str());
    return st;
}

Status file_write_atomic(const std::string& path, const std::string& data, const std::string& what) {
    return file_write_atomic(
        path,
        [&](std::FILE* f) -> Status {
            if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) {
                return Status::io_error("%s: write failed: %s", label(path, what).c_str(), std::strerror(errno));
            }
            return Status();
        },
        what);
}

}  // namespace hkv
