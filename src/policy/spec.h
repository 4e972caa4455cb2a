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
    // Sets or removes an option (the registry resolves ratio= into budget= with these).
    void set(const std::string& key, const std::string& value) { kv_[key] = value; }
    void erase(const std::string& key) {
        kv_.erase(key);
        read_.erase(key);
    }
    // The keys a policy's factory read (its options), for the catalog's tests.
    const std::set<std::string>& read_keys() const { return read_; }
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
    const char* name;  // its PolicyDoc in policy_catalog() is at the same index
    PolicyFactory create;
};
// Every registered policy, in the table's order.
std::span<const PolicyEntry> policy_entries();

// Plans a policy's budgets for a sequence's prompt (Policy::begin) and checks the plan: the
// model's n_layer x n_head_kv shape, no head with 0 or fewer than -1 slots. Used by the runtime at
// every sequence start and by policy_validate.
Status policy_plan(Policy& policy, const ModelShape& shape, const Segment& prompt, KvBudget& budget);

// Checks a spec against a model before any work starts: parses it, creates the policy and plans
// its budgets for a prompt filling the context (shape.n_ctx tokens), so that every error a policy
// can find from its spec and the model (unknown options, impossible budgets, heterocache's taxonomy
// shape and ratio, dynsplit's need for the tokenizer's delimiters) comes here as one
// kInvalidArgument line, not from the first eval(). shape.n_ctx must be > 0. Thread-compatible
// (creates its own policy); a file named by the spec (heterocache's taxonomy) is read.
Status policy_validate(std::string_view spec, const ModelShape& shape);

}  // namespace hkv
