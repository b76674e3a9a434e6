// A running focus server for the HTTP tests: tiny image and seq2seq model files and a key file in
// a fresh directory, a Server on a free loopback port in a thread, stopped by the destructor;
// keys for each role, a rate-limited and a quota-limited key; and small client helpers.
#pragma once
#include <httplib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "focus/data/png.hpp"
#include "focus/serve/keys.hpp"
#include "focus/serve/server.hpp"
#include "infer/infer_fixtures.hpp"

namespace focus::testing {

struct ServeFixture {
  std::filesystem::path dir;
  std::string image_path, seq_path, keys_path;
  std::map<std::string, std::string> key;  // id -> secret: infer, explain, admin, metrics, review, reviewer2, all, rate, quota
  std::unique_ptr<Server> server;
  std::thread thread;
  int port = 0;

  // `tune` adjusts the options before the server starts.
  explicit ServeFixture(const std::string& name, const std::function<void(ServeOptions&)>& tune = {}) {
    dir = std::filesystem::path(::testing::TempDir()) / ("serve_" + name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    image_path = (dir / "cnn.safetensors").string();
    seq_path = (dir / "s2s.safetensors").string();
    keys_path = (dir / "keys.json").string();
    save_tiny_image_model(image_path);
    save_tiny_seq2seq(seq_path);
    const auto add = [&](const std::string& id, const std::string& roles, double rate = 0, int64_t quota = 0) {
      ApiKey k;
      k.id = id;
      k.roles = parse_roles(roles);
      k.rate_per_s = rate;
      k.burst = rate > 0 ? 2 : 0;
      k.daily_quota = quota;
      key[id] = create_key(keys_path, k);
    };
    add("infer", "infer");
    add("explain", "explain");
    add("admin", "admin");
    add("metrics", "metrics");
    add("review", "review");
    add("reviewer2", "review");
    add("all", "infer,explain,admin,metrics");
    add("rate", "infer", 0.5);
    add("quota", "infer", 0, 3);
    ServeOptions o;
    o.models = {"cnn=" + image_path, "s2s=" + seq_path};
    o.keys = keys_path;
    o.port = 0;
    o.http_threads = 48;
    if (tune) tune(o);
    server = std::make_unique<Server>(o);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~ServeFixture() { stop(); }
  void stop() {
    if (!server) return;
    server->shutdown();
    thread.join();
    server.reset();
  }

  std::unique_ptr<httplib::Client> client(bool keep_alive = false) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
    c->set_read_timeout(60);
    c->set_keep_alive(keep_alive);
    return c;
  }
  httplib::Headers auth(const std::string& id) const { return {{"Authorization", "Bearer " + key.at(id)}}; }
};

// A V2 infer body for n random 28x28 gray images (seeded), and the pixels as a tensor.
inline std::pair<std::string, Tensor> v2_body(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(size_t(n * 784));
  for (float& x : v) x = float(rng.uniform());
  nlohmann::json j = {{"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {n, 1, 28, 28}}, {"data", v}}}}};
  return {j.dump(), Tensor::from_vector(v, {n, 1, 28, 28})};
}

inline std::string tiny_png(uint64_t seed, int64_t side = 28) {
  Rng rng(seed);
  Image img = make_image(1, side, side);
  for (float& x : img.data) x = float(rng.uniform());
  return encode_png(img);
}

}  // namespace focus::testing
