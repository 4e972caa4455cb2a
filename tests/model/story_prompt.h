// tests/model/story_prompt.h — helpers shared by the policy tests on stories260K: load the model
// (nullptr when the file is absent, so the caller skips; failing the test with the loader's
// message when it is present but does not load), a prompt of n tokens of story text (the passage
// repeated, BOS first), and greedy argmax.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "model/model.h"

namespace hkv::test {

inline std::shared_ptr<const Model> load_model(const std::string& path) {
    if (!std::filesystem::exists(path)) return nullptr;  // absent: the caller skips
    auto m = model_load(path);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return m.ok() ? *m : nullptr;
}

inline const std::string kStoryText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her "
    "friend Tom. One day, they found a big red ball under a tree. Tom said, \"Let's play catch!\" Lily "
    "threw the ball high in the sky and laughed. ";

// n tokens: BOS + text, the text repeated as often as needed.
inline std::vector<int32_t> story_prompt(const Model& model, int32_t n, const std::string& text = kStoryText) {
    std::vector<int32_t> toks = model.tokenizer().encode(text, true);
    const std::vector<int32_t> more = model.tokenizer().encode(text, false);
    while (toks.size() < size_t(n)) toks.insert(toks.end(), more.begin(), more.end());
    toks.resize(size_t(n));
    return toks;
}

inline int32_t argmax(std::span<const float> l) { return int32_t(std::max_element(l.begin(), l.end()) - l.begin()); }

}  // namespace hkv::test
