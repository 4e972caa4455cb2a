// heterokv/log.h — the library's single logging sink.
//
// The library never writes to stdout. Messages go to one callback (default: stderr, level >= INFO;
// the level threshold comes from HKV_LOG_LEVEL via src/core/env.cpp or log_set_level()).
// Thread-safe: the callback may be called from any thread, serialized by an internal mutex.
#pragma once

namespace hkv {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kNone = 4 };

using LogCallback = void (*)(LogLevel level, const char* text, void* user_data);

// Replaces the sink. nullptr restores the default stderr sink.
void log_set(LogCallback cb, void* user_data);
void log_set_level(LogLevel level);
LogLevel log_level();

void log_printf(LogLevel level, const char* func, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace hkv

#define HKV_LOG_DEBUG(...) ::hkv::log_printf(::hkv::LogLevel::kDebug, __func__, __VA_ARGS__)
#define HKV_LOG_INFO(...) ::hkv::log_printf(::hkv::LogLevel::kInfo, __func__, __VA_ARGS__)
#define HKV_LOG_WARN(...) ::hkv::log_printf(::hkv::LogLevel::kWarn, __func__, __VA_ARGS__)
#define HKV_LOG_ERROR(...) ::hkv::log_printf(::hkv::LogLevel::kError, __func__, __VA_ARGS__)
