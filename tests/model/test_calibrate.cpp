// heterokv calibrate on stories260K (../shared; skipped when absent):
//  - the attention observer: rows are softmax distributions over every slot (sum 1), the cache's
//    positions, one call per layer per observed step; the observed row of a prompt's last token
//    equals the row of the same token fed as a decode step (it is the last query's row, whatever
//    the chunking); an observer never changes the logits (bit for bit);
//  - a short calibration runs end to end, its file loads back, and two runs give the same bytes;
//  - the reference's shipped Llama-3.1-8B taxonomy prints the documented counts;
//  - bad parameters give errors.
#include <gtest/gtest.h>

#include <cmath>

#include "heterokv/calibrate.h"
#include "eval/ppl.h"
#include "heterokv/engine.h"
#include "kv/kv_store.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "model/vocab_gguf.h"
#include "policy/heterocache_taxonomy.h"
#include "test_util.h"

namespace hkv::eval {
namespace {

using hkv::calibrate_run;
using hkv::calibrate_topk;
using hkv::CalibrateParams;
using hkv::taxonomy_summary;

const std::string kModel = test::shared_path("models/stories260K.gguf");
const std::string kText = test::shared_path("data/text/stories260K-generated.txt");

struct Seen {
    int32_t il, n_past;
    bool decode;
    std::vector<std::vector<float>> rows;  // [n_head_kv][n_live]
};

AttnObserver recorder(std::vector<Seen>* out) {
    return [out](const AttnObservation& ob) {
        Seen s{ob.il, ob.n_past, ob.decode, {}};
        for (int32_t ih = 0; ih < ob.n_head_kv; ++ih) {
            const size_t off = size_t(ih) * size_t(ob.n_slot);
            for (int32_t k = 0; k < ob.n_live[size_t(ih)]; ++k) {
                if (ob.pos[off + size_t(k)] != k) return Status::internal("slot %d holds position %d", k, ob.pos[off + size_t(k)]);
            }
            s.rows.emplace_back(ob.attn.begin() + long(off), ob.attn.begin() + long(off) + ob.n_live[size_t(ih)]);
        }
        out->push_back(std::move(s));
        return Status();
    };
}

std::vector<int32_t> prompt_tokens(const Model& m, int32_t n) {
    std::vector<int32_t> ids = m.tokenizer().encode(test::read_file(kText), true);
    ids.resize(size_t(n));
    return ids;
}

TEST(Calibrate, ObserverSeesLastQueryRowsAndChangesNothing) {
    HKV_REQUIRE_SHARED(kModel);
    HKV_REQUIRE_SHARED(kText);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    const ModelConfig& c = (*model)->config();
    const std::vector<int32_t> ids = prompt_tokens(**model, 60);
    ContextParams cp;
    cp.n_ctx = 512;
    cp.n_threads = 1;
    cp.n_batch = 16;  // the prompt runs in 4 chunks; only the last chunk's last token is observed

    auto plain = Context::create(*model, cp);
    auto seen = Context::create(*model, cp);
    ASSERT_TRUE(plain.ok() && seen.ok());
    std::vector<Seen> obs;
    (*seen)->set_attn_observer(recorder(&obs));
    ASSERT_TRUE((*plain)->eval(ids).ok());
    ASSERT_TRUE((*seen)->eval(ids).ok());
    int32_t next = argmax((*plain)->logits());
    for (int step = 0; step < 3; ++step) {
        ASSERT_TRUE((*plain)->eval({&next, 1}).ok());
        ASSERT_TRUE((*seen)->eval({&next, 1}).ok());
        const auto a = (*plain)->logits(), b = (*seen)->logits();
        ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << "the observer changed the logits at step " << step;
        next = argmax(a);
    }
    ASSERT_EQ(obs.size(), size_t(c.n_layer) * 4);
    for (size_t i = 0; i < obs.size(); ++i) {
        const Seen& s = obs[i];
        EXPECT_EQ(s.il, int32_t(i % size_t(c.n_layer)));
        EXPECT_EQ(s.decode, i >= size_t(c.n_layer));
        EXPECT_EQ(s.n_past, 60 + int32_t(i / size_t(c.n_layer)));
        ASSERT_EQ(s.rows.size(), size_t(c.n_head_kv));
        for (const auto& row : s.rows) {
            ASSERT_EQ(int32_t(row.size()), s.n_past);  // the full cache: every position
            double sum = 0.0;
            for (float v : row) sum += v;
            EXPECT_NEAR(sum, 1.0, 1e-4);  // a softmax row, averaged over the GQA group
        }
    }

    // The prompt's last token observed at the end of a prefill == the same token as a decode step.
    auto split = Context::create(*model, cp);
    ASSERT_TRUE(split.ok());
    std::vector<Seen> obs2;
    ASSERT_TRUE((*split)->eval(std::span<const int32_t>(ids.data(), ids.size() - 1)).ok());
    (*split)->set_attn_observer(recorder(&obs2));
    ASSERT_TRUE((*split)->eval(std::span<const int32_t>(&ids.back(), 1)).ok());
    ASSERT_EQ(obs2.size(), size_t(c.n_layer));
    for (int32_t il = 0; il < c.n_layer; ++il) {
        EXPECT_TRUE(obs2[size_t(il)].decode);
        for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
            const auto& want = obs[size_t(il)].rows[size_t(ih)];
            const auto& got = obs2[size_t(il)].rows[size_t(ih)];
            ASSERT_EQ(got.size(), want.size());
            for (size_t k = 0; k < want.size(); ++k) ASSERT_NEAR(got[k], want[k], 1e-4) << il << " " << ih << " " << k;
        }
    }
    // an observer's error fails the eval, which leaves the sequence as it was
    (*split)->set_attn_observer([](const AttnObservation&) { return Status::internal("stop"); });
    const int32_t before = (*split)->n_past();
    EXPECT_FALSE((*split)->eval({&next, 1}).ok());
    EXPECT_EQ((*split)->n_past(), before);
    (*split)->set_attn_observer({});
    EXPECT_TRUE((*split)->eval({&next, 1}).ok());
}

CalibrateParams short_params() {
    CalibrateParams p;
    p.n_tokens = 200;
    p.n_decode = 16;
    p.topk = 0.2;
    p.n_ctx = 512;
    p.n_threads = 1;
    p.n_batch = 64;
    return p;
}

TEST(Calibrate, Stories260KEndToEndDeterministic) {
    HKV_REQUIRE_SHARED(kModel);
    HKV_REQUIRE_SHARED(kText);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    const std::string text = test::read_file(kText);
    test::TempDir dir;
    std::string bytes[2];
    for (int run = 0; run < 2; ++run) {
        auto r = calibrate_run(*model, text, short_params());
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        EXPECT_EQ(r->n_prompt, 200);
        EXPECT_EQ(r->topk, 40);
        EXPECT_EQ(r->n_decode, 16);
        EXPECT_FALSE(r->generated.empty());
        const Taxonomy& t = r->taxonomy;
        EXPECT_EQ(t.n_layer, 5);
        EXPECT_EQ(t.n_head_kv, 4);
        EXPECT_EQ(t.topk, 40);
        ASSERT_EQ(t.stability.size(), 20u);
        double sum = 0.0;
        int n = 0;
        for (size_t i = 0; i < t.ratio.size(); ++i) {
            EXPECT_GE(t.stability[i], 0.0);
            EXPECT_LE(t.stability[i], 1.0);
            if (t.ratio[i] > 0) {
                sum += t.ratio[i];
                ++n;
            }
        }
        if (n > 0) {
            EXPECT_NEAR(sum / n, 1.0, 1e-9);  // ratios of the compressed heads average 1
        }
        const std::string path = dir.file(run == 0 ? "t0.json" : "t1.json");
        ASSERT_TRUE(taxonomy_save(t, path).ok());
        bytes[run] = test::read_file(path);
        auto back = taxonomy_load(path);
        ASSERT_TRUE(back.ok()) << back.status().to_string();
        EXPECT_EQ(back->role, t.role);
        EXPECT_EQ(back->stability, t.stability);
        EXPECT_TRUE(taxonomy_check_shape(*back, 5, 4).ok());
        EXPECT_NE(taxonomy_summary(*back).find("| 4 |"), std::string::npos);
    }
    EXPECT_EQ(bytes[0], bytes[1]);
    EXPECT_GT(bytes[0].size(), 100u);
}

TEST(Calibrate, ShowsShippedTaxonomy) {
    const std::string f = test::shared_path(
        "data/heterocache-taxonomies/Head_Analysis_llama-3.1-8b-instruct_topk1024_th0.5_sim0.5_step5000.json");
    HKV_REQUIRE_SHARED(f);
    auto t = taxonomy_load(f);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    const std::string s = taxonomy_summary(*t);
    EXPECT_NE(s.find("anchor 10, volatile 17, pivot 33, satellite 196"), std::string::npos) << s;
    EXPECT_NE(s.find("| 23 | SSSSPSPS |"), std::string::npos) << s;  // the layer with 2 pivots
}

TEST(Calibrate, RejectsBadParameters) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    const std::string text = test::read_file(kText);
    CalibrateParams p = short_params();
    p.n_decode = 0;
    EXPECT_FALSE(calibrate_run(*model, text, p).ok());
    p = short_params();
    p.n_ctx = 20;  // 20 - 16 decode steps leaves 4 prompt tokens
    EXPECT_EQ(calibrate_run(*model, text, p).status().code(), StatusCode::kOutOfRange);
    p = short_params();
    p.tau_sim = 0.0;
    EXPECT_FALSE(calibrate_run(*model, text, p).ok());
    EXPECT_FALSE(calibrate_run(*model, "", short_params()).ok());
    EXPECT_EQ(*calibrate_topk(1024, 300), 300);  // a count is clamped to L0
    EXPECT_EQ(*calibrate_topk(0.2, 300), 60);
    EXPECT_EQ(*calibrate_topk(0.001, 300), 1);
    EXPECT_FALSE(calibrate_topk(0, 300).ok());
    EXPECT_FALSE(calibrate_topk(2.5, 300).ok());
}

