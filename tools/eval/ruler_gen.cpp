// tools/eval/ruler_gen.cpp — RULER task generators and their sizing to a token budget (ruler.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eval/ruler.h"
#include "eval/text_util.h"
#include "heterokv/file_io.h"

namespace hkv::eval {
namespace {

const char kNoise[] = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
const char kNiahNeedle[] = "One of the special magic {type_v} for {key} is: {value}.";
const char kNiahTemplate[] =
    "Some special magic {type_v} are hidden within the following text. Make sure to memorize it. I will quiz you "
    "about the {type_v} afterwards.\n{context}\nWhat are all the special magic {type_v} for {query} mentioned in "
    "the provided text? The special magic {type_v} for {query} mentioned in the provided text are";
// "assgined" is RULER's spelling.
const char kVtTemplate[] =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: "
    "Find all variables that are assigned the value {query} in the text above. Answer: According to the chain(s) "
    "of variable assignment in the text above, {num_v} variables are assgined the value {query}, they are: ";
const char kCweTemplate[] =
    "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that "
    "appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list? Answer: The top "
    "10 words that appear most often in the list are:";
const char kFweTemplate[] =
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
    "appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What "
    "are the three most frequently appeared words in the above coded text? Answer: According to the coded text "
    "above, the three most frequently appeared words are:";

// A small deterministic generator (splitmix64): the same numbers on every platform, unlike
// std::uniform_int_distribution.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    size_t below(size_t n) { return size_t(next() % n); }  // n >= 1
    template <class T>
    void shuffle(std::vector<T>& v) {
        for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }
    // k distinct values of [0, n), in draw order (random.sample).
    std::vector<size_t> sample(size_t n, size_t k) {
        std::vector<size_t> idx(n);
        for (size_t i = 0; i < n; ++i) idx[i] = i;
        for (size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + below(n - i)]);
        idx.resize(k);
        return idx;
    }
};

uint64_t mix(uint64_t a, uint64_t b) { return Rng(a * 0x2545f4914f6cdd1dull + b).next(); }

std::string replace_all(std::string s, std::string_view pat, std::string_view rep) {
    for (size_t p = s.find(pat); p != std::string::npos; p = s.find(pat, p + rep.size())) s.replace(p, pat.size(), rep);
    return s;
}

std::string numbered(const std::vector<std::string>& words) {  // "1. a 2. b ..."
    std::string out;
    for (size_t i = 0; i < words.size(); ++i) {
        if (i) out += ' ';
        out += std::to_string(i + 1) + ". " + words[i];
    }
    return out;
}

// What a builder makes for one haystack size.
struct Built {
    std::string input;
    std::vector<std::string> outputs;
    size_t question_at = 0;
};

std::string random_item(RulerItem t, const RulerData& d, Rng& rng) {
    switch (t) {
        case RulerItem::kNumbers: return std::to_string(1000000 + rng.below(9000000));  // 7 digits
        case RulerItem::kWords: return d.adjs[rng.below(d.adjs.size())] + "-" + d.nouns[rng.below(d.nouns.size())];
        case RulerItem::kUuids: {
            uint64_t hi = rng.next(), lo = rng.next();
            hi = (hi & ~0xf000ull) | 0x4000ull;                     // version 4
            lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // RFC 4122 variant
            char buf[40];
            std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", unsigned(hi >> 32), unsigned((hi >> 16) & 0xffff),
                          unsigned(hi & 0xffff), unsigned(lo >> 48), (unsigned long long)(lo & 0xffffffffffffull));
            return buf;
        }
    }
    return {};
}

const char* item_plural(RulerItem t) {
    return t == RulerItem::kNumbers ? "numbers" : t == RulerItem::kWords ? "words" : "uuids";
}

