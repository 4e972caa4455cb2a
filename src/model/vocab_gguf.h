// model/vocab_gguf.h — TokenizerData <-> GGUF metadata (tokenizer.ggml.* keys).
#pragma once

#include "heterokv/status.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hkv {

// Reads tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,*_token_id,add_*} and
// tokenizer.chat_template. Missing tokens -> kNotFound; inconsistent sizes -> kCorrupt.
Expected<TokenizerData> tokenizer_data_from_gguf(const GgufFile& file);
// Writes the same keys (used by make-model).
void tokenizer_data_to_gguf(const TokenizerData& data, GgufWriter& writer);

}  // namespace hkv
