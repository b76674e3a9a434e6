// Scale-out as docs/SERVING.md shows it: two `focus serve` replicas behind nginx on loopback
// (free ports; nginx started and stopped by the test, its files in a temporary directory).
// Requests through nginx are answered by both replicas; when one replica drains (SIGTERM), nginx
// moves on to the other (its 503 and refused connections are retried) and no request fails.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "infer/infer_fixtures.hpp"
#include "support/process.hpp"
#include "support/run_command.hpp"

namespace focus {
namespace {

using testing::Process;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int64_t lines(const std::filesystem::path& p) {
  std::ifstream f(p);
  int64_t n = 0;
  for (std::string l; std::getline(f, l);) ++n;
  return n;
}

TEST(ServeNginx, TwoReplicasBehindNginxServeAndFailOver) {
  const char* nginx = "/usr/sbin/nginx";
  if (!std::filesystem::exists(nginx)) GTEST_SKIP() << "nginx not installed (Debian nginx; tools/install-deps.sh)";
  const auto d = std::filesystem::path(::testing::TempDir()) / "serve_nginx";
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d / "tmp");
  testing::save_tiny_image_model((d / "cnn.safetensors").string());
  const auto k = testing::run_command("(" + std::string(FOCUS_BINARY) + " keys create --file " + (d / "keys.json").string() +
                                      " --id lb --roles infer 2>/dev/null)");
  ASSERT_EQ(k.code, 0) << k.out;
  const std::string secret = k.out.substr(0, k.out.find('\n'));
  std::vector<std::unique_ptr<Process>> replicas;
  std::vector<int> ports;
  for (int i = 0; i < 2; ++i) {
    replicas.push_back(std::make_unique<Process>(
        std::vector<std::string>{FOCUS_BINARY, "serve", "--model", "cnn=" + (d / "cnn.safetensors").string(), "--keys",
                                 (d / "keys.json").string(), "--port", "0", "--threads", "1", "--access-log",
                                 (d / ("access" + std::to_string(i) + ".jsonl")).string(), "--drain-timeout-ms", "5000"},
        (d / ("replica" + std::to_string(i) + ".log")).string()));
    ports.push_back(replicas.back()->wait_for_port());
    ASSERT_GT(ports.back(), 0) << replicas.back()->output();
  }
  const int port = free_port();
  // The configuration docs/SERVING.md shows, with this test's ports and paths.
  std::ofstream(d / "nginx.conf") << fmt::format(R"(
daemon off;
master_process off;
worker_processes 1;
pid {0}/nginx.pid;
error_log {0}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {0}/nginx_access.log;
  client_body_temp_path {0}/tmp; proxy_temp_path {0}/tmp; fastcgi_temp_path {0}/tmp;
  uwsgi_temp_path {0}/tmp; scgi_temp_path {0}/tmp;
  upstream focus {{
    server 127.0.0.1:{1} max_fails=1 fail_timeout=5s;
    server 127.0.0.1:{2} max_fails=1 fail_timeout=5s;
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{3};
    client_max_body_size 8m;
    location / {{
      proxy_pass http://focus;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_503;
      proxy_next_upstream_tries 2;
    }}
  }}
}}
)", d.string(), ports[0], ports[1], port);
  Process lb({nginx, "-p", d.string(), "-c", (d / "nginx.conf").string()}, (d / "nginx.out").string());
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30);
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    const auto r = c.Get("/v2/health/ready");
    up = r && r->status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(up) << lb.output();
  std::vector<float> v(784, 0.5f);
  const std::string body = nlohmann::json({{"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {1, 1, 28, 28}}, {"data", v}}}}}).dump();
  const httplib::Headers auth = {{"Authorization", "Bearer " + secret}};
  int failed = 0;
  for (int i = 0; i < 40; ++i) {
    const auto r = c.Post("/v2/models/cnn/infer", auth, body, "application/json");
    failed += !(r && r->status == 200);
  }
  EXPECT_EQ(failed, 0);
  EXPECT_GT(lines(d / "access0.jsonl"), 5);  // both replicas took a share
  EXPECT_GT(lines(d / "access1.jsonl"), 5);
  // Replica 0 drains and exits; nginx sends everything to replica 1.
  replicas[0]->signal(SIGTERM);
  EXPECT_EQ(replicas[0]->wait(), 0) << replicas[0]->output();
  const int64_t before = lines(d / "access1.jsonl");
  failed = 0;
  for (int i = 0; i < 20; ++i) {
    const auto r = c.Post("/v2/models/cnn/infer", auth, body, "application/json");
    failed += !(r && r->status == 200);
  }
  EXPECT_EQ(failed, 0) << lb.output();
  EXPECT_EQ(lines(d / "access1.jsonl") - before, 20);
  lb.signal(SIGQUIT);
  EXPECT_EQ(lb.wait(), 0) << lb.output();
  replicas[1]->signal(SIGTERM);
  EXPECT_EQ(replicas[1]->wait(), 0);
}

}  // namespace
}  // namespace focus