// Sentence split of the essay haystack (RULER uses nltk's punkt; this splits after . ! ? followed
// by a space and an upper-case letter, digit or quote, which is punkt's common case).
std::vector<std::string> split_sentences(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i + 2 < text.size(); ++i) {
        const char c = text[i];
        if ((c == '.' || c == '!' || c == '?') && text[i + 1] == ' ') {
            const unsigned char n = static_cast<unsigned char>(text[i + 2]);
            if (std::isupper(n) || std::isdigit(n) || n == '"' || n == '\'') {
                out.push_back(text.substr(start, i + 1 - start));
                start = i + 2;
            }
        }
    }
    if (start < text.size()) out.push_back(text.substr(start));
    return out;
}

// RULER's needle depths: round(linspace(0, 100, 40)).
std::vector<int32_t> niah_depths() {
    std::vector<int32_t> d(40);
    for (int32_t i = 0; i < 40; ++i) d[size_t(i)] = int32_t(std::nearbyint(100.0 * i / 39.0));
    return d;
}

Built niah_build(const RulerTask& t, const RulerData& d, const std::vector<std::string>& essay_words, int32_t n,
                 Rng& rng) {
    const std::string type_v = item_plural(t.type_v), type_v1 = type_v.substr(0, type_v.size() - 1);
    const std::string needle_fmt = t.needle.empty() ? replace_all(kNiahNeedle, "{type_v}", type_v)
                                                    : replace_all(t.needle, "{type_v}", type_v1);
    auto needle_text = [&](const std::string& key, const std::string& value) {
        return replace_all(replace_all(needle_fmt, "{key}", key), "{value}", value);
    };
    const int32_t num_k = std::max(t.num_k, t.num_q);
    std::vector<std::string> keys, needles;
    std::vector<std::vector<std::string>> values;
    for (int32_t ik = 0; ik < num_k; ++ik) {
        keys.push_back(random_item(t.type_k, d, rng));
        values.emplace_back();
        for (int32_t iv = 0; iv < t.num_v; ++iv) {
            values.back().push_back(random_item(t.type_v, d, rng));
            needles.push_back(needle_text(keys.back(), values.back().back()));
        }
    }
    rng.shuffle(needles);
    std::string context;
    if (t.haystack == RulerHaystack::kEssay) {
        std::vector<std::string> words;
        for (int32_t i = 0; i < n; ++i) words.push_back(essay_words[size_t(i) % essay_words.size()]);
        const std::vector<std::string> sents = split_sentences(join(words, " "));
        const std::vector<int32_t> depths = niah_depths();
        std::vector<size_t> pos;
        for (size_t i : rng.sample(depths.size(), needles.size())) pos.push_back(size_t(sents.size() * depths[i] / 100));
        std::sort(pos.begin(), pos.end());
        pos.insert(pos.begin(), 0);
        pos.push_back(sents.size());
        std::vector<std::string> parts;
        for (size_t i = 1; i < pos.size(); ++i) {
            parts.push_back(join({sents.begin() + long(pos[i - 1]), sents.begin() + long(pos[i])}, " "));
            if (i - 1 < needles.size()) parts.push_back(needles[i - 1]);
        }
        context = join(parts, " ");
    } else {
        std::vector<std::string> sents;
        for (int32_t i = 0; i < n; ++i) {
            sents.push_back(t.haystack == RulerHaystack::kNoise
                                ? std::string(kNoise)
                                : needle_text(random_item(t.type_k, d, rng), random_item(t.type_v, d, rng)));
        }
        std::vector<size_t> at = rng.sample(size_t(n), needles.size());
        std::sort(at.rbegin(), at.rend());
        for (size_t i = 0; i < at.size(); ++i) sents.insert(sents.begin() + long(at[i]), needles[i]);
        context = join(sents, "\n");
    }
    Built b;
    std::vector<std::string> queries;
    for (size_t i : rng.sample(size_t(num_k), size_t(t.num_q))) {
        queries.push_back(keys[i]);
        b.outputs.insert(b.outputs.end(), values[i].begin(), values[i].end());
    }
    std::string query = queries.back();
    if (queries.size() > 1) {
        queries.pop_back();
        query = join(queries, ", ") + ", and " + query;
    }
    std::string tmpl = kNiahTemplate;
    std::string tv = type_v;
    if (t.num_q * t.num_v == 1) {  // singular, as RULER rewrites its template
        tmpl = replace_all(tmpl, "Some", "A");
        tmpl = replace_all(tmpl, "are all", "is");
        tmpl = replace_all(tmpl, "are", "is");
        tv.pop_back();
    }
    const std::string head = replace_all(tmpl.substr(0, tmpl.find("{context}")), "{type_v}", tv);
    const std::string tail =
        t.question.empty() ? replace_all(replace_all(tmpl.substr(tmpl.find("{context}") + 9), "{type_v}", tv), "{query}", query)
                           : replace_all(replace_all(t.question, "{type_v}", type_v1), "{query}", query);
    b.input = head + context + tail;
    b.question_at = head.size() + context.size();
    return b;
}

