// policy/heterocache_taxonomy.cpp — see heterocache_taxonomy.h.
#include "policy/heterocache_taxonomy.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "heterokv/file_io.h"

namespace hkv {

namespace {

using json = nlohmann::json;

bool is_full(HeadRole r) { return r == HeadRole::kVolatile || r == HeadRole::kPivot; }

// Reads an [n_layer][n_head_kv] matrix of numbers; fixes the shape from the first one read.
Status read_matrix(const json& j, const char* field, int32_t* n_layer, int32_t* n_head_kv,
                   std::vector<double>* out) {
    if (!j.contains(field)) return Status::invalid("taxonomy: missing field '%s'", field);
    const json& m = j.at(field);
    if (!m.is_array() || m.empty()) return Status::invalid("taxonomy: '%s' must be a non-empty array of rows", field);
    if (m.size() > 4096) return Status::invalid("taxonomy: '%s' has %zu layers (at most 4096)", field, m.size());
    const int32_t rows = int32_t(m.size());
    if (*n_layer != 0 && rows != *n_layer) {
        return Status::invalid("taxonomy: '%s' has %d layers, classification_matrix has %d", field, rows, *n_layer);
    }
    out->clear();
    for (int32_t il = 0; il < rows; ++il) {
        const json& row = m[size_t(il)];
        if (!row.is_array() || row.empty() || row.size() > 1024) {
            return Status::invalid("taxonomy: '%s' layer %d must be an array of 1..1024 numbers", field, il);
        }
        const int32_t cols = int32_t(row.size());
        if (*n_head_kv == 0) *n_head_kv = cols;
        if (cols != *n_head_kv) {
            return Status::invalid("taxonomy: '%s' layer %d has %d heads, expected %d", field, il, cols, *n_head_kv);
        }
        for (int32_t ih = 0; ih < cols; ++ih) {
            const json& v = row[size_t(ih)];
            if (!v.is_number()) return Status::invalid("taxonomy: '%s'[%d][%d] is not a number", field, il, ih);
            out->push_back(v.get<double>());
        }
    }
    *n_layer = rows;
    return Status();
}

}  // namespace

const char* head_role_name(HeadRole r) {
    switch (r) {
        case HeadRole::kAnchor: return "anchor";
        case HeadRole::kVolatile: return "volatile";
        case HeadRole::kPivot: return "pivot";
        case HeadRole::kSatellite: return "satellite";
    }
    return "?";
}

int32_t Taxonomy::count(HeadRole r) const {
    return int32_t(std::count(role.begin(), role.end(), r));
}

int32_t Taxonomy::n_full() const { return count(HeadRole::kVolatile) + count(HeadRole::kPivot); }

int32_t Taxonomy::pivot_of(int32_t il, int32_t ih) const {
    if (il < 0 || il >= int32_t(clusters.size())) return -1;
    for (const HeadCluster& c : clusters[size_t(il)]) {
        if (std::binary_search(c.satellites.begin(), c.satellites.end(), ih)) return c.pivot;
    }
    return -1;
}

Status taxonomy_validate(const Taxonomy& t) {
    if (t.n_layer <= 0 || t.n_head_kv <= 0) return Status::invalid("taxonomy: empty (%d layers x %d heads)", t.n_layer, t.n_head_kv);
    const size_t n = size_t(t.n_layer) * size_t(t.n_head_kv);
    if (t.role.size() != n || t.ratio.size() != n || t.clusters.size() != size_t(t.n_layer)) {
        return Status::invalid("taxonomy: arrays do not match %d layers x %d heads", t.n_layer, t.n_head_kv);
    }
    if (!t.stability.empty() && t.stability.size() != n) {
        return Status::invalid("taxonomy: stability has %zu entries, expected %zu", t.stability.size(), n);
    }
    if (!t.local_layers.empty()) {
        if (t.local_layers.size() != size_t(t.n_layer)) {
            return Status::invalid("taxonomy: local_layers has %zu entries for %d layers", t.local_layers.size(), t.n_layer);
        }
        for (int32_t il = 0; il < t.n_layer; ++il) {
            if (!t.local_layers[size_t(il)]) continue;
            for (int32_t ih = 0; ih < t.n_head_kv; ++ih) {
                if (t.role_of(il, ih) != HeadRole::kVolatile) {
                    return Status::invalid("taxonomy: layer %d is local but head %d is %s (local heads are volatile)", il,
                                           ih, head_role_name(t.role_of(il, ih)));
                }
            }
        }
    }
    for (int32_t il = 0; il < t.n_layer; ++il) {
        std::vector<int> member(size_t(t.n_head_kv), 0);  // times seen in a cluster (as pivot or satellite)
        for (const HeadCluster& c : t.clusters[size_t(il)]) {
            if (c.pivot < 0 || c.pivot >= t.n_head_kv) {
                return Status::invalid("taxonomy: layer %d: pivot %d out of range (%d heads)", il, c.pivot, t.n_head_kv);
            }
            if (t.role_of(il, c.pivot) != HeadRole::kPivot) {
                return Status::invalid("taxonomy: layer %d: head %d leads a cluster but is classified %s", il,
                                       c.pivot, head_role_name(t.role_of(il, c.pivot)));
            }
            if (c.satellites.empty()) return Status::invalid("taxonomy: layer %d: pivot %d has no satellites", il, c.pivot);
            ++member[size_t(c.pivot)];
            for (size_t k = 0; k < c.satellites.size(); ++k) {
                const int32_t s = c.satellites[k];
                if (s < 0 || s >= t.n_head_kv) {
                    return Status::invalid("taxonomy: layer %d: satellite %d out of range (%d heads)", il, s, t.n_head_kv);
                }
                if (k > 0 && s <= c.satellites[k - 1]) {
                    return Status::invalid("taxonomy: layer %d: satellites of pivot %d not strictly ascending", il, c.pivot);
                }
                if (t.role_of(il, s) != HeadRole::kSatellite) {
                    return Status::invalid("taxonomy: layer %d: head %d follows pivot %d but is classified %s", il, s,
                                           c.pivot, head_role_name(t.role_of(il, s)));
                }
                ++member[size_t(s)];
            }
        }
        for (int32_t ih = 0; ih < t.n_head_kv; ++ih) {
            const HeadRole r = t.role_of(il, ih);
            const int ri = int(r);
            if (ri < 1 || ri > 4) return Status::invalid("taxonomy: layer %d head %d: role %d (expected 1..4)", il, ih, ri);
            const bool clustered = r == HeadRole::kPivot || r == HeadRole::kSatellite;
            if (member[size_t(ih)] != (clustered ? 1 : 0)) {
                return Status::invalid("taxonomy: layer %d head %d (%s) appears in %d clusters (expected %d)", il, ih,
                                       head_role_name(r), member[size_t(ih)], clustered ? 1 : 0);
            }
            const double q = t.ratio[t.at(il, ih)];
            if (is_full(r) ? q != -1.0 : !(std::isfinite(q) && q > 0.0 && q <= 1e6)) {
                return Status::invalid("taxonomy: layer %d head %d (%s): allocation %g (expected %s)", il, ih,
                                       head_role_name(r), q, is_full(r) ? "-1 = full KV" : "a finite ratio > 0");
            }
        }
    }
    return Status();
}

Status taxonomy_check_shape(const Taxonomy& t, int32_t n_layer, int32_t n_head_kv) {
    if (t.n_layer != n_layer || t.n_head_kv != n_head_kv) {
        return Status::invalid("taxonomy is for %d layers x %d KV heads, the model has %d x %d (calibrate it with "
                               "`heterokv calibrate` on this model)", t.n_layer, t.n_head_kv, n_layer, n_head_kv);
    }
    return Status();
}

Expected<Taxonomy> taxonomy_from_json(std::string_view text) {
    json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::invalid("taxonomy: not valid JSON");
    if (!j.is_object()) return Status::invalid("taxonomy: the top level must be an object");
    Taxonomy t;
    std::vector<double> cls, alloc;
    HKV_TRY(read_matrix(j, "classification_matrix", &t.n_layer, &t.n_head_kv, &cls));
    HKV_TRY(read_matrix(j, "allocation_matrix", &t.n_layer, &t.n_head_kv, &alloc));
    // type_map, when present, says which number stands for which role. The reference's files use
    // two vocabularies (anchor/volatile/pivot/satellite and Stable_Unique/Decaying_Unique/
    // Similar_Leader/Similar_Member); both are read, and the numbers are remapped if they differ.
    int id_role[5] = {0, 1, 2, 3, 4};  // file id -> role
    if (j.contains("meta") && j["meta"].is_object() && j["meta"].contains("type_map")) {
        const json& tm = j["meta"]["type_map"];
        if (!tm.is_object() || tm.size() != 4) return Status::invalid("taxonomy: meta.type_map must name 4 roles");
        bool seen_id[5] = {}, seen_role[5] = {};
        for (auto it = tm.begin(); it != tm.end(); ++it) {
            std::string name = it.key();
            for (char& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
            int role = name == "anchor" || name == "stable_unique"      ? 1
                       : name == "volatile" || name == "decaying_unique" ? 2
                       : name == "pivot" || name == "similar_leader"     ? 3
                       : name == "satellite" || name == "similar_member" ? 4
                                                                         : 0;
            if (role == 0) return Status::invalid("taxonomy: meta.type_map: unknown role '%s'", it.key().c_str());
            if (!it.value().is_number_integer()) {
                return Status::invalid("taxonomy: meta.type_map['%s'] is not an integer", it.key().c_str());
            }
            const int64_t id = it.value().get<int64_t>();
            if (id < 1 || id > 4 || seen_id[id] || seen_role[role]) {
                return Status::invalid("taxonomy: meta.type_map must map the 4 roles to the numbers 1..4 one to one");
            }
            seen_id[id] = seen_role[role] = true;
            id_role[id] = role;
        }
    }
    t.role.resize(cls.size());
    for (size_t i = 0; i < cls.size(); ++i) {
        const double c = cls[i];
        if (c != std::floor(c) || c < 1 || c > 4) {
            return Status::invalid("taxonomy: classification_matrix[%zu][%zu] = %g (expected 1..4)", i / size_t(t.n_head_kv),
                                   i % size_t(t.n_head_kv), c);
        }
        t.role[i] = HeadRole(uint8_t(id_role[int(c)]));
    }
    t.ratio = alloc;
    if (!j.contains("leader_member_relations")) return Status::invalid("taxonomy: missing field 'leader_member_relations'");
    const json& lm = j["leader_member_relations"];
    if (!lm.is_array() || lm.size() != size_t(t.n_layer)) {
        return Status::invalid("taxonomy: 'leader_member_relations' must be an array of %d layer objects", t.n_layer);
    }
    t.clusters.resize(size_t(t.n_layer));
    for (int32_t il = 0; il < t.n_layer; ++il) {
        const json& obj = lm[size_t(il)];
        if (!obj.is_object()) return Status::invalid("taxonomy: leader_member_relations[%d] is not an object", il);
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            HeadCluster c;
            const std::string& key = it.key();
            char* end = nullptr;
            const long p = std::strtol(key.c_str(), &end, 10);
            if (key.empty() || *end != '\0' || p < 0 || p >= t.n_head_kv) {
                return Status::invalid("taxonomy: leader_member_relations[%d]: key '%s' is not a head index", il, key.c_str());
            }
            c.pivot = int32_t(p);
            if (!it.value().is_array()) {
                return Status::invalid("taxonomy: leader_member_relations[%d][%s] is not an array", il, key.c_str());
            }
            for (const json& s : it.value()) {
                if (!s.is_number_integer()) {
                    return Status::invalid("taxonomy: leader_member_relations[%d][%s] holds a non-integer", il, key.c_str());
                }
                const int64_t v = s.get<int64_t>();
                if (v < 0 || v >= t.n_head_kv) {
                    return Status::invalid("taxonomy: leader_member_relations[%d][%s]: head %lld out of range", il,
                                           key.c_str(), (long long)v);
                }
                c.satellites.push_back(int32_t(v));
            }
            std::sort(c.satellites.begin(), c.satellites.end());
            t.clusters[size_t(il)].push_back(std::move(c));
        }
        std::sort(t.clusters[size_t(il)].begin(), t.clusters[size_t(il)].end(),
                  [](const HeadCluster& a, const HeadCluster& b) { return a.pivot < b.pivot; });
    }
    if (j.contains("meta") && j["meta"].is_object()) {
        const json& meta = j["meta"];
        auto num = [&](const char* k, double* out) {
            if (meta.contains(k) && meta[k].is_number()) *out = meta[k].get<double>();
        };
        num("tau_stable", &t.tau_stable);
        num("tau_sim", &t.tau_sim);
        double topk = t.topk;
        num("topk", &topk);
        t.topk = int32_t(std::clamp(topk, 1.0, 1e9));
        if (meta.contains("source") && meta["source"].is_string()) t.source = meta["source"].get<std::string>();
        if (meta.contains("stability")) {
            std::vector<double> st;
            int32_t nl = t.n_layer, nh = t.n_head_kv;
            json wrap = {{"stability", meta["stability"]}};
            HKV_TRY(read_matrix(wrap, "stability", &nl, &nh, &st));
            t.stability = std::move(st);
        }
        if (meta.contains("local_layers")) {
            const json& ll = meta["local_layers"];
            if (!ll.is_array()) return Status::invalid("taxonomy: meta.local_layers must be a list of 0/1");
            for (const json& e : ll) {
                if (!e.is_number_integer() || (e.get<int64_t>() != 0 && e.get<int64_t>() != 1)) {
                    return Status::invalid("taxonomy: meta.local_layers must be a list of 0/1");
                }
                t.local_layers.push_back(uint8_t(e.get<int64_t>()));
            }
        }
    }
    HKV_TRY(taxonomy_validate(t));
    return t;
}

Expected<Taxonomy> taxonomy_load(const std::string& path) {
    auto text = file_read(path, kFileMaxJson, "taxonomy");  // a regular file, bounded
    if (!text.ok()) return text.status();
    auto t = taxonomy_from_json(*text);
    if (!t) return Status(t.status().code(), path + ": " + t.status().message());
    return t;
}

std::string taxonomy_to_json(const Taxonomy& t) {
    json j;
    json& meta = j["meta"];
    meta["type_map"] = {{"anchor", 1}, {"volatile", 2}, {"pivot", 3}, {"satellite", 4}};
    meta["counts"] = {{"anchor", t.count(HeadRole::kAnchor)},
                      {"volatile", t.count(HeadRole::kVolatile)},
                      {"pivot", t.count(HeadRole::kPivot)},
                      {"satellite", t.count(HeadRole::kSatellite)}};
    meta["tau_stable"] = t.tau_stable;
    meta["tau_sim"] = t.tau_sim;
    meta["topk"] = t.topk;
    if (!t.source.empty()) meta["source"] = t.source;
    json cls = json::array(), alloc = json::array(), lm = json::array(), stab = json::array();
    for (int32_t il = 0; il < t.n_layer; ++il) {
        json c = json::array(), a = json::array(), s = json::array();
        for (int32_t ih = 0; ih < t.n_head_kv; ++ih) {
            c.push_back(int(t.role_of(il, ih)));
            a.push_back(t.ratio[t.at(il, ih)]);
            if (!t.stability.empty()) s.push_back(t.stability[t.at(il, ih)]);
        }
        cls.push_back(std::move(c));
        alloc.push_back(std::move(a));
        if (!t.stability.empty()) stab.push_back(std::move(s));
        json rel = json::object();
        for (const HeadCluster& cl : t.clusters[size_t(il)]) rel[std::to_string(cl.pivot)] = cl.satellites;
        lm.push_back(std::move(rel));
    }
    if (!t.stability.empty()) meta["stability"] = std::move(stab);
    if (!t.local_layers.empty()) {
        json ll = json::array();
        for (uint8_t v : t.local_layers) ll.push_back(int(v));
        meta["local_layers"] = std::move(ll);
    }
    j["classification_matrix"] = std::move(cls);
    j["allocation_matrix"] = std::move(alloc);
    j["leader_member_relations"] = std::move(lm);
    return j.dump(1);
}

Status taxonomy_save(const Taxonomy& t, const std::string& path) {
    HKV_TRY(taxonomy_validate(t));
    // A new file renamed over the target; a device or FIFO target is refused, never replaced.
    return file_write_atomic(path, taxonomy_to_json(t) + "\n", "taxonomy");
}

Expected<HcBudget> heterocache_budget(const Taxonomy& t, double cr, int64_t n_prompt) {
    if (!(cr > 0.0 && cr <= 1.0)) return Status::invalid("heterocache: ratio %g must be in (0, 1]", cr);
    if (n_prompt < 1) return Status::invalid("heterocache: empty prompt");
    auto is_local = [&](int64_t i) { return !t.local_layers.empty() && t.local_layers[size_t(i / t.n_head_kv)] != 0; };
    const int64_t n_heads = int64_t(t.n_layer) * t.n_head_kv;
    int64_t n_total = 0, n_full = 0;  // over the global layers
    for (int64_t i = 0; i < n_heads; ++i) {
        if (is_local(i)) continue;
        ++n_total;
        n_full += is_full(t.role[size_t(i)]) ? 1 : 0;
    }
    HcBudget b;
    b.cap.assign(size_t(n_heads), n_prompt);
    if (n_full == n_total) {  // nothing to compress: every head keeps its KV
        b.base = n_prompt;
        return b;
    }
    if (!(cr * double(n_total) > double(n_full))) {
        return Status::invalid("heterocache: ratio %g keeps %.1f of %lld heads' KV but %lld heads are full (volatile + "
                               "pivot); use ratio > %.3f", cr, cr * double(n_total), (long long)n_total,
                               (long long)n_full, double(n_full) / double(n_total));
    }
    b.base = int64_t(std::floor((cr * double(n_total) - double(n_full)) * double(n_prompt) / double(n_total - n_full)));
    for (int64_t i = 0; i < n_heads; ++i) {
        if (is_full(t.role[size_t(i)]) || is_local(i)) continue;
        // The reference floors; a head is never left with zero slots (it would attend to nothing).
        const int64_t cap = int64_t(std::floor(double(b.base) * t.ratio[size_t(i)]));
        b.cap[size_t(i)] = std::clamp<int64_t>(cap, 1, n_prompt);
    }
    return b;
}

}  // namespace hkv
