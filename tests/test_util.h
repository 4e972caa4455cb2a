// tests/test_util.h — paths to ../shared and tests/data, and skipping when they are absent.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <string>

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
