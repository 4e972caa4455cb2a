// heterokv serve — the OpenAI-compatible HTTP server (tools/server/http_server.h).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "commands.h"
#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "heterokv/model.h"
#include "server/chat_template.h"
#include "server/http_server.h"

namespace hkv::cli {
namespace {

server::HttpServer* g_server = nullptr;

}  // namespace

Runner add_serve(CLI::App& app) {
    struct Opts {
        std::string model;
        KvTypeOptions kv_types;
        server::ServerOptions so;
        int64_t kv_budget_mb = 0;
        int64_t max_body_kb = 1024;
        std::vector<std::string> taxonomies;  // NAME=PATH
        double request_timeout_s = 10.0;
        double drain_timeout_s = 10.0;
    };
    auto o = std::make_shared<Opts>();
    server::ServerOptions& so = o->so;
    app.add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
    app.add_option("--host", so.host, "address to listen on")->capture_default_str();
    app.add_option("--port", so.port, "TCP port (0: any free port, printed to stderr)")->capture_default_str();
    app.add_option("--parallel", so.n_parallel, "slots: requests generated at once")->capture_default_str();
    app.add_option("--queue", so.n_queue, "requests waiting for a slot beyond the running ones; more get 503")
        ->capture_default_str();
    app.add_option("--queue-timeout", so.queue_timeout_ms, "ms a request may wait in the queue before a 503")
        ->capture_default_str();
    app.add_option("--kv-budget-mb", o->kv_budget_mb,
                   "KV cache MiB shared by the running requests (0: unlimited); admission uses each request's estimate")
        ->capture_default_str();
    app.add_option("--policy", so.policy, "default KV policy spec; a request's \"kv_policy\" overrides it (policies: " +
                   policy_names() + ")")->capture_default_str();
    app.add_option("-c,--ctx-size", so.n_ctx, "context per request in tokens (0: the model's)")->capture_default_str();
    app.add_option("-t,--threads", so.n_threads, "compute threads per slot (0: cores / parallel)")->capture_default_str();
    app.add_option("-b,--batch-size", so.n_batch, "prefill chunk in tokens")->capture_default_str();
    o->kv_types.add(app);
    app.add_option("--kv-page-size", so.kv_page_size, "KV cache page size in slots")->capture_default_str();
    app.add_option("--chat-template", so.chat_template,
                   "chat format instead of the GGUF's template: " + server::chat_family_list());
    app.add_option("--alias", so.model_id, "model id in /v1/models and responses (default: general.name)");
    app.add_option("--taxonomy", o->taxonomies,
                   "NAME=PATH: a HeteroCache taxonomy requests may use as \"kv_policy\": \"heterocache:taxonomy=NAME\" "
                   "(repeat for several); requests cannot name other files");
    app.add_option("--max-body-kb", o->max_body_kb, "largest request body in KiB, chunked or not (larger: 413)")
        ->capture_default_str();
    app.add_option("--request-timeout", o->request_timeout_s,
                   "seconds a request's head and body may take to arrive, from its first byte (then 408)")
        ->capture_default_str();
    app.add_option("--drain-timeout", o->drain_timeout_s,
                   "on SIGTERM/SIGINT, seconds running requests may finish before they are cancelled (a second "
                   "signal cancels at once)")
        ->capture_default_str();
    app.add_option("--slot-save-path", so.slot_save_path,
                   "folder for saved slots: POST /slots/{id}?action=save|restore|erase with {\"filename\": NAME} "
                   "(a plain name inside it); off without it (501)");
    app.add_option("--max-connections", so.max_connections,
                   "open connections at most (then the longest-waiting unfinished one is dropped)")
        ->capture_default_str();
    return [o]() -> int {
        server::ServerOptions so = o->so;
        if (Status st = o->kv_types.apply(so); !st.ok()) return fail(st);
        if (o->kv_budget_mb < 0) return fail(Status::invalid("--kv-budget-mb %lld < 0", (long long)o->kv_budget_mb));
        so.kv_budget_bytes = o->kv_budget_mb * 1024 * 1024;
        if (o->max_body_kb < 1 || o->max_body_kb > 1024 * 1024) {
            return fail(Status::invalid("--max-body-kb %lld not in [1, 1048576]", (long long)o->max_body_kb));
        }
        so.limits.max_body_bytes = size_t(o->max_body_kb) * 1024;
        if (!(o->request_timeout_s >= 0.1 && o->request_timeout_s <= 3600)) {
            return fail(Status::invalid("--request-timeout %g not in [0.1, 3600] s", o->request_timeout_s));
        }
        if (!(o->drain_timeout_s >= 0 && o->drain_timeout_s <= 3600)) {
            return fail(Status::invalid("--drain-timeout %g not in [0, 3600] s", o->drain_timeout_s));
        }
        if (so.max_connections < 8 || so.max_connections > 65536) {
            return fail(Status::invalid("--max-connections %d not in [8, 65536]", so.max_connections));
        }
        so.request_timeout_ms = int32_t(o->request_timeout_s * 1000.0);
        for (const std::string& t : o->taxonomies) {
            const size_t eq = t.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == t.size()) {
                return fail(Status::invalid("--taxonomy '%s': expected NAME=PATH", t.c_str()));
            }
            so.taxonomies.emplace_back(t.substr(0, eq), t.substr(eq + 1));
        }
        so.drain_timeout_ms = int32_t(o->drain_timeout_s * 1000.0);
        so.limits.max_prompt_bytes = so.limits.max_body_bytes;
        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        auto srv = server::HttpServer::create(*model, so);
        if (!srv.ok()) return fail(srv.status());
        auto port = (*srv)->bind();
        if (!port.ok()) return fail(port.status());
        std::fprintf(stderr, "heterokv: serving %s on http://%s:%d (%d slots, queue %d, KV budget %s, policy %s)\n",
                     o->model.c_str(), so.host.c_str(), *port, so.n_parallel, so.n_queue,
                     so.kv_budget_bytes ? (std::to_string(o->kv_budget_mb) + " MiB").c_str() : "unlimited",
                     so.policy.c_str());
        // SIGINT/SIGTERM stop the server from a watcher thread (no work inside a signal handler).
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        g_server = srv->get();
        static std::atomic<bool> done{false};
        std::thread watcher([set, drain = o->drain_timeout_s]() {
            // The first signal drains (running requests finish, up to --drain-timeout), a second
            // one cancels them.
            for (int n = 0;; ++n) {
                int sig = 0;
                sigwait(&set, &sig);
                if (done) return;
                if (n == 0) {
                    std::fprintf(stderr, "heterokv: signal %d, stopping (running requests may finish for %g s)\n",
                                 sig, drain);
                } else {
                    std::fprintf(stderr, "heterokv: signal %d again, cancelling running requests\n", sig);
                }
                g_server->stop();
            }
        });
        Status st = (*srv)->run();
        done = true;
        pthread_kill(watcher.native_handle(), SIGTERM);  // wake the watcher: the server has stopped
        watcher.join();
        g_server = nullptr;
        if (!st.ok()) return fail(st);
        return 0;
    };
}

}  // namespace hkv::cli
