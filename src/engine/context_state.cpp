// engine/context_state.cpp — saved contexts: Context::state_save_file / state_load_file and the
// stream forms (heterokv/engine.h). The format (version 2, little-endian; docs/saved-contexts.md):
//
//   "HKVSTATE" u32 version u32 flags(0)
//   model     str16 arch, i32 n_vocab n_embd n_layer n_head n_head_kv head_dim n_ff, u64 fingerprint
//   cache     str32 policy spec, u32 k_type v_type (GGML ids), i32 page_size, u8 swa_full,
//             u8 score_lane, i32 n_ctx of the saving context,
//             u32 [n_layer * n_head_kv, 2] each head's K and V type (version 2; version 1 files,
//             which have none, still load: every head has k_type / v_type)
//   sequence  i32 n_past, i32 x3 prompt segment (index, pos0, n_tokens), i32 x3 current segment,
//             i64 decode steps, i32 [n_past] tokens, u8 has_logits + f32 [n_vocab] logits,
//             u32 n_budget (0 or n_layer * n_head_kv) + i32 [n_budget], u64 n + [n] policy state,
//             u64 n + [n] application data
//   heads     per (layer, KV head): i32 n_slot, u8 compacted, i32 [n_slot] positions,
//             f32 [n_slot] score lane (score_lane only), K rows [n_slot, the head's k_row_bytes],
//             V rows [n_slot, v_row_bytes]
//   cold      u8 has_cold; then per (layer, KV head): i32 rows, i32 [rows] positions, K rows, V rows
//   u64 FNV-1a checksum of every byte before it
//
// Every count is checked against the model, this context and the bytes left before anything is
// allocated for it; a failed load leaves the context empty.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "engine/context_impl.h"
#include "heterokv/file_io.h"
#include "heterokv/types.h"
#include "model/model.h"

