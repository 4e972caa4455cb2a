#include "sample/sampler.h"

#include <algorithm>
#include <cmath>

namespace hkv {

int32_t sample_greedy(std::span<const float> logits) {
    int32_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > logits[size_t(best)]) best = int32_t(i);
    }
    return best;
}

Expected<Sampler> Sampler::create(const SamplerParams& p) {
    if (!std::isfinite(p.temp) || p.temp < 0.0f) {
        return Status::invalid("sampler: temperature %g must be finite and >= 0 (0: greedy)", p.temp);
    }
    if (p.top_k < 0) return Status::invalid("sampler: top_k %d must be >= 0 (0: off)", p.top_k);
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return Status::invalid("sampler: top_p %g not in (0, 1]", p.top_p);
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return Status::invalid("sampler: min_p %g not in [0, 1]", p.min_p);
    if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
        return Status::invalid("sampler: repeat_penalty %g must be > 0", p.repeat_penalty);
    }
    if (p.penalty_last_n < 0) return Status::invalid("sampler: penalty_last_n %d < 0", p.penalty_last_n);
    return Sampler(p);
}

void Sampler::accept(int32_t token) {
    if (params_.penalty_last_n == 0) return;
    recent_.push_back(token);
    if (recent_.size() > size_t(params_.penalty_last_n)) recent_.erase(recent_.begin());
}

void Sampler::reset() {
    recent_.clear();
    rng_.seed(params_.seed);
}

int32_t Sampler::sample(std::span<const float> logits) {
    const size_t n = logits.size();
    work_.assign(logits.begin(), logits.end());
    if (params_.repeat_penalty != 1.0f) {
        // Like the reference: each distinct recent token once; positive logits divided, negative multiplied.
        for (size_t i = 0; i < recent_.size(); ++i) {
            const int32_t t = recent_[i];
            if (t < 0 || size_t(t) >= n) continue;
            if (std::find(recent_.begin(), recent_.begin() + long(i), t) != recent_.begin() + long(i)) continue;
            float& l = work_[size_t(t)];
            l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
        }
    }
    if (params_.temp <= 0.0f) return sample_greedy(work_);

    cand_.resize(n);
    for (size_t i = 0; i < n; ++i) cand_[i] = {int32_t(i), work_[i]};
    auto by_logit = [](const Cand& a, const Cand& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };
    size_t k = n;
    if (params_.top_k > 0 && size_t(params_.top_k) < n) {
        k = size_t(params_.top_k);
        std::partial_sort(cand_.begin(), cand_.begin() + long(k), cand_.end(), by_logit);
        cand_.resize(k);
    } else {
        std::sort(cand_.begin(), cand_.end(), by_logit);
    }
    // softmax at temperature 1 for the top-p / min-p filters (as the reference does)
    auto probs = [&](float temp) {
        std::vector<float>& p = work_;
        p.resize(cand_.size());
        const float mx = cand_[0].logit;
        double sum = 0.0;
        for (size_t i = 0; i < cand_.size(); ++i) {
            p[i] = std::exp((cand_[i].logit - mx) / temp);
            sum += p[i];
        }
        for (float& v : p) v = float(v / sum);
    };
    if (params_.top_p < 1.0f) {
        probs(1.0f);
        double cum = 0.0;
        size_t keep = cand_.size();
        for (size_t i = 0; i < cand_.size(); ++i) {
            cum += work_[i];
            if (cum >= params_.top_p) { keep = i + 1; break; }
        }
        cand_.resize(std::max<size_t>(1, keep));
    }
    if (params_.min_p > 0.0f) {
        probs(1.0f);
        const float thr = work_[0] * params_.min_p;
        size_t keep = 1;
        while (keep < cand_.size() && work_[keep] >= thr) ++keep;
        cand_.resize(keep);
    }
    probs(params_.temp);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    const double r = uni(rng_);
    double cum = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i) {
        cum += work_[i];
        if (r < cum) return cand_[i].id;
    }
    return cand_.back().id;
}

}  // namespace hkv
