// Reads a model's JSON config object key by key with defaults, and rejects what it did not read:
// ValueError for a non-object, an unknown key, a wrong type or a value out of range. Internal to
// src/focus/models (the registry and each model's config parser).
// Integers (and integer lists) must lie within +-kMaxConfigInt: no size, count or length of a
// focus model comes near it, and a corrupt file's 2^63 (or 2^40) is refused before anything is
// built or multiplied. Messages show a scalar value, and an array or object only by its type and
// size (dumping a value nested thousands deep would recurse as deep).
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"

namespace focus::models {

inline constexpr int64_t kMaxConfigInt = int64_t(1) << 24;

// A value for an error message: scalars as JSON, arrays and objects as "array of N" (shallow).
inline std::string shown(const nlohmann::json& v) {
  if (v.is_structured()) return fmt::format("{} of {}", v.type_name(), v.size());
  return v.dump();
}

class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string model) : j_(j), model_(std::move(model)) {
    FOCUS_CHECK(j.is_null() || j.is_object(), ValueError,
                "{}: config must be a JSON object, got {}", model_, shown(j));
  }

  // The value of `key` as T, or `def` when absent.
  template <class T>
  T get(const char* key, const T& def) {
    read_.insert(key);
    if (j_.is_null() || !j_.contains(key)) return def;
    const nlohmann::json& v = j_.at(key);
    if constexpr (std::is_same_v<T, bool>) {
      FOCUS_CHECK(v.is_boolean(), ValueError, "{}: config '{}' must be true or false, got {}",
                  model_, key, shown(v));
    } else if constexpr (std::is_integral_v<T>) {
      check_int(key, v);
    } else if constexpr (std::is_floating_point_v<T>) {
      FOCUS_CHECK(v.is_number(), ValueError, "{}: config '{}' must be a number, got {}", model_,
                  key, shown(v));
    } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      FOCUS_CHECK(v.is_array(), ValueError, "{}: config '{}' must be a list of integers, got {}",
                  model_, key, shown(v));
      for (const nlohmann::json& e : v) check_int(key, e);
    }
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception&) {
      throw ValueError(
          fmt::format("{}: config '{}' has the wrong type: {}", model_, key, shown(v)));
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
  // An integer within +-kMaxConfigInt (2^64 - 1 parses as unsigned, 1e300 as a float: both out).
  void check_int(const char* key, const nlohmann::json& v) const {
    FOCUS_CHECK(v.is_number_integer(), ValueError, "{}: config '{}' must be an integer, got {}",
                model_, key, shown(v));
    const bool in_range =
        v.is_number_unsigned()
            ? v.get<uint64_t>() <= static_cast<uint64_t>(kMaxConfigInt)
            : v.get<int64_t>() >= -kMaxConfigInt && v.get<int64_t>() <= kMaxConfigInt;
    FOCUS_CHECK(in_range, ValueError, "{}: config '{}' = {} is out of range (|value| <= {})",
                model_, key, v.dump(), kMaxConfigInt);
  }

  const nlohmann::json& j_;
  std::string model_;
  std::set<std::string> read_;
};

}  // namespace focus::models
