// server/request.cpp — request body parsing and validation (see request.h).
#include "server/request.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

namespace hkv::server {
namespace {

using json = nlohmann::json;

const char* type_name(const json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "boolean";
    if (v.is_number_integer()) return "integer";
    if (v.is_number()) return "number";
    if (v.is_string()) return "string";
    if (v.is_array()) return "array";
    return "object";
}

Status wrong_type(const char* field, const json& v, const char* want) {
    return Status::invalid("'%s' must be %s, got %s", field, want, type_name(v));
}

Status get_number(const json& v, const char* field, double lo, double hi, bool lo_open, float* out) {
    if (!v.is_number()) return wrong_type(field, v, "a number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x <= lo)) {
        return Status::invalid("'%s' = %g is out of range %s%g, %g]", field, x, lo_open ? "(" : "[", lo, hi);
    }
    *out = float(x);
    return Status();
}

Status get_int(const json& v, const char* field, int64_t lo, int64_t hi, int64_t* out) {
    if (!v.is_number_integer()) return wrong_type(field, v, "an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) {
        return Status::invalid("'%s' is out of range [%lld, %lld]", field, (long long)lo, (long long)hi);
    }
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) {
        return Status::invalid("'%s' = %lld is out of range [%lld, %lld]", field, (long long)x, (long long)lo,
                               (long long)hi);
    }
    *out = x;
    return Status();
}

Status get_string(const json& v, const char* field, size_t max_bytes, std::string* out) {
    if (!v.is_string()) return wrong_type(field, v, "a string");
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() > max_bytes) return Status::invalid("'%s' is longer than %zu bytes", field, max_bytes);
    *out = s;
    return Status();
}

Status get_bool(const json& v, const char* field, bool* out) {
    if (!v.is_boolean()) return wrong_type(field, v, "a boolean");
    *out = v.get<bool>();
    return Status();
}

Status parse_prompt(const json& v, const RequestLimits& lim, int32_t n_vocab, CompletionRequest* r) {
    if (v.is_string()) return get_string(v, "prompt", lim.max_prompt_bytes, &r->prompt);
    if (!v.is_array()) return wrong_type("prompt", v, "a string, an array of one string or an array of token ids");
    if (v.empty()) return Status::invalid("'prompt' is an empty array");
    if (v[0].is_string()) {  // ["text"]: batches of prompts are not served
        if (v.size() != 1) return Status::unsupported("'prompt' with %zu strings: one prompt per request", v.size());
        return get_string(v[0], "prompt[0]", lim.max_prompt_bytes, &r->prompt);
    }
    if (v.size() > size_t(lim.max_prompt_tokens)) {
        return Status::invalid("'prompt' has %zu token ids; the limit is %d", v.size(), lim.max_prompt_tokens);
    }
    r->prompt_is_tokens = true;
    r->prompt_tokens.reserve(v.size());
    const int64_t hi = n_vocab > 0 ? n_vocab - 1 : INT32_MAX;
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i].is_array()) return Status::unsupported("'prompt' as an array of token arrays: one prompt per request");
        int64_t id = 0;
        const std::string field = "prompt[" + std::to_string(i) + "]";
        HKV_TRY(get_int(v[i], field.c_str(), 0, hi, &id));
        r->prompt_tokens.push_back(int32_t(id));
    }
    return Status();
}

Status parse_messages(const json& v, const RequestLimits& lim, CompletionRequest* r) {
    if (!v.is_array()) return wrong_type("messages", v, "an array");
    if (v.empty()) return Status::invalid("'messages' is empty");
    if (v.size() > size_t(lim.max_messages)) {
        return Status::invalid("'messages' has %zu entries; the limit is %d", v.size(), lim.max_messages);
    }
    size_t total = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        const json& m = v[i];
        const std::string at = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) return wrong_type(at.c_str(), m, "an object");
        ChatMessage msg;
        bool has_content = false;
        for (auto it = m.begin(); it != m.end(); ++it) {
            const std::string f = at + "." + it.key();
            if (it.key() == "role") {
                HKV_TRY(get_string(*it, f.c_str(), lim.max_string_bytes, &msg.role));
                if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "developer") {
                    return Status::invalid("'%s' = '%s': expected system, developer, user or assistant", f.c_str(),
                                           msg.role.c_str());
                }
                if (msg.role == "developer") msg.role = "system";
            } else if (it.key() == "content") {
                has_content = true;
                if (it->is_string()) {
                    msg.content = it->get<std::string>();
                } else if (it->is_array()) {  // [{"type": "text", "text": "..."}]
                    for (size_t j = 0; j < it->size(); ++j) {
                        const json& part = (*it)[j];
                        const std::string pf = f + "[" + std::to_string(j) + "]";
                        if (!part.is_object()) return wrong_type(pf.c_str(), part, "an object");
                        if (!part.contains("type") || part["type"] != "text") {
                            return Status::unsupported("'%s': only content parts of type \"text\" are served",
                                                       pf.c_str());
                        }
                        if (!part.contains("text") || !part["text"].is_string()) {
                            return Status::invalid("'%s.text' must be a string", pf.c_str());
                        }
                        msg.content += part["text"].get<std::string>();
                    }
                } else if (!it->is_null()) {
                    return wrong_type(f.c_str(), *it, "a string or an array of text parts");
                }
            } else if (it.key() == "name") {
                std::string ignored;
                HKV_TRY(get_string(*it, f.c_str(), lim.max_string_bytes, &ignored));
            } else {
                return Status::invalid("'%s': unknown field", f.c_str());
            }
        }
        if (msg.role.empty()) return Status::invalid("'%s.role' is missing", at.c_str());
        if (!has_content) return Status::invalid("'%s.content' is missing", at.c_str());
        total += msg.content.size();
        if (total > lim.max_prompt_bytes) {
            return Status::invalid("'messages' hold more than %zu bytes of content", lim.max_prompt_bytes);
        }
        r->messages.push_back(std::move(msg));
    }
    return Status();
}

