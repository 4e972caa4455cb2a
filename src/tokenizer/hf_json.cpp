// tokenizer/hf_json.cpp — TokenizerData from a Hugging Face tokenizer.json (BPE models).
//
// What is read, and how it maps (following what llama.cpp's convert_hf_to_gguf.py would write):
//   model.vocab, model.merges ("a b" strings or ["a", "b"] pairs) -> tokens, merges;
//   added_tokens -> CONTROL if "special", else USER_DEFINED; ids missing from both -> "[PAD<i>]",
//       UNUSED;
//   pre_tokenizer -> `pre`: ByteLevel(use_regex) alone = "gpt2"; Digits(individual) + ByteLevel =
//       "smollm"; Split(llama3 regex) + ByteLevel = "llama-bpe"; Split(qwen2 regex) + ByteLevel =
//       "qwen2"; anything else is an error naming it;
//   SentencePiece-style BPE (no ByteLevel; byte_fallback, "▁" replace) -> model "llama" with
//       scores = -(rank of the merge that makes the token), add_space_prefix from the normalizer;
//   bos/eos/unk/pad: tokenizer_config.json beside the file (bos_token, ...) first, then
//       config.json (bos_token_id, ...) for those still unset — the converter's order. For
//       SmolLM2-135M(-Instruct), which ships only config.json here, that gives bos = 1
//       "<|im_start|>", eos = 2 "<|im_end|>", pad = 2; "<|endoftext|>" still ends generation
//       through Tokenizer::is_eog;
//   add_bos/add_eos: tokenizer_config.json add_bos_token/add_eos_token, else whether the
//       post_processor template starts with bos / ends with eos; chat_template from
//       tokenizer_config.json or chat_template.jinja.
// The normalizer must be absent or NFC for byte-level models (llama.cpp ignores NFC too).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "heterokv/file_io.h"
#include "tokenizer/tokenizer.h"

namespace hkv {

namespace {

using json = nlohmann::json;

const char* const kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

// A regular file of at most kFileMaxJson bytes (heterokv/file_io.h); false when it cannot be read.
bool read_file(const std::string& path, std::string* out, Status* why = nullptr) {
    auto text = file_read(path, kFileMaxJson);
    if (!text.ok()) {
        if (why) *why = text.status();
        return false;
    }
    *out = std::move(*text);
    return true;
}

std::string dir_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// Parses an optional JSON file beside tokenizer.json; a missing file gives a null value (one
// that exists but is not a readable regular file is an error).
Expected<json> read_optional_json(const std::string& path) {
    std::string text;
    Status why;
    if (!read_file(path, &text, &why)) {
        if (why.code() == StatusCode::kNotFound) return json();
        return why;
    }
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::corrupt("%s: not valid JSON", path.c_str());
    return j;
}

std::string str_or(const json& j, const char* key, const std::string& def = "") {
    if (!j.is_object()) return def;
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

bool bool_or(const json& j, const char* key, bool def) {
    if (!j.is_object()) return def;
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

// A Sequence is flattened; anything else is a one-element list. Null gives an empty list.
std::vector<json> flatten(const json& j, const char* list_key) {
    std::vector<json> out;
    if (!j.is_object()) return out;
    if (str_or(j, "type") == "Sequence" && j.contains(list_key) && j[list_key].is_array()) {
        for (const json& e : j[list_key]) {
            for (json& x : flatten(e, list_key)) out.push_back(std::move(x));
        }
    } else {
        out.push_back(j);
    }
    return out;
}

std::string describe(const std::vector<json>& items) {
    std::string s;
    for (const json& e : items) s += (s.empty() ? "" : ", ") + str_or(e, "type", "?");
    return "[" + s + "]";
}

Expected<std::string> byte_level_pre(const json& pre_tok) {
    const std::vector<json> p = flatten(pre_tok, "pretokenizers");
    auto is = [&](size_t i, const char* type) { return i < p.size() && str_or(p[i], "type") == type; };
    auto byte_level = [&](size_t i, bool with_regex) {
        return is(i, "ByteLevel") && bool_or(p[i], "use_regex", true) == with_regex &&
               !bool_or(p[i], "add_prefix_space", false);
    };
    if (p.size() == 1 && byte_level(0, true)) return std::string("gpt2");
    if (p.size() == 2 && is(0, "Digits") && bool_or(p[0], "individual_digits", false) && byte_level(1, true))
        return std::string("smollm");
    if (p.size() == 2 && is(0, "Split") && byte_level(1, false)) {
        const json& pat = p[0].contains("pattern") ? p[0]["pattern"] : json();
        const std::string re = str_or(pat, "Regex");
        if (re == kLlama3Regex) return std::string("llama-bpe");
        if (re == kQwen2Regex) return std::string("qwen2");
        if (re == kGpt2Regex) return std::string("gpt2");
        return Status::unsupported("pre_tokenizer Split regex '%s' is not one of llama3/qwen2/gpt2", re.c_str());
    }
    return Status::unsupported("pre_tokenizer %s is not a supported byte-level sequence", describe(p).c_str());
}

// A special token given as "text" or {"content": "text"}.
std::string token_text(const json& j) {
    if (j.is_string()) return j.get<std::string>();
    return str_or(j, "content");
}

Expected<TokenizerData> parse(const std::string& path, const json& root) {
    TokenizerData d;
    if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
        return Status::corrupt("%s: no 'model' object", path.c_str());
    const json& model = root["model"];
    const std::string type = str_or(model, "type", "BPE");
    if (type != "BPE") return Status::unsupported("%s: model.type '%s' (only BPE)", path.c_str(), type.c_str());
    if (!model.contains("vocab") || !model["vocab"].is_object())
        return Status::corrupt("%s: model.vocab is not an object", path.c_str());

    // vocabulary and added tokens
    const json& vocab = model["vocab"];
    const json added = root.contains("added_tokens") && root["added_tokens"].is_array() ? root["added_tokens"] : json::array();
    int64_t n = 0;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
            return Status::corrupt("%s: vocab id of '%s' is not a valid id", path.c_str(), it.key().c_str());
        n = std::max(n, it.value().get<int64_t>() + 1);
    }
    for (const json& a : added) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
            a["id"].get<int64_t>() > INT32_MAX || !a.contains("content") || !a["content"].is_string())
            return Status::corrupt("%s: malformed added_tokens entry", path.c_str());
        n = std::max(n, a["id"].get<int64_t>() + 1);
    }
    if (n == 0) return Status::corrupt("%s: empty vocabulary", path.c_str());
    if (n > (int64_t(1) << 24)) return Status::unsupported("%s: %lld tokens", path.c_str(), (long long)n);
    d.tokens.resize(size_t(n));
    d.token_type.assign(size_t(n), int32_t(TokenAttr::kUnused));
    for (int64_t i = 0; i < n; ++i) d.tokens[size_t(i)] = "[PAD" + std::to_string(i) + "]";
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const size_t id = size_t(it.value().get<int64_t>());
        d.tokens[id] = it.key();
        d.token_type[id] = int32_t(TokenAttr::kNormal);
    }
    for (const json& a : added) {
        const size_t id = size_t(a["id"].get<int64_t>());
        d.tokens[id] = a["content"].get<std::string>();
        d.token_type[id] = int32_t(bool_or(a, "special", false) ? TokenAttr::kControl : TokenAttr::kUserDefined);
    }

