// hkv_kv_row_error — how much each 4-bit KV row format loses on a model's real K and V rows
// (issue 19 item 4, docs/accuracy.md "hq4"): fills an f32 cache with the first N tokens of a text
// (full policy) and reports, over every (layer, KV head, slot) row, the normalized squared error
// sum (y - x)^2 / sum x^2 of q4_0, iq4_nl (levels only), q4_0 after hq4's rotation, iq4_nl after the
// rotation with the weights' quantizer (42 scale candidates), and hq4 itself (the cache's quantizer).
//
//   hkv_kv_row_error MODEL TEXT [OFFSET=0] [TOKENS=1024]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/kv_hq4.h"
#include "backend/cpu/quant.h"
#include "heterokv/engine.h"
#include "heterokv/model.h"
#include "heterokv/tokenizer.h"

using namespace hkv;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: hkv_kv_row_error MODEL TEXT [OFFSET=0] [TOKENS=1024]\n");
        return 2;
    }
    const size_t offset = argc > 3 ? size_t(std::strtoull(argv[3], nullptr, 10)) : 0;
    const size_t n_tok = argc > 4 ? size_t(std::strtoull(argv[4], nullptr, 10)) : 1024;
    auto m = model_load(argv[1]);
    if (!m.ok()) return std::fprintf(stderr, "%s\n", m.status().to_string().c_str()), 1;
    std::ifstream f(argv[2]);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    if (!f || offset >= text.size()) return std::fprintf(stderr, "%s: unreadable or shorter than %zu\n", argv[2], offset), 1;
    std::vector<int32_t> toks = model_tokenizer(**m).encode(std::string_view(text).substr(offset, 16 * n_tok), true);
    if (toks.size() < n_tok) return std::fprintf(stderr, "text too short for %zu tokens\n", n_tok), 1;
    toks.resize(n_tok);
    const ModelInfo mi = model_info(**m);
    const int64_t d = mi.head_dim;
    if (!hq4_dim_ok(d)) return std::fprintf(stderr, "head size %lld: not a power of two from 32\n", (long long)d), 1;
    ContextParams cp;
    cp.n_ctx = int32_t(n_tok), cp.kv_type = KvType::kF32, cp.n_threads = 1;
    auto c = Context::create(*m, cp);
    if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().to_string().c_str()), 1;
    if (Status st = (*c)->eval(toks); !st.ok()) return std::fprintf(stderr, "%s\n", st.to_string().c_str()), 1;
    const char* names[5] = {"q4_0", "iq4_nl", "rotated q4_0", "rotated iq4_nl", "hq4"};
    for (int part = 0; part < 2; ++part) {
        double num[5] = {0, 0, 0, 0, 0}, den = 0;
        std::vector<float> y(static_cast<size_t>(d)), r(y.size());  // [head_dim]
        std::vector<uint8_t> q(dtype_row_size(DType::kQ4_0, d));
        for (int32_t il = 0; il < mi.n_layer; ++il) {
            for (int32_t ih = 0; ih < mi.n_head_kv; ++ih) {
                auto h = (*c)->kv_head(il, ih);
                if (!h.ok()) return std::fprintf(stderr, "%s\n", h.status().to_string().c_str()), 1;
                for (int32_t s = 0; s < h->n_slot; ++s) {
                    const float* x = static_cast<const float*>(part == 0 ? h->k_row(s) : h->v_row(s));
                    for (int v = 0; v < 5; ++v) {
                        r.assign(x, x + d);
                        if (v == 4) {
                            hq4_quantize_row(r.data(), q.data(), d);
                            hq4_dequantize_row(q.data(), y.data(), d);
                        } else {
                            const DType t = v % 2 ? DType::kIQ4_NL : DType::kQ4_0;
                            if (v >= 2) hq4_rotate(r.data(), d);
                            quantize_row_ref(t, r.data(), q.data(), d);
                            dequantize_row_ref(t, q.data(), y.data(), d);
                            if (v >= 2) hq4_unrotate(y.data(), d);
                        }
                        for (int64_t j = 0; j < d; ++j) num[v] += double(y[size_t(j)] - x[j]) * (y[size_t(j)] - x[j]);
                    }
                    for (int64_t j = 0; j < d; ++j) den += double(x[j]) * x[j];
                }
            }
        }
        std::printf("%s rows:", part == 0 ? "K" : "V");
        for (int v = 0; v < 5; ++v) std::printf("  %s %.5f", names[v], num[v] / den);
        std::printf("\n");
    }
    return 0;
}