// Variable tracking: chains of num_hops + 1 distinct variables hidden in n noise lines.
Built vt_build(const RulerTask& t, int32_t n, Rng& rng, bool icl) {
    const int32_t k = icl ? 3 : 5, hops = icl ? std::min(10, t.num_hops) : t.num_hops;
    std::vector<std::vector<std::string>> vars(size_t(t.num_chains)), chains(size_t(t.num_chains));
    std::vector<std::string> used;
    for (auto& v : vars) {
        while (int32_t(v.size()) < hops + 1) {
            std::string name;
            for (int32_t i = 0; i < k; ++i) name += char('A' + rng.below(26));
            if (std::find(used.begin(), used.end(), name) == used.end()) used.push_back(name), v.push_back(name);
        }
    }
    std::string value;
    for (size_t ic = 0; ic < vars.size(); ++ic) {
        const std::string val = std::to_string(10000 + rng.below(89999));
        if (ic == 0) value = val;
        chains[ic].push_back("VAR " + vars[ic][0] + " = " + val);
        for (int32_t j = 0; j < hops; ++j) chains[ic].push_back("VAR " + vars[ic][size_t(j + 1)] + " = VAR " + vars[ic][size_t(j)] + " ");
    }
    std::vector<std::string> sents(size_t(n), std::string(kNoise) + "\n");
    for (const auto& chain : chains) {
        std::vector<size_t> pos = rng.sample(sents.size(), chain.size());
        std::sort(pos.begin(), pos.end());
        for (size_t j = 0; j < chain.size(); ++j) sents.insert(sents.begin() + long(pos[j] + j), chain[j]);
    }
    const std::string context = replace_all(join(sents, " "), ". \n", ".\n");
    std::string tmpl = replace_all(replace_all(kVtTemplate, "{query}", value), "{num_v}", std::to_string(hops + 1));
    const size_t c = tmpl.find("{context}");
    Built b;
    b.input = tmpl.substr(0, c) + context + tmpl.substr(c + 9);
    b.question_at = c + context.size();
    b.outputs = vars[0];
    return b;
}

// Common words: n words sampled from the shuffled vocabulary; the first num_cw repeat often.
Built cwe_build(const RulerTask& t, const std::vector<std::string>& vocab, int32_t max_length, int32_t n, Rng& rng) {
    auto example = [&](int32_t n_words, int32_t rep_c, int32_t rep_u, std::vector<std::string>& common) {
        std::vector<std::string> all;
        for (size_t i : rng.sample(vocab.size(), size_t(n_words))) all.push_back(vocab[i]);
        common.assign(all.begin(), all.begin() + t.num_cw);
        std::vector<std::string> list;
        for (int32_t r = 0; r < rep_c; ++r) list.insert(list.end(), common.begin(), common.end());
        for (int32_t r = 0; r < rep_u; ++r) list.insert(list.end(), all.begin() + t.num_cw, all.end());
        rng.shuffle(list);
        return numbered(list);
    };
    const bool small = max_length < 4096;
    std::vector<std::string> ex_answer, answer;
    const std::string ex_ctx = small ? example(20, 3, 1, ex_answer) : example(40, 10, 3, ex_answer);
    const std::string ctx = small ? example(n, 6, 1, answer) : example(n, t.freq_cw, t.freq_ucw, answer);
    const std::string tmpl = kCweTemplate;
    const size_t c = tmpl.find("{context}");
    const std::string prefix = tmpl.substr(0, c) + ex_ctx + tmpl.substr(c + 9) + " " + numbered(ex_answer) + "\n";
    Built b;
    b.input = prefix + tmpl.substr(0, c) + ctx + tmpl.substr(c + 9);
    b.question_at = prefix.size() + c + ctx.size();
    b.outputs = answer;
    return b;
}

