// tests/unit/test_context_state.cpp — saved contexts (Context::state_save_file / state_load_file) on
// micro synthetic models written in a temp folder (no ../shared):
//  - save, load into a fresh context, continue (decode, a second segment, decode): the same greedy
//    tokens and logits as the original context continuing, under full (sliding-window layers that
//    free slots), compressing and merging policies and Gemma 3's local layers; saving the restored
//    context gives the same bytes;
//  - a state saved with a 16-bit position lane (n_ctx <= 65536) loads into a context with an int32
//    lane and back, and continues as the original;
//  - every mismatch is a clear error: another model (architecture, or the same shape with other
//    weights), another policy or budget, K/V type, page size, --swa-full, a context smaller than
//    the sequence, a cache limit below it, another format version, not a saved state;
//  - every truncation and many corrupted bytes are errors, never a crash, and leave the context
//    empty.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/file_io.h"
#include "heterokv/synthetic.h"
#include "micro_model.h"
#include "test_util.h"

namespace hkv {
namespace {

constexpr int32_t kPrompt = 48, kCtx = 128;

std::shared_ptr<const Model> micro(const test::TempDir& dir, const std::string& arch, uint64_t seed) {
    const std::string path = dir.file(arch + "-" + std::to_string(seed) + ".gguf");
    SynthOptions so;
    so.weight_type = SynthType::kF32;
    so.seed = seed;
    so.n_threads = 1;
    const Status st = synth_model_write(test::micro_shape(arch, 2), test::micro_vocab(), so, path);
    EXPECT_TRUE(st.ok()) << st.to_string();
    auto m = model_load(path);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return m.ok() ? *m : nullptr;
}

std::vector<int32_t> prompt(int32_t n, int32_t salt = 0) {
    std::vector<int32_t> p{1};
    for (int32_t i = 1; i < n; ++i) p.push_back(3 + (i * 37 + salt) % 300);
    return p;
}

int32_t argmax(std::span<const float> l) { return int32_t(std::max_element(l.begin(), l.end()) - l.begin()); }

// Greedy continuation: 6 decode steps, a 10-token segment, 4 decode steps. Returns the tokens and
// appends the logits after each step to *logits.
std::vector<int32_t> carry_on(Context& c, std::vector<float>* logits) {
    std::vector<int32_t> out;
    auto step = [&](int32_t n) {
        for (int32_t i = 0; i < n; ++i) {
            const int32_t t = argmax(c.logits());
            out.push_back(t);
            ASSERT_TRUE(c.eval({&t, 1}).ok());
            logits->insert(logits->end(), c.logits().begin(), c.logits().end());
        }
    };
    step(6);
    const std::vector<int32_t> seg = prompt(10, 5);
    EXPECT_TRUE(c.eval(std::span<const int32_t>(seg).subspan(1)).ok());
    logits->insert(logits->end(), c.logits().begin(), c.logits().end());
    step(4);
    return out;
}

class ContextState : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir();
        llama_ = new std::shared_ptr<const Model>(micro(*dir_, "llama", 1));
        llama2_ = new std::shared_ptr<const Model>(micro(*dir_, "llama", 2));
        gemma3_ = new std::shared_ptr<const Model>(micro(*dir_, "gemma3", 1));
        qwen3_ = new std::shared_ptr<const Model>(micro(*dir_, "qwen3", 1));
    }
    static void TearDownTestSuite() {
        delete llama_, delete llama2_, delete gemma3_, delete qwen3_;
        delete dir_;
    }
    static ContextParams params(const std::string& policy) {
        return {.n_ctx = kCtx, .n_threads = 2, .n_batch = 16, .kv_type = KvType::kF32, .kv_page_size = 16,
                .policy = policy};
    }
    static std::unique_ptr<Context> context(const std::shared_ptr<const Model>& m, const ContextParams& p) {
        auto c = Context::create(m, p);
        EXPECT_TRUE(c.ok()) << c.status().to_string();
        return c.ok() ? std::move(*c) : nullptr;
    }
    // A context after the prompt and 5 decode steps, saved to `path`.
    static std::unique_ptr<Context> saved(const std::shared_ptr<const Model>& m, const ContextParams& p,
                                          const std::string& path) {
        auto c = context(m, p);
        if (!c) return nullptr;
        EXPECT_TRUE(c->eval(prompt(kPrompt)).ok());
        for (int i = 0; i < 5; ++i) {
            const int32_t t = argmax(c->logits());
            EXPECT_TRUE(c->eval({&t, 1}).ok());
        }
        auto n = c->state_save_file(path);
        EXPECT_TRUE(n.ok()) << n.status().to_string();
        EXPECT_EQ(n.ok() ? *n : 0, int64_t(std::filesystem::file_size(path)));
        return c;
    }
    // Loads `path` into a fresh context of p: the status.
    static Status load(const std::shared_ptr<const Model>& m, const ContextParams& p, const std::string& path) {
        auto c = context(m, p);
        if (!c) return Status::internal("no context");
        const Status st = c->state_load_file(path);
        if (!st.ok()) {
            EXPECT_EQ(c->n_past(), 0);
        }
        return st;
    }

