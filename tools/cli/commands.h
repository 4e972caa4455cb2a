// tools/cli/commands.h — the heterokv subcommands. Each registers its options on a CLI11 app and
// returns a runner; main.cpp dispatches. Results go to stdout, logs and progress to stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace hkv::cli {

using Runner = std::function<int()>;

Runner add_run(CLI::App& app);         // heterokv run: generate text
Runner add_make_model(CLI::App& app);  // heterokv make-model: synthetic GGUF of a preset shape
Runner add_info(CLI::App& app);        // heterokv info: a model's configuration and tensors
Runner add_bench(CLI::App& app);       // heterokv bench: prefill/decode speed at depth, KV bytes, RSS

}  // namespace hkv::cli