// A model whose layers differ (Gemma 3-like: 5 sliding-window layers of window 16 to 1 global, on
// stories260K's vocabulary): calibration marks the local layers, writes their heads volatile, and
// heterocache runs on the taxonomy with its budget over the global layer; the local layers hold
// their window.
TEST(Calibrate, GemmaLikeModelMarksItsLocalLayers) {
    HKV_REQUIRE_SHARED(kModel);
    HKV_REQUIRE_SHARED(kText);
    test::TempDir dir;
    auto f = GgufFile::open(kModel);
    ASSERT_TRUE(f.ok());
    auto vocab = tokenizer_data_from_gguf(**f);
    ASSERT_TRUE(vocab.ok());
    SynthShape s;
    s.preset = "gemma3-like";
    s.arch = "gemma3";
    s.n_vocab = 512, s.n_ctx = 1024, s.n_embd = 128, s.n_layer = 6, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 256;
    s.rope_base = 1000000.0f, s.rms_eps = 1e-6f, s.tied = true, s.head_dim = 32, s.n_swa = 16;
    ThreadPool pool(2);
    const std::string path = dir.file("gemma3-like.gguf");
    ASSERT_TRUE(synth_model_write(s, *vocab, SynthOptions{}, pool, path).ok());
    auto model = model_load(path);
    ASSERT_TRUE(model.ok()) << model.status().to_string();

    CalibrateParams p;
    p.n_tokens = 200, p.n_decode = 8, p.topk = 16, p.n_ctx = 512, p.n_threads = 2;
    auto r = calibrate_run(*model, test::read_file(kText), p);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const Taxonomy& t = r->taxonomy;
    EXPECT_EQ(t.local_layers, (std::vector<uint8_t>{1, 1, 1, 1, 1, 0}));
    for (int32_t il = 0; il < 5; ++il) {
        for (int32_t ih = 0; ih < 2; ++ih) EXPECT_EQ(t.role_of(il, ih), HeadRole::kVolatile);
    }
    const std::string tax = dir.file("tax.json");
    ASSERT_TRUE(taxonomy_save(t, tax).ok());
    auto ctx = Context::create(*model, {.n_ctx = 512, .n_threads = 2, .n_batch = 64, .policy = "heterocache:taxonomy=" + tax + ",ratio=0.8"});
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    ASSERT_TRUE((*ctx)->eval(prompt_tokens(**model, 200)).ok());
    int32_t next = argmax((*ctx)->logits());
    for (int step = 0; step < 4; ++step) {
        ASSERT_TRUE((*ctx)->eval({&next, 1}).ok());
        next = argmax((*ctx)->logits());
    }
    const KvStats kv = (*ctx)->kv_stats();
    for (int32_t il = 0; il < 5; ++il) {
        EXPECT_LE(kv.n_slot[size_t(il) * size_t(kv.n_head_kv)], 16 + 64 - 1) << il;  // window + one page
    }
    std::printf("gemma3-like taxonomy: %s", taxonomy_summary(t).c_str());
}

}  // namespace
}  // namespace hkv::eval