    static test::TempDir* dir_;
    static std::shared_ptr<const Model>*llama_, *llama2_, *gemma3_, *qwen3_;
};
test::TempDir* ContextState::dir_ = nullptr;
std::shared_ptr<const Model>* ContextState::llama_ = nullptr;
std::shared_ptr<const Model>* ContextState::llama2_ = nullptr;
std::shared_ptr<const Model>* ContextState::gemma3_ = nullptr;
std::shared_ptr<const Model>* ContextState::qwen3_ = nullptr;

TEST_F(ContextState, RestoredContextContinuesAsTheOriginal) {
    const std::vector<std::string> specs = {"full",
                                            "snapkv:budget=16",
                                            "h2o:budget=16,slack=2",
                                            "streaming:budget=16",
                                            "tova:budget=16,slack=2",
                                            "quest:budget=32",
                                            "ems:budget=16,window=4,mode=merge,score=max",
                                            "pyramidkv:ratio=0.3,window=4"};
    for (const auto* m : {llama_, gemma3_}) {
        for (const std::string& spec : specs) {
            SCOPED_TRACE(model_info(**m).arch + " " + spec);
            const ContextParams p = params(spec);
            const std::string path = dir_->file("a.state");
            auto a = saved(*m, p, path);
            ASSERT_NE(a, nullptr);
            auto b = context(*m, p);
            ASSERT_NE(b, nullptr);
            ASSERT_TRUE(b->eval(prompt(20, 9)).ok());  // whatever it held is replaced
            const Status st = b->state_load_file(path);
            ASSERT_TRUE(st.ok()) << st.to_string();
            EXPECT_EQ(b->n_past(), a->n_past());
            EXPECT_TRUE(std::equal(a->tokens().begin(), a->tokens().end(), b->tokens().begin(), b->tokens().end()));
            EXPECT_TRUE(std::equal(a->logits().begin(), a->logits().end(), b->logits().begin()));
            EXPECT_EQ(b->kv_bytes(), a->kv_bytes());
            EXPECT_EQ(b->kv_stats().n_slot, a->kv_stats().n_slot);
            // the restored context saves the same bytes
            const std::string again = dir_->file("b.state");
            ASSERT_TRUE(b->state_save_file(again).ok());
            EXPECT_EQ(test::read_file(again), test::read_file(path));
            std::vector<float> la, lb;
            const std::vector<int32_t> ta = carry_on(*a, &la), tb = carry_on(*b, &lb);
            EXPECT_EQ(ta, tb);
            EXPECT_EQ(la, lb);
            EXPECT_EQ(b->kv_stats().n_slot, a->kv_stats().n_slot);
        }
    }
}

TEST_F(ContextState, EmptyContextRoundTrips) {
    const std::string path = dir_->file("empty.state");
    auto a = context(*llama_, params("snapkv:budget=16"));
    ASSERT_TRUE(a->state_save_file(path, std::string("app\0data", 8)).ok());  // the application's bytes
    auto b = context(*llama_, params("snapkv:budget=16"));
    ASSERT_TRUE(b->eval(prompt(20)).ok());
    std::string app;
    ASSERT_TRUE(b->state_load_file(path, &app).ok());
    EXPECT_EQ(app, std::string("app\0data", 8));
    EXPECT_EQ(b->n_past(), 0);
    EXPECT_EQ(b->kv_bytes(), 0);
    EXPECT_TRUE(b->eval(prompt(kPrompt)).ok());
}

// The position lane is 16-bit in a context of n_ctx <= 65536 and int32 above; saved contexts hold
// i32 positions either way, so a state moves between the widths and continues as the original.
TEST_F(ContextState, StatesMoveBetweenPositionLaneWidths) {
    for (const std::string spec : {"full", "h2o:budget=16,slack=2"}) {
        SCOPED_TRACE(spec);
        ContextParams narrow = params(spec), wide = params(spec);
        wide.n_ctx = 70000;
        for (bool from_narrow : {true, false}) {
            const std::string path = dir_->file("lane.state");
            auto a = saved(*llama_, from_narrow ? narrow : wide, path);
            ASSERT_NE(a, nullptr);
            auto b = context(*llama_, from_narrow ? wide : narrow);
            ASSERT_NE(b, nullptr);
            const Status st = b->state_load_file(path);
            ASSERT_TRUE(st.ok()) << st.to_string();
            EXPECT_EQ(b->kv_stats().n_slot, a->kv_stats().n_slot);
            // 2 bytes a slot more in the int32 lane
            const int64_t d = 2 * a->kv_stats().slots_total;
            EXPECT_EQ(b->kv_bytes(), a->kv_bytes() + (from_narrow ? d : -d));
            std::vector<float> la, lb;
            EXPECT_EQ(carry_on(*a, &la), carry_on(*b, &lb));
            EXPECT_EQ(la, lb);
        }
    }
}

