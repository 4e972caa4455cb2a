// python/heterokv_module.cpp — the `heterokv` Python module (pybind11): the public API of
// include/heterokv/ and nothing else. A Status error becomes heterokv.Error (a RuntimeError whose
// message is Status::to_string() and whose .code is the status code's name); Ctrl-C stops an eval
// or a generation between chunks and raises KeyboardInterrupt.
//
//   import heterokv as hkv
//   m = hkv.Model("stories260K.gguf")
//   ctx = hkv.Context(m, n_ctx=512, policy="snapkv:budget=64")
//   text = ctx.generate("Once upon a time", n_predict=64, temp=0)
//   ctx.kv_stats().bytes_in_use
//   hkv.score(m, text_tokens, ["full", "snapkv:budget=64"], n_context=256)  # PPL, KLD, top-1
//
// The engine runs with the GIL released; callbacks (on_token) take it back. A Context is not
// thread-safe (as in C++): using one from two threads at once, or calling a mutating method from
// its own on_token callback, raises heterokv.Error.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "heterokv/heterokv.h"
#include "score.h"

namespace py = pybind11;

namespace hkv::python {
namespace {

// A non-ok Status on its way to Python (translated into heterokv.Error below).
struct StatusError {
    Status status;
};

[[noreturn]] void raise(const Status& st) { throw StatusError{st}; }
void check(const Status& st) {
    if (!st.ok()) raise(st);
}
template <typename T>
T take(Expected<T> e) {
    if (!e.ok()) raise(e.status());
    return std::move(e).value();
}

// array.array('f') holding a copy of v: a buffer (numpy.asarray(a) views it without a copy) that
// also indexes and iterates like a list.
py::object float_array(std::span<const float> v) {
    py::object a = py::module_::import("array").attr("array")("f");
    a.attr("frombytes")(py::bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    return a;
}

// Text from bytes that may end inside a UTF-8 character (a token can hold part of one).
py::str utf8(const std::string& s) {
    return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace"));
}

// Polls Python's signal handlers (Ctrl-C) from the engine's thread; true once one raised.
struct Interrupt {
    bool raised = false;
    bool poll() {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) raised = true;
        return raised;
    }
    // After the engine returned (GIL held): the pending Python exception, or the status.
    void finish(const Status& st) {
        if (raised) throw py::error_already_set();
        check(st);
    }
};

struct ModelHandle {
    std::shared_ptr<const Model> model;
    const Tokenizer& tok() const { return model_tokenizer(*model); }
    void check_ids(const std::vector<int32_t>& ids) const {
        const int32_t nv = tok().n_vocab();
        for (size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] < 0 || ids[i] >= nv) {
                raise(Status::invalid("token id %d at index %zu is outside the vocabulary (%d)", ids[i], i, nv));
            }
        }
    }
};

// type_k / type_v: "" = kv_type's (ContextParams::type_k / type_v unset).
ContextParams context_params(int32_t n_ctx, const std::string& policy, const std::string& kv_type, int32_t n_threads,
                             int32_t n_batch, int32_t kv_page_size, int64_t kv_max_bytes, const std::string& kv_cold_dir,
                             bool swa_full, const std::string& type_k = "", const std::string& type_v = "") {
    ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    cp.n_batch = n_batch;
    cp.kv_type = take(kv_type_parse(kv_type));
    if (!type_k.empty()) cp.type_k = take(kv_type_parse(type_k));
    if (!type_v.empty()) cp.type_v = take(kv_type_parse(type_v));
    cp.kv_page_size = kv_page_size;
    cp.kv_max_bytes = kv_max_bytes;
    cp.policy = policy;
    cp.kv_cold_dir = kv_cold_dir;
    cp.swa_full = swa_full;
    return cp;
}

class ContextHandle {
public:
    ContextHandle(const ModelHandle& m, const ContextParams& cp) : model_(m) {
        py::gil_scoped_release nogil;
        ctx_ = take(Context::create(m.model, cp));
    }

    // Runs tokens; with all_logits, returns every token's logits ([n, n_vocab] row-major, flat).
    py::object eval(const std::vector<int32_t>& tokens, bool all_logits) {
        Busy busy(this);
        std::vector<float> all;
        Interrupt intr;
        Status st;
        {
            py::gil_scoped_release nogil;
            st = ctx_->eval(tokens, all_logits ? &all : nullptr, {}, [&] { return intr.poll(); });
        }
        intr.finish(st);
        return all_logits ? float_array(all) : py::none();
    }

