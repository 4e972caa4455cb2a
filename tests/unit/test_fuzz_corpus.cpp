// Replays every committed fuzz input (tests/fuzz/corpus/<target>/, seeds and any crashers found)
// through the same code the fuzz targets run, so a fixed crash stays fixed in ordinary builds.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/gguf.h"
#include "model/model.h"
#include "server/chat_template.h"
#include "server/request.h"
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
        auto file = GgufFile::from_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        if (!file.ok()) continue;
        auto model = Model::from_gguf(std::move(file).value());
        loaded += model.ok();
        if (!model.ok()) {
            EXPECT_FALSE(model.status().message().empty()) << f;
        }
    }
    EXPECT_GE(loaded, 2);  // the two valid seed models
}

TEST(FuzzCorpus, RequestInputsParseOrFailCleanly) {
    const auto files = corpus("fuzz_request");
    ASSERT_FALSE(files.empty());
    for (const std::string& f : files) {
        const std::string bytes = test::read_file(f);
        if (bytes.empty()) continue;
        const auto ep = (bytes[0] & 1) ? server::Endpoint::kChat : server::Endpoint::kCompletions;
        auto r = server::parse_completion_request(std::string_view(bytes).substr(1), ep, server::RequestLimits{}, 512);
        if (r.ok() && ep == server::Endpoint::kChat) (void)server::chat_render(server::ChatFamily::kChatml, r->messages);
        if (!r.ok()) {
            EXPECT_FALSE(r.status().message().empty()) << f;
        }
    }
}

}  // namespace
}  // namespace hkv
