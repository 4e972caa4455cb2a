// User-named files (heterokv/file_io.h) and the readers that use it: FIFOs and devices are refused
// without blocking, reads are bounded, and outputs never replace a device or a FIFO.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "heterokv/file_io.h"
#include "model/gguf.h"
#include "policy/heterocache.h"
#include "policy/heterocache_taxonomy.h"
#include "test_util.h"

namespace hkv {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A FIFO in a temp folder. If a reader blocks on it (the bug these tests guard against), a
// watchdog opens the write end after 3 s so that the reader gets EOF and the test fails instead
// of hanging.
struct Fifo {
    std::string path;
    std::atomic<bool> done{false};
    std::thread watchdog;
    explicit Fifo(const std::string& p) : path(p) {
        EXPECT_EQ(::mkfifo(p.c_str(), 0600), 0);
        watchdog = std::thread([this] {
            for (int i = 0; i < 300 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (done) return;
            const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
            if (fd >= 0) ::close(fd);
        });
    }
    ~Fifo() {
        done = true;
        watchdog.join();
    }
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A private copy of /dev/full (a device that refuses every write) in `dir`, or "" when this process
// may not make device nodes (not root). Tests write "over" it: a regression replaces this node,
// never the system's /dev/full.
std::string device_in(const test::TempDir& dir) {
    const std::string p = dir.file("full");
    return ::mknod(p.c_str(), S_IFCHR | 0666, makedev(1, 7)) == 0 ? p : std::string();
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

// Files in `dir` whose name starts with `stem` (no temporary file may be left behind).
int count_prefixed(const fs::path& dir, const std::string& stem) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind(stem, 0) == 0;
    return n;
}

TEST(FileIo, ReadsRegularFilesWithinTheLimit) {
    test::TempDir dir;
    write_text(dir.file("a.txt"), "hello\n");
    auto r = file_read(dir.file("a.txt"), 6);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(*r, "hello\n");
    auto big = file_read(dir.file("a.txt"), 5, "-f");
    ASSERT_FALSE(big.ok());
    EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(big.status().message().find("larger than the limit of 5 bytes"), std::string::npos);
    EXPECT_NE(big.status().message().find("-f "), std::string::npos);
    write_text(dir.file("empty"), "");
    EXPECT_EQ(file_read(dir.file("empty"), 0).value(), "");
    EXPECT_EQ(file_read(dir.file("absent"), 10).status().code(), StatusCode::kNotFound);
    auto d = file_read(dir.path.string(), 10);
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("a directory"), std::string::npos);
}

TEST(FileIo, RefusesFifosAndDevicesWithoutBlocking) {
    test::TempDir dir;
    Fifo fifo(dir.file("fifo"));
    const auto t0 = Clock::now();
    auto r = file_read(fifo.path, 1 << 20, "taxonomy");
    EXPECT_LT(seconds_since(t0), 1.0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("a FIFO"), std::string::npos) << r.status().to_string();
    // /dev/zero never ends: refused as a device, nothing allocated
    if (fs::is_character_file("/dev/zero")) {
        auto z = file_read("/dev/zero", size_t(1) << 30);
        EXPECT_EQ(z.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(z.status().message().find("a character device"), std::string::npos);
    }
    uint64_t size = 0;
    EXPECT_FALSE(file_open_read(fifo.path, &size).ok());
}

TEST(FileIo, GgufAndTaxonomyReadersRefuseAFifo) {
    test::TempDir dir;
    Fifo fifo(dir.file("model.gguf"));
    auto t0 = Clock::now();
    auto g = GgufFile::open(fifo.path);
    EXPECT_LT(seconds_since(t0), 1.0);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find("not a regular file"), std::string::npos) << g.status().to_string();
    t0 = Clock::now();
    auto t = taxonomy_load(fifo.path);
    EXPECT_LT(seconds_since(t0), 1.0);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("not a regular file"), std::string::npos) << t.status().to_string();
    if (fs::is_character_file("/dev/zero")) {
        auto z = taxonomy_load("/dev/zero");
        EXPECT_NE(z.status().message().find("not a regular file"), std::string::npos) << z.status().to_string();
    }
}

TEST(FileIo, AtomicWriteReplacesRegularFilesOnly) {
    test::TempDir dir;
    const std::string out = dir.file("out.json");
    ASSERT_TRUE(file_write_atomic(out, "one").ok());
    EXPECT_EQ(test::read_file(out), "one");
    ASSERT_TRUE(file_write_atomic(out, "two").ok());
    EXPECT_EQ(test::read_file(out), "two");
    // a failing writer leaves the old file and no temporary file
    Status st = file_write_atomic(out, [](std::FILE* f) {
        std::fputs("partial", f);
        return Status::io_error("source went away");
    });
    EXPECT_EQ(st.code(), StatusCode::kIoError);
    EXPECT_EQ(test::read_file(out), "two");
    EXPECT_EQ(count_prefixed(dir.path, "out.json"), 1);
    // a FIFO target is refused (not opened, not replaced)
    Fifo fifo(dir.file("pipe"));
    const auto t0 = Clock::now();
    st = file_write_atomic(fifo.path, "x", "-o");
    EXPECT_LT(seconds_since(t0), 1.0);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("refusing to replace"), std::string::npos) << st.to_string();
    struct stat sb {};
    ASSERT_EQ(::stat(fifo.path.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISFIFO(sb.st_mode));
    EXPECT_EQ(count_prefixed(dir.path, "pipe"), 1);
    // a folder that does not exist
    EXPECT_EQ(file_write_atomic(dir.file("no/such/dir/f"), "x").code(), StatusCode::kIoError);
    // a device: refused, and still a device afterwards (was replaced by a regular file as root)
    if (const std::string dev = device_in(dir); !dev.empty()) {
        st = file_write_atomic(dev, "x");
        EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
        EXPECT_TRUE(fs::is_character_file(dev));
        EXPECT_EQ(count_prefixed(dir.path, "full"), 1);
    }
}

TEST(FileIo, GgufWriterAndTaxonomySaveRefuseDevices) {
    test::TempDir dir;
    const std::string dev = device_in(dir);
    if (dev.empty()) GTEST_SKIP() << "cannot make a device node (not root)";
    GgufWriter w;
    w.set_str("general.architecture", "llama");
    Status st = w.write(dev, nullptr);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_TRUE(fs::is_character_file(dev));
    Taxonomy t = taxonomy_structural(1, 2);
    st = taxonomy_save(t, dev);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_TRUE(fs::is_character_file(dev));
    EXPECT_EQ(count_prefixed(dir.path, "full"), 1);  // no temporary file left beside it
}

}  // namespace
}  // namespace hkv
