// heterokv/status.h — error values returned across the library API.
//
// Library code never throws across its API and never calls exit(). Every operation that can fail on
// bad input (missing file, corrupt GGUF, impossible budget, malformed spec) returns a `Status` or an
// `Expected<T>`. Programmer errors (broken invariants) hit HKV_ASSERT instead (src/core/assert.h).
//
// Usage:
//   Expected<Foo> make_foo(...) { if (bad) return Status::invalid("foo: %d is not a size", n); ... }
//   auto foo = make_foo(...); if (!foo) return foo.status();  use(*foo);
//   HKV_TRY(some_status_call());           // returns the status from the enclosing function if !ok
//   HKV_ASSIGN_OR_RETURN(auto x, make_foo()); // x is the value, or the status is returned
#pragma once

#include <cstdarg>
#include <string>
#include <utility>
#include <variant>

namespace hkv {

enum class StatusCode {
    kOk = 0,
    kInvalidArgument,  // a caller-supplied value is out of range or malformed (specs, options, requests)
    kNotFound,         // a file, key or tensor that should exist does not
    kIoError,          // the operating system refused a read, write, map or open
    kCorrupt,          // a file's contents contradict its own format (truncated GGUF, bad offsets)
    kUnsupported,      // well-formed but not handled here (unknown architecture or weight type)
    kOutOfMemory,      // an allocation or a configured memory limit would be exceeded
    kOutOfRange,       // e.g. a prompt longer than the context
    kInternal,         // should not happen; a bug
    kCancelled,        // the caller asked to stop (Context::eval's cancel hook)
    kFailedPrecondition,  // the object's state refuses the call until the caller resets it (a
                          // Context after a failed eval that changed its policy's state: reset())
};

const char* status_code_name(StatusCode code);

// A success flag plus a one-line, human-readable message. Cheap to copy when ok.
class [[nodiscard]] Status {
public:
    Status() = default;
    Status(StatusCode code, std::string msg) : code_(code), msg_(std::move(msg)) {}

    static Status ok_status() { return Status(); }
    // printf-style factories: Status::invalid("budget %d <= 0", b)
    static Status invalid(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    static Status not_found(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    static Status io_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    static Status corrupt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    static Status unsupported(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    static Status out_of_memory(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    static Status out_of_range(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
    static Status internal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

    bool ok() const { return code_ == StatusCode::kOk; }
    StatusCode code() const { return code_; }
    const std::string& message() const { return msg_; }
    // "corrupt: gguf: tensor 'x' data ends past the end of the file"
    std::string to_string() const;
    // Returns a copy whose message is "<prefix>: <message>" (adds context while propagating).
    Status with_context(const std::string& prefix) const;

private:
    static Status make_v(StatusCode code, const char* fmt, va_list ap);
    StatusCode code_ = StatusCode::kOk;
    std::string msg_;
};

// Either a value or a non-ok Status. Construct from a T (success) or a Status (must not be ok).
template <typename T>
class [[nodiscard]] Expected {
public:
    Expected(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
    Expected(Status status) : v_(std::move(status)) {}     // NOLINT: implicit by design

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    // The error; an ok Status when holding a value.
    Status status() const { return ok() ? Status() : std::get<1>(v_); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

private:
    std::variant<T, Status> v_;
};

}  // namespace hkv

#define HKV_CONCAT_INNER_(a, b) a##b
#define HKV_CONCAT_(a, b) HKV_CONCAT_INNER_(a, b)

// Evaluates a Status expression; returns it from the enclosing function when not ok.
#define HKV_TRY(expr)                               \
    do {                                            \
        ::hkv::Status hkv_try_status_ = (expr);     \
        if (!hkv_try_status_.ok()) return hkv_try_status_; \
    } while (0)

// Evaluates an Expected expression; returns its status when not ok, else assigns the value to lhs.
#define HKV_ASSIGN_OR_RETURN(lhs, expr) HKV_ASSIGN_OR_RETURN_IMPL_(HKV_CONCAT_(hkv_exp_, __LINE__), lhs, expr)
#define HKV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
    auto tmp = (expr);                             \
    if (!tmp.ok()) return tmp.status();            \
    lhs = std::move(tmp).value()
