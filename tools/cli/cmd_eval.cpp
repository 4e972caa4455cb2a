// heterokv eval — accuracy evaluations under KV compression, one sub-subcommand each
// (`heterokv eval ppl`; needle retrieval and others join here).
#include <map>
#include <memory>

#include "commands.h"

namespace hkv::cli {

Runner add_eval(CLI::App& app) {
    app.require_subcommand(1);
    auto runners = std::make_shared<std::map<CLI::App*, Runner>>();
    auto add = [&](const char* name, const char* desc, Runner (*fn)(CLI::App&)) {
        CLI::App* sub = app.add_subcommand(name, desc);
        (*runners)[sub] = fn(*sub);
    };
    add("ppl", "perplexity, KL divergence and top-1 agreement vs the full cache, per policy", add_eval_ppl);
    add("niah", "needle in a haystack over context lengths x needle depths, per policy", add_eval_niah);
    add("ruler", "RULER synthetic tasks (niah variants, vt, cwe, fwe) sized to the context, per policy", add_eval_ruler);
    add("longbench", "a LongBench jsonl with the official prompts, truncation and metrics, per policy",
        add_eval_longbench);
    add("sweep", "one task over policies x budgets: markdown table and budget-accuracy plot", add_eval_sweep);
    add("equal", "seed methods against every baseline at equal KV bytes: KLD, top-1, NIAH, plots", add_eval_equal);
    return [runners]() -> int {
        for (auto& [sub, run] : *runners) {
            if (sub->parsed()) return run();
        }
        return 2;
    };
}

}  // namespace hkv::cli
