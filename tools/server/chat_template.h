// server/chat_template.h — chat prompts rendered natively for the common template families.
//
// A GGUF's tokenizer.chat_template is a Jinja program. heterokv does not run Jinja: it recognises
// the family of a template by its markers and renders that family's format itself:
//   chatml   <|im_start|>role\n...<|im_end|>\n            (SmolLM2, Qwen2, ...)
//   llama3   <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
//   llama2   [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST]   (a template that mentions <<SYS>>)
//   mistral  [INST] ... [/INST]                              ([INST] without <<SYS>>)
//   zephyr   <|user|>\n...</s>\n<|assistant|>\n             (<|user|> without <|end|>)
//   phi3     <|user|>\n...<|end|>\n<|assistant|>\n
//   gemma    <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n
// The BOS token is never rendered: the tokenizer adds it when the model asks for one. Special
// tokens in the template's markup must be parsed as special tokens when it is tokenized; the
// same text inside a message's content must not (unless the request opts in with parse_special).
// Pure functions; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "heterokv/status.h"
#include "server/request.h"

namespace hkv::server {

enum class ChatFamily { kNone, kUnknown, kChatml, kLlama3, kLlama2, kMistral, kZephyr, kPhi3, kGemma };

// kNone for an empty template, kUnknown when no family's markers are present.
ChatFamily chat_family_detect(std::string_view tmpl);
// "chatml", "llama3", ... ("none", "unknown" for the other two).
const char* chat_family_name(ChatFamily f);
// Inverse of chat_family_name for the renderable families; kUnknown for any other name.
ChatFamily chat_family_from_name(std::string_view name);
// The renderable family names, comma-separated (for messages).
std::string chat_family_list();

// Renders the conversation followed by the assistant's turn header (add_generation_prompt; false:
// the conversation alone, as a chat of several turns is rendered up to a reply's end). Errors: kInvalidArgument for
// kNone/kUnknown (the message says why) or an impossible conversation (e.g. no user message).
// content, if given, receives the {offset, length} of every message's text in the result, in
// order: the tokenizer treats special-token text there as plain text (Tokenizer::encode with
// literal ranges), so a message cannot inject "<|im_end|>" or a role header.
Expected<std::string> chat_render(ChatFamily family, std::span<const ChatMessage> messages,
                                  std::vector<std::pair<size_t, size_t>>* content = nullptr,
                                  bool add_generation_prompt = true);

}  // namespace hkv::server
