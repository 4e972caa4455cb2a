// bench/hc_taxonomy.cpp (hkv_hc_taxonomy) — writes an uncalibrated, structural HeteroCache taxonomy
// (policy/heterocache.h: taxonomy_structural) for a model's shape, so the heterocache policy can run
// on models `heterokv calibrate` has not profiled yet. Measurements with it say so.
//   hkv_hc_taxonomy -m MODEL.gguf -o OUT.json
#include <cstdio>
#include <cstring>
#include <string>

#include "heterokv/engine.h"
#include "model/model.h"
#include "policy/heterocache.h"

int main(int argc, char** argv) {
    std::string model, out;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "-m")) model = argv[i + 1];
        else if (!std::strcmp(argv[i], "-o")) out = argv[i + 1];
    }
    if (model.empty() || out.empty()) {
        std::fprintf(stderr, "usage: hkv_hc_taxonomy -m MODEL.gguf -o OUT.json\n");
        return 2;
    }
    auto m = hkv::model_load(model);
    if (!m.ok()) {
        std::fprintf(stderr, "hkv_hc_taxonomy: error: %s\n", m.status().message().c_str());
        return 1;
    }
    const hkv::ModelConfig& c = (*m)->config();
    if (c.n_head_kv < 2) {
        std::fprintf(stderr, "hkv_hc_taxonomy: error: the model has %d KV head(s); a cluster needs 2\n", c.n_head_kv);
        return 1;
    }
    hkv::Taxonomy t = hkv::taxonomy_structural(c.n_layer, c.n_head_kv);
    t.source = "structural taxonomy (not calibrated) for " + model;
    hkv::Status st = hkv::taxonomy_save(t, out);
    if (!st.ok()) {
        std::fprintf(stderr, "hkv_hc_taxonomy: error: %s\n", st.message().c_str());
        return 1;
    }
    std::fprintf(stderr, "hkv_hc_taxonomy: %d layers x %d KV heads: %d pivot, %d satellite, %d anchor, %d volatile -> %s\n",
                 t.n_layer, t.n_head_kv, t.count(hkv::HeadRole::kPivot), t.count(hkv::HeadRole::kSatellite),
                 t.count(hkv::HeadRole::kAnchor), t.count(hkv::HeadRole::kVolatile), out.c_str());
    return 0;
}
