// The access log: one JSON object per line with the promised fields, masking of personal data
// in logged inputs and error messages, and no input text at all without --log-inputs.
#include "focus/serve/access_log.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace focus {
namespace {

TEST(Mask, EmailsPhonesAndDigitRuns) {
  EXPECT_EQ(mask_pii("mail jane.doe+x@example.co.uk now"), "mail <email> now");
  EXPECT_EQ(mask_pii("call +44 20 7946 0958 today"), "call <phone> today");
  EXPECT_EQ(mask_pii("call (555) 123-4567"), "call <phone>");
  EXPECT_EQ(mask_pii("card 4111111111111111"), "card <digits>");
  EXPECT_EQ(mask_pii("iban 12345678"), "iban <digits>");
  EXPECT_EQ(mask_pii("room 12, 1999 words, version 3.2"), "room 12, 1999 words, version 3.2");
  EXPECT_EQ(mask_pii("colonel"), "colonel");
}

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(AccessLog, WritesJsonLinesAndMasksInputsOnlyWhenAsked) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "access_log_test";
  std::filesystem::create_directories(dir);
  const std::string plain = (dir / "plain.jsonl").string(), with = (dir / "with.jsonl").string();
  std::filesystem::remove(plain);
  std::filesystem::remove(with);
  AccessRecord r;
  r.key = "alice";
  r.method = "POST";
  r.path = "/v1/models/g2p/translate";
  r.model = "g2p";
  r.status = 200;
  r.queue_ms = 1.23456;
  r.batch = 4;
  r.inputs = {"write to bob@example.com", "\xff\xfe invalid utf-8"};
  {
    AccessLog log(plain);
    log.write(r);
    log.write(r);
  }
  {
    AccessLog log(with, true);
    log.write(r);
  }
  const auto a = read_lines(plain), b = read_lines(with);
  ASSERT_EQ(a.size(), 2u);
  for (const char* f : {"time", "key", "method", "path", "model", "status", "queue_ms", "compute_ms",
                        "total_ms", "batch", "bytes_in", "bytes_out"})
    EXPECT_TRUE(a[0].contains(f)) << f;
  EXPECT_EQ(a[0]["key"], "alice");
  EXPECT_DOUBLE_EQ(a[0]["queue_ms"].get<double>(), 1.235);
  EXPECT_FALSE(a[0].contains("inputs"));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0]["inputs"][0], "write to <email>");
  EXPECT_EQ(b[0]["inputs"].size(), 2u);
}

}  // namespace
}  // namespace focus
