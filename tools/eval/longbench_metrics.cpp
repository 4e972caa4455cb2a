// tools/eval/longbench_metrics.cpp — LongBench's metrics, reimplemented with their quirks
// (longbench.h): SQuAD normalisation and token F1, the `rouge` package's ROUGE-L, classification
// (including its remove-while-iterating), retrieval, count, and fuzzywuzzy's ratio for code.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "eval/longbench.h"
#include "eval/text_util.h"

namespace hkv::eval {
namespace {

bool is_word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }  // regex \w (UTF-8 bytes as letters)

std::vector<std::string> split_ws(std::string_view s) {  // str.split()
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            if (!cur.empty()) out.push_back(cur), cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

std::vector<std::string> split_on(std::string_view s, char sep) {  // str.split(sep)
    std::vector<std::string> out(1);
    for (char c : s) {
        if (c == sep) {
            out.emplace_back();
        } else {
            out.back() += c;
        }
    }
    return out;
}

// re.findall(r"\d+", s)
std::vector<std::string> digit_runs(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (std::isdigit(static_cast<unsigned char>(c))) {
            cur += c;
        } else if (!cur.empty()) {
            out.push_back(cur), cur.clear();
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

// UTF-8 to code points (Python strings are code point sequences); invalid bytes pass through.
std::vector<uint32_t> code_points(std::string_view s) {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (i + size_t(n) > s.size()) {  // truncated sequence: the byte as is
            out.push_back(c);
            ++i;
        } else {
            uint32_t cp = n == 1 ? c : c & (0x7f >> n);
            for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + size_t(k)]) & 0x3f);
            out.push_back(cp);
            i += size_t(n);
        }
    }
    return out;
}

// The words of one reconstructed LCS of x and y, with the `rouge` package's back-tracking
// (diagonal on a match, else up when table[i-1][j] > table[i][j-1], else left). *calls counts the
// recursive calls the package would make (its recursion limit turns long sentences into a 0 score).
std::set<std::string> recon_lcs(const std::vector<std::string>& x, const std::vector<std::string>& y, size_t* calls) {
    const size_t n = x.size(), m = y.size();
    std::vector<int32_t> t((n + 1) * (m + 1), 0);  // [n + 1, m + 1]
    auto at = [&](size_t i, size_t j) -> int32_t& { return t[i * (m + 1) + j]; };
    for (size_t i = 1; i <= n; ++i) {
        for (size_t j = 1; j <= m; ++j) at(i, j) = x[i - 1] == y[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
    }
    std::set<std::string> words;
    size_t i = n, j = m;
    *calls = 1;
    while (i > 0 && j > 0) {
        if (x[i - 1] == y[j - 1]) {
            words.insert(x[i - 1]);
            --i, --j;
        } else if (at(i - 1, j) > at(i, j - 1)) {
            --i;
        } else {
            --j;
        }
        ++*calls;
    }
    return words;
}

// Python's recursion limit (1000) less the frames under rouge's _recon in LongBench's eval.py
// (module, scorer, rouge_score, get_scores, _get_avg_scores, the metric lambda,
// rouge_l_summary_level, _union_lcs, _recon_lcs): deeper reconstructions raise RecursionError,
// which rouge_score turns into 0.
constexpr size_t kRougeMaxRecon = 991;

}  // namespace

std::string longbench_normalize_answer(std::string_view s) {
    std::string t;
    for (char c : s) {  // lower, then drop string.punctuation
        const auto u = static_cast<unsigned char>(c);
        if (std::ispunct(u) && u < 0x80) continue;
        t += char(std::tolower(u));
    }
    std::string r;  // re.sub(r"\b(a|an|the)\b", " ", t)
    for (size_t i = 0; i < t.size();) {
        const bool start = i == 0 || !is_word_char(static_cast<unsigned char>(t[i - 1]));
        size_t len = 0;
        for (const char* art : {"a", "an", "the"}) {
            const size_t l = std::char_traits<char>::length(art);
            if (start && t.compare(i, l, art) == 0 &&
                (i + l == t.size() || !is_word_char(static_cast<unsigned char>(t[i + l])))) {
                len = l;
                break;
            }
        }
        if (len) {
            r += ' ';
            i += len;
        } else {
            r += t[i++];
        }
    }
    return join(split_ws(r), " ");
}

