// heterokv/file_io.h — reading and writing files whose paths come from users (options, specs).
//
// A path given on a command line or in a spec may name anything: a FIFO (an open blocks until a
// writer appears), a device (/dev/zero never ends, /dev/kmsg blocks), a directory, a huge file.
// These helpers accept regular files only and bound what they read:
//   file_read        refuses anything but a regular file WITHOUT opening it (a FIFO or device is
//                    never opened), reads at most max_bytes (a larger file is an error, nothing is
//                    allocated for it), and never blocks on a special file.
//   file_open_read   the same checks, for callers that map the file (the GGUF reader).
//   file_write_atomic  refuses an existing target that is not a regular file (a device, FIFO,
//                    socket or directory is never replaced); writes a new file beside the target
//                    (created exclusively: an existing file or link there is never followed) and
//                    renames it over the target, so the target is either the old file or the
//                    complete new one. A symlink target is replaced by the new file (the file it
//                    pointed to is left alone).
// Errors are one-line Status values naming the path: kNotFound (absent), kInvalidArgument (not a
// regular file, too large), kIoError (the operating system refused). Thread-safe; never throw.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "heterokv/status.h"

namespace hkv {

// Size limits for the kinds of files the tools read.
inline constexpr size_t kFileMaxText = size_t(1) << 30;  // prompts, haystacks, corpora, jsonl sets
inline constexpr size_t kFileMaxJson = size_t(256) << 20;  // tokenizer.json, taxonomies, configs
inline constexpr size_t kFileMaxSmall = size_t(1) << 20;  // chat templates, word lists

// Reads the whole regular file `path` of at most max_bytes. `what` names the file in errors
// ("taxonomy", "-f"); empty: just the path.
Expected<std::string> file_read(const std::string& path, size_t max_bytes, const std::string& what = "");

// Opens a regular file read-only (O_CLOEXEC); returns the descriptor (the caller closes it) and
// its size in *size. A non-regular path is refused before it is opened.
Expected<int> file_open_read(const std::string& path, uint64_t* size, const std::string& what = "");

// kInvalidArgument if `path` exists and is not a regular file (after following links); ok when it
// is absent or a regular file. Call it before long work whose result goes to `path`.
Status file_check_output(const std::string& path, const std::string& what = "");

// Writes `path` through `write`, which receives a FILE* open for writing on a new file in the same
// folder and returns its own Status; the new file replaces `path` only if everything succeeded
// (writes, flush, close), otherwise it is removed and the target is untouched.
Status file_write_atomic(const std::string& path, const std::function<Status(std::FILE*)>& write,
                         const std::string& what = "");
// Convenience: the whole of `data`.
Status file_write_atomic(const std::string& path, const std::string& data, const std::string& what = "");

}  // namespace hkv
