// core/assert.h — programmer-error checks. HKV_ASSERT is always on: it prints file:line and the
// message, then calls the abort callback (default std::abort). HKV_DASSERT is for hot loops and
// compiles away unless HKV_DEBUG is defined. Bad *input* is never asserted: it returns a Status.
#pragma once

namespace hkv {

using AbortCallback = void (*)(const char* msg);
void set_abort_callback(AbortCallback cb);
[[noreturn]] void assert_fail(const char* file, int line, const char* cond, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

}  // namespace hkv

#define HKV_ASSERT(cond, ...) \
    do { if (__builtin_expect(!(cond), 0)) ::hkv::assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

#ifdef HKV_DEBUG
#define HKV_DASSERT(cond, ...) HKV_ASSERT(cond, __VA_ARGS__)
#else
#define HKV_DASSERT(cond, ...) do { (void)sizeof(cond); } while (0)
#endif
