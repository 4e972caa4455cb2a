// tools/eval/ppl_dump.h — what `heterokv eval ppl --dump PREFIX` writes, for comparing heterokv's
// policies with independent implementations on exactly the same windows (tools/reference/).
//
// PREFIX.json (format "heterokv-ppl-dump-1"):
//   model, file, commit, window (W), context (C), scored (per window), n_vocab, n_layer, n_head_kv,
//   kv_type, policies: ["full", spec, ...] (index 0 is the shared `full` baseline),
//   windows: [{start, tokens: [W token ids, BOS included]}],
//   runs: [{window, policy, kept: [n_layer][n_head_kv][positions], kld: [scored], nll: [scored]}]
//     kept = the token positions each (layer, KV head) holds right after the context's prefill and
//     compression (ascending), so a reference that compresses the same context can be compared
//     index for index; kld = KL(full || policy) of each scored prediction, nll = its -log p.
//   logits: {file: "PREFIX.logits.f32", layout: "[window][policy][scored][n_vocab] float32 LE"}
// PREFIX.logits.f32: every scored next-token logits row of every run, in that order (raw f32).
// Both files are written to temporary names and renamed when the evaluation has finished.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/status.h"

namespace hkv::eval {

struct PplDumpMeta {
    std::string model, file, commit, kv_type;
    int32_t n_window = 0, n_context = 0, n_scored = 0, n_vocab = 0;
    std::vector<std::string> policies;  // [0] = "full"
};

class PplDump {
public:
    // Opens PREFIX.logits.f32 (as a temporary file) for writing; kIoError when it cannot.
    static Expected<std::unique_ptr<PplDump>> open(const std::string& prefix);
    ~PplDump();

    // A new window (runs of every policy follow, baseline first).
    void begin_window(int64_t start, std::span<const int32_t> tokens);
    // A run of policy `ip` on the current window: the kept positions after the context.
    Status begin_run(int32_t ip, const Context& ctx);
    // One scored prediction of the current run: its logits row [n_vocab], KLD and NLL.
    Status row(std::span<const float> logits, double kld, double nll);
    // Writes PREFIX.json and renames both files into place.
    Status finish(const PplDumpMeta& meta);

private:
    PplDump() = default;
    struct Run {
        int32_t window = 0, policy = 0;
        std::vector<std::vector<std::vector<int32_t>>> kept;  // [n_layer][n_head_kv][positions]
        std::vector<float> kld, nll;                           // [scored]
    };
    std::string prefix_;
    std::FILE* logits_ = nullptr;
    std::vector<int64_t> starts_;
    std::vector<std::vector<int32_t>> tokens_;  // [windows][W]
    std::vector<Run> runs_;
    int32_t n_layer_ = 0, n_head_kv_ = 0;
};

}  // namespace hkv::eval
