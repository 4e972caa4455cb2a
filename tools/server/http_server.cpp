// server/http_server.cpp — routes, SSE streaming and admission for the HTTP server (see http_server.h).
#include "server/http_server.h"

#include <httplib.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "heterokv/engine.h"
#include "heterokv/log.h"
#include "heterokv/policy.h"
#include "heterokv/system.h"
#include "server/admission.h"
#include "server/chat_template.h"
#include "server/generate.h"
#include "server/listener.h"
#include "server/metrics.h"
#include "server/slot_files.h"

namespace hkv::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int http_status_for(const Status& s) {
    switch (s.code()) {
        case StatusCode::kInvalidArgument:
        case StatusCode::kOutOfRange: return 400;
        case StatusCode::kNotFound: return 404;
        case StatusCode::kUnsupported: return 501;
        case StatusCode::kOutOfMemory: return 503;
        default: return 500;
    }
}

const char* error_type(int status) {
    if (status == 503) return "server_busy";
    if (status == 501) return "not_implemented";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
}

json error_json(int status, const std::string& msg) {
    return {{"error", {{"message", msg}, {"type", error_type(status)}, {"code", status}}}};
}

void reply_error(httplib::Response& res, int status, const std::string& msg) {
    res.status = status;
    res.set_content(dump(error_json(status, msg)), "application/json");
    if (status == 503) res.set_header("Retry-After", "1");
}

void reply_status(httplib::Response& res, const Status& s) { reply_error(res, http_status_for(s), s.message()); }

// Start time of the request this worker thread is handling (set before routing).
thread_local Clock::time_point t_request_start;

const char* metrics_path(const std::string& p) {
    static const char* kKnown[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"};
    for (const char* k : kKnown) {
        if (p == k) return k;
    }
    if (p.rfind("/slots/", 0) == 0) return "/slots";
    return "other";
}

// cpp-httplib's parsing, routing and response writing, driven by the Listener (server/listener.h)
// one complete request at a time instead of by httplib's own accept loop.
class Router : public httplib::Server {
public:
    Router() { serving(true); }
    bool process(httplib::Stream& strm, bool close_connection, bool& connection_closed) {
        return process_request(strm, close_connection, connection_closed, nullptr);
    }
    // httplib calls a chunked content provider only while its server socket looks open.
    void serving(bool on) { svr_sock_ = on ? 0 : INVALID_SOCKET; }
};

}  // namespace

// A request after validation, tokenization and admission, ready to generate.
struct Job {
    CompletionRequest req;
    std::vector<int32_t> prompt;   // [n_prompt] token ids
    GenParams gen;
    std::string policy;        // the spec the Context runs (file aliases resolved to paths)
    std::string policy_label;  // the spec as the client gave it (reported back; no server paths)
    Lease lease;
    std::unique_ptr<Context> ctx;
    bool reusable = false;         // the policy never changes the cache: its prefixes are exact
    int32_t n_cached = 0;          // prompt tokens reused from the slot's kept context
    std::string id;
    int64_t created = 0;
    int64_t kv_reported = 0;       // last bytes added to the metrics' in-use gauge
};

struct HttpServer::Impl {
    std::shared_ptr<const Model> model;
    ServerOptions opt;
    std::string policy_default;  // opt.policy with --taxonomy aliases resolved
    ChatFamily family = ChatFamily::kNone;
    std::string model_id;
    std::unique_ptr<Admission> admission;
    Metrics metrics;
    Router http;
    std::unique_ptr<Listener> listener;
    int port = 0;
    int32_t n_ctx = 0;
    std::atomic<uint64_t> next_id{0};
    // Prompt reuse: what each slot keeps of its last request (its Context and the tokens it holds).
    // An active slot's entry is empty (the job owns the context). Lock order: the admission's lock,
    // then slots_mu (the admission's drop_kept callback); never call Admission with slots_mu held.
    struct SlotCache {
        std::unique_ptr<Context> ctx;
        std::vector<int32_t> tokens;  // [ctx->n_past()]
        std::string policy;
    };
    std::mutex slots_mu;
    std::vector<SlotCache> slots;  // [n_parallel]

