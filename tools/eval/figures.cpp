// tools/eval/figures.cpp — see figures.h.
#include "eval/figures.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

namespace hkv::eval {

namespace {

using nlohmann::json;

Expected<json> parse(const std::string& text, const char* what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid("--replot: not a JSON object (expected %s's JSON)", what);
    return j;
}

// Field `key` of `j` as T, or kInvalidArgument naming it.
template <typename T>
Status get(const json& j, const char* key, T* out, const char* what) {
    auto it = j.find(key);
    if (it == j.end()) return Status::invalid("--replot: %s JSON has no \"%s\"", what, key);
    try {
        *out = it->get<T>();
    } catch (const json::exception&) {
        return Status::invalid("--replot: %s JSON: \"%s\" has the wrong type", what, key);
    }
    return Status::ok_status();
}

}  // namespace

std::string policy_slug(const std::string& spec) {
    std::string slug;
    for (char ch : spec) slug += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    return slug;
}

Heatmap niah_heatmap(const std::string& policy, const std::string& protocol, const std::vector<int32_t>& lengths,
                     const std::vector<double>& depths, const std::vector<std::vector<double>>& accuracy,
                     int32_t trials) {
    Heatmap h;
    h.title = "NIAH " + policy + " (" + protocol + "), " + std::to_string(trials) + " needle" +
              (trials == 1 ? "" : "s") + " per cell";
    h.x_label = "context length (tokens)";
    h.y_label = "needle depth";
    h.value_label = "needles found (%)";
    for (int32_t l : lengths) h.x_ticks.push_back(std::to_string(l));
    for (double d : depths) h.y_ticks.push_back(std::to_string(int(std::lround(d * 100))) + "%");
    h.value = accuracy;
    return h;
}

Heatmap ruler_heatmap(int32_t length, const std::string& protocol, int32_t samples,
                      const std::vector<std::string>& tasks, const std::vector<std::string>& policies,
                      const std::vector<std::vector<double>>& score) {
    Heatmap h;
    h.title = "RULER at " + std::to_string(length) + " tokens (" + protocol + "), " + std::to_string(samples) +
              " samples per task";
    h.x_label = "policy";
    h.y_label = "task";
    h.value_label = "score (%)";
    for (const std::string& p : policies) {  // "snapkv:budget=128" -> "snapkv 128"
        const size_t b = p.find(":budget=");
        h.x_ticks.push_back(b == std::string::npos ? p : p.substr(0, b) + " " + p.substr(b + 8));
    }
    h.y_ticks = tasks;
    for (const auto& row : score) {
        h.value.emplace_back();
        for (double s : row) h.value.back().push_back(s / 100.0);
    }
    return h;
}

Expected<std::vector<std::string>> niah_replot(const std::string& text, const std::string& prefix) {
    auto j = parse(text, "eval niah");
    if (!j.ok()) return j.status();
    std::vector<int32_t> lengths;
    std::vector<double> depths;
    std::string protocol;
    int32_t trials = 0;
    json results;
    for (Status st : {get(*j, "lengths", &lengths, "eval niah"), get(*j, "depths", &depths, "eval niah"),
                      get(*j, "protocol", &protocol, "eval niah"), get(*j, "trials", &trials, "eval niah"),
                      get(*j, "results", &results, "eval niah")}) {
        if (!st.ok()) return st;
    }
    if (lengths.empty() || depths.empty() || !results.is_array()) {
        return Status::invalid("--replot: eval niah JSON has no lengths, depths or results");
    }
    std::vector<std::string> out;
    for (const json& r : results) {
        std::string policy;
        json cells;
        if (Status st = get(r, "policy", &policy, "eval niah result"); !st.ok()) return st;
        if (Status st = get(r, "cells", &cells, "eval niah result"); !st.ok()) return st;
        std::vector<std::vector<double>> acc(depths.size(), std::vector<double>(lengths.size(), NAN));
        for (const json& c : cells) {
            int32_t len = 0, correct = 0, n = 0;
            double depth = 0;
            for (Status st : {get(c, "length", &len, "eval niah cell"), get(c, "depth", &depth, "eval niah cell"),
                              get(c, "correct", &correct, "eval niah cell"), get(c, "trials", &n, "eval niah cell")}) {
                if (!st.ok()) return st;
            }
            const auto li = std::find(lengths.begin(), lengths.end(), len) - lengths.begin();
            const auto di = std::find_if(depths.begin(), depths.end(), [&](double d) { return std::fabs(d - depth) < 1e-9; }) -
                            depths.begin();
            if (size_t(li) >= lengths.size() || size_t(di) >= depths.size() || n <= 0) {
                return Status::invalid("--replot: eval niah cell (length %d, depth %g) is not on the grid", len, depth);
            }
            acc[size_t(di)][size_t(li)] = double(correct) / double(n);
        }
        const std::string p = prefix + "_" + policy_slug(policy);
        if (Status st = write_figure(p, niah_heatmap(policy, protocol, lengths, depths, acc, trials)); !st.ok()) return st;
        out.push_back(p);
    }
    return out;
}

Expected<std::vector<std::string>> ruler_replot(const std::string& text, const std::string& prefix) {
    auto j = parse(text, "eval ruler");
    if (!j.ok()) return j.status();
    std::string protocol;
    int32_t samples = 0;
    json results;
    for (Status st : {get(*j, "protocol", &protocol, "eval ruler"), get(*j, "samples", &samples, "eval ruler"),
                      get(*j, "results", &results, "eval ruler")}) {
        if (!st.ok()) return st;
    }
    if (!results.is_array() || results.empty()) return Status::invalid("--replot: eval ruler JSON has no results");
    // per length, tasks and policies in the order first seen
    std::vector<int32_t> lengths;
    std::map<int32_t, std::vector<std::string>> tasks, policies;
    std::map<std::tuple<int32_t, std::string, std::string>, double> score;
    for (const json& r : results) {
        int32_t len = 0;
        std::string task, policy;
        double s = 0;
        for (Status st : {get(r, "length", &len, "eval ruler result"), get(r, "task", &task, "eval ruler result"),
                          get(r, "policy", &policy, "eval ruler result"), get(r, "score", &s, "eval ruler result")}) {
            if (!st.ok()) return st;
        }
        if (std::find(lengths.begin(), lengths.end(), len) == lengths.end()) lengths.push_back(len);
        auto& t = tasks[len];
        if (std::find(t.begin(), t.end(), task) == t.end()) t.push_back(task);
        auto& p = policies[len];
        if (std::find(p.begin(), p.end(), policy) == p.end()) p.push_back(policy);
        score[{len, task, policy}] = s;
    }
    std::vector<std::string> out;
    for (int32_t len : lengths) {
        std::vector<std::vector<double>> m;
        for (const std::string& t : tasks[len]) {
            m.emplace_back();
            for (const std::string& p : policies[len]) {
                auto it = score.find({len, t, p});
                m.back().push_back(it == score.end() ? NAN : it->second);
            }
        }
        const std::string p = prefix + "_" + std::to_string(len);
        if (Status st = write_figure(p, ruler_heatmap(len, protocol, samples, tasks[len], policies[len], m)); !st.ok()) {
            return st;
        }
        out.push_back(p);
    }
    return out;
}

Expected<SweepResult> sweep_from_json(const std::string& text, int64_t n_override) {
    auto j = parse(text, "eval sweep");
    if (!j.ok()) return j.status();
    SweepResult r;
    std::string task;
    json points;
    for (Status st : {get(*j, "title", &r.title, "eval sweep"), get(*j, "task", &task, "eval sweep"),
                      get(*j, "points", &points, "eval sweep")}) {
        if (!st.ok()) return st;
    }
    if (task == "niah") r.metric = "accuracy (%)";
    else if (task == "ruler") r.metric = "score (%)";
    else if (task == "longbench") r.metric = "score";
    else return Status::invalid("--replot: eval sweep JSON: task '%s' is not ruler, niah or longbench", task.c_str());
    if (!points.is_array() || points.empty()) return Status::invalid("--replot: eval sweep JSON has no points");
    for (const json& p : points) {
        SweepPoint sp;
        double score = 0;
        int64_t kv = 0;
        for (Status st : {get(p, "spec", &sp.spec, "eval sweep point"), get(p, "family", &sp.family, "eval sweep point"),
                          get(p, "budget", &sp.budget, "eval sweep point"), get(p, "score", &score, "eval sweep point"),
                          get(p, "kv_bytes", &kv, "eval sweep point")}) {
            if (!st.ok()) return st;
        }
        r.points.push_back(sp);
        r.score.push_back(score);
        r.kv_mib.push_back(double(kv) / (1024.0 * 1024.0));
    }
    if (j->contains("n")) {
        if (Status st = get(*j, "n", &r.n, "eval sweep"); !st.ok()) return st;
    }
    if (n_override > 0) r.n = n_override;
    return r;
}

}  // namespace hkv::eval
