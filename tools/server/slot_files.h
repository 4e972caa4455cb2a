// server/slot_files.h — saved slots (llama.cpp's `POST /slots/{id}?action=save|restore|erase` with
// `{"filename": ...}`, enabled by --slot-save-path DIR): the file names and request bodies, without
// sockets. A slot's kept context is written with Context::state_save_file (docs/saved-contexts.md).
//
// A file name is a plain name inside DIR: 1 to 128 characters of [A-Za-z0-9._+-], not starting
// with '.', so it can never name another folder (no '/', no "..", no absolute path) or a hidden
// file. Reading accepts regular files only and writing replaces a file atomically (heterokv/
// file_io.h), so a FIFO, device or directory planted in DIR is refused, never opened.
// Pure functions; thread-safe; never throw.
#pragma once

#include <string>
#include <string_view>

#include "heterokv/status.h"

namespace hkv::server {

// DIR/filename, or kInvalidArgument naming what is wrong with the name.
Expected<std::string> slot_file_path(const std::string& dir, std::string_view filename);

// A slot action's body: {"filename": NAME} for save and restore, and for restore optionally
// {"kv_policy": SPEC} (the policy the saved context was made with, as a request names it; default:
// the server's). Erase takes an empty body or {}. Unknown fields, wrong types and bodies over
// max_bytes are kInvalidArgument.
struct SlotRequest {
    std::string filename;
    std::string kv_policy;
};
Expected<SlotRequest> parse_slot_request(std::string_view body, bool need_filename, size_t max_bytes = 4096);

}  // namespace hkv::server