// Frequent words: a Zipf(alpha) sample of n words over a coded vocabulary (vocab[0] = "...").
// Riemann zeta(alpha), alpha > 1: the sum to 1e6 plus the integral of the tail.
double zeta(double alpha) {
    double z = 0.0;
    for (int32_t k = 1; k <= 1000000; ++k) z += std::pow(double(k), -alpha);
    return z + std::pow(1e6, 1.0 - alpha) / (alpha - 1.0);
}

Built fwe_build(const RulerTask& t, const std::vector<std::string>& vocab, double zeta, int32_t n, Rng& rng) {
    std::vector<std::string> words;
    for (size_t k = 0; k < vocab.size(); ++k) {
        const auto cnt = int64_t(double(n) * std::pow(double(k + 1), -t.alpha) / zeta);
        for (int64_t i = 0; i < cnt; ++i) words.push_back(vocab[k]);
    }
    rng.shuffle(words);
    const std::string ctx = join(words, " ");
    const std::string tmpl = kFweTemplate;
    const size_t c = tmpl.find("{context}");
    Built b;
    b.input = tmpl.substr(0, c) + ctx + tmpl.substr(c + 9);
    b.question_at = c + ctx.size();
    b.outputs.assign(vocab.begin() + 1, vocab.begin() + 4);
    return b;
}

Expected<std::vector<std::string>> read_words(const std::string& path) {
    auto text = file_read(path, kFileMaxSmall * 16, "ruler:");
    if (!text.ok()) return text.status();
    std::istringstream in(std::move(*text));
    std::vector<std::string> out;
    for (std::string w; std::getline(in, w);) {
        while (!w.empty() && std::isspace(static_cast<unsigned char>(w.back()))) w.pop_back();
        if (!w.empty()) out.push_back(w);
    }
    if (out.empty()) return Status::invalid("ruler: %s has no words", path.c_str());
    return out;
}

}  // namespace

std::vector<std::string> ruler_task_names() {
    return {"niah_single_1",   "niah_single_2",   "niah_single_3",   "niah_multikey_1",
            "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery",
            "vt",              "cwe",             "fwe"};
}

Expected<RulerTask> ruler_task(std::string_view name) {
    RulerTask t;
    t.name = std::string(name);
    using H = RulerHaystack;
    using I = RulerItem;
    auto niah = [&](H h, I k, I v, int32_t nk, int32_t nv, int32_t nq) {
        t.haystack = h, t.type_k = k, t.type_v = v, t.num_k = nk, t.num_v = nv, t.num_q = nq;
        return t;
    };
    if (name == "niah_single_1") return niah(H::kNoise, I::kWords, I::kNumbers, 1, 1, 1);
    if (name == "niah_single_2") return niah(H::kEssay, I::kWords, I::kNumbers, 1, 1, 1);
    if (name == "niah_single_3") return niah(H::kEssay, I::kWords, I::kUuids, 1, 1, 1);
    if (name == "niah_multikey_1") return niah(H::kEssay, I::kWords, I::kNumbers, 4, 1, 1);
    if (name == "niah_multikey_2") return niah(H::kNeedle, I::kWords, I::kNumbers, 1, 1, 1);
    if (name == "niah_multikey_3") return niah(H::kNeedle, I::kUuids, I::kUuids, 1, 1, 1);
    if (name == "niah_multivalue") return niah(H::kEssay, I::kWords, I::kNumbers, 1, 4, 1);
    if (name == "niah_multiquery") return niah(H::kEssay, I::kWords, I::kNumbers, 1, 1, 4);
    if (name == "vt") return t.kind = RulerKind::kVt, t.tokens_to_generate = 30, t;
    if (name == "cwe") return t.kind = RulerKind::kCwe, t.tokens_to_generate = 120, t;
    if (name == "fwe") return t.kind = RulerKind::kFwe, t.tokens_to_generate = 50, t;
    std::string known;
    for (const std::string& n : ruler_task_names()) known += (known.empty() ? "" : ", ") + n;
    return Status::invalid("ruler: unknown task '%.*s' (known: %s)", int(name.size()), name.data(), known.c_str());
}