TEST_F(ContextState, MismatchesAreClearErrors) {
    const std::string path = dir_->file("m.state");
    ASSERT_NE(saved(*llama_, params("snapkv:budget=16"), path), nullptr);
    auto expect = [&](const std::shared_ptr<const Model>& m, const ContextParams& p, StatusCode code,
                      const std::string& text) {
        const Status st = load(m, p, path);
        EXPECT_EQ(st.code(), code) << st.to_string();
        EXPECT_NE(st.message().find(text), std::string::npos) << st.to_string();
    };
    expect(*qwen3_, params("snapkv:budget=16"), StatusCode::kInvalidArgument, "saved state is for another model");
    expect(*llama2_, params("snapkv:budget=16"), StatusCode::kInvalidArgument, "another model of the same shape");
    expect(*llama_, params("snapkv:budget=8"), StatusCode::kInvalidArgument, "policy 'snapkv:budget=16'");
    expect(*llama_, params("h2o:budget=16"), StatusCode::kInvalidArgument, "this context runs 'h2o:budget=16'");
    ContextParams p = params("snapkv:budget=16");
    p.type_v = KvType::kF16;
    expect(*llama_, p, StatusCode::kInvalidArgument, "K/V cache types f32/f32; this context uses f32/f16");
    p = params("snapkv:budget=16");
    p.kv_page_size = 32;
    expect(*llama_, p, StatusCode::kInvalidArgument, "pages of 16 slots; this context uses 32");
    p = params("snapkv:budget=16");
    p.swa_full = true;
    expect(*llama_, p, StatusCode::kInvalidArgument, "--swa-full");
    p = params("snapkv:budget=16");
    p.n_ctx = 50;
    expect(*llama_, p, StatusCode::kInvalidArgument, "holds 53 tokens (saved with a context of 128); this context "
                                                     "holds at most 50 (-c)");
    p = params("snapkv:budget=16");
    p.kv_max_bytes = 4096;
    expect(*llama_, p, StatusCode::kOutOfMemory, "cache limit");
    // another version, not a saved state, not a regular file, absent
    std::string bytes = test::read_file(path);
    bytes[8] = 3;  // versions 1 and 2 are read (2 added per-head KV types, issue 19)
    const std::string v3 = dir_->file("v3.state");
    ASSERT_TRUE(file_write_atomic(v3, bytes).ok());
    const Status sv = load(*llama_, params("snapkv:budget=16"), v3);
    EXPECT_EQ(sv.code(), StatusCode::kUnsupported) << sv.to_string();
    EXPECT_NE(sv.message().find("format version 3"), std::string::npos) << sv.to_string();
    const Status sm = load(*llama_, params("snapkv:budget=16"), dir_->file("llama-1.gguf"));
    EXPECT_NE(sm.message().find("not a heterokv saved context"), std::string::npos) << sm.to_string();
    EXPECT_FALSE(load(*llama_, params("snapkv:budget=16"), dir_->path.string()).ok());
    EXPECT_EQ(load(*llama_, params("snapkv:budget=16"), dir_->file("absent")).code(), StatusCode::kNotFound);
}

TEST_F(ContextState, TruncatedOrCorruptFilesAreErrors) {
    const std::string path = dir_->file("c.state");
    const ContextParams p = params("h2o:budget=16,slack=2");
    ASSERT_NE(saved(*llama_, p, path), nullptr);
    const std::string bytes = test::read_file(path);
    auto c = context(*llama_, p);
    ASSERT_NE(c, nullptr);
    auto load_bytes = [&](const std::string& b) {
        std::FILE* f = fmemopen(const_cast<char*>(b.data()), b.size(), "rb");
        EXPECT_NE(f, nullptr);
        const Status st = c->state_read(f, b.size());
        std::fclose(f);
        if (!st.ok()) {
            EXPECT_EQ(c->n_past(), 0);
        }
        return st;
    };
    ASSERT_TRUE(load_bytes(bytes).ok());
    // every truncation (a step through the file, and each of the last 16 bytes)
    for (size_t n = 0; n < bytes.size(); n += n < 200 ? 1 : 61) {
        EXPECT_FALSE(load_bytes(bytes.substr(0, n)).ok()) << n;
    }
    for (size_t n = bytes.size() - 16; n < bytes.size(); ++n) EXPECT_FALSE(load_bytes(bytes.substr(0, n)).ok()) << n;
    EXPECT_FALSE(load_bytes(bytes + "x").ok());
    // flipped bytes: each of the first 400 (the header, counts and segments), then a step
    for (size_t i = 0; i < bytes.size(); i += i < 400 ? 1 : 97) {
        std::string b = bytes;
        b[i] = char(b[i] ^ 0x5a);
        const Status st = load_bytes(b);
        EXPECT_FALSE(st.ok()) << "byte " << i;
    }
    // and the intact file still loads into the same context
    ASSERT_TRUE(load_bytes(bytes).ok());
    EXPECT_EQ(c->n_past(), kPrompt + 5);
}

}  // namespace
}  // namespace hkv
