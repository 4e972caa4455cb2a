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

// Llama-2 / Mistral: system text goes into the first user turn; turns alternate user/assistant.
Expected<std::string> render_inst(std::span<const ChatMessage> msgs, bool llama2) {
    std::string system, out;
    bool first_user = true;
    for (const ChatMessage& m : msgs) {
        if (m.role == "system") {
            system += (system.empty() ? "" : "\n") + m.content;
        } else if (m.role == "user") {
            std::string text = m.content;
            if (first_user && !system.empty()) {
                text = llama2 ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + text : system + "\n\n" + text;
            }
            if (!first_user) out += "<s>";  // BOS of the first turn comes from the tokenizer
            out += "[INST] " + text + " [/INST]";
            first_user = false;
        } else {
            out += " " + m.content + " </s>";
        }
    }
    if (first_user) return Status::invalid("'messages' has no user message");
    return out;
}

}  // namespace

ChatFamily chat_family_detect(std::string_view t) {
    if (t.empty()) return ChatFamily::kNone;
    if (has(t, "<|im_start|>")) return ChatFamily::kChatml;
    if (has(t, "<|start_header_id|>")) return ChatFamily::kLlama3;
    if (has(t, "<start_of_turn>")) return ChatFamily::kGemma;
    if (has(t, "[INST]")) return has(t, "<<SYS>>") ? ChatFamily::kLlama2 : ChatFamily::kMistral;
    if (has(t, "<|user|>")) return has(t, "<|end|>") ? ChatFamily::kPhi3 : ChatFamily::kZephyr;
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

Expected<std::string> chat_render(ChatFamily family, std::span<const ChatMessage> msgs) {
    std::string out;
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
            for (const ChatMessage& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
            return out + "<|im_start|>assistant\n";
        case ChatFamily::kLlama3:
            for (const ChatMessage& m : msgs) {
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
            }
            return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
        case ChatFamily::kLlama2:
            return render_inst(msgs, true);
        case ChatFamily::kMistral:
            return render_inst(msgs, false);
        case ChatFamily::kZephyr:
        case ChatFamily::kPhi3: {
            const char* end = family == ChatFamily::kZephyr ? "</s>" : "<|end|>";
            for (const ChatMessage& m : msgs) out += "<|" + m.role + "|>\n" + m.content + end + "\n";
            return out + "<|assistant|>\n";
        }
        case ChatFamily::kGemma: {  // no system role: system text opens the first user turn
            std::string system;
            for (const ChatMessage& m : msgs) {
                if (m.role == "system") {
                    system += m.content + "\n\n";
                    continue;
                }
                const char* role = m.role == "assistant" ? "model" : "user";
                std::string text = m.content;
                if (m.role == "user" && !system.empty()) {
                    text = system + text;
                    system.clear();
                }
                out += std::string("<start_of_turn>") + role + "\n" + text + "<end_of_turn>\n";
            }
            return out + "<start_of_turn>model\n";
        }
    }
    return Status::internal("chat_render: bad family");
}

}  // namespace hkv::server
