// tests/test_util.h — paths to ../shared and tests/data, and skipping when they are absent.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

namespace hkv::test {

inline std::string shared_path(const std::string& rel) { return std::string(HKV_SHARED_DIR) + "/" + rel; }
inline std::string data_path(const std::string& rel) { return std::string(HKV_TEST_DATA_DIR) + "/" + rel; }
inline bool exists(const std::string& p) { return std::filesystem::exists(p); }

inline std::string read_file(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Mean KL(p_a || p_b) over the rows of two logit tables a, b: [n_rows, nv] (softmax of each row).
inline double mean_kld(const std::vector<float>& a, const std::vector<float>& b, size_t nv) {
    double sum = 0.0;
    const size_t n = a.size() / nv;
    for (size_t i = 0; i < n; ++i) {
        const float* x = a.data() + i * nv;
        const float* y = b.data() + i * nv;
        double mx = -INFINITY, my = -INFINITY, zx = 0.0, zy = 0.0;
        for (size_t j = 0; j < nv; ++j) mx = std::max(mx, double(x[j])), my = std::max(my, double(y[j]));
        for (size_t j = 0; j < nv; ++j) zx += std::exp(double(x[j]) - mx), zy += std::exp(double(y[j]) - my);
        double kl = 0.0;
        for (size_t j = 0; j < nv; ++j) {
            const double lx = double(x[j]) - mx - std::log(zx), ly = double(y[j]) - my - std::log(zy);
            kl += std::exp(lx) * (lx - ly);
        }
        sum += kl;
    }
    return n ? sum / double(n) : 0.0;
}

// A fresh temporary directory, removed at destruction.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() /
               ("hkv_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    static int& counter() {
        static int c = 0;
        return c;
    }
};

}  // namespace hkv::test

// Skips the current test when a file from ../shared is missing.
#define HKV_REQUIRE_SHARED(path)                                                     \
    do {                                                                             \
        if (!::hkv::test::exists(path)) GTEST_SKIP() << "not present: " << (path);   \
    } while (0)
