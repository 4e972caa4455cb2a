// server/chat_template.cpp — native renderers for the chat template families (see chat_template.h).
#include "server/chat_template.h"

namespace hkv::server {
namespace {

struct FamilyName {
    ChatFamily family;
    const char* name;
};
constexpr FamilyName kFamilies[] = {
    {ChatFamily::kChatml, "chatml"}, {ChatFamily::kLlama3, "llama3"}, {ChatFamily::kLlama2, "llama2"},
    {ChatFamily::kMistral, "mistral"}, {ChatFamily::kZephyr, "zephyr"}, {ChatFamily::kPhi3, "phi3"},
    {ChatFamily::kGemma, "gemma"},
};

bool has(std::string_view s, std::string_view marker) { return s.find(marker) != std::string_view::npos; }

// The rendered text, and where the messages' own text sits in it (template markers are outside).
struct Out {
    std::string text;
    std::vector<std::pair<size_t, size_t>>* content;  // may be null
    void markup(std::string_view s) { text += s; }
    void message(std::string_view s) {
        if (content && !s.empty()) content->emplace_back(text.size(), s.size());
        text += s;
    }
    // Every message as <open><role><role_end><content><close>.
    void turns(std::span<const ChatMessage> msgs, std::string_view open, std::string_view role_end,
               std::string_view close) {
        for (const ChatMessage& m : msgs) {
            markup(open);
            markup(m.role);
            markup(role_end);
            message(m.content);
            markup(close);
        }
    }
};

// Llama-2 / Mistral: system text goes into the first user turn; turns alternate user/assistant.
Status render_inst(std::span<const ChatMessage> msgs, bool llama2, Out& out) {
    std::vector<std::string_view> system;
    bool first_user = true;
    for (const ChatMessage& m : msgs) {
        if (m.role == "system") {
            system.push_back(m.content);
        } else if (m.role == "user") {
            if (!first_user) out.markup("<s>");  // BOS of the first turn comes from the tokenizer
            out.markup("[INST] ");
            if (first_user && !system.empty()) {
                if (llama2) out.markup("<<SYS>>\n");
                for (size_t i = 0; i < system.size(); ++i) {
                    if (i) out.markup("\n");
                    out.message(system[i]);
                }
                out.markup(llama2 ? "\n<</SYS>>\n\n" : "\n\n");
            }
            out.message(m.content);
            out.markup(" [/INST]");
            first_user = false;
        } else {
            out.markup(" ");
            out.message(m.content);
            out.markup(" </s>");
        }
    }
    if (first_user) return Status::invalid("'messages' has no user message");
    return Status();
}

}  // namespace

ChatFamily chat_family_detect(std::string_view t) {
    if (t.empty()) return ChatFamily::kNone;
    if (has(t, "<|im_start|>")) return ChatFamily::kChatml;
    if (has(t, "<|start_header_id|>")) return ChatFamily::kLlama3;
    if (has(t, "<start_of_turn>")) return ChatFamily::kGemma;
    if (has(t, "[INST]")) return has(t, "<<SYS>>") ? ChatFamily::kLlama2 : ChatFamily::kMistral;
    // Phi-3: <|end|> closes each turn; the role marker may be built from the role name ('<|' + role + '|>')
    if (has(t, "<|end|>") && (has(t, "<|user|>") || has(t, "<|assistant|>"))) return ChatFamily::kPhi3;
    if (has(t, "<|user|>")) return ChatFamily::kZephyr;
    return ChatFamily::kUnknown;
}

const char* chat_family_name(ChatFamily f) {
    for (const FamilyName& e : kFamilies) {
        if (e.family == f) return e.name;
    }
    return f == ChatFamily::kNone ? "none" : "unknown";
}

ChatFamily chat_family_from_name(std::string_view name) {
    for (const FamilyName& e : kFamilies) {
        if (name == e.name) return e.family;
    }
    return ChatFamily::kUnknown;
}

std::string chat_family_list() {
    std::string r;
    for (const FamilyName& e : kFamilies) r += (r.empty() ? "" : ", ") + std::string(e.name);
    return r;
}

Expected<std::string> chat_render(ChatFamily family, std::span<const ChatMessage> msgs,
                                  std::vector<std::pair<size_t, size_t>>* content, bool add_generation_prompt) {
    if (content) content->clear();
    Out out{std::string(), content};
    switch (family) {
        case ChatFamily::kNone:
            return Status::invalid("the model has no chat template (GGUF key tokenizer.chat_template is absent); "
                                   "use /v1/completions, or start the server with --chat-template FAMILY (%s)",
                                   chat_family_list().c_str());
        case ChatFamily::kUnknown:
            return Status::unsupported("the model's chat template is not one of the families heterokv renders (%s); "
                                       "use /v1/completions, or start the server with --chat-template FAMILY",
                                       chat_family_list().c_str());
        case ChatFamily::kChatml:
            out.turns(msgs, "<|im_start|>", "\n", "<|im_end|>\n");
            if (add_generation_prompt) out.markup("<|im_start|>assistant\n");
            return std::move(out.text);
        case ChatFamily::kLlama3:
            out.turns(msgs, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>");
            if (add_generation_prompt) out.markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
            return std::move(out.text);
        case ChatFamily::kLlama2:
        case ChatFamily::kMistral:  // "[/INST]" ends each user turn: there is no separate header
            HKV_TRY(render_inst(msgs, family == ChatFamily::kLlama2, out));
            return std::move(out.text);
        case ChatFamily::kZephyr:
        case ChatFamily::kPhi3: {
            out.turns(msgs, "<|", "|>\n", family == ChatFamily::kZephyr ? "</s>\n" : "<|end|>\n");
            if (add_generation_prompt) out.markup("<|assistant|>\n");
            return std::move(out.text);
        }
        case ChatFamily::kGemma: {  // no system role: system text opens the first user turn
            std::vector<std::string_view> system;
            for (const ChatMessage& m : msgs) {
                if (m.role == "system") {
                    system.push_back(m.content);
                    continue;
                }
                out.markup(std::string("<start_of_turn>") + (m.role == "assistant" ? "model" : "user") + "\n");
                if (m.role == "user") {
                    for (std::string_view s : system) {
                        out.message(s);
                        out.markup("\n\n");
                    }
                    system.clear();
                }
                out.message(m.content);
                out.markup("<end_of_turn>\n");
            }
            if (add_generation_prompt) out.markup("<start_of_turn>model\n");
            return std::move(out.text);
        }
    }
    return Status::internal("chat_render: bad family");
}

}  // namespace hkv::server
