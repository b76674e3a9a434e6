// Typed option schemas and JSON: the one implementation behind TrainConfig and ServeOptions.
// A schema is a struct with a visit_fields(obj, v) function calling v(name, field&, help) for
// every field; these templates read a JSON object into it (unknown keys and wrong types are a
// ValueError naming the key and the source), write it out, and read a config file.
// String fields also take JSON objects and arrays, kept as their JSON text (model-config).
#pragma once
#include <fstream>
#include <set>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"

namespace focus {

template <class C>
void apply_json_fields(C& c, const nlohmann::json& j, const std::string& source) {
  FOCUS_CHECK(j.is_object(), ValueError, "{}: the config must be a JSON object", source);
  std::set<std::string> known;
  visit_fields(c, [&](const char* name, auto& field, const char*) {
    known.insert(name);
    const auto it = j.find(name);
    if (it == j.end()) return;
    using F = std::decay_t<decltype(field)>;
    try {
      if constexpr (std::is_same_v<F, std::string>)
        field = it->is_string() ? it->template get<std::string>() : it->dump();  // objects as JSON text
      else
        field = it->template get<F>();
    } catch (const nlohmann::json::exception&) {
      throw ValueError(fmt::format("{}: field '{}' has the wrong type ({})", source, name, it->dump()));
    }
  });
  for (const auto& [k, v] : j.items())
    FOCUS_CHECK(known.count(k), ValueError, "{}: unknown field '{}'", source, k);
}

template <class C>
nlohmann::json fields_to_json(const C& c) {
  nlohmann::json j;
  visit_fields(const_cast<C&>(c), [&](const char* name, auto& field, const char*) { j[name] = field; });
  return j;
}

// The JSON of a config file: IOError if unreadable, ValueError if not JSON.
inline nlohmann::json read_config_json(const std::string& path) {
  std::ifstream in(path);
  FOCUS_CHECK(in, IOError, "cannot read config file '{}'", path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("config file '{}' is not valid JSON: {}", path, e.what()));
  }
  return j;
}

}  // namespace focus