namespace hkv {
namespace {

constexpr char kMagic[8] = {'H', 'K', 'V', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kVersion = 2;  // 2: per-head K/V types (issue 19 item 5); 1 still loads
constexpr uint64_t kMaxPolicySpec = 1 << 16;
constexpr uint64_t kMaxPolicyState = uint64_t(1) << 32;

struct Fnv {
    uint64_t h = 0xcbf29ce484222325ull;
    void add(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    }
    template <typename T>
    void put(T v) {
        add(&v, sizeof v);
    }
    void str(const std::string& s) {
        put<uint64_t>(s.size());
        add(s.data(), s.size());
    }
};

void hash_value(Fnv& f, const GgufValue& v) {
    f.put<uint32_t>(uint32_t(v.type));
    switch (v.type) {
        case GgufType::kString: f.str(v.str); break;
        case GgufType::kArray:
            f.put<uint32_t>(uint32_t(v.elem_type));
            f.put<uint64_t>(v.arr.size());
            for (const GgufValue& e : v.arr) hash_value(f, e);
            break;
        case GgufType::kF32:
        case GgufType::kF64: f.put<double>(v.f); break;
        case GgufType::kBool: f.put<uint8_t>(v.b); break;
        default: f.put<uint64_t>(v.u), f.put<int64_t>(v.i); break;
    }
}

// The model's fingerprint: its GGUF metadata (hyperparameters, tokenizer, chat template), its
// tensor table (names, types, shapes) and the first and last 64 bytes of every tensor, so another
// file of the same shape (a fine-tune, another quantization) differs.
uint64_t model_fingerprint(const Model& model) {
    const GgufFile& g = model.gguf();
    Fnv f;
    for (const auto& [key, value] : g.metadata()) {
        f.str(key);
        hash_value(f, value);
    }
    for (const GgufTensor& t : g.tensors()) {
        f.str(t.name);
        f.put<uint32_t>(uint32_t(t.type));
        for (int64_t ne : t.ne) f.put<int64_t>(ne);
        const size_t n = std::min<size_t>(64, t.nbytes);
        if (t.data && n > 0) {
            f.add(t.data, n);
            f.add(t.data + t.nbytes - n, n);
        }
    }
    return f.h;
}

// A stream that counts and checksums what goes through it.
struct Out {
    std::FILE* f;
    Fnv sum;
    int64_t n = 0;
    bool ok = true;
    void bytes(const void* p, size_t len) {
        if (!ok || len == 0) return;
        sum.add(p, len);
        ok = std::fwrite(p, 1, len, f) == len;
        n += int64_t(len);
    }
    template <typename T>
    void put(T v) {
        bytes(&v, sizeof v);
    }
};

struct In {
    std::FILE* f;
    uint64_t left;
    Fnv sum;
    Status st;
    bool bytes(void* p, size_t len) {
        if (!st.ok()) return false;
        if (len > left) {
            st = Status::corrupt("saved state: truncated (%zu bytes needed, %llu left)", len, (unsigned long long)left);
            return false;
        }
        if (len > 0 && std::fread(p, 1, len, f) != len) {
            st = Status::corrupt("saved state: truncated (the stream ended early)");
            return false;
        }
        sum.add(p, len);
        left -= len;
        return true;
    }
    template <typename T>
    T get() {
        T v{};
        bytes(&v, sizeof v);
        return v;
    }
    // A count of items of item_bytes each, at most max_n and within what is left.
    bool count(uint64_t n, uint64_t max_n, uint64_t item_bytes, const char* what) {
        if (!st.ok()) return false;
        if (n > max_n) {
            st = Status::corrupt("saved state: %s of %llu is out of range (at most %llu)", what, (unsigned long long)n,
                                 (unsigned long long)max_n);
            return false;
        }
        if (item_bytes > 0 && n > left / item_bytes) {
            st = Status::corrupt("saved state: truncated (%s of %llu needs %llu bytes, %llu left)", what,
                                 (unsigned long long)n, (unsigned long long)(n * item_bytes), (unsigned long long)left);
            return false;
        }
        return true;
    }
    bool str(std::string* s, uint64_t len, uint64_t max_len, const char* what) {
        if (!count(len, max_len, 1, what)) return false;
        s->assign(size_t(len), '\0');
        return bytes(s->data(), size_t(len));
    }
};

struct Shape {
    std::string arch;
    int32_t v[7] = {};  // n_vocab n_embd n_layer n_head n_head_kv head_dim n_ff
};

Shape model_shape(const Model& m) {
    const ModelConfig& c = m.config();
    Shape s;
    s.arch = model_info(m).arch;
    const int32_t v[7] = {c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.n_ff};
    std::copy(v, v + 7, s.v);
    return s;
}

std::string shape_text(const Shape& s) {
    char b[256];
    std::snprintf(b, sizeof b, "%.32s: vocab %d, embd %d, %d layers, %d heads, %d KV heads, head_dim %d, ff %d",
                  s.arch.c_str(), s.v[0], s.v[1], s.v[2], s.v[3], s.v[4], s.v[5], s.v[6]);
    return b;
}

bool segment_ok(const Segment& s, int32_t n_past) {
    return s.index >= 0 && s.pos0 >= 0 && s.n_tokens >= 0 && int64_t(s.pos0) + s.n_tokens <= n_past;
}

}  // namespace

std::span<const int32_t> Context::tokens() const {
    return std::span<const int32_t>(impl_->tokens.data(), size_t(impl_->n_past));
}

Expected<int64_t> Context::state_write(std::FILE* f, std::string_view app_data) {
    if (app_data.size() > kStateMaxAppData) {
        return Status::invalid("saved state: %zu bytes of application data (at most %zu)", app_data.size(),
                               kStateMaxAppData);
    }
    Impl& I = *impl_;
    if (!I.reset_needed.empty()) return Status(StatusCode::kFailedPrecondition, I.reset_needed);
    KvStore& kv = *I.kv;
    HKV_TRY(kv.apply_all_pending());
    const ModelConfig& c = I.model->config();
    const KvStoreConfig& kc = kv.config();
    std::string pstate;
    PolicyStateIO pio;
    pio.out = &pstate;
    HKV_TRY(I.policy->policy().state(pio).with_context("saved state"));
    Out o{f};
    o.bytes(kMagic, sizeof kMagic);
    o.put<uint32_t>(kVersion);
    o.put<uint32_t>(0);
    const Shape sh = model_shape(*I.model);
    o.put<uint16_t>(uint16_t(std::min<size_t>(sh.arch.size(), 256)));
    o.bytes(sh.arch.data(), std::min<size_t>(sh.arch.size(), 256));
    for (int32_t v : sh.v) o.put<int32_t>(v);
    o.put<uint64_t>(model_fingerprint(*I.model));
    o.put<uint32_t>(uint32_t(I.params.policy.size()));
    o.bytes(I.params.policy.data(), I.params.policy.size());
    o.put<uint32_t>(uint32_t(I.params.k_type()));
    o.put<uint32_t>(uint32_t(I.params.v_type()));
    o.put<int32_t>(kc.page_size);
    o.put<uint8_t>(I.params.swa_full);
    o.put<uint8_t>(kc.score_lane);
    o.put<int32_t>(I.params.n_ctx);
    for (int32_t il = 0; il < c.n_layer; ++il) {
        for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
            o.put<uint32_t>(uint32_t(kv.types(il, ih).k));
            o.put<uint32_t>(uint32_t(kv.types(il, ih).v));
        }
    }
    // sequence
    const PolicyRuntime& rt = *I.policy;
    o.put<int32_t>(I.n_past);
    for (const Segment& s : {rt.prompt(), rt.segment()}) {
        o.put<int32_t>(s.index), o.put<int32_t>(s.pos0), o.put<int32_t>(s.n_tokens);
    }
    o.put<int64_t>(rt.stats().decode_steps);
    o.bytes(I.tokens.data(), size_t(I.n_past) * sizeof(int32_t));
    o.put<uint8_t>(I.n_past > 0);
    if (I.n_past > 0) o.bytes(I.logits.data(), I.logits.size() * sizeof(float));
    const std::vector<int32_t>& budget = I.n_past > 0 ? rt.budget().n_keep : std::vector<int32_t>();
    o.put<uint32_t>(uint32_t(budget.size()));
    o.bytes(budget.data(), budget.size() * sizeof(int32_t));
    o.put<uint64_t>(pstate.size());
    o.bytes(pstate.data(), pstate.size());
    o.put<uint64_t>(app_data.size());
    o.bytes(app_data.data(), app_data.size());
    // heads (positions written as i32 whatever the width of the cache's lane)
    std::vector<int32_t> pos_i32;
    for (int32_t il = 0; il < c.n_layer; ++il) {
        for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
            const int32_t n = kv.n_slot(il, ih);
            o.put<int32_t>(n);
            o.put<uint8_t>(kv.head_fine(il, ih));
            pos_i32.resize(size_t(n));
            kv.positions(il, ih).copy(0, size_t(n), pos_i32.data());
            o.bytes(pos_i32.data(), size_t(n) * sizeof(int32_t));
            if (kc.score_lane) o.bytes(kv.scores(il, ih), size_t(n) * sizeof(float));
            for (int32_t s = 0; s < n; ++s) o.bytes(kv.k_row(il, ih, s), kv.k_row_bytes(il, ih));
            for (int32_t s = 0; s < n; ++s) o.bytes(kv.v_row(il, ih, s), kv.v_row_bytes(il, ih));
        }
    }
    // cold tier
    const bool cold = kv.cold_tier() != nullptr;
    o.put<uint8_t>(cold);
    if (cold) {
        std::vector<uint8_t> k, v;
        std::vector<int32_t> pos;
        for (int32_t il = 0; il < c.n_layer; ++il) {
            for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
                HKV_TRY(kv.cold_export(il, ih, &k, &v, &pos));
                o.put<int32_t>(int32_t(pos.size()));
                o.bytes(pos.data(), pos.size() * sizeof(int32_t));
                o.bytes(k.data(), k.size());
                o.bytes(v.data(), v.size());
            }
        }
    }
    const uint64_t sum = o.sum.h;
    o.put<uint64_t>(sum);
    if (!o.ok) return Status::io_error("saved state: write failed after %lld bytes", (long long)o.n);
    return o.n;
}

