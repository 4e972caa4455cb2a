// tools/eval/llamacpp_session.cpp — see llamacpp_session.h for the file layout.
#include "eval/llamacpp_session.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "heterokv/file_io.h"

namespace hkv::eval {

namespace {

constexpr uint32_t kSessionMagic = 0x6767736e;  // 'ggsn'
constexpr uint32_t kSessionVersion = 11;

class Writer {
public:
    explicit Writer(std::FILE* f) : f_(f) {}
    void raw(const void* p, size_t n) {
        if (ok_ && n > 0 && std::fwrite(p, 1, n, f_) != n) ok_ = false;
    }
    template <class T> void put(T x) { raw(&x, sizeof x); }
    bool ok() const { return ok_; }

private:
    std::FILE* f_;
    bool ok_ = true;
};

}  // namespace

Status write_llamacpp_session(const std::string& path, const Context& ctx, std::span<const int32_t> tokens,
                              int32_t n_cells) {
    const ModelInfo c = model_info(ctx.model());
    const KvStats kv = ctx.kv_stats();
    // Every cache type is one of llama.cpp's (same GGML ids; q8_0 / q4_0 rows are whole blocks per
    // head, so a cell's row is the heads' rows back to back, as llama.cpp's ggml_row_size of n_embd_k_gqa).
    for (KvType t : {kv.type, kv.type_v}) {
        if (t != KvType::kF16 && t != KvType::kF32 && t != KvType::kBF16 && t != KvType::kQ8_0 && t != KvType::kQ4_0) {
            return Status::unsupported("llama.cpp session: KV type %s has no llama.cpp cache equivalent", kv_type_name(t));
        }
    }
    if (n_cells < 0 || size_t(n_cells) > tokens.size()) {
        return Status::invalid("llama.cpp session: %d cells for %zu tokens", n_cells, tokens.size());
    }
    std::vector<KvHeadView> heads;  // [n_layer, n_head_kv]
    for (int32_t il = 0; il < c.n_layer; ++il) {
        for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
            HKV_ASSIGN_OR_RETURN(const KvHeadView h, ctx.kv_head(il, ih));
            if (h.type != kv.type || h.type_v != kv.type_v) {
                return Status::unsupported("llama.cpp session: head %d of layer %d holds %s/%s rows, the cache %s/%s: "
                                           "llama.cpp caches have one K and one V type (per-head precision, a "
                                           "policy's kv= option, cannot be exported)",
                                           ih, il, kv_type_name(h.type), kv_type_name(h.type_v),
                                           kv_type_name(kv.type), kv_type_name(kv.type_v));
            }
            heads.push_back(h);
            bool dense = h.n_slot >= n_cells;
            for (int32_t s = 0; dense && s < n_cells; ++s) dense = h.pos[size_t(s)] == s;
            if (!dense) {
                return Status::invalid("llama.cpp session: head %d of layer %d does not hold positions 0..%d "
                                       "in order (only an uncompressed cache can be exported)",
                                       ih, il, n_cells - 1);
            }
        }
    }

