// API keys: the file stores only digests, secrets authenticate, wrong ones do not, roles parse,
// and the token bucket and the daily quota admit exactly what they promise (time injected).
#include "focus/serve/keys.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "focus/io/sha256.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

std::string temp_file(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "keys_test";
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::filesystem::remove(p);
  return p.string();
}

TEST(Keys, CreateStoresOnlyTheDigestAndAuthenticates) {
  const std::string path = temp_file("keys.json");
  ApiKey a;
  a.id = "alice";
  a.roles = parse_roles("infer,metrics");
  const std::string sa = create_key(path, a);
  ApiKey b;
  b.id = "bob";
  b.roles = kRoleAdmin;
  const std::string sb = create_key(path, b);
  EXPECT_EQ(sa.size(), 67u);
  EXPECT_NE(sa, sb);
  std::ifstream f(path);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(sa), std::string::npos);  // the secret is not in the file
  EXPECT_NE(text.find(sha256_hex(sa)), std::string::npos);
  KeyStore store(load_key_file(path));
  ASSERT_TRUE(store.authenticate(sa));
  EXPECT_EQ(store.authenticate(sa)->id, "alice");
  EXPECT_EQ(store.authenticate(sa)->roles, unsigned(kRoleInfer | kRoleMetrics));
  EXPECT_EQ(store.authenticate(sb)->id, "bob");
  std::string altered = sa;  // one hex digit changed (to a digit it is not)
  altered.back() = altered.back() == '0' ? '1' : '0';
  EXPECT_FALSE(store.authenticate(altered));
  EXPECT_FALSE(store.authenticate(""));
  EXPECT_THROW(create_key(path, a), ValueError);  // duplicate id
  ApiKey bad;
  bad.id = "has space";
  bad.roles = kRoleInfer;
  EXPECT_THROW(create_key(path, bad), ValueError);
}

TEST(Keys, RolesAndHeaders) {
  EXPECT_EQ(parse_roles("infer,explain,admin,metrics"), 15u);
  EXPECT_EQ(roles_to_string(kRoleExplain | kRoleMetrics), "explain,metrics");
  EXPECT_THROW(parse_roles("infer,root"), ValueError);
  EXPECT_EQ(bearer_secret("Bearer abc", ""), "abc");
  EXPECT_EQ(bearer_secret("Basic abc", ""), "");
  EXPECT_EQ(bearer_secret("Bearer abc", "xyz"), "xyz");
}

TEST(Keys, CorruptKeyFilesAreFormatErrors) {
  const auto write = [](const std::string& p, const std::string& s) { std::ofstream(p) << s; };
  const std::string p = temp_file("bad.json");
  write(p, "{\"keys\": [");
  EXPECT_THROW(load_key_file(p), FormatError);
  write(p, R"({"keys": [{"id": "a", "sha256": "xyz", "roles": ["infer"]}]})");
  EXPECT_THROW(load_key_file(p), FormatError);
  const std::string h(64, 'a');
  write(p, R"({"keys": [{"id": "a", "sha256": ")" + h + R"(", "roles": ["root"]}]})");
  EXPECT_THROW(load_key_file(p), FormatError);
  write(p, R"({"keys": [{"id": "a", "sha256": ")" + h + R"(", "roles": ["infer"]}, {"id": "a", "sha256": ")" + h + R"(", "roles": ["infer"]}]})");
  EXPECT_THROW(load_key_file(p), FormatError);
  EXPECT_THROW(load_key_file(temp_file("missing.json")), IOError);
}

TEST(Keys, TokenBucketAdmitsBurstThenRate) {
  ApiKey k;
  k.id = "k";
  k.roles = kRoleInfer;
  k.rate_per_s = 10;
  k.burst = 5;
  KeyStore store({k});
  const auto t0 = KeyStore::Clock::now();
  const int64_t day = 20000 * 86400;
  int allowed = 0;
  for (int i = 0; i < 8; ++i) allowed += store.admit(k, t0, day).allowed;
  EXPECT_EQ(allowed, 5);  // the burst, no more at the same instant
  const Admission refused = store.admit(k, t0, day);
  EXPECT_FALSE(refused.allowed);
  EXPECT_STREQ(refused.reason, "rate");
  EXPECT_EQ(refused.retry_after_s, 1);
  // 0.35 s later: 3.5 tokens refilled -> 3 more requests.
  allowed = 0;
  for (int i = 0; i < 5; ++i) allowed += store.admit(k, t0 + std::chrono::milliseconds(350), day).allowed;
  EXPECT_EQ(allowed, 3);
}

TEST(Keys, DailyQuotaResetsAtUtcMidnight) {
  ApiKey k;
  k.id = "q";
  k.roles = kRoleInfer;
  k.daily_quota = 3;
  KeyStore store({k});
  const auto t = KeyStore::Clock::now();
  const int64_t noon = 20000 * 86400 + 43200;
  for (int i = 0; i < 3; ++i) {
    const Admission a = store.admit(k, t, noon);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.remaining, 2 - i);
  }
  const Admission a = store.admit(k, t, noon);
  EXPECT_FALSE(a.allowed);
  EXPECT_STREQ(a.reason, "quota");
  EXPECT_EQ(a.retry_after_s, 43200);
  EXPECT_TRUE(store.admit(k, t, noon + 43200).allowed);  // the next UTC day
}

}  // namespace
}  // namespace focus
