// policy/spec.h — parsing of policy specs "name:key=value,key=value" and the registry of policies.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>

#include "heterokv/policy.h"

namespace hkv {

// Parsed spec. Typed getters validate and remember which keys were read, so finish() can reject
// keys the policy does not know ("snapkv: unknown option 'windw' (options: budget, window, ...)").
class PolicySpec {
public:
    static Expected<PolicySpec> parse(std::string_view spec);

    const std::string& name() const { return name_; }
    // Integer option in [lo, hi], `def` when absent.
    Expected<int64_t> get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi);
    Expected<double> get_float(const std::string& key, double def, double lo, double hi);
    // One of `choices`, `def` when absent.
    Expected<std::string> get_choice(const std::string& key, const std::string& def,
                                     const std::set<std::string>& choices);
    // Free-text option (e.g. a file path), `def` when absent.
    std::string get_string(const std::string& key, const std::string& def);
    bool has(const std::string& key) const { return kv_.count(key) > 0; }
    // kInvalidArgument if any key was never read by a getter.
    Status finish() const;

private:
    std::string name_;
    std::map<std::string, std::string> kv_;
    std::set<std::string> read_;
};

// The options every token-eviction baseline shares, read in one place.
struct EvictOptions {
    int32_t budget = 0;   // slots kept per KV head (total, including window and sinks)
    int32_t window = 32;  // most recent tokens always kept
    int32_t sinks = 0;    // first tokens always kept
};
// Reads budget (required, > 0), window (default def_window, < budget) and sinks (default
// def_sinks; sinks + window < budget).
Status read_evict_options(PolicySpec& spec, int32_t def_window, int32_t def_sinks, EvictOptions* out);

// Registry: each policy file defines a factory `Expected<std::unique_ptr<Policy>> <name>_create(PolicySpec&)`
// and registry.cpp lists it in its table (an explicit table, not static registrars, so static
// linking cannot drop a policy).
using PolicyFactory = Expected<std::unique_ptr<Policy>> (*)(PolicySpec& spec);
struct PolicyEntry {
    const char* name;
    const char* summary;  // one line for --help: what it keeps, its options and defaults
    PolicyFactory create;
};
// Every registered policy, in the table's order.
std::span<const PolicyEntry> policy_entries();

}  // namespace hkv
