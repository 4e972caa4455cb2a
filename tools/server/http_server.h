// server/http_server.h — the OpenAI-compatible HTTP server (cpp-httplib) over one shared Model.
//
//   POST /v1/completions, /v1/chat/completions   (JSON or SSE with "stream": true)
//   GET  /v1/models, /health, /metrics
//   POST /slots/{id}?action=save|restore|erase   (llama.cpp's saved slots; --slot-save-path)
//
// Each admitted request runs on a Context (its own KV cache, limited to the request's KV estimate)
// on one of `n_parallel` slots. Prompt reuse: a slot keeps the Context and tokens of its last
// request; a request goes to the idle slot sharing its longest prefix and evaluates only the rest
// when that is exact (a policy that never changes the cache: `full`), reported as
// usage.prompt_tokens_details.cached_tokens ("cache_prompt": false opts out). Kept contexts count
// against the KV budget and are dropped when a request needs the room (server/admission.h); requests beyond the slots wait in a bounded FIFO queue
// (Admission); more than that get 503 with Retry-After. Generation runs on the worker thread that
// holds the request; a client that disconnects stops its generation and frees its slot. Sockets,
// request framing, timeouts and the drain are the Listener's (server/listener.h); httplib parses,
// routes and writes complete requests. Errors are JSON {"error": {"message", "type", "code"}} with
// 400 (invalid request, prompt longer than the context, a request that can never fit the KV budget,
// malformed HTTP), 404, 408 (request not received within request_timeout_ms), 413 (body too large,
// chunked or not), 415 (compressed body), 417, 431 (head too large), 501 (not implemented: unknown
// chat template family, n > 1, logprobs, a transfer encoding other than chunked), 503 (busy, or
// cancelled by a shutdown), 505 or 500.
// Saved slots (server/slot_files.h): with slot_save_path set, `save` writes slot id's kept context
// (its tokens and compressed KV: Context::state_save_file) to a plain file name inside that folder,
// `restore` loads one into the slot (replacing what it keeps; checked against the model and the
// policy, which is the server's unless the body names a kv_policy) so that a request sharing its
// prefix reuses it, `erase` drops what the slot keeps. Without the folder: 501. A running slot:
// 409. Files of another model, policy or format, damaged or absent: 400 / 404 with the reason.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "heterokv/model.h"
#include "heterokv/status.h"
#include "heterokv/types.h"
#include "server/request.h"

namespace hkv::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                // 0 = any free port (see HttpServer::port())
    int32_t n_parallel = 1;         // slots: requests generated at once
    int32_t n_queue = 8;            // requests waiting beyond the slots
    int32_t queue_timeout_ms = 30000;  // wait in the queue longer -> 503
    int64_t kv_budget_bytes = 0;    // KV bytes for all running requests; 0 = unlimited
    int32_t n_ctx = 0;              // per request; 0 = the model's
    int32_t n_threads = 0;          // compute threads per slot; 0 = cores / n_parallel
    int32_t n_batch = 256;
    KvType kv_type = KvType::kF16;
    std::optional<KvType> type_k, type_v;  // ContextParams::type_k / type_v (-ctk / -ctv)
    int32_t kv_page_size = 64;
    std::string policy = "full";    // default policy; a request's kv_policy overrides it
    std::string chat_template;      // family name forcing a format; empty = from the GGUF
    std::string model_id;           // name in /v1/models and responses; empty = general.name or file
    // Taxonomy files a request's kv_policy may use, by alias: "heterocache:taxonomy=NAME" runs
    // with the file of NAME. A request can name no other file (server/request.h).
    std::vector<std::pair<std::string, std::string>> taxonomies;  // {NAME, PATH}
    int32_t max_connections = 512;  // open connections (server/listener.h)
    int32_t request_timeout_ms = 10000;  // a request's head and body must arrive within this -> 408
    int32_t drain_timeout_ms = 10000;    // stop(): running requests may finish for this long
    int32_t send_buffer_bytes = 0;       // SO_SNDBUF per connection; 0: the kernel's (autotuned)
    RequestLimits limits;
    std::string slot_save_path;          // --slot-save-path: folder of saved slots; "" = slot actions off
};

class HttpServer {
public:
    static Expected<std::unique_ptr<HttpServer>> create(std::shared_ptr<const Model> model,
                                                        const ServerOptions& options);
    ~HttpServer();
    // Binds host:port (port 0: any free port) and listens; a port in use is an error. Returns the
    // bound port.
    Expected<int> bind();
    // Serves until stop() and the drain are over; blocking. Call after bind().
    Status run();
    // Stops accepting and answers queued requests 503; running requests may finish for
    // drain_timeout_ms, then they are cancelled; a second stop() cancels at once. Safe from any
    // thread (a signal watcher).
    void stop();
    int port() const;

private:
    HttpServer();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hkv::server