    void routes();
    // POST /slots/{id}?action=save|restore|erase (http_server.h).
    void slot_action(const httplib::Request& q, httplib::Response& res);
    Expected<json> slot_save(int32_t slot, const SlotRequest& r);
    Expected<json> slot_restore(int32_t slot, const SlotRequest& r);
    Expected<json> slot_erase(int32_t slot);
    Expected<std::unique_ptr<Job>> admit(const httplib::Request& hreq, Endpoint ep);
    void complete(const httplib::Request& hreq, httplib::Response& res, Endpoint ep);
    json chunk(const Job& job, const std::string& text, const char* finish) const;
    json final_body(const Job& job, const GenResult& r) const;
    static json usage(const Job& job, const GenResult& r);
    // The parameters of every request's Context (the probe at startup uses the same).
    ContextParams context_params(const std::string& policy, int64_t kv_max_bytes) const {
        ContextParams cp;
        cp.n_ctx = n_ctx;
        cp.n_threads = opt.n_threads;
        cp.n_batch = opt.n_batch;
        cp.kv_type = opt.kv_type;
        cp.type_k = opt.type_k;
        cp.type_v = opt.type_v;
        cp.kv_page_size = opt.kv_page_size;
        cp.kv_max_bytes = kv_max_bytes;
        cp.policy = policy;
        return cp;
    }
    GenHooks kv_hooks(Job& job) {
        GenHooks h;
        h.on_kv = [this, &job](int64_t bytes) {
            metrics.add_kv_in_use(bytes - job.kv_reported);
            job.kv_reported = bytes;
        };
        return h;
    }
    // The idle slot whose kept context shares the longest prefix with the prompt, if that prefix is
    // at least half of what the slot keeps (-1: none): a prompt sharing only a few tokens (a BOS, a
    // common preamble) does not take the context another conversation is still using.
    int32_t best_slot(const std::vector<int32_t>& prompt, const std::string& policy) {
        std::lock_guard<std::mutex> lk(slots_mu);
        int32_t best = -1;
        size_t best_n = 0;
        for (size_t i = 0; i < slots.size(); ++i) {
            const SlotCache& c = slots[i];
            if (!c.ctx || c.policy != policy) continue;
            const size_t n = common_prefix(c.tokens, prompt);
            if (n > best_n && 2 * n >= c.tokens.size()) {
                best = int32_t(i);
                best_n = n;
            }
        }
        return best;
    }
    static size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
        const size_t n = std::min(a.size(), b.size());
        size_t i = 0;
        while (i < n && a[i] == b[i]) ++i;
        return i;
    }
    // Takes the leased slot's kept context when its prefix can serve this request: truncated back to
    // the common prefix (at most n_prompt - 1 tokens, so the prompt's last token is evaluated),
    // which is exact only under a policy that never changed the cache and while every head still
    // holds every position (no sliding-window slot left). Otherwise the kept context is freed.
    void take_slot(Job& job) {
        SlotCache c;
        {
            std::lock_guard<std::mutex> lk(slots_mu);
            c = std::move(slots[size_t(job.lease.slot())]);
            slots[size_t(job.lease.slot())] = SlotCache();
        }
        if (!c.ctx || !job.reusable || !job.req.cache_prompt || c.policy != job.policy) return;
        const int32_t n = int32_t(std::min(common_prefix(c.tokens, job.prompt), job.prompt.size() - 1));
        if (n < 1 || !c.ctx->truncate(n).ok()) return;
        const KvStats st = c.ctx->kv_stats();
        for (int32_t slots_of_head : st.n_slot) {
            if (slots_of_head != n) return;
        }
        if (!c.ctx->set_kv_max_bytes(job.lease.bytes()).ok()) return;
        job.ctx = std::move(c.ctx);
        job.n_cached = n;
    }
    void finish_job(Job& job, const GenResult& r, bool keep) {
        metrics.add_kv_in_use(-job.kv_reported);
        job.kv_reported = 0;
        metrics.add_tokens(r.n_prompt, r.n_gen);
        if (keep && job.ctx && job.lease.valid()) {  // the slot keeps the context for the next request
            SlotCache c;
            c.tokens = job.prompt;
            c.tokens.insert(c.tokens.end(), r.tokens.begin(), r.tokens.end());
            c.tokens.resize(size_t(std::min<int64_t>(job.ctx->n_past(), int64_t(c.tokens.size()))));
            if (int64_t(c.tokens.size()) == job.ctx->n_past()) {
                job.lease.keep(job.ctx->kv_bytes());
                c.ctx = std::move(job.ctx);
                c.policy = job.policy;
                std::lock_guard<std::mutex> lk(slots_mu);
                slots[size_t(job.lease.slot())] = std::move(c);
            }
        }
        job.ctx.reset();
        job.lease.release();
    }
};