    std::string generate(const py::object& prompt, int32_t n_predict, const SamplerParams& sp, bool ignore_eos,
                         bool add_special, bool parse_special, const py::object& on_token) {
        Busy busy(this);
        const Tokenizer& tok = model_.tok();
        std::vector<int32_t> ids;
        if (py::isinstance<py::str>(prompt)) {
            ids = tok.encode(prompt.cast<std::string>(), add_special, parse_special);
        } else {
            ids = prompt.cast<std::vector<int32_t>>();
        }
        if (ids.empty()) {  // as `heterokv run`: an empty prompt is BOS alone
            if (tok.bos() < 0) raise(Status::invalid("empty prompt and the model has no BOS token"));
            ids.push_back(tok.bos());
        }
        model_.check_ids(ids);
        Sampler sampler = take(Sampler::create(sp));
        std::string text;
        Interrupt intr;
        bool failed = false;  // on_token raised: its exception is pending
        Status st;
        {
            py::gil_scoped_release nogil;
            st = hkv::generate(
                *ctx_, sampler, ids, n_predict, ignore_eos,
                [&](int32_t id) {
                    text += tok.token_to_piece(id);
                    if (on_token.is_none()) return !intr.poll();
                    py::gil_scoped_acquire gil;
                    try {
                        const py::object r = on_token(id);
                        return r.is_none() || r.cast<bool>();  // False stops the generation
                    } catch (py::error_already_set& e) {
                        e.restore();
                        failed = true;
                        return false;
                    }
                },
                {}, [&] { return intr.poll(); });
        }
        if (failed) throw py::error_already_set();
        intr.finish(st);
        return text;
    }

    void truncate(int32_t n) {
        Busy busy(this);
        check(ctx_->truncate(n));
    }
    void reset() {
        Busy busy(this);
        ctx_->reset();
    }
    Context& ctx() { return *ctx_; }

private:
    // Marks the context in use; a second user at the same time is an error, not a data race.
    struct Busy {
        explicit Busy(ContextHandle* c) : c_(c) {
            if (c_->busy_.exchange(true)) {
                raise(Status::invalid("context: already in use (by another thread, or from its own callback)"));
            }
        }
        ~Busy() { c_->busy_ = false; }
        ContextHandle* c_;
    };
    ModelHandle model_;
    std::unique_ptr<Context> ctx_;
    std::atomic<bool> busy_{false};
};

py::dict model_info_dict(const ModelInfo& i) {
    py::dict d;
    d["arch"] = i.arch;
    d["name"] = i.name;
    d["n_vocab"] = i.n_vocab;
    d["n_ctx_train"] = i.n_ctx_train;
    d["n_embd"] = i.n_embd;
    d["n_layer"] = i.n_layer;
    d["n_head"] = i.n_head;
    d["n_head_kv"] = i.n_head_kv;
    d["head_dim"] = i.head_dim;
    d["n_ff"] = i.n_ff;
    d["rope_style"] = i.rope_style;
    d["rope_freq_base"] = i.rope_freq_base;
    d["n_swa"] = i.n_swa;
    d["n_swa_layers"] = i.n_swa_layers;
    d["weight_bytes"] = i.weight_bytes;
    d["weight_types"] = i.weight_types;
    d["tied_embeddings"] = i.tied_embeddings;
    d["chat_template"] = i.chat_template;
    return d;
}

std::vector<int32_t> tokens_of(const ModelHandle& m, const py::object& text_or_ids) {
    if (py::isinstance<py::str>(text_or_ids)) return score_tokens(*m.model, text_or_ids.cast<std::string>());
    std::vector<int32_t> ids = text_or_ids.cast<std::vector<int32_t>>();
    m.check_ids(ids);
    return ids;
}

}  // namespace
}  // namespace hkv::python

using namespace hkv;
using namespace hkv::python;

