// API keys (see keys.hpp).
#include "focus/serve/keys.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/io/atomic_file.hpp"
#include "focus/io/sha256.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

using nlohmann::json;

constexpr std::pair<const char*, unsigned> kRoles[] = {
    {"infer", kRoleInfer}, {"explain", kRoleExplain}, {"admin", kRoleAdmin}, {"metrics", kRoleMetrics},
    {"review", kRoleReview}};

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

json key_to_json(const ApiKey& k) {
  json roles = json::array();
  for (const auto& [name, bit] : kRoles)
    if (k.roles & bit) roles.push_back(name);
  return {{"id", k.id}, {"sha256", k.sha256}, {"roles", roles}, {"rate_per_s", k.rate_per_s},
          {"burst", k.burst}, {"daily_quota", k.daily_quota}};
}

}  // namespace

unsigned parse_roles(std::string_view list) {
  unsigned mask = 0;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(',', start), list.size());
    const std::string_view name = list.substr(start, end - start);
    if (!name.empty()) {
      unsigned bit = 0;
      for (const auto& [n, b] : kRoles)
        if (name == n) bit = b;
      FOCUS_CHECK(bit != 0, ValueError, "unknown role '{}' (roles: infer, explain, admin, metrics)", name);
      mask |= bit;
    }
    start = end + 1;
  }
  return mask;
}

std::string roles_to_string(unsigned roles) {
  std::string s;
  for (const auto& [name, bit] : kRoles)
    if (roles & bit) s += (s.empty() ? "" : ",") + std::string(name);
  return s;
}

std::vector<ApiKey> load_key_file(const std::string& path) {
  std::ifstream f(path);
  FOCUS_CHECK(f, IOError, "key file {}: cannot open ({})", path, std::strerror(errno));
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("key file {}: malformed JSON ({})", path, e.what()));
  }
  FOCUS_CHECK(j.is_object() && j.contains("keys") && j["keys"].is_array(), FormatError,
              "key file {}: expected {{\"keys\": [...]}}", path);
  std::vector<ApiKey> keys;
  for (size_t i = 0; i < j["keys"].size(); ++i) {
    const json& e = j["keys"][i];
    const std::string where = fmt::format("key file {}: keys[{}]", path, i);
    try {
      ApiKey k;
      k.id = e.at("id").get<std::string>();
      FOCUS_CHECK(valid_id(k.id), FormatError, "{}: id '{}' must be 1-64 of [A-Za-z0-9_.-]", where, k.id);
      k.sha256 = e.at("sha256").get<std::string>();
      FOCUS_CHECK(k.sha256.size() == 64 && is_sha256_hex(k.sha256), FormatError,
                  "{} ({}): sha256 must be 64 hex digits", where, k.id);
      std::transform(k.sha256.begin(), k.sha256.end(), k.sha256.begin(), ::tolower);
      for (const json& r : e.at("roles")) k.roles |= parse_roles(r.get<std::string>());
      k.rate_per_s = e.value("rate_per_s", 0.0);
      k.burst = e.value("burst", 0.0);
      k.daily_quota = e.value("daily_quota", int64_t(0));
      FOCUS_CHECK(k.rate_per_s >= 0 && k.burst >= 0 && k.daily_quota >= 0 &&
                      std::isfinite(k.rate_per_s) && std::isfinite(k.burst),
                  FormatError, "{} ({}): limits must be non-negative", where, k.id);
      if (k.rate_per_s > 0 && k.burst == 0) k.burst = std::max(1.0, k.rate_per_s);
      for (const ApiKey& o : keys)
        FOCUS_CHECK(o.id != k.id, FormatError, "{}: duplicate id '{}'", where, k.id);
      keys.push_back(std::move(k));
    } catch (const json::exception& ex) {
      throw FormatError(fmt::format("{}: {}", where, ex.what()));
    } catch (const ValueError& ex) {
      throw FormatError(fmt::format("{}: {}", where, ex.what()));
    }
  }
  return keys;
}