Expected<std::unique_ptr<Job>> HttpServer::Impl::admit(const httplib::Request& hreq, Endpoint ep) {
    const Tokenizer& tok = model_tokenizer(*model);
    auto job = std::make_unique<Job>();
    HKV_ASSIGN_OR_RETURN(job->req, parse_completion_request(hreq.body, ep, opt.limits, tok.n_vocab()));
    const CompletionRequest& r = job->req;
    if (ep == Endpoint::kChat) {
        // The template's markup holds control tokens; the messages' text does not, unless the
        // request opts in ("parse_special": true).
        std::vector<std::pair<size_t, size_t>> content;
        HKV_ASSIGN_OR_RETURN(std::string text, chat_render(family, r.messages, &content));
        job->prompt = r.parse_special ? tok.encode(text, true, true) : tok.encode(text, true, content);
    } else if (r.prompt_is_tokens) {
        job->prompt = r.prompt_tokens;
    } else {
        job->prompt = tok.encode(r.prompt, true, r.parse_special);
    }
    if (job->prompt.empty()) {
        if (tok.bos() < 0) return Status::invalid("the prompt is empty and the model has no BOS token");
        job->prompt.push_back(tok.bos());
    }
    const int64_t n_prompt = int64_t(job->prompt.size());
    if (n_prompt >= n_ctx) {
        return Status::invalid("the prompt has %lld tokens; the context holds %d (one more is needed to generate)",
                               (long long)n_prompt, n_ctx);
    }
    const int32_t room = int32_t(n_ctx - n_prompt);
    int32_t max_tokens = ep == Endpoint::kChat ? room : std::min(16, room);
    if (r.max_tokens) {
        if (*r.max_tokens > room) {
            return Status::invalid("'max_tokens' = %d with a prompt of %lld tokens exceeds the context of %d tokens",
                                   *r.max_tokens, (long long)n_prompt, n_ctx);
        }
        max_tokens = *r.max_tokens;
    }
    if (r.kv_policy.empty()) {
        job->policy = policy_default;
        job->policy_label = opt.policy;
    } else {  // never a path of the client's choosing: file options must be the server's aliases
        HKV_ASSIGN_OR_RETURN(job->policy, resolve_request_policy(r.kv_policy, opt.taxonomies));
        job->policy_label = r.kv_policy;
    }
    auto pol = policy_create(job->policy);
    if (!pol.ok()) return pol.status().with_context("kv_policy");
    {
        const PolicyInfo pi = (*pol)->info();
        job->reusable = pi.calls == 0 && !pi.select_pages && pi.decode == DecodeKv::kAppends && !pi.cold_tier;
    }
    ContextParams cp = context_params(job->policy, 0);
    // The reservation and the cache's cap: the most this request's cache can hold, from the
    // policy's own plan for this prompt and its decode behaviour (never hit by the request).
    HKV_ASSIGN_OR_RETURN(const int64_t bytes, kv_bytes_bound(*model, cp, int32_t(n_prompt), max_tokens));
    GenParams& g = job->gen;
    g.max_tokens = max_tokens;
    g.stop = r.stop;
    g.ignore_eos = r.ignore_eos;
    g.sampler.temp = r.temperature;
    g.sampler.top_k = r.top_k;
    g.sampler.top_p = r.top_p;
    g.sampler.min_p = r.min_p;
    g.sampler.repeat_penalty = r.repeat_penalty;
    g.sampler.seed = r.seed ? *r.seed : std::random_device{}();

    const int32_t prefer = job->reusable && r.cache_prompt ? best_slot(job->prompt, job->policy) : -1;
    HKV_ASSIGN_OR_RETURN(job->lease, admission->acquire(bytes, std::chrono::milliseconds(opt.queue_timeout_ms), prefer));
    take_slot(*job);
    if (!job->ctx) {
        cp.kv_max_bytes = bytes;
        HKV_ASSIGN_OR_RETURN(job->ctx, Context::create(model, cp));
    }
    g.n_cached = job->n_cached;
    const uint64_t n = next_id.fetch_add(1);
    job->id = std::string(ep == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(n);
    job->created = int64_t(std::time(nullptr));
    return job;
}

json HttpServer::Impl::chunk(const Job& job, const std::string& text, const char* finish) const {
    const bool chat = job.req.endpoint == Endpoint::kChat;
    json choice = {{"index", 0}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
    if (chat) {
        choice["delta"] = finish ? json::object() : json{{"content", text}};
    } else {
        choice["text"] = text;
        choice["logprobs"] = nullptr;
    }
    return {{"id", job.id}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", job.created}, {"model", model_id}, {"choices", json::array({choice})}};
}

json HttpServer::Impl::usage(const Job& job, const GenResult& r) {
    return {{"prompt_tokens", r.n_prompt}, {"completion_tokens", r.n_gen}, {"total_tokens", r.n_prompt + r.n_gen},
            {"prompt_tokens_details", {{"cached_tokens", job.n_cached}}}};
}

json HttpServer::Impl::final_body(const Job& job, const GenResult& r) const {
    const bool chat = job.req.endpoint == Endpoint::kChat;
    json choice = {{"index", 0}, {"finish_reason", r.finish_reason}};
    if (chat) {
        choice["message"] = {{"role", "assistant"}, {"content", r.text}};
    } else {
        choice["text"] = job.req.echo ? job.req.prompt + r.text : r.text;
        choice["logprobs"] = nullptr;
    }
    return {{"id", job.id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", job.created},
            {"model", model_id}, {"choices", json::array({choice})},
            {"usage", usage(job, r)},
            {"heterokv", {{"kv_policy", job.policy_label}, {"kv_bytes", job.ctx ? job.ctx->kv_bytes() : 0},
                          {"kv_reserved_bytes", job.lease.bytes()}, {"ttft_ms", r.ttft_ms}}}};
}

void HttpServer::Impl::complete(const httplib::Request& hreq, httplib::Response& res, Endpoint ep) {
    auto admitted = admit(hreq, ep);
    if (!admitted.ok()) return reply_status(res, admitted.status());
    std::shared_ptr<Job> job = std::move(admitted).value();
    if (!job->req.stream) {
        GenResult r;
        GenHooks hooks = kv_hooks(*job);
        hooks.alive = [] { return Listener::connection_alive(); };  // client gone or server cancelling
        Status st = generate(*job->ctx, job->prompt, job->gen, hooks, &r);
        const json body = final_body(*job, r);
        finish_job(*job, r, st.ok() && r.finish_reason != "cancelled");
        if (!st.ok()) return reply_status(res, st.with_context("generation failed"));
        if (r.finish_reason == "cancelled") {
            return reply_error(res, 503, "generation cancelled: the server is shutting down or the client left");
        }
        res.set_content(dump(body), "application/json");
        return;
    }
    res.set_header("Cache-Control", "no-cache");
    auto provider = [this, job](size_t, httplib::DataSink& sink) -> bool {
        auto event = [&](const std::string& data) {
            const std::string s = "data: " + data + "\n\n";
            return sink.write(s.data(), s.size());
        };
        const bool chat = job->req.endpoint == Endpoint::kChat;
        bool ok = true;
        if (chat) {  // the first chunk carries the role
            json first = chunk(*job, "", nullptr);
            first["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
            ok = event(dump(first));
        } else if (job->req.echo && !job->req.prompt.empty()) {
            ok = event(dump(chunk(*job, job->req.prompt, nullptr)));
        }
        GenResult r;
        GenHooks hooks = kv_hooks(*job);
        hooks.on_text = [&](std::string_view text) { return event(dump(chunk(*job, std::string(text), nullptr))); };
        hooks.alive = [&] { return sink.is_writable(); };
        Status st = ok ? generate(*job->ctx, job->prompt, job->gen, hooks, &r) : Status();
        if (!ok) r.finish_reason = "cancelled";
        finish_job(*job, r, st.ok() && r.finish_reason != "cancelled");
        if (r.finish_reason == "cancelled") return false;  // the client is gone: drop the connection
        if (!st.ok()) {
            event(dump(error_json(http_status_for(st), "generation failed: " + st.message())));
        } else {
            event(dump(chunk(*job, "", r.finish_reason.c_str())));
            if (job->req.include_usage) {
                json u = chunk(*job, "", nullptr);
                u["choices"] = json::array();
                u["usage"] = usage(*job, r);
                event(dump(u));
            }
        }
        event("[DONE]");
        sink.done();
        return true;
    };
    // The releaser runs when the response is finished or abandoned; finish_job is idempotent.
    res.set_chunked_content_provider("text/event-stream", provider, [this, job](bool) {
        GenResult none;
        if (job->lease.valid()) finish_job(*job, none, false);
    });
}

void HttpServer::Impl::routes() {
    http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
        t_request_start = Clock::now();
        return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        const double s = std::chrono::duration<double>(Clock::now() - t_request_start).count();
        metrics.on_request(metrics_path(req.path), res.status, s);
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        const char* what = res.status == 404 ? "no such endpoint"
                           : res.status == 413 ? "request body too large"
                                               : "request failed";
        reply_error(res, res.status, std::string(what) + ": " + req.method + " " + req.path);
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string msg = "internal error";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::bad_alloc&) {
            msg = "out of memory";
        } catch (const std::exception& e) {
            msg = std::string("internal error: ") + e.what();
        } catch (...) {
        }
        reply_error(res, 500, msg);
    });
    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) {
        complete(q, r, Endpoint::kCompletions);
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) {
        complete(q, r, Endpoint::kChat);
    });
    http.Post(R"(/slots/(\d+))", [this](const httplib::Request& q, httplib::Response& r) { slot_action(q, r); });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& r) {
        const ModelInfo c = model_info(*model);
        json m = {{"id", model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "heterokv"},
                  {"meta", {{"arch", c.arch}, {"n_ctx", n_ctx}, {"n_vocab", c.n_vocab}, {"n_layer", c.n_layer},
                            {"chat_template", chat_family_name(family)}, {"kv_policy", opt.policy}}}};
        r.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
        const Admission::Stats s = admission->stats();
        r.set_content(dump({{"status", "ok"}, {"slots_idle", admission->config().n_slots - s.active},
                            {"slots_active", s.active}, {"queued", s.queued}}),
                      "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
        const Admission::Stats s = admission->stats();
        MetricsGauges g;
        g.slots_total = admission->config().n_slots;
        g.slots_active = s.active;
        g.queued = s.queued;
        g.kv_budget_bytes = opt.kv_budget_bytes;
        g.kv_reserved_bytes = s.reserved_bytes;
        g.kv_kept_bytes = s.kept_bytes;
        g.rss_bytes = int64_t(rss_current_bytes());
        r.set_content(metrics.render(g), "text/plain; version=0.0.4");
    });
}