    // merges
    if (model.contains("merges")) {
        const json& merges = model["merges"];
        if (!merges.is_array()) return Status::corrupt("%s: model.merges is not an array", path.c_str());
        d.merges.reserve(merges.size());
        for (const json& m : merges) {
            if (m.is_string()) {
                d.merges.push_back(m.get<std::string>());
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                d.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
            } else {
                return Status::corrupt("%s: merge %zu is neither \"a b\" nor [a, b]", path.c_str(), d.merges.size());
            }
        }
    }

    // byte-level or SentencePiece-style
    const json pre_tok = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json();
    const json decoder = root.contains("decoder") ? root["decoder"] : json();
    const json normalizer = root.contains("normalizer") ? root["normalizer"] : json();
    bool byte_level = false;
    for (const json& e : flatten(pre_tok, "pretokenizers")) byte_level |= str_or(e, "type") == "ByteLevel";
    for (const json& e : flatten(decoder, "decoders")) byte_level |= str_or(e, "type") == "ByteLevel";
    if (byte_level) {
        d.model = "gpt2";
        d.add_space_prefix = false;
        const std::string norm = str_or(normalizer, "type");
        if (!normalizer.is_null() && norm != "NFC")
            return Status::unsupported("%s: normalizer '%s' with a byte-level model", path.c_str(), norm.c_str());
        auto pre = byte_level_pre(pre_tok);
        if (!pre) return pre.status().with_context(path);
        d.pre = *pre;
    } else {
        d.model = "llama";
        bool prepend = false, replace = false;
        for (const json& e : flatten(normalizer, "normalizers")) {
            const std::string t = str_or(e, "type");
            if (t == "Prepend") prepend = true;
            else if (t == "Replace") replace = true;
            else return Status::unsupported("%s: normalizer '%s' in a SentencePiece-style model", path.c_str(), t.c_str());
        }
        for (const json& e : flatten(pre_tok, "pretokenizers")) {
            if (str_or(e, "type") != "Metaspace")
                return Status::unsupported("%s: pre_tokenizer %s in a SentencePiece-style model", path.c_str(),
                                           describe(flatten(pre_tok, "pretokenizers")).c_str());
            replace = true;
            const std::string scheme = str_or(e, "prepend_scheme", bool_or(e, "add_prefix_space", true) ? "always" : "never");
            prepend = prepend || scheme != "never";
        }
        if (!replace && !bool_or(model, "byte_fallback", false))
            return Status::unsupported("%s: BPE model is neither byte-level nor SentencePiece-style", path.c_str());
        d.add_space_prefix = prepend;
        // SPM merges by score: the earlier the merge that makes a token, the higher its score
        const float none = -float(d.merges.size() + 1);
        d.scores.assign(size_t(n), none);
        for (size_t r = 0; r < d.merges.size(); ++r) {
            const std::string& m = d.merges[r];
            const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
            if (sp == std::string::npos) continue;
            auto it = vocab.find(m.substr(0, sp) + m.substr(sp + 1));
            if (it != vocab.end() && d.scores[size_t(it.value().get<int64_t>())] == none)
                d.scores[size_t(it.value().get<int64_t>())] = -float(r);
        }
        for (size_t i = 0; i < d.tokens.size(); ++i) {
            const std::string& t = d.tokens[i];
            if (d.token_type[i] == int32_t(TokenAttr::kNormal) && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>')
                d.token_type[i] = int32_t(TokenAttr::kByte);
        }
        d.pre.clear();
        d.merges.clear();  // SPM merges by score, not by these ranks
    }

    // special ids
    auto id_of = [&](const std::string& text) -> int32_t {
        if (text.empty()) return -1;
        for (size_t i = 0; i < d.tokens.size(); ++i) {
            if (d.tokens[i] == text) return int32_t(i);
        }
        return -1;
    };
    const std::string unk = str_or(model, "unk_token");
    d.unk_id = id_of(unk);
    if (d.unk_id >= 0) d.token_type[size_t(d.unk_id)] = int32_t(TokenAttr::kUnknown);

    const std::string dir = dir_of(path);
    HKV_ASSIGN_OR_RETURN(const json tok_cfg, read_optional_json(dir + "/tokenizer_config.json"));
    HKV_ASSIGN_OR_RETURN(const json cfg, read_optional_json(dir + "/config.json"));
    struct Special {
        const char* name;
        int32_t* id;
    } specials[] = {{"bos", &d.bos_id}, {"eos", &d.eos_id}, {"pad", &d.pad_id}};
    for (const Special& s : specials) {
        if (tok_cfg.is_object() && tok_cfg.contains(std::string(s.name) + "_token"))
            *s.id = id_of(token_text(tok_cfg[std::string(s.name) + "_token"]));
        const std::string key = std::string(s.name) + "_token_id";
        if (*s.id < 0 && cfg.is_object() && cfg.contains(key) && cfg[key].is_number_integer()) {
            const int64_t v = cfg[key].get<int64_t>();
            if (v >= 0 && v < n) *s.id = int32_t(v);
        }
    }

    // add_bos / add_eos: explicit flags, else the post-processor template
    const json post = root.contains("post_processor") ? root["post_processor"] : json();
    bool tpl_bos = false, tpl_eos = false;
    if (str_or(post, "type") == "TemplateProcessing" && post.contains("single") && post["single"].is_array() &&
        !post["single"].empty()) {
        const json& single = post["single"];
        auto special_id = [&](const json& e) {
            return e.is_object() && e.contains("SpecialToken") ? id_of(str_or(e["SpecialToken"], "id")) : -1;
        };
        tpl_bos = d.bos_id >= 0 && special_id(single.front()) == d.bos_id;
        tpl_eos = d.eos_id >= 0 && special_id(single.back()) == d.eos_id;
    }
    d.add_bos = bool_or(tok_cfg, "add_bos_token", tpl_bos) && d.bos_id >= 0;
    d.add_eos = bool_or(tok_cfg, "add_eos_token", tpl_eos) && d.eos_id >= 0;

    // chat template
    if (tok_cfg.is_object() && tok_cfg.contains("chat_template")) {
        const json& ct = tok_cfg["chat_template"];
        if (ct.is_string()) {
            d.chat_template = ct.get<std::string>();
        } else if (ct.is_array()) {
            for (const json& e : ct) {
                if (str_or(e, "name") == "default") d.chat_template = str_or(e, "template");
            }
        }
    }
    if (d.chat_template.empty()) read_file(dir + "/chat_template.jinja", &d.chat_template);
    return d;
}

}  // namespace

Expected<TokenizerData> tokenizer_data_from_hf_json(const std::string& path) {
    std::string text;
    Status why;
    if (!read_file(path, &text, &why)) return why;
    const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded()) return Status::corrupt("%s: not valid JSON", path.c_str());
    try {
        return parse(path, root);
    } catch (const std::exception& e) {  // a type the checks above missed; never let it escape
        return Status::corrupt("%s: %s", path.c_str(), e.what());
    }
}

}  // namespace hkv