Status parse_stop(const json& v, const RequestLimits& lim, CompletionRequest* r) {
    if (v.is_null()) return Status();
    std::vector<const json*> items;
    if (v.is_string()) {
        items.push_back(&v);
    } else if (v.is_array()) {
        if (v.size() > size_t(lim.max_stop)) {
            return Status::invalid("'stop' has %zu strings; the limit is %d", v.size(), lim.max_stop);
        }
        for (const json& e : v) items.push_back(&e);
    } else {
        return wrong_type("stop", v, "a string or an array of strings");
    }
    for (const json* e : items) {
        std::string s;
        HKV_TRY(get_string(*e, "stop", lim.max_stop_bytes, &s));
        if (s.empty()) return Status::invalid("'stop' contains an empty string");
        r->stop.push_back(std::move(s));
    }
    return Status();
}

// OpenAI fields accepted only with their neutral value (anything else would change the output in a
// way heterokv does not implement).
Status check_neutral(const std::string& key, const json& v, Endpoint ep) {
    const char* k = key.c_str();
    if (key == "n" || key == "best_of") {
        int64_t n = 0;
        HKV_TRY(get_int(v, k, 1, 128, &n));
        if (n != 1) return Status::unsupported("'%s' = %lld: one choice per request", k, (long long)n);
        return Status();
    }
    if (key == "presence_penalty" || key == "frequency_penalty") {
        float x = 0;
        HKV_TRY(get_number(v, k, -2.0, 2.0, false, &x));
        if (x != 0.0f) return Status::unsupported("'%s' != 0 is not implemented (use repeat_penalty)", k);
        return Status();
    }
    if (key == "logprobs" || key == "top_logprobs") {
        if (v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_number_integer() && v.get<int64_t>() == 0)) {
            return Status();
        }
        if (!v.is_boolean() && !v.is_number_integer()) return wrong_type(k, v, "a boolean, an integer or null");
        return Status::unsupported("'%s' is not implemented", k);
    }
    if (key == "logit_bias") {
        if (v.is_null() || (v.is_object() && v.empty())) return Status();
        if (!v.is_object()) return wrong_type(k, v, "an object or null");
        return Status::unsupported("'logit_bias' is not implemented");
    }
    if (key == "suffix") {
        if (ep != Endpoint::kCompletions) return Status::invalid("'suffix': unknown field for chat completions");
        if (v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty())) return Status();
        if (!v.is_string()) return wrong_type(k, v, "a string or null");
        return Status::unsupported("'suffix' (insertion) is not implemented");
    }
    return Status::invalid("'%s': unknown field", k);
}

}  // namespace