    // A new file renamed over `path` when complete (a device or FIFO target is refused).
    return file_write_atomic(path, [&](std::FILE* f) -> Status {
        Writer w(f);
        w.put(kSessionMagic);
        w.put(kSessionVersion);
        w.put(uint32_t(tokens.size()));
        w.raw(tokens.data(), tokens.size_bytes());
        w.put(uint32_t(c.arch.size()));
        w.raw(c.arch.data(), c.arch.size());
        w.put(uint32_t(1));  // streams
        w.put(uint32_t(n_cells));
        for (int32_t s = 0; s < n_cells; ++s) {
            w.put(int32_t(s));   // position
            w.put(uint32_t(1));  // one sequence id
            w.put(int32_t(0));   // sequence 0
        }
        w.put(uint32_t(0));  // V not transposed (flash attention)
        w.put(uint32_t(c.n_layer));
        w.put(uint64_t(0));

        // One layer's rows, a block of cells at a time: row s = heads 0..n_head_kv-1 of slot s.
        constexpr int32_t kBlock = 1024;
        std::vector<uint8_t> buf;
        for (int part = 0; part < 2 && w.ok(); ++part) {
            const size_t head_bytes = heads.empty() ? 0 : part == 0 ? heads[0].row_bytes : heads[0].v_row_bytes;
            const uint64_t cell_bytes = uint64_t(head_bytes) * uint64_t(c.n_head_kv);
            buf.resize(size_t(cell_bytes) * kBlock);
            for (int32_t il = 0; il < c.n_layer && w.ok(); ++il) {
                w.put(int32_t(part == 0 ? kv.type : kv.type_v));  // KvType values are GGML type ids
                w.put(cell_bytes);
                for (int32_t s0 = 0; s0 < n_cells && w.ok(); s0 += kBlock) {
                    const int32_t n = std::min(kBlock, n_cells - s0);
                    for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
                        for (int32_t i = 0; i < n; ++i) {
                            const KvHeadView& h = heads[size_t(il) * size_t(c.n_head_kv) + size_t(ih)];
                            const void* src = part == 0 ? h.k_row(s0 + i) : h.v_row(s0 + i);
                            std::memcpy(buf.data() + size_t(i) * cell_bytes + size_t(ih) * head_bytes, src, head_bytes);
                        }
                    }
                    w.raw(buf.data(), size_t(n) * size_t(cell_bytes));
                }
            }
        }
        if (!w.ok()) {
            return Status::io_error("llama.cpp session: writing %s failed: %s", path.c_str(), std::strerror(errno ? errno : EIO));
        }
        return Status();
    }, "llama.cpp session:");
}

namespace {

// k copies of w, then k2 of w2, separated by spaces: "the the a a"
std::string words_text(const std::string& w, size_t k, const std::string& w2, size_t k2) {
    std::string s;
    for (size_t i = 0; i < k + k2; ++i) {
        if (i) s += ' ';
        s += i < k ? w : w2;
    }
    return s;
}

}  // namespace

Status SessionText::init(const Tokenizer& tok, int32_t max_d) {
    if (max_d < 0) return Status::invalid("session text: depth %d < 0", max_d);
    const size_t nb = tok.encode("", true).size();  // BOS or nothing
    const char* words[] = {"the", "a", "and", "of", "x"};
    for (const char* w : words) {
        for (const char* w2 : words) {
            if (w == w2) continue;
            // one token per word: [BOS] first T T T2 T2, T2 unlike T and the first token
            const std::vector<int32_t> t = tok.encode(words_text(w, 3, w2, 2), true);
            const bool one_each = t.size() == nb + 5 && t[nb + 1] == t[nb + 2] && t[nb + 3] == t[nb + 4] &&
                                  t[nb + 3] != t[nb + 2] && t[nb + 3] != t[nb];
            if (!one_each) continue;
            const size_t n_words = size_t(max_d) > nb ? size_t(max_d) - nb : 0;
            std::vector<int32_t> f = tok.encode(words_text(w, n_words, w2, 0), true);
            f.resize(std::min(f.size(), size_t(max_d)));  // max_d <= nb: the BOS alone, cut to max_d
            if (f.size() != size_t(max_d)) continue;
            word = w, word2 = w2, n_bos = nb, fill = std::move(f);
            return Status();
        }
    }
    return Status::invalid("--llamacpp-session: no two of the words 'the', 'a', 'and', 'of', 'x' are one token each "
                           "of this tokenizer however they repeat (or it appends EOS to every text), so no prompt "
                           "text extends the session's tokens");
}

Expected<std::string> SessionText::pp_text(const Tokenizer& tok, int32_t d, int32_t n_prompt) const {
    if (d < 2 || size_t(d) > fill.size() || n_prompt < 1) {
        return Status::invalid("session text: depth %d outside 2 .. %zu, or %d new tokens", d, fill.size(), n_prompt);
    }
    const size_t keep = size_t(d - 1);  // the session's tokens the text repeats (n_bos <= keep)
    std::string text = words_text(word, keep - n_bos, word2, size_t(n_prompt));
    const std::vector<int32_t> got = tok.encode(text, true);
    const bool same = got.size() == keep + size_t(n_prompt) &&
                      std::equal(fill.begin(), fill.begin() + std::ptrdiff_t(keep), got.begin()) &&
                      got[keep] != fill[keep];
    if (!same) {
        return Status::internal("--llamacpp-session: the prompt text of depth %d does not tokenize to the session's "
                                "first %d tokens and %d others (%zu tokens)", d, d - 1, n_prompt, got.size());
    }
    return text;
}

}  // namespace hkv::eval
