// `focus serve` and `focus keys` as an operator runs them: keys created once and never stored,
// the config precedence (defaults < file < flags), clear refusals of bad options and files, a
// SIGTERM that drains (every admitted request answered, exit 0), and TLS.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "infer/infer_fixtures.hpp"
#include "support/process.hpp"
#include "support/run_command.hpp"

namespace focus {
namespace {

using testing::Process;
using testing::run_command;

std::filesystem::path fresh_dir(const std::string& name) {
  const auto d = std::filesystem::path(::testing::TempDir()) / ("serve_cli_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::string bin() { return FOCUS_BINARY; }

TEST(ServeCli, KeysCreatePrintsTheSecretOnceAndStoresItsDigest) {
  const auto d = fresh_dir("keys");
  const std::string file = (d / "keys.json").string();
  // The secret alone is on stdout (the note about it goes to stderr).
  const auto r = run_command("(" + bin() + " keys create --file " + file +
                             " --id ops --roles infer,metrics --rate 5 --daily-quota 100 2>/dev/null)");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string secret = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(secret.rfind("fk_", 0), 0u) << r.out;
  std::ifstream f(file);
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["keys"][0]["id"], "ops");
  EXPECT_EQ(j["keys"][0]["daily_quota"], 100);
  EXPECT_EQ(j.dump().find(secret), std::string::npos);
  const auto again = run_command(bin() + " keys create --file " + file + " --id ops");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.out.find("already has a key 'ops'"), std::string::npos) << again.out;
  const auto role = run_command(bin() + " keys create --file " + file + " --id x --roles root");
  EXPECT_EQ(role.code, 1);
  EXPECT_NE(role.out.find("unknown role 'root'"), std::string::npos) << role.out;
}

TEST(ServeCli, ConfigPrecedenceAndRefusals) {
  const auto d = fresh_dir("config");
  const std::string cfg = (d / "serve.json").string();
  std::ofstream(cfg) << R"({"max-batch": 7, "port": 1234, "model": ["a=x.safetensors"], "keys": "k.json"})";
  auto r = run_command(bin() + " serve --config " + cfg + " --port 99 --dump-config");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["max-batch"], 7);
  EXPECT_EQ(j["port"], 99);
  EXPECT_EQ(j["timeout-ms"], 2000);
  EXPECT_EQ(j["model"], nlohmann::json({"a=x.safetensors"}));
  std::ofstream(cfg) << R"({"max_batch": 7})";
  r = run_command(bin() + " serve --config " + cfg + " --dump-config");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("unknown field 'max_batch'"), std::string::npos) << r.out;
  r = run_command(bin() + " serve --no-such-flag");
  EXPECT_EQ(r.code, 2) << r.out;
  r = run_command(bin() + " serve --model m=" + (d / "missing.safetensors").string() + " --keys " + (d / "k.json").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("k.json"), std::string::npos) << r.out;  // the key file is read first
  std::ofstream(d / "k.json") << R"({"keys": []})";
  r = run_command(bin() + " serve --model m=" + (d / "missing.safetensors").string() + " --keys " + (d / "k.json").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("missing.safetensors"), std::string::npos) << r.out;
  r = run_command(bin() + " serve --model nofile --keys " + (d / "k.json").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("must be NAME=FILE"), std::string::npos) << r.out;
  r = run_command(bin() + " serve --model m=x --keys " + (d / "k.json").string() + " --max-batch 0");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--max-batch 0"), std::string::npos) << r.out;
}

struct Served {
  std::filesystem::path dir;
  std::string secret;
  std::unique_ptr<Process> proc;
  int port = 0;
  Served(const std::string& name, std::vector<std::string> extra = {}) {
    dir = fresh_dir(name);
    testing::save_tiny_image_model((dir / "cnn.safetensors").string());
    const auto r = run_command("(" + bin() + " keys create --file " + (dir / "keys.json").string() +
                               " --id t --roles infer,metrics 2>/dev/null)");
    secret = r.out.substr(0, r.out.find('\n'));
    std::vector<std::string> argv = {bin(), "serve", "--model", "cnn=" + (dir / "cnn.safetensors").string(),
                                     "--keys", (dir / "keys.json").string(), "--port", "0", "--threads", "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<Process>(argv, (dir / "serve.log").string());
    port = proc->wait_for_port();
  }
};

std::string v2_body(int64_t n) {
  std::vector<float> v(size_t(n * 784), 0.25f);
  return nlohmann::json({{"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {n, 1, 28, 28}}, {"data", v}}}}}).dump();
}

TEST(ServeCli, SigtermDrainsEveryAdmittedRequestAndExitsZero) {
  Served s("sigterm", {"--max-batch", "1", "--drain-timeout-ms", "30000"});
  ASSERT_GT(s.port, 0) << s.proc->output();
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> ts;
  const std::string body = v2_body(64);
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&] {
      httplib::Client c("127.0.0.1", s.port);
      c.set_read_timeout(60);
      for (int i = 0; i < 4; ++i) {
        const auto r = c.Post("/v2/models/cnn/infer", {{"X-API-Key", s.secret}}, body, "application/json");
        if (r && r->status == 200) ++ok;
        else if (!r || r->status == 503) ++refused;  // not admitted: draining or closed
        else ++other;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  s.proc->signal(SIGTERM);
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.proc->wait(), 0) << s.proc->output();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(ok.load() + refused.load(), 24);
  EXPECT_NE(s.proc->output().find("drained: every admitted request was answered"), std::string::npos) << s.proc->output();
}

TEST(ServeCli, ServesHttpsWithACertificate) {
  if (run_command("command -v openssl").code != 0) GTEST_SKIP() << "no openssl command";
  const auto d = fresh_dir("tls_cert");
  const auto gen = run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " +
                               (d / "key.pem").string() + " -out " + (d / "cert.pem").string());
  ASSERT_EQ(gen.code, 0) << gen.out;
  Served s("tls", {"--tls-cert", (d / "cert.pem").string(), "--tls-key", (d / "key.pem").string()});
  ASSERT_GT(s.port, 0) << s.proc->output();
  httplib::SSLClient c("127.0.0.1", s.port);
  c.enable_server_certificate_verification(false);  // self-signed
  const auto r = c.Post("/v2/models/cnn/infer", {{"Authorization", "Bearer " + s.secret}}, v2_body(1), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  httplib::Client plain("127.0.0.1", s.port);
  EXPECT_FALSE(plain.Get("/v2/health/live"));  // plain HTTP is not answered
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(), 0);
  const auto bad = run_command(bin() + " serve --model cnn=" + (s.dir / "cnn.safetensors").string() + " --keys " +
                               (s.dir / "keys.json").string() + " --tls-cert /nonexistent.pem --tls-key /nonexistent.pem");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("cannot start HTTPS"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace focus