Expected<json> HttpServer::Impl::slot_save(int32_t slot, const SlotRequest& r) {
    HKV_ASSIGN_OR_RETURN(const std::string path, slot_file_path(opt.slot_save_path, r.filename));
    HKV_ASSIGN_OR_RETURN(Lease lease, admission->acquire_slot(slot, -1));
    const auto t0 = Clock::now();
    SlotCache c;  // the slot is leased: no request touches its entry until the lease ends
    {
        std::lock_guard<std::mutex> lk(slots_mu);
        c = std::move(slots[size_t(slot)]);
    }
    if (!c.ctx) return Status::invalid("slot %d keeps no context to save (it keeps one after a request)", slot);
    auto n = c.ctx->state_save_file(path);
    const int32_t n_saved = c.ctx->n_past();
    lease.keep(c.ctx->kv_bytes());
    {
        std::lock_guard<std::mutex> lk(slots_mu);
        slots[size_t(slot)] = std::move(c);
    }
    if (!n.ok()) return n.status();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return json{{"id_slot", slot}, {"filename", r.filename}, {"n_saved", n_saved}, {"n_written", *n},
                {"timings", {{"save_ms", ms}}}};
}

Expected<json> HttpServer::Impl::slot_restore(int32_t slot, const SlotRequest& r) {
    HKV_ASSIGN_OR_RETURN(const std::string path, slot_file_path(opt.slot_save_path, r.filename));
    if (slot < 0 || slot >= admission->config().n_slots) return Status::invalid("no slot %d", slot);
    std::string policy = policy_default;
    if (!r.kv_policy.empty()) {
        HKV_ASSIGN_OR_RETURN(policy, resolve_request_policy(r.kv_policy, opt.taxonomies));
    }
    const auto t0 = Clock::now();
    // Loaded before the slot is taken (a running request keeps it meanwhile), under the whole
    // budget as the cache's limit: a file cannot make the cache larger than the server allows.
    HKV_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::create(model, context_params(policy, opt.kv_budget_bytes)));
    HKV_TRY(ctx->state_load_file(path));
    const int64_t bytes = ctx->kv_bytes();
    HKV_ASSIGN_OR_RETURN(Lease lease, admission->acquire_slot(slot, bytes));
    SlotCache c;
    c.tokens.assign(ctx->tokens().begin(), ctx->tokens().end());
    c.policy = policy;
    const int32_t n = ctx->n_past();
    c.ctx = std::move(ctx);
    {
        std::lock_guard<std::mutex> lk(slots_mu);
        slots[size_t(slot)] = std::move(c);
    }
    lease.keep(bytes);
    struct stat sb;
    const int64_t size = ::stat(path.c_str(), &sb) == 0 ? int64_t(sb.st_size) : 0;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return json{{"id_slot", slot}, {"filename", r.filename}, {"n_restored", n}, {"n_read", size},
                {"timings", {{"restore_ms", ms}}}};
}