Expected<int64_t> Context::state_save_file(const std::string& path, std::string_view app_data) {
    int64_t n = 0;
    try {
        HKV_TRY(file_write_atomic(
            path,
            [&](std::FILE* f) -> Status {
                HKV_ASSIGN_OR_RETURN(n, state_write(f, app_data));
                return Status();
            },
            "saved state"));
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("saved state: out of memory writing %s", path.c_str());
    }
    return n;
}

Status Context::state_read(std::FILE* f, uint64_t size, std::string* app_data) {
    Impl& I = *impl_;
    reset();
    Status st;
    try {
        st = [&]() -> Status {
            KvStore& kv = *I.kv;
            const ModelConfig& c = I.model->config();
            const KvStoreConfig& kc = kv.config();
            In in{f, size};
            char magic[8] = {};
            in.bytes(magic, 8);
            if (!in.st.ok() || std::memcmp(magic, kMagic, 8) != 0) {
                return Status::invalid("saved state: not a heterokv saved context (no HKVSTATE magic)");
            }
            const uint32_t version = in.get<uint32_t>();
            (void)in.get<uint32_t>();  // flags
            HKV_TRY(in.st);
            if (version != 1 && version != kVersion) {
                return Status::unsupported("saved state: format version %u; this build reads versions 1 and %u",
                                           version, kVersion);
            }
            // ---- model ----
            Shape file;
            in.str(&file.arch, in.get<uint16_t>(), 256, "architecture name");
            for (int32_t& v : file.v) v = in.get<int32_t>();
            const uint64_t fp = in.get<uint64_t>();
            HKV_TRY(in.st);
            const Shape mine = model_shape(*I.model);
            if (file.arch != mine.arch || !std::equal(file.v, file.v + 7, mine.v)) {
                return Status::invalid("saved state is for another model (%s); this one is %s",
                                       shape_text(file).c_str(), shape_text(mine).c_str());
            }
            if (fp != model_fingerprint(*I.model)) {
                return Status::invalid("saved state is for another model of the same shape (%s): its weights or "
                                       "tokenizer metadata differ (fingerprint %016llx, this model %016llx)",
                                       shape_text(mine).c_str(), (unsigned long long)fp,
                                       (unsigned long long)model_fingerprint(*I.model));
            }
            // ---- cache setup ----
            std::string policy;
            in.str(&policy, in.get<uint32_t>(), kMaxPolicySpec, "policy spec");
            const uint32_t kt = in.get<uint32_t>(), vt = in.get<uint32_t>();
            const int32_t page = in.get<int32_t>();
            const uint8_t swa_full = in.get<uint8_t>(), lane = in.get<uint8_t>();
            const int32_t n_ctx_saved = in.get<int32_t>();
            HKV_TRY(in.st);
            if (policy != I.params.policy) {
                return Status::invalid("saved state was made with policy '%.200s'; this context runs '%.200s' (the "
                                       "policy and its budget must be the same)",
                                       policy.c_str(), I.params.policy.c_str());
            }
            if (kt != uint32_t(I.params.k_type()) || vt != uint32_t(I.params.v_type())) {
                return Status::invalid("saved state has K/V cache types %s/%s; this context uses %s/%s (-ctk/-ctv)",
                                       kv_type_name(KvType(kt)), kv_type_name(KvType(vt)),
                                       kv_type_name(I.params.k_type()), kv_type_name(I.params.v_type()));
            }
            if (page != kc.page_size) {
                return Status::invalid("saved state has KV pages of %d slots; this context uses %d (--kv-page-size)",
                                       page, kc.page_size);
            }
            if (bool(swa_full) != I.params.swa_full) {
                return Status::invalid("saved state was made %s --swa-full; this context runs %s it",
                                       swa_full ? "with" : "without", I.params.swa_full ? "with" : "without");
            }
            if (bool(lane) != kc.score_lane) return Status::corrupt("saved state: score lane flag does not fit the policy");
            // each head's K/V types (version 1: the cache's types everywhere): rows are read at the
            // sizes of this context's types, so a head whose types differ is refused, not misread
            for (int32_t il = 0; il < c.n_layer; ++il) {
                for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
                    const uint32_t hk = version == 1 ? kt : in.get<uint32_t>();
                    const uint32_t hv = version == 1 ? vt : in.get<uint32_t>();
                    HKV_TRY(in.st);
                    const KvRowTypes mine = kv.types(il, ih);
                    if (hk != uint32_t(mine.k) || hv != uint32_t(mine.v)) {
                        return Status::invalid("saved state: layer %d head %d holds %s/%s rows; this context gives it "
                                               "%s/%s (per-head types come from the policy's kv= option and its "
                                               "taxonomy: use the same ones)",
                                               il, ih, kv_type_name(KvType(hk)), kv_type_name(KvType(hv)),
                                               kv_type_name(KvType(uint32_t(mine.k))),
                                               kv_type_name(KvType(uint32_t(mine.v))));
                    }
                }
            }
            // ---- sequence ----
            const int32_t n_past = in.get<int32_t>();
            Segment seg[2];
            for (Segment& s : seg) s.index = in.get<int32_t>(), s.pos0 = in.get<int32_t>(), s.n_tokens = in.get<int32_t>();
            const int64_t decode_steps = in.get<int64_t>();
            HKV_TRY(in.st);
            if (n_past < 0) return Status::corrupt("saved state: %d tokens", n_past);
            if (n_past > I.params.n_ctx) {
                return Status::invalid("saved state holds %d tokens (saved with a context of %d); this context holds "
                                       "at most %d (-c)",
                                       n_past, n_ctx_saved, I.params.n_ctx);
            }
            if (n_past > 0 && (!segment_ok(seg[0], n_past) || seg[0].index != 0 || seg[0].pos0 != 0 ||
                               seg[0].n_tokens < 1 || !segment_ok(seg[1], n_past) || decode_steps < 0)) {
                return Status::corrupt("saved state: segments do not fit a sequence of %d tokens", n_past);
            }
            std::vector<int32_t> tokens;
            in.count(uint64_t(n_past), uint64_t(n_past), 4, "token count");
            HKV_TRY(in.st);
            tokens.resize(size_t(n_past));
            in.bytes(tokens.data(), tokens.size() * 4);
            for (int32_t t : tokens) {
                if (t < 0 || t >= c.n_vocab) return Status::corrupt("saved state: token id %d outside the vocabulary", t);
            }
            const uint8_t has_logits = in.get<uint8_t>();
            std::vector<float> logits(size_t(c.n_vocab), 0.0f);
            if (has_logits) in.bytes(logits.data(), logits.size() * sizeof(float));
            const uint32_t n_budget = in.get<uint32_t>();
            const uint64_t heads = uint64_t(c.n_layer) * uint64_t(c.n_head_kv);
            HKV_TRY(in.st);
            if ((n_budget != 0 && n_budget != heads) || (n_budget == 0) != (n_past == 0) || bool(has_logits) != (n_past > 0)) {
                return Status::corrupt("saved state: %u budgets for %llu heads and %d tokens", n_budget,
                                       (unsigned long long)heads, n_past);
            }
            KvBudget budget;
            budget.init(c.n_layer, c.n_head_kv, 0);
            if (n_budget) in.bytes(budget.n_keep.data(), size_t(n_budget) * 4);
            const uint64_t n_state = in.get<uint64_t>();
            std::string pstate;
            in.str(&pstate, n_state, kMaxPolicyState, "policy state");
            std::string app;
            in.str(&app, in.get<uint64_t>(), kStateMaxAppData, "application data");
            HKV_TRY(in.st);
            if (n_past > 0) {
                HKV_TRY(I.policy->restore(seg[0], seg[1], budget, pstate, decode_steps).with_context("saved state"));
            } else if (!pstate.empty()) {
                return Status::corrupt("saved state: policy state without a sequence");
            }
            // ---- heads ----
            std::vector<uint8_t> k, v;
            std::vector<int32_t> pos;
            std::vector<float> score;
            for (int32_t il = 0; il < c.n_layer; ++il) {
                for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
                    const int32_t n = in.get<int32_t>();
                    const uint8_t fine = in.get<uint8_t>();
                    const size_t kr = kv.k_row_bytes(il, ih), vr = kv.v_row_bytes(il, ih);
                    const uint64_t row = 4 + (lane ? 4 : 0) + kr + vr;
                    if (!in.count(uint64_t(std::max(n, 0)), uint64_t(n_past), row, "slot count") || n < 0) {
                        return in.st.ok() ? Status::corrupt("saved state: %d slots", n) : in.st;
                    }
                    pos.resize(size_t(n));
                    in.bytes(pos.data(), size_t(n) * 4);
                    score.resize(lane ? size_t(n) : 0);
                    in.bytes(score.data(), score.size() * 4);
                    k.resize(size_t(n) * kr);
                    v.resize(size_t(n) * vr);
                    in.bytes(k.data(), k.size());
                    in.bytes(v.data(), v.size());
                    HKV_TRY(in.st);
                    for (int32_t p : pos) {
                        if (p >= n_past) {
                            return Status::corrupt("saved state: layer %d head %d holds position %d of %d", il, ih, p,
                                                   n_past);
                        }
                    }
                    HKV_TRY(kv.import_head(il, ih, n, k.data(), v.data(), pos.data(), lane ? score.data() : nullptr,
                                           fine != 0)
                                .with_context("saved state"));
                }
            }
            // ---- cold tier ----
            const uint8_t cold = in.get<uint8_t>();
            HKV_TRY(in.st);
            for (int32_t il = 0; cold && il < c.n_layer; ++il) {
                for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
                    const int32_t n = in.get<int32_t>();
                    const size_t kr = kv.k_row_bytes(il, ih), vr = kv.v_row_bytes(il, ih);
                    const uint64_t row = 4 + kr + vr;
                    if (!in.count(uint64_t(std::max(n, 0)), uint64_t(n_past), row, "cold row count") || n < 0) {
                        return in.st.ok() ? Status::corrupt("saved state: %d cold rows", n) : in.st;
                    }
                    pos.resize(size_t(n));
                    k.resize(size_t(n) * kr);
                    v.resize(size_t(n) * vr);
                    in.bytes(pos.data(), size_t(n) * 4);
                    in.bytes(k.data(), k.size());
                    in.bytes(v.data(), v.size());
                    HKV_TRY(in.st);
                    HKV_TRY(kv.cold_import(il, ih, n, k.data(), v.data(), pos.data()).with_context("saved state"));
                }
            }
            const uint64_t want = in.sum.h;
            const uint64_t sum = in.get<uint64_t>();
            HKV_TRY(in.st);
            if (sum != want) return Status::corrupt("saved state: checksum mismatch (the file is damaged)");
            if (in.left != 0) {
                return Status::corrupt("saved state: %llu bytes after the end", (unsigned long long)in.left);
            }
            I.tokens = std::move(tokens);
            I.logits = std::move(logits);
            I.n_past = n_past;
            if (app_data) *app_data = std::move(app);
            return Status();
        }();
    } catch (const std::bad_alloc&) {
        st = Status::out_of_memory("saved state: out of memory");
    }
    if (!st.ok()) reset();
    return st;
}

Status Context::state_load_file(const std::string& path, std::string* app_data) {
    uint64_t size = 0;
    HKV_ASSIGN_OR_RETURN(const int fd, file_open_read(path, &size, "saved state"));
    std::FILE* f = ::fdopen(fd, "rb");
    if (!f) {
        ::close(fd);
        return Status::io_error("saved state %s: cannot open a stream", path.c_str());
    }
    Status st = state_read(f, size, app_data);
    std::fclose(f);
    return st.ok() ? st : st.with_context(path);
}

}  // namespace hkv