PYBIND11_MODULE(heterokv, m) {
    m.doc() = "heterokv: long-context LLM inference with a per-head compressed KV cache (the public C++ API)";

    // heterokv.Error: every Status error; .code is the status code's name ("invalid argument", ...).
    static py::handle error_type =
        py::exception<StatusError>(m, "Error", PyExc_RuntimeError).release();
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const StatusError& e) {
            py::object inst = py::reinterpret_borrow<py::object>(error_type)(e.status.to_string());
            inst.attr("code") = status_code_name(e.status.code());
            PyErr_SetObject(error_type.ptr(), inst.ptr());
        }
    });

    py::class_<ModelHandle>(m, "Model", "A loaded GGUF model (immutable; share it between contexts).")
        .def(py::init([](const std::string& path) {
                 py::gil_scoped_release nogil;
                 return ModelHandle{take(model_load(path))};
             }),
             py::arg("path"))
        .def_property_readonly("info", [](const ModelHandle& s) { return model_info_dict(model_info(*s.model)); },
                               "architecture and shape (a dict of ModelInfo's fields)")
        .def_property_readonly("n_vocab", [](const ModelHandle& s) { return s.tok().n_vocab(); })
        .def_property_readonly("bos", [](const ModelHandle& s) { return s.tok().bos(); }, "-1 if none")
        .def_property_readonly("eos", [](const ModelHandle& s) { return s.tok().eos(); }, "-1 if none")
        .def("is_eog", [](const ModelHandle& s, int32_t id) { return s.tok().is_eog(id); }, py::arg("id"))
        .def(
            "tokenize",
            [](const ModelHandle& s, const std::string& text, bool add_special, bool parse_special) {
                return s.tok().encode(text, add_special, parse_special);
            },
            py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false,
            "text -> token ids (add_special: BOS/EOS as the model's metadata says)")
        .def(
            "detokenize",
            [](const ModelHandle& s, const std::vector<int32_t>& ids, bool render_special) {
                s.check_ids(ids);
                return utf8(s.tok().decode(ids, render_special));
            },
            py::arg("ids"), py::arg("render_special") = false, "token ids -> text")
        .def(
            "token_to_piece",
            [](const ModelHandle& s, int32_t id, bool render_special) {
                s.check_ids({id});
                return py::bytes(s.tok().token_to_piece(id, render_special));
            },
            py::arg("id"), py::arg("render_special") = false,
            "the bytes a token stands for (may be part of a UTF-8 character)");

    py::class_<KvStats>(m, "KvStats", "What a context's KV cache holds now.")
        .def_readonly("bytes_in_use", &KvStats::bytes_in_use)
        .def_readonly("bytes_reserved", &KvStats::bytes_reserved)
        .def_readonly("bytes_limit", &KvStats::bytes_limit)
        .def_readonly("slots_total", &KvStats::slots_total)
        .def_readonly("n_layer", &KvStats::n_layer)
        .def_readonly("n_head_kv", &KvStats::n_head_kv)
        .def_readonly("page_size", &KvStats::page_size)
        .def_property_readonly("type", [](const KvStats& s) { return kv_type_name(s.type); }, "the K rows' type")
        .def_property_readonly("type_v", [](const KvStats& s) { return kv_type_name(s.type_v); }, "the V rows' type")
        .def_property_readonly(
            "head_types",
            [](const KvStats& s) {
                std::vector<std::pair<std::string, std::string>> t;  // [n_layer * n_head_kv] (K, V)
                for (size_t i = 0; i < s.head_type.size(); ++i)
                    t.emplace_back(kv_type_name(s.head_type[i]), kv_type_name(s.head_type_v.at(i)));
                return t;
            },
            "per-head precision (a policy's kv= option): [n_layer * n_head_kv] (K type, V type) of each head; "
            "empty when every head has type / type_v")
        .def_readonly("n_slot", &KvStats::n_slot, "[n_layer * n_head_kv] live slots per head (il * n_head_kv + ih)")
        .def("__repr__", [](const KvStats& s) {
            return "KvStats(bytes_in_use=" + std::to_string(s.bytes_in_use) +
                   ", slots_total=" + std::to_string(s.slots_total) + ")";
        });

    py::class_<ContextHandle>(m, "Context", "One sequence: its KV cache under a compression policy.")
        .def(py::init([](const ModelHandle& model, int32_t n_ctx, const std::string& policy, const std::string& kv_type,
                         int32_t n_threads, int32_t n_batch, int32_t kv_page_size, int64_t kv_max_bytes,
                         const std::string& kv_cold_dir, bool swa_full, const std::string& type_k,
                         const std::string& type_v) {
                 return std::make_unique<ContextHandle>(model, context_params(n_ctx, policy, kv_type, n_threads, n_batch,
                                                                          kv_page_size, kv_max_bytes, kv_cold_dir,
                                                                          swa_full, type_k, type_v));
             }),
             py::arg("model"), py::arg("n_ctx") = 0, py::arg("policy") = "full", py::arg("kv_type") = "f16",
             py::arg("n_threads") = 0, py::arg("n_batch") = 256, py::arg("kv_page_size") = 64,
             py::arg("kv_max_bytes") = 0, py::arg("kv_cold_dir") = "", py::arg("swa_full") = false,
             py::arg("type_k") = "", py::arg("type_v") = "",
             "kv_type: the K and V rows' type (f16, bf16, f32, q8_0, q4_0, hq4); type_k / type_v: K's or V's "
             "own type instead (llama.cpp's -ctk / -ctv; empty = kv_type)")
        .def("eval", &ContextHandle::eval, py::arg("tokens"), py::arg("all_logits") = false,
             "Runs tokens (one eval: a prompt segment, or a decode step when one token follows the prompt). "
             "all_logits=True returns every token's logits, array('f') of len(tokens) * n_vocab.")
        .def(
            "generate",
            [](ContextHandle& c, const py::object& prompt, int32_t n_predict, float temp, int32_t top_k, float top_p,
               float min_p, float repeat_penalty, int32_t repeat_last_n, uint64_t seed, bool ignore_eos,
               bool add_special, bool parse_special, const py::object& on_token) {
                SamplerParams sp;
                sp.temp = temp;
                sp.top_k = top_k;
                sp.top_p = top_p;
                sp.min_p = min_p;
                sp.repeat_penalty = repeat_penalty;
                sp.penalty_last_n = repeat_last_n;
                sp.seed = seed;
                return utf8(c.generate(prompt, n_predict, sp, ignore_eos, add_special, parse_special, on_token));
            },
            py::arg("prompt"), py::arg("n_predict") = 128, py::arg("temp") = 0.8f, py::arg("top_k") = 40,
            py::arg("top_p") = 0.95f, py::arg("min_p") = 0.05f, py::arg("repeat_penalty") = 1.0f,
            py::arg("repeat_last_n") = 64, py::arg("seed") = 0, py::arg("ignore_eos") = false,
            py::arg("add_special") = true, py::arg("parse_special") = false, py::arg("on_token") = py::none(),
            "The loop of `heterokv run` (hkv::generate): evaluates the prompt (text or ids) in one eval, then "
            "samples up to n_predict tokens (-1: until EOS or the context is full). Returns the generated "
            "text (the token pieces, as `run` prints them); on_token(id) sees each token and may return False to stop.")
        .def_property_readonly("logits", [](ContextHandle& c) { return float_array(c.ctx().logits()); },
                               "the last token's next-token logits, array('f') of n_vocab")
        .def_property_readonly("n_past", [](ContextHandle& c) { return c.ctx().n_past(); })
        .def_property_readonly("n_ctx", [](ContextHandle& c) { return c.ctx().n_ctx(); })
        .def_property_readonly("kv_bytes", [](ContextHandle& c) { return c.ctx().kv_bytes(); },
                               "KV cache bytes in use now")
        .def("kv_stats", [](ContextHandle& c) { return c.ctx().kv_stats(); })
        .def("policy_report", [](ContextHandle& c) { return c.ctx().policy_report(); })
        .def("reset", &ContextHandle::reset, "forgets the sequence")
        .def("truncate", &ContextHandle::truncate, py::arg("n"), "rewinds the sequence to its first n tokens");

    m.def(
        "policy_names", [] {
            std::vector<std::string> out;
            const std::string s = policy_names();
            for (size_t b = 0; b <= s.size();) {
                size_t e = s.find(',', b);
                if (e == std::string::npos) e = s.size();
                std::string name = s.substr(b, e - b);
                while (!name.empty() && name.front() == ' ') name.erase(0, 1);
                if (!name.empty()) out.push_back(name);
                b = e + 1;
            }
            return out;
        },
        "names of the registered KV policies");
    m.def(
        "policy_validate",
        [](const std::string& spec, const ModelHandle& model, int32_t n_ctx, int32_t kv_page_size) {
            check(policy_validate(spec, *model.model, n_ctx, kv_page_size));
        },
        py::arg("spec"), py::arg("model"), py::arg("n_ctx") = 0, py::arg("kv_page_size") = 0,
        "raises heterokv.Error when the spec cannot run on this model and context");
    m.def(
        "kv_bytes_bound",
        [](const ModelHandle& model, int32_t n_prompt, int32_t n_gen, int32_t n_ctx, const std::string& policy,
           const std::string& kv_type, int32_t n_batch, int32_t kv_page_size, const std::string& type_k,
           const std::string& type_v) {
            const ContextParams cp =
                context_params(n_ctx, policy, kv_type, 1, n_batch, kv_page_size, 0, "", false, type_k, type_v);
            return take(kv_bytes_bound(*model.model, cp, n_prompt, n_gen));
        },
        py::arg("model"), py::arg("n_prompt"), py::arg("n_gen"), py::arg("n_ctx") = 0, py::arg("policy") = "full",
        py::arg("kv_type") = "f16", py::arg("n_batch") = 256, py::arg("kv_page_size") = 64, py::arg("type_k") = "",
        py::arg("type_v") = "",
        "the most KV bytes a context holds for a prompt of n_prompt tokens and n_gen generated ones");

    py::class_<ScoreResult>(m, "Score", "One policy's scores over a window (see heterokv.score).")
        .def_readonly("policy", &ScoreResult::policy)
        .def_readonly("n_scored", &ScoreResult::n_scored)
        .def_readonly("nll", &ScoreResult::nll_mean, "mean negative log-likelihood, nats")
        .def_readonly("ppl", &ScoreResult::ppl)
        .def_readonly("kld_mean", &ScoreResult::kld_mean, "KL(full || policy), nats per token")
        .def_readonly("kld_max", &ScoreResult::kld_max)
        .def_readonly("top1", &ScoreResult::top1, "fraction of tokens whose argmax equals full's")
        .def_readonly("kv_bytes_context", &ScoreResult::kv_bytes_context, "after the context's prefill")
        .def_readonly("kv_bytes_end", &ScoreResult::kv_bytes_end, "after the window's last token")
        .def("__repr__", [](const ScoreResult& r) {
            return "Score(policy='" + r.policy + "', ppl=" + std::to_string(r.ppl) + ", kld_mean=" +
                   std::to_string(r.kld_mean) + ", top1=" + std::to_string(r.top1) +
                   ", kv_bytes_end=" + std::to_string(r.kv_bytes_end) + ")";
        });
    m.def(
        "score",
        [](const ModelHandle& model, const py::object& text, const py::object& policies, int32_t n_context,
           int32_t n_threads, int32_t n_batch, const std::string& kv_type, int32_t kv_page_size,
           const std::string& type_k, const std::string& type_v) -> py::object {
            const bool one = py::isinstance<py::str>(policies);
            const std::vector<std::string> specs =
                one ? std::vector<std::string>{policies.cast<std::string>()} : policies.cast<std::vector<std::string>>();
            const std::vector<int32_t> ids = tokens_of(model, text);
            ContextParams cp =
                context_params(0, "full", kv_type, n_threads, n_batch, kv_page_size, 0, "", false, type_k, type_v);
            Interrupt intr;
            Expected<std::vector<ScoreResult>> r = Status();
            {
                py::gil_scoped_release nogil;
                r = score_window(model.model, ids, specs, n_context, cp, [&] { return intr.poll(); });
            }
            intr.finish(r.status());
            std::vector<ScoreResult> res(r->begin() + 1, r->end());  // [0] is the baseline itself
            if (one) return py::cast(res.at(0));
            return py::cast(res);
        },
        py::arg("model"), py::arg("text"), py::arg("policies"), py::arg("n_context"), py::arg("n_threads") = 0,
        py::arg("n_batch") = 0, py::arg("kv_type") = "f16", py::arg("kv_page_size") = 64, py::arg("type_k") = "",
        py::arg("type_v") = "",
        "Scores a window against the full cache, as `heterokv eval ppl` scores one window in context mode: "
        "text (a str: BOS when the model adds one, then its tokens; or token ids as given) is run once under "
        "`full` (the baseline) and once per policy; the first n_context tokens are one prefill (the policy compresses at its "
        "end), the rest are decode steps, each predicted from the cache. Returns a Score per policy (one, or a "
        "list for a list) with PPL, KL(full || policy), top-1 agreement and KV bytes.");
}