Expected<json> HttpServer::Impl::slot_erase(int32_t slot) {
    HKV_ASSIGN_OR_RETURN(Lease lease, admission->acquire_slot(slot, -1));
    std::lock_guard<std::mutex> lk(slots_mu);
    const int32_t n = slots[size_t(slot)].ctx ? slots[size_t(slot)].ctx->n_past() : 0;
    slots[size_t(slot)] = SlotCache();
    return json{{"id_slot", slot}, {"n_erased", n}};
}

void HttpServer::Impl::slot_action(const httplib::Request& q, httplib::Response& res) {
    if (opt.slot_save_path.empty()) {
        return reply_error(res, 501, "slot actions are off: start the server with --slot-save-path DIR");
    }
    const std::string& id = q.matches[1];
    const int32_t slot = id.size() <= 4 ? std::stoi(id) : -1;
    const std::string action = q.get_param_value("action");
    auto body = parse_slot_request(q.body, action != "erase");
    Expected<json> out = Status::invalid("unknown action '%.32s' (expected save, restore or erase)", action.c_str());
    if (!body.ok()) {
        out = body.status();
    } else if (action == "save") {
        out = slot_save(slot, *body);
    } else if (action == "restore") {
        out = slot_restore(slot, *body);
    } else if (action == "erase") {
        out = slot_erase(slot);
    }
    if (out.ok()) return res.set_content(dump(*out), "application/json");
    const Status& st = out.status();
    const int code = st.code() == StatusCode::kCancelled ? 409
                     : st.code() == StatusCode::kCorrupt || st.code() == StatusCode::kUnsupported ? 400
                                                                                                   : http_status_for(st);
    reply_error(res, code, "slot " + id + " " + action + ": " + st.message());
}

