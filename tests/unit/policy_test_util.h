// tests/unit/policy_test_util.h — helpers shared by the policy unit tests: create a policy from a
// spec (failing the test on an error), and the error message of a spec that must be rejected.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "heterokv/policy.h"

namespace hkv::test {

inline std::unique_ptr<Policy> make(const std::string& spec) {
    auto p = policy_create(spec);
    EXPECT_TRUE(p.ok()) << spec << ": " << p.status().to_string();
    return p.ok() ? std::move(p).value() : nullptr;
}

inline std::string error_of(const std::string& spec) {
    auto p = policy_create(spec);
    EXPECT_FALSE(p.ok()) << spec << " was accepted";
    return p.ok() ? "" : p.status().to_string();
}

}  // namespace hkv::test