double longbench_qa_f1(std::string_view pred, std::string_view ref) {
    const std::vector<std::string> p = split_ws(longbench_normalize_answer(pred));
    const std::vector<std::string> g = split_ws(longbench_normalize_answer(ref));
    std::map<std::string, int32_t> cp, cg;
    for (const auto& w : p) cp[w]++;
    for (const auto& w : g) cg[w]++;
    int64_t same = 0;
    for (const auto& [w, c] : cp) {
        auto it = cg.find(w);
        if (it != cg.end()) same += std::min(c, it->second);
    }
    if (same == 0) return 0.0;
    const double precision = 1.0 * double(same) / double(p.size());
    const double recall = 1.0 * double(same) / double(g.size());
    return (2 * precision * recall) / (precision + recall);
}

double longbench_rouge_l(std::string_view pred, std::string_view ref) {
    auto sentences = [](std::string_view s) {  // [" ".join(x.split()) for x in s.split(".") if len(x) > 0]
        std::vector<std::vector<std::string>> out;
        for (const std::string& part : split_on(s, '.')) {
            if (!part.empty()) out.push_back(split_on(join(split_ws(part), " "), ' '));  // words: split(" ")
        }
        return out;
    };
    const auto hyp = sentences(pred), refs = sentences(ref);
    if (hyp.empty() || refs.empty()) return 0.0;  // "Collections must contain at least 1 sentence."
    std::set<std::string> ref_words, hyp_words;
    for (const auto& s : refs) ref_words.insert(s.begin(), s.end());
    for (const auto& s : hyp) hyp_words.insert(s.begin(), s.end());
    std::set<std::string> uni;  // union over references and hypothesis sentences of the LCS words
    for (const auto& r : refs) {
        for (const auto& h : hyp) {
            size_t calls = 0;
            const std::set<std::string> w = recon_lcs(r, h, &calls);
            if (calls > kRougeMaxRecon) return 0.0;
            uni.insert(w.begin(), w.end());
        }
    }
    const double llcs = double(uni.size());
    const double r_lcs = llcs / double(ref_words.size()), p_lcs = llcs / double(hyp_words.size());
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8));
}

double longbench_classification(std::string_view pred, std::string_view ref, const std::vector<std::string>& classes) {
    std::vector<std::string> matched;
    for (const std::string& c : classes) {
        if (pred.find(c) != std::string_view::npos) matched.push_back(c);
    }
    // "for match_term in em_match_list: ... em_match_list.remove(match_term)": removing while
    // iterating skips the element after each removal; reproduced.
    for (size_t i = 0; i < matched.size(); ++i) {
        const std::string term = matched[i];
        if (ref.find(term) != std::string_view::npos && term != ref) {
            matched.erase(std::find(matched.begin(), matched.end(), term));
        }
    }
    const std::string r(ref);
    if (std::find(matched.begin(), matched.end(), r) == matched.end()) return 0.0;
    return 1.0 / double(matched.size());
}

namespace {
double id_share(std::string_view pred, const std::string& id) {  // right numbers / all numbers
    const std::vector<std::string> nums = digit_runs(pred);
    if (nums.empty()) return 0.0;
    return double(std::count(nums.begin(), nums.end(), id)) / double(nums.size());
}

std::string first_number_after(std::string_view s, std::string_view marker) {  // re.findall(marker + r"(\d+)")[0]
    for (size_t p = s.find(marker); p != std::string_view::npos; p = s.find(marker, p + 1)) {
        std::string d;
        for (size_t i = p + marker.size(); i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) d += s[i];
        if (!d.empty()) return d;
    }
    return {};
}
}  // namespace