HttpServer::HttpServer() : impl_(new Impl()) {}
HttpServer::~HttpServer() {
    stop();
}

Expected<std::unique_ptr<HttpServer>> HttpServer::create(std::shared_ptr<const Model> model,
                                                         const ServerOptions& options) {
    if (!model) return Status::invalid("server: no model");
    const ServerOptions& o = options;
    if (o.n_parallel < 1 || o.n_parallel > 256) return Status::invalid("--parallel %d not in [1, 256]", o.n_parallel);
    if (o.n_queue < 0 || o.n_queue > 4096) return Status::invalid("--queue %d not in [0, 4096]", o.n_queue);
    if (o.queue_timeout_ms < 0) return Status::invalid("queue timeout %d ms < 0", o.queue_timeout_ms);
    if (o.kv_budget_bytes < 0) return Status::invalid("--kv-budget-mb < 0");
    if (o.port < 0 || o.port > 65535) return Status::invalid("--port %d not in [0, 65535]", o.port);
    // Options every request's Context would refuse are startup errors, not a 400 on every request.
    if (o.n_ctx < 0) return Status::invalid("--ctx-size %d < 0 (0: the model's context)", o.n_ctx);
    if (o.n_batch < 1 || o.n_batch > 65536) return Status::invalid("--batch-size %d not in [1, 65536]", o.n_batch);
    if (o.n_threads < 0 || o.n_threads > 1024) return Status::invalid("--threads %d not in [0, 1024]", o.n_threads);
    if (o.kv_page_size < 1 || o.kv_page_size > 65536) {
        return Status::invalid("--kv-page-size %d not in [1, 65536]", o.kv_page_size);
    }
    for (const auto& [name, path] : o.taxonomies) {  // aliases requests may name: each must load
        if (name.empty() || name.find_first_of(",=:/") != std::string::npos || path.find(',') != std::string::npos) {
            return Status::invalid("--taxonomy '%s=%s': NAME must be a word and PATH must not hold a comma",
                                   name.c_str(), path.c_str());
        }
        auto hc = policy_create("heterocache:taxonomy=" + path);
        if (!hc.ok()) return hc.status().with_context("--taxonomy " + name);
    }
    if (!o.slot_save_path.empty()) {  // a folder that exists (files inside it are checked per request)
        struct stat sb;
        if (::stat(o.slot_save_path.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            return Status::invalid("--slot-save-path %s is not a folder", o.slot_save_path.c_str());
        }
    }
    std::unique_ptr<HttpServer> s(new HttpServer());
    Impl& I = *s->impl_;
    I.opt = o;
    // The operator's --policy may name a file directly or through an alias.
    auto resolved = resolve_request_policy(o.policy, o.taxonomies);
    I.policy_default = resolved.ok() ? *resolved : o.policy;
    auto pol = policy_create(I.policy_default);
    if (!pol.ok()) return pol.status().with_context("--policy");
    const ModelInfo c = model_info(*model);
    I.n_ctx = o.n_ctx > 0 ? o.n_ctx : c.n_ctx_train;
    if (I.n_ctx < 2) return Status::invalid("context of %d tokens is too small", I.n_ctx);
    if (Status st = policy_validate(I.policy_default, *model, I.n_ctx); !st.ok()) return st.with_context("--policy");
    if (I.opt.n_threads == 0) {
        const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
        I.opt.n_threads = std::max(1, hw / o.n_parallel);
    }
    if (o.chat_template.empty()) {
        I.family = chat_family_detect(c.chat_template);
    } else {
        I.family = chat_family_from_name(o.chat_template);
        if (I.family == ChatFamily::kUnknown) {
            return Status::invalid("--chat-template '%s': expected one of %s", o.chat_template.c_str(),
                                   chat_family_list().c_str());
        }
    }
    I.model_id = !o.model_id.empty() ? o.model_id : !c.name.empty() ? c.name : std::string("heterokv");
    {  // one Context as every request will make it: whatever the engine refuses fails here
        auto probe = Context::create(model, I.context_params(I.policy_default, 0));
        if (!probe.ok()) return probe.status().with_context("server options");
    }
    // The whole budget must hold at least one minimal request (one token of context).
    I.admission = std::make_unique<Admission>(AdmissionConfig{o.n_parallel, o.n_queue, o.kv_budget_bytes});
    I.slots.resize(size_t(o.n_parallel));
    I.admission->set_drop_kept([&I](int32_t slot) {  // under the admission's lock
        std::lock_guard<std::mutex> lk(I.slots_mu);
        I.slots[size_t(slot)] = Impl::SlotCache();
    });
    I.model = std::move(model);
    I.http.set_payload_max_length(o.limits.max_body_bytes);
    I.routes();
    return s;
}

Expected<int> HttpServer::bind() {
    Impl& I = *impl_;
    if (I.listener) return Status::invalid("server: bind() twice");
    ListenerOptions lo;
    lo.host = I.opt.host;
    lo.port = I.opt.port;
    lo.max_connections = I.opt.max_connections;
    lo.request_timeout_ms = I.opt.request_timeout_ms;
    lo.drain_timeout_ms = I.opt.drain_timeout_ms;
    lo.send_buffer_bytes = I.opt.send_buffer_bytes;
    // Requests with a body: every running and queued one, plus two for quick refusals (400, 503);
    // /health, /metrics and /v1/models have their own two workers.
    lo.n_workers = I.opt.n_parallel + I.opt.n_queue + 2;
    lo.n_light_workers = 2;
    lo.limits.max_body_bytes = I.opt.limits.max_body_bytes;
    lo.max_buffered_bytes = std::max<size_t>(size_t(16) << 20, 4 * I.opt.limits.max_body_bytes);
    HKV_ASSIGN_OR_RETURN(I.listener, Listener::open(lo));
    I.port = I.listener->port();
    return I.port;
}

Status HttpServer::run() {
    Impl& I = *impl_;
    if (!I.listener) return Status::invalid("server: run() before bind()");
    const Listener::Handler handler = [&I](httplib::Stream& strm, bool close, bool& closed) {
        return I.http.process(strm, close, closed);
    };
    const Listener::ErrorBody error_body = [&I](int status, const std::string& msg) {
        I.metrics.on_request("other", status, 0.0);
        return dump(error_json(status, msg));
    };
    return I.listener->run(handler, error_body);
}

void HttpServer::stop() {
    if (impl_->admission) impl_->admission->shutdown();
    if (impl_->listener) impl_->listener->stop();
}

int HttpServer::port() const { return impl_->port; }

}  // namespace hkv::server
