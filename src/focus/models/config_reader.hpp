// Reads a model's JSON config object key by key with defaults, and rejects what it did not read:
// ValueError for a non-object, an unknown key, a wrong type or a value out of range. Internal to
// src/focus/models (the registry and each model's config parser).
#pragma once
#include <set>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"

namespace focus::models {

class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string model) : j_(j), model_(std::move(model)) {
    FOCUS_CHECK(j.is_null() || j.is_object(), ValueError,
                "{}: config must be a JSON object, got {}", model_, j.dump());
  }

  // The value of `key` as T, or `def` when absent.
  template <class T>
  T get(const char* key, const T& def) {
    read_.insert(key);
    if (j_.is_null() || !j_.contains(key)) return def;
    const nlohmann::json& v = j_.at(key);
    if constexpr (std::is_same_v<T, bool>) {
      FOCUS_CHECK(v.is_boolean(), ValueError, "{}: config '{}' must be true or false, got {}",
                  model_, key, v.dump());
    } else if constexpr (std::is_integral_v<T>) {
      FOCUS_CHECK(v.is_number_integer(), ValueError, "{}: config '{}' must be an integer, got {}",
                  model_, key, v.dump());
    } else if constexpr (std::is_floating_point_v<T>) {
      FOCUS_CHECK(v.is_number(), ValueError, "{}: config '{}' must be a number, got {}", model_,
                  key, v.dump());
    }
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception&) {
      throw ValueError(
          fmt::format("{}: config '{}' has the wrong type: {}", model_, key, v.dump()));
    }
  }

  // Throws ValueError unless cond, naming the key and its value.
  void require(bool cond, const char* key, const std::string& why) const {
    FOCUS_CHECK(cond, ValueError, "{}: config '{}' {}", model_, key, why);
  }

  // Throws ValueError naming the first key that no get() asked for.
  void finish() const {
    if (j_.is_null()) return;
    for (auto it = j_.begin(); it != j_.end(); ++it)
      FOCUS_CHECK(read_.count(it.key()), ValueError, "{}: unknown config key '{}'", model_,
                  it.key());
  }

 private:
  const nlohmann::json& j_;
  std::string model_;
  std::set<std::string> read_;
};

}  // namespace focus::models
