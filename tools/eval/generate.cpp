// tools/eval/generate.cpp — see generate.h.
#include "eval/generate.h"

#include "heterokv/model.h"
#include "heterokv/sampler.h"

namespace hkv::eval {

Expected<std::string> generate_greedy(Context& cx, std::span<const int32_t> context,
                                      std::span<const int32_t> question, const GenerateOptions& opt) {
    if (context.empty()) return Status::invalid("generate: empty prompt");
    if (opt.n_gen < 1) return Status::invalid("generate: n_gen must be >= 1");
    const Tokenizer& tok = model_tokenizer(cx.model());
    cx.reset();
    HKV_TRY(cx.eval(context));
    if (!question.empty()) HKV_TRY(cx.eval(question));
    std::string answer;
    for (int32_t g = 0; g < opt.n_gen; ++g) {
        const int32_t next = sample_greedy(cx.logits());
        if (tok.is_eog(next)) break;
        const std::string piece = tok.token_to_piece(next);
        answer += piece;
        if (opt.stop_at_newline && piece.find('\n') != std::string::npos) break;
        if (g + 1 < opt.n_gen) HKV_TRY(cx.eval({&next, 1}));
    }
    return answer;
}

}  // namespace hkv::eval
