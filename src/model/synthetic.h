// model/synthetic.h — synthetic GGUF models (public part: include/heterokv/synthetic.h); the
// writer on a caller's thread pool and the per-row type fallback.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "heterokv/status.h"
#include "heterokv/synthetic.h"
#include "tokenizer/tokenizer.h"

namespace hkv {

// synth_weight_bytes / synth_model_write of heterokv/synthetic.h with the internal type and a
// caller's pool (opt.n_threads is then ignored).
uint64_t synth_weight_bytes(const SynthShape& shape, DType weight_type);
Status synth_model_write(const SynthShape& shape, const TokenizerData& tok, const SynthOptions& opt,
                         ThreadPool& pool, const std::string& path);

// The fallback llama.cpp uses when a row length is not a multiple of a K-quant's 256: q2_K, q3_K,
// iq4_xs -> iq4_nl, q4_K/q5_K -> q5_0, q6_K -> q8_0; other types unchanged.
DType synth_type_for_row(DType t, int64_t n_in);

// The vocabulary a preset writes: `tok` padded to shape.n_vocab, with the family's settings for
// shape.vocab_style — "gemma": <start_of_turn>/<end_of_turn> control tokens (end of turn = EOT) and,
// for a SentencePiece vocabulary, no leading space; "phi3": <unk>, <s>, </s> (when absent), <|endoftext|>,
// <|assistant|>, <|end|>, <|system|>, <|user|> control tokens (<|end|> = EOT). kInvalidArgument when tok is too large.
Expected<TokenizerData> synth_vocab(const SynthShape& shape, const TokenizerData& tok);

// A minimal Jinja chat template in the format of the family `style` (see SynthShape::chat_style;
// heterokv's server recognises it by its markers), or "" for an unknown style.
std::string synth_chat_template(const std::string& style);

}  // namespace hkv
