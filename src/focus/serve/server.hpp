// `focus serve`: the HTTP inference server. HTTP/1.1 with keep-alive (cpp-httplib, optionally
// TLS through OpenSSL), JSON bodies (nlohmann-json). The endpoints, roles and limits are listed
// in docs/SERVING.md; the parts live beside this file: decode (request bodies), keys (API keys,
// rate and quota), scheduler (the dynamic batcher and its executor threads), metrics
// (Prometheus), access_log (JSON lines, masking), served_model (models and their versions).
// The server holds no state a request needs from an earlier one (keys, quotas and metrics are
// per replica), so replicas scale out behind a load balancer (docs/SERVING.md: nginx).
//
//   Server s(options);          // loads keys and models; throws on a bad file or option
//   s.bind();                   // listens (port 0: any free port, see port())
//   std::thread t([&] { s.run(); });
//   ...  s.shutdown();          // graceful: ready -> 503, admitted work finishes, then stop
//   t.join();
#pragma once
#include <memory>
#include <string>

#include "focus/serve/options.hpp"

namespace focus {

class Server {
 public:
  explicit Server(const ServeOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int bind();     // IOError when the address cannot be bound; returns the port
  int port() const;
  void run();     // serves until shutdown(); call after bind()
  // Stops admitting (ready and new requests -> 503), waits up to drain_timeout_ms for admitted
  // work, then stops the listener. Returns true when every admitted request finished in time.
  // Thread-safe; later calls return the first call's result.
  bool shutdown();

  struct ReloadResult {
    bool ok = false;
    std::string message;  // the new version, or why the file was refused
  };
  // Loads `path` (default: the model's current file) and, if it loads and checks, swaps it in;
  // otherwise the current version keeps serving. Thread-safe (one reload at a time).
  ReloadResult reload(const std::string& model, const std::string& path = "");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace focus
