// Replays every committed fuzz input (tests/fuzz/corpus/<target>/, seeds and any crashers found)
// through the same code the fuzz targets run, so a fixed crash stays fixed in ordinary builds.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "fuzz/fuzz_inputs.h"
#include "test_util.h"

namespace hkv {
namespace {

std::vector<std::string> corpus(const std::string& target) {
    std::vector<std::string> files;
    const std::string dir = std::string(HKV_SOURCE_DIR) + "/tests/fuzz/corpus/" + target;
    for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path().string());
    return files;
}

TEST(FuzzCorpus, GgufInputsLoadOrFailCleanly) {
    const auto files = corpus("fuzz_gguf");
    ASSERT_FALSE(files.empty());
    int loaded = 0;
    for (const std::string& f : files) {
        const std::string bytes = test::read_file(f);
        loaded += fuzz::fuzz_gguf_input(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
    EXPECT_GE(loaded, 2);  // the two valid seed models
}

TEST(FuzzCorpus, RequestInputsParseOrFailCleanly) {
    const auto files = corpus("fuzz_request");
    ASSERT_FALSE(files.empty());
    for (const std::string& f : files) {
        const std::string bytes = test::read_file(f);
        fuzz::fuzz_request_input(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
}

TEST(FuzzCorpus, StateInputsLoadOrFailCleanly) {
    const auto files = corpus("fuzz_state");
    ASSERT_FALSE(files.empty());
    int loaded = 0;
    for (const std::string& f : files) {
        const std::string bytes = test::read_file(f);
        loaded += fuzz::fuzz_state_input(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
    EXPECT_GE(loaded, 3);  // a valid seed for each context
}

TEST(FuzzCorpus, StateSeedsLoad) {
    for (size_t i = 0; i < fuzz::fuzz_state_contexts().size(); ++i) {
        const std::string seed = fuzz::fuzz_state_seed(i, 5);
        ASSERT_FALSE(seed.empty()) << i;
        EXPECT_TRUE(fuzz::fuzz_state_input(reinterpret_cast<const uint8_t*>(seed.data()), seed.size())) << i;
        if (const char* dir = std::getenv("HKV_FUZZ_STATE_SEEDS")) {  // (re)makes the committed seeds
            for (int steps : {0, 5}) {
                const std::string s = fuzz::fuzz_state_seed(i, steps);
                std::FILE* f = std::fopen((std::string(dir) + "/seed" + std::to_string(i) + "_" +
                                           std::to_string(steps) + ".bin").c_str(), "wb");
                ASSERT_NE(f, nullptr);
                std::fwrite(s.data(), 1, s.size(), f);
                std::fclose(f);
            }
        }
    }
}

}  // namespace
}  // namespace hkv
