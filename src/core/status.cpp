#include "heterokv/status.h"

#include <cstdio>

namespace hkv {

const char* status_code_name(StatusCode code) {
    switch (code) {
        case StatusCode::kOk: return "ok";
        case StatusCode::kInvalidArgument: return "invalid argument";
        case StatusCode::kNotFound: return "not found";
        case StatusCode::kIoError: return "i/o error";
        case StatusCode::kCorrupt: return "corrupt";
        case StatusCode::kUnsupported: return "unsupported";
        case StatusCode::kOutOfMemory: return "out of memory";
        case StatusCode::kOutOfRange: return "out of range";
        case StatusCode::kInternal: return "internal error";
        case StatusCode::kCancelled: return "cancelled";
        case StatusCode::kFailedPrecondition: return "failed precondition";
    }
    return "unknown";
}

Status Status::make_v(StatusCode code, const char* fmt, va_list ap) {
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    return Status(code, buf);
}

#define HKV_STATUS_FACTORY_(fn, code)                  \
    Status Status::fn(const char* fmt, ...) {          \
        va_list ap;                                    \
        va_start(ap, fmt);                             \
        Status s = make_v(code, fmt, ap);              \
        va_end(ap);                                    \
        return s;                                      \
    }
HKV_STATUS_FACTORY_(invalid, StatusCode::kInvalidArgument)
HKV_STATUS_FACTORY_(not_found, StatusCode::kNotFound)
HKV_STATUS_FACTORY_(io_error, StatusCode::kIoError)
HKV_STATUS_FACTORY_(corrupt, StatusCode::kCorrupt)
HKV_STATUS_FACTORY_(unsupported, StatusCode::kUnsupported)
HKV_STATUS_FACTORY_(out_of_memory, StatusCode::kOutOfMemory)
HKV_STATUS_FACTORY_(out_of_range, StatusCode::kOutOfRange)
HKV_STATUS_FACTORY_(internal, StatusCode::kInternal)
#undef HKV_STATUS_FACTORY_

std::string Status::to_string() const {
    if (ok()) return "ok";
    return std::string(status_code_name(code_)) + ": " + msg_;
}

Status Status::with_context(const std::string& prefix) const {
    if (ok()) return *this;
    return Status(code_, prefix + ": " + msg_);
}

}  // namespace hkv