Expected<RulerData> ruler_data_load(const std::string& dir) {
    RulerData d;
    auto nouns = read_words(dir + "/ruler/nounlist.txt");
    if (!nouns.ok()) return nouns.status();
    auto adjs = read_words(dir + "/ruler/adjectivelist.txt");
    if (!adjs.ok()) return adjs.status();
    auto verbs = read_words(dir + "/ruler/verblist.txt");
    if (!verbs.ok()) return verbs.status();
    d.nouns = std::move(*nouns), d.adjs = std::move(*adjs), d.verbs = std::move(*verbs);
    const std::string essay = dir + "/haystack/PaulGrahamEssays.json";
    auto text = file_read(essay, kFileMaxJson, "ruler:");
    if (!text.ok()) return text.status();
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
        return Status::invalid("ruler: %s is not {\"text\": ...}", essay.c_str());
    }
    d.essay = j["text"].get<std::string>();
    return d;
}

Expected<std::vector<RulerSample>> ruler_generate(const RulerTask& t, const RulerData& d, int32_t max_length,
                                                  int32_t n_samples, uint64_t seed, const TokenCounter& count) {
    if (n_samples < 1) return Status::invalid("ruler: samples must be >= 1");
    if (t.num_k < 1 || t.num_v < 1 || t.num_q < 1 || t.num_q > std::max(t.num_k, t.num_q) || t.num_hops < 1 ||
        t.num_chains < 1 || t.num_cw < 1 || t.alpha <= 1.0) {
        return Status::invalid("ruler: task %s has bad counts", t.name.c_str());
    }
    if (d.nouns.empty() || d.adjs.empty() || (t.haystack == RulerHaystack::kEssay && d.essay.empty())) {
        return Status::invalid("ruler: word lists or essay missing");
    }
    const uint64_t task_seed = mix(seed, std::hash<std::string>{}(t.name) ^ uint64_t(max_length));
    std::vector<std::string> essay_words, vocab;
    if (t.kind == RulerKind::kNiah && t.haystack == RulerHaystack::kEssay) {
        std::string cur;
        for (char c : d.essay) {  // whitespace runs collapse to one space, then split
            if (std::isspace(static_cast<unsigned char>(c))) {
                if (!cur.empty()) essay_words.push_back(cur), cur.clear();
            } else {
                cur += c;
            }
        }
        if (!cur.empty()) essay_words.push_back(cur);
    } else if (t.kind == RulerKind::kCwe) {
        vocab = d.nouns;
        vocab.insert(vocab.end(), d.adjs.begin(), d.adjs.end());
        vocab.insert(vocab.end(), d.verbs.begin(), d.verbs.end());
        std::sort(vocab.begin(), vocab.end());
        vocab.erase(std::unique(vocab.begin(), vocab.end()), vocab.end());
        Rng r(task_seed ^ 0xc3e);
        r.shuffle(vocab);
    } else if (t.kind == RulerKind::kFwe) {
        Rng r(task_seed ^ 0xf3e);
        while (vocab.size() < 2000) {
            std::string w;
            for (int32_t i = 0; i < 6; ++i) w += char('a' + r.below(26));
            vocab.push_back(w);
            if (vocab.size() == 2000) {
                std::sort(vocab.begin(), vocab.end());
                vocab.erase(std::unique(vocab.begin(), vocab.end()), vocab.end());
            }
        }
        r.shuffle(vocab);
        vocab[0] = "...";  // the most frequent "word" is noise
    }
    // The one-shot example of vt, sized to min(500, max_length / 2) tokens, as RULER (500).
    std::string vt_example;
    int32_t min_n = 1, max_n = 1 << 24;  // haystack sizes searched
    const double zeta_alpha = t.kind == RulerKind::kFwe ? zeta(t.alpha) : 0.0;
    if (t.kind == RulerKind::kVt) min_n = t.num_chains * (t.num_hops + 1);
    if (t.kind == RulerKind::kCwe) min_n = t.num_cw + 1, max_n = int32_t(vocab.size());  // distinct words
    if (min_n > max_n) return Status::invalid("ruler: %zu words are too few for task %s", vocab.size(), t.name.c_str());
    if (t.kind == RulerKind::kFwe) min_n = 4;
    if (t.kind == RulerKind::kNiah && t.haystack != RulerHaystack::kEssay) {
        min_n = std::max(t.num_k, t.num_q) * t.num_v;
    }
    auto build = [&](int32_t n, Rng& rng) -> Built {
        switch (t.kind) {
            case RulerKind::kNiah: return niah_build(t, d, essay_words, n, rng);
            case RulerKind::kVt: {
                Built b = vt_build(t, n, rng, false);
                b.input = vt_example + b.input;
                b.question_at += vt_example.size();
                return b;
            }
            case RulerKind::kCwe: return cwe_build(t, vocab, max_length, n, rng);
            case RulerKind::kFwe: return fwe_build(t, vocab, zeta_alpha, n, rng);
        }
        return {};
    };
    // Largest n whose probe fits `budget` tokens (binary search; the probe's randomness is fixed per n).
    auto largest = [&](int32_t budget, auto&& make) -> int32_t {
        auto fits = [&](int32_t n) {
            Rng r(mix(task_seed, uint64_t(n)));
            return count(make(n, r)) <= budget;
        };
        if (!fits(min_n)) return 0;
        int32_t lo = min_n, hi = std::min(min_n * 2, max_n);
        while (lo < max_n && fits(hi)) {
            lo = hi;
            if (hi == max_n) return hi;
            hi = std::min(hi * 2, max_n);
        }
        while (hi - lo > 1) {
            const int32_t mid = lo + (hi - lo) / 2;
            (fits(mid) ? lo : hi) = mid;
        }
        return lo;
    };
    if (t.kind == RulerKind::kVt) {
        const int32_t ex_budget = std::min(500, max_length / 2) - t.tokens_to_generate;
        auto make_ex = [&](int32_t n, Rng& r) {
            Built b = vt_build(t, n, r, true);
            return b.input + " " + join(b.outputs, " ");
        };
        const int32_t n_ex = largest(ex_budget, make_ex);
        if (n_ex == 0) return Status::invalid("ruler: %d tokens are too few for the vt example", max_length);
        Rng r(mix(task_seed, 0xe7));
        vt_example = make_ex(n_ex, r) + "\n\n";
    }
    const int32_t budget = max_length - t.tokens_to_generate;
    const int32_t n_best = largest(budget, [&](int32_t n, Rng& r) { return build(n, r).input; });
    if (n_best == 0) {
        return Status::invalid("ruler: %d tokens are too few for task %s (%d are generated)", max_length,
                               t.name.c_str(), t.tokens_to_generate);
    }
    std::vector<RulerSample> out;
    for (int32_t i = 0; i < n_samples; ++i) {
        for (int32_t n = n_best;; n = std::max(min_n, n - std::max(1, n / 64))) {  // shrink until it fits
            Rng r(mix(task_seed ^ 0x5a3b1e, uint64_t(i)));
            Built b = build(n, r);
            const int32_t len = count(b.input) + t.tokens_to_generate;
            if (len <= max_length || n == min_n) {
                if (len > max_length) return Status::invalid("ruler: cannot fit task %s in %d tokens", t.name.c_str(), max_length);
                out.push_back({i, std::move(b.input), std::move(b.outputs), len, b.question_at});
                break;
            }
        }
    }
    return out;
}

}  // namespace hkv::eval