std::string create_key(const std::string& path, const ApiKey& key_in) {
  FOCUS_CHECK(valid_id(key_in.id), ValueError, "key id '{}' must be 1-64 of [A-Za-z0-9_.-]", key_in.id);
  FOCUS_CHECK(key_in.roles != 0, ValueError, "key '{}' needs at least one role", key_in.id);
  std::vector<ApiKey> keys;
  if (std::filesystem::exists(path)) keys = load_key_file(path);
  for (const ApiKey& k : keys)
    FOCUS_CHECK(k.id != key_in.id, ValueError, "key file {} already has a key '{}'", path, key_in.id);
  unsigned char raw[32];
  FOCUS_CHECK(RAND_bytes(raw, sizeof(raw)) == 1, StateError, "create_key: no random bytes from OpenSSL");
  std::string secret = "fk_";
  for (unsigned char c : raw) secret += fmt::format("{:02x}", c);
  ApiKey k = key_in;
  k.sha256 = sha256_hex(secret);
  if (k.rate_per_s > 0 && k.burst == 0) k.burst = std::max(1.0, k.rate_per_s);
  keys.push_back(k);
  json out = {{"keys", json::array()}};
  for (const ApiKey& e : keys) out["keys"].push_back(key_to_json(e));
  write_file_atomic(path, out.dump(2) + "\n");
  return secret;
}

void KeyStore::replace(std::vector<ApiKey> keys) {
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(keys);
  std::map<std::string, State> kept;
  for (const ApiKey& k : keys_)
    if (auto it = state_.find(k.id); it != state_.end()) kept[k.id] = it->second;
  state_ = std::move(kept);
}

size_t KeyStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_.size();
}

std::optional<ApiKey> KeyStore::authenticate(std::string_view secret) const {
  if (secret.empty()) return std::nullopt;
  const std::string d = sha256_hex(secret);  // lowercase, as stored (load_key_file lowers it)
  std::lock_guard<std::mutex> lock(mu_);
  const ApiKey* found = nullptr;
  for (const ApiKey& k : keys_)  // every key compared: no early exit
    if (k.sha256.size() == d.size() && CRYPTO_memcmp(k.sha256.data(), d.data(), d.size()) == 0) found = &k;
  if (!found) return std::nullopt;
  return *found;
}

Admission KeyStore::admit(const ApiKey& key, Clock::time_point now, int64_t unix_now) {
  if (unix_now < 0) unix_now = int64_t(std::time(nullptr));
  std::lock_guard<std::mutex> lock(mu_);
  State& s = state_[key.id];
  Admission a;
  const int64_t day = unix_now / 86400, to_midnight = 86400 - unix_now % 86400;
  if (s.day != day) s.day = day, s.used = 0;
  if (key.daily_quota > 0 && s.used >= key.daily_quota) {
    a.allowed = false, a.reason = "quota", a.retry_after_s = to_midnight, a.limited = true;
    a.limit = key.daily_quota, a.remaining = 0, a.reset_s = to_midnight;
    return a;
  }
  if (key.rate_per_s > 0) {
    a.limited = true;
    if (s.tokens < 0) s.tokens = key.burst, s.last = now;
    const double dt = std::chrono::duration<double>(now - s.last).count();
    s.tokens = std::min(key.burst, s.tokens + std::max(0.0, dt) * key.rate_per_s);
    s.last = now;
    a.limit = int64_t(key.burst);
    if (s.tokens < 1) {
      a.allowed = false, a.reason = "rate";
      a.retry_after_s = std::max<int64_t>(1, int64_t(std::ceil((1 - s.tokens) / key.rate_per_s)));
      a.remaining = 0, a.reset_s = a.retry_after_s;
      return a;
    }
    s.tokens -= 1;
    a.remaining = int64_t(s.tokens);
    a.reset_s = int64_t(std::ceil((key.burst - s.tokens) / key.rate_per_s));
  } else if (key.daily_quota > 0) {
    a.limited = true, a.limit = key.daily_quota, a.remaining = key.daily_quota - s.used - 1;
    a.reset_s = to_midnight;
  }
  ++s.used;
  return a;
}

std::string_view bearer_secret(std::string_view authorization, std::string_view x_api_key) {
  if (!x_api_key.empty()) return x_api_key;
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() > kBearer.size() && authorization.substr(0, kBearer.size()) == kBearer)
    return authorization.substr(kBearer.size());
  return {};
}

}  // namespace focus