double longbench_retrieval(std::string_view pred, std::string_view ref) {
    const std::string id = first_number_after(ref, "Paragraph ");
    return id.empty() ? 0.0 : id_share(pred, id);  // LongBench raises IndexError here; 0 instead
}

double longbench_count(std::string_view pred, std::string_view ref) { return id_share(pred, std::string(ref)); }

int32_t longbench_fuzz_ratio(std::string_view a, std::string_view b) {
    if (a == b) return 100;               // check_for_equivalence
    if (a.empty() || b.empty()) return 0;  // check_empty_string
    const std::vector<uint32_t> x = code_points(a), y = code_points(b);
    std::vector<int32_t> prev(y.size() + 1, 0), cur(y.size() + 1, 0);
    for (size_t i = 1; i <= x.size(); ++i) {
        for (size_t j = 1; j <= y.size(); ++j) cur[j] = x[i - 1] == y[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
        std::swap(prev, cur);
    }
    const int64_t lensum = int64_t(x.size() + y.size());
    const int64_t dist = lensum - 2 * int64_t(prev[y.size()]);  // Levenshtein with substitution cost 2
    const double ratio = double(lensum - dist) / double(lensum);
    return int32_t(std::nearbyint(100.0 * ratio));  // utils.intr: round half to even
}

double longbench_code_sim(std::string_view pred, std::string_view ref) {
    size_t s = 0;
    while (s < pred.size() && pred[s] == '\n') ++s;
    std::string line;
    for (const std::string& l : split_on(pred.substr(s), '\n')) {
        if (l.find('`') == std::string::npos && l.find('#') == std::string::npos && l.find("//") == std::string::npos) {
            line = l;
            break;
        }
    }
    return longbench_fuzz_ratio(line, ref) / 100.0;
}

Expected<double> longbench_score(const std::string& dataset, std::string_view pred,
                                 const std::vector<std::string>& answers, const std::vector<std::string>& classes) {
    static const std::map<std::string, int> kMetric = {
        {"narrativeqa", 0}, {"qasper", 0}, {"multifieldqa_en", 0}, {"hotpotqa", 0}, {"2wikimqa", 0},
        {"musique", 0}, {"triviaqa", 0}, {"gov_report", 1}, {"qmsum", 1}, {"multi_news", 1}, {"samsum", 1},
        {"trec", 2}, {"lsht", 2}, {"passage_retrieval_en", 3}, {"passage_count", 4}, {"lcc", 5},
        {"repobench-p", 5}, {"passage_retrieval_zh", 6}};
    auto it = kMetric.find(dataset);
    if (it == kMetric.end()) {
        return Status::invalid("longbench: no metric for dataset '%s' (the Chinese F1/ROUGE ones need jieba)",
                               dataset.c_str());
    }
    std::string p(pred);
    if (dataset == "trec" || dataset == "triviaqa" || dataset == "samsum" || dataset == "lsht") {
        size_t s = 0;
        while (s < p.size() && p[s] == '\n') ++s;
        p = split_on(std::string_view(p).substr(s), '\n')[0];
    }
    double best = 0.0;
    for (const std::string& a : answers) {
        double v = 0.0;
        switch (it->second) {
            case 0: v = longbench_qa_f1(p, a); break;
            case 1: v = longbench_rouge_l(p, a); break;
            case 2: v = longbench_classification(p, a, classes); break;
            case 3: v = longbench_retrieval(p, a); break;
            case 4: v = longbench_count(p, a); break;
            case 5: v = longbench_code_sim(p, a); break;
            case 6: {
                const std::string id = first_number_after(a, "\xe6\xae\xb5\xe8\x90\xbd");  // "段落"
                v = id.empty() ? 0.0 : id_share(p, id);
                break;
            }
        }
        best = std::max(best, v);
    }
    return best;
}

}  // namespace hkv::eval