Expected<std::string> resolve_request_policy(std::string_view spec,
                                             const std::vector<std::pair<std::string, std::string>>& files) {
    // Policy options whose value is a file on the server.
    struct FileOption {
        const char* key;
        const char* plural;
    };
    static const FileOption kFileOptions[] = {{"taxonomy", "taxonomies"}};
    auto word = [](std::string_view s) {
        if (s.empty() || s.size() > 64) return false;
        for (unsigned char c : s) {
            if (!std::isalnum(c) && c != '_' && c != '.' && c != '+' && c != '-') return false;
        }
        return true;
    };
    const size_t colon = spec.find(':');
    const std::string_view name = spec.substr(0, colon);
    if (!word(name)) return Status::invalid("kv_policy: '%.*s' is not a policy name", int(std::min<size_t>(name.size(), 64)), name.data());
    std::string out(name);
    if (colon == std::string_view::npos) return out;
    out += ':';
    std::string_view rest = spec.substr(colon + 1);
    for (bool first = true;; first = false) {
        const size_t comma = rest.find(',');
        const std::string_view opt = rest.substr(0, comma);
        const size_t eq = opt.find('=');
        const std::string_view key = opt.substr(0, eq), value = eq == std::string_view::npos ? "" : opt.substr(eq + 1);
        if (!word(key) || !word(value)) {
            return Status::invalid("kv_policy: option '%.*s' must be key=value with words or numbers "
                                   "(letters, digits, _ . + -)", int(std::min<size_t>(opt.size(), 64)), opt.data());
        }
        std::string resolved(value);
        for (const FileOption& f : kFileOptions) {
            if (key != f.key) continue;
            auto it = std::find_if(files.begin(), files.end(), [&](const auto& e) { return e.first == value; });
            if (it == files.end()) {
                std::string offered;
                for (const auto& e : files) offered += (offered.empty() ? "" : ", ") + e.first;
                return Status::invalid("kv_policy: %s= must name one of the server's %s (serve --%s NAME=PATH): %s",
                                       f.key, f.plural, f.key,
                                       offered.empty() ? "none are offered" : ("offered: " + offered).c_str());
            }
            resolved = it->second;
        }
        out += (first ? "" : ",") + std::string(key) + "=" + resolved;
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
    return out;
}

int32_t json_depth(std::string_view text, int32_t cap) {
    int32_t depth = 0, max_depth = 0;
    bool in_str = false, esc = false;
    for (char c : text) {
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > max_depth) max_depth = depth;
            if (max_depth > cap) return max_depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return max_depth;
}

Expected<CompletionRequest> parse_completion_request(std::string_view body, Endpoint endpoint,
                                                     const RequestLimits& lim, int32_t n_vocab) {
    if (body.size() > lim.max_body_bytes) {
        return Status::invalid("request body of %zu bytes exceeds the limit of %zu", body.size(), lim.max_body_bytes);
    }
    if (json_depth(body, lim.max_depth) > lim.max_depth) {
        return Status::invalid("request body nests deeper than %d levels", lim.max_depth);
    }
    const json root = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded()) return Status::invalid("request body is not valid JSON");
    if (!root.is_object()) return wrong_type("request body", root, "a JSON object");

    CompletionRequest r;
    r.endpoint = endpoint;
    const bool chat = endpoint == Endpoint::kChat;
    bool has_input = false;
    for (auto it = root.begin(); it != root.end(); ++it) {
        const std::string& key = it.key();
        const json& v = *it;
        const char* k = key.c_str();
        int64_t n = 0;
        if (key == "model") {
            HKV_TRY(get_string(v, k, lim.max_string_bytes, &r.model));
        } else if (key == "prompt" && !chat) {
            HKV_TRY(parse_prompt(v, lim, n_vocab, &r));
            has_input = true;
        } else if (key == "messages" && chat) {
            HKV_TRY(parse_messages(v, lim, &r));
            has_input = true;
        } else if (key == "max_tokens" || (chat && key == "max_completion_tokens")) {
            if (v.is_null()) continue;
            HKV_TRY(get_int(v, k, 0, lim.max_tokens, &n));
            r.max_tokens = int32_t(n);
        } else if (key == "temperature") {
            if (!v.is_null()) HKV_TRY(get_number(v, k, 0.0, 2.0, false, &r.temperature));
        } else if (key == "top_p") {
            if (!v.is_null()) HKV_TRY(get_number(v, k, 0.0, 1.0, true, &r.top_p));
        } else if (key == "top_k") {
            HKV_TRY(get_int(v, k, 0, 1 << 20, &n));
            r.top_k = int32_t(n);
        } else if (key == "min_p") {
            HKV_TRY(get_number(v, k, 0.0, 1.0, false, &r.min_p));
        } else if (key == "repeat_penalty") {
            HKV_TRY(get_number(v, k, 0.0, 10.0, true, &r.repeat_penalty));
        } else if (key == "seed") {
            if (v.is_null()) continue;
            HKV_TRY(get_int(v, k, INT64_MIN, INT64_MAX, &n));
            r.seed = uint64_t(n);
        } else if (key == "stream") {
            if (!v.is_null()) HKV_TRY(get_bool(v, k, &r.stream));
        } else if (key == "stream_options") {
            if (v.is_null()) continue;
            if (!v.is_object()) return wrong_type(k, v, "an object");
            for (auto so = v.begin(); so != v.end(); ++so) {
                if (so.key() != "include_usage") {
                    return Status::invalid("'stream_options.%s': unknown field", so.key().c_str());
                }
                HKV_TRY(get_bool(*so, "stream_options.include_usage", &r.include_usage));
            }
        } else if (key == "stop") {
            HKV_TRY(parse_stop(v, lim, &r));
        } else if (key == "echo" && !chat) {
            HKV_TRY(get_bool(v, k, &r.echo));
        } else if (key == "ignore_eos") {
            HKV_TRY(get_bool(v, k, &r.ignore_eos));
        } else if (key == "parse_special") {
            HKV_TRY(get_bool(v, k, &r.parse_special));
        } else if (key == "cache_prompt") {
            HKV_TRY(get_bool(v, k, &r.cache_prompt));
        } else if (key == "kv_policy") {
            if (!v.is_null()) HKV_TRY(get_string(v, k, lim.max_string_bytes, &r.kv_policy));
        } else if (key == "user") {
            std::string ignored;
            HKV_TRY(get_string(v, k, lim.max_string_bytes, &ignored));
        } else {
            HKV_TRY(check_neutral(key, v, endpoint));
        }
    }
    if (!has_input) return Status::invalid(chat ? "'messages' is required" : "'prompt' is required");
    if (r.include_usage && !r.stream) return Status::invalid("'stream_options' is only allowed with \"stream\": true");
    return r;
}

}  // namespace hkv::server
