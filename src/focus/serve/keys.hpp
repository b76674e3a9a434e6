// API keys: the key file, authentication and per-key limits.
// The key file is JSON {"keys": [{"id", "sha256", "roles", "rate_per_s", "burst", "daily_quota"}]}
// holding only the SHA-256 of each secret: `focus keys create` makes a secret from 32 random
// bytes (OpenSSL RAND_bytes), prints it once and stores its digest. A request's key (the
// `Authorization: Bearer KEY` or `X-API-Key: KEY` header) is hashed and compared with every
// stored digest in constant time (CRYPTO_memcmp, no early exit), so neither the comparison nor
// the file reveals a secret. Roles: infer (predict, translate), explain, admin (reload), metrics
// (/metrics alone, so a Prometheus scrape key can do nothing else).
// Limits per key: a token bucket (rate_per_s refilled up to burst; 0 = unlimited) and a daily
// quota of requests per UTC day (0 = unlimited). Rejections say when to retry.
// Thread-safe: authenticate() and admit() may be called from any thread.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace focus {

enum Role : unsigned { kRoleInfer = 1, kRoleExplain = 2, kRoleAdmin = 4, kRoleMetrics = 8, kRoleReview = 16 };
// "infer,explain" -> mask; ValueError naming an unknown role.
unsigned parse_roles(std::string_view list);
std::string roles_to_string(unsigned roles);

struct ApiKey {
  std::string id;
  std::string sha256;   // of the secret, 64 lowercase hex digits
  unsigned roles = 0;
  double rate_per_s = 0;  // token refill per second; 0 = no rate limit
  double burst = 0;       // bucket size (0 with a rate: max(1, rate))
  int64_t daily_quota = 0;  // requests per UTC day; 0 = none
};

// Reads and validates a key file: FormatError naming the file and the entry (duplicate ids,
// a digest that is not 64 hex digits, unknown roles, negative limits); IOError if unreadable.
std::vector<ApiKey> load_key_file(const std::string& path);
// Adds a key to `path` (created if missing; written atomically) and returns its secret
// ("fk_" + 64 hex digits). ValueError for an id already there or not [A-Za-z0-9_.-]{1,64}.
std::string create_key(const std::string& path, const ApiKey& key);

// The outcome of admit(): allowed, or 429 with the seconds to wait. limit / remaining / reset
// describe the token bucket (or the daily quota when that is what ran out) for the RateLimit-*
// response headers.
struct Admission {
  bool allowed = true;
  const char* reason = "";  // "rate" | "quota" when refused
  int64_t retry_after_s = 0;
  int64_t limit = 0, remaining = 0, reset_s = 0;
  bool limited = false;  // the key has a limit at all (send the headers)
};

class KeyStore {
 public:
  using Clock = std::chrono::steady_clock;
  KeyStore() = default;
  explicit KeyStore(std::vector<ApiKey> keys) { replace(std::move(keys)); }
  // Swaps in a new set of keys (a reloaded file); buckets and quotas of keys kept are kept.
  void replace(std::vector<ApiKey> keys);
  size_t size() const;

  // The key whose secret is `secret` (a copy: the set may be replaced meanwhile), or nothing.
  std::optional<ApiKey> authenticate(std::string_view secret) const;
  // Takes one request from the key's bucket and quota. `now` and `unix_now` are injectable for
  // tests (steady time for the bucket, UTC seconds for the quota day).
  Admission admit(const ApiKey& key, Clock::time_point now = Clock::now(),
                  int64_t unix_now = -1);

 private:
  struct State {
    double tokens = -1;  // -1: full on first use
    Clock::time_point last{};
    int64_t day = -1, used = 0;
  };
  mutable std::mutex mu_;
  std::vector<ApiKey> keys_;
  std::map<std::string, State> state_;  // by key id
};

// The secret in an Authorization ("Bearer KEY") or X-API-Key header value; "" when absent.
std::string_view bearer_secret(std::string_view authorization, std::string_view x_api_key);

}  // namespace focus
