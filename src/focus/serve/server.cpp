// The HTTP server (see server.hpp): lifecycle, authentication and limits (server_impl.hpp),
// reload and the file poll; the endpoints are in routes.cpp.
#include "focus/serve/server.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "focus/kernels/cpu.hpp"
#include "focus/serve/server_impl.hpp"

namespace focus {
namespace serve_detail {

// The server-side socket of `req`'s connection, found by its two ports (cpp-httplib 0.11 does
// not expose it), or -1. Used only for requests that wait long, to notice a client that left.
int client_socket(const Req& req) {
  if (req.ssl) return SSL_get_fd(req.ssl);
  const auto port_of = [](const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return int(ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port));
    if (a.ss_family == AF_INET6) return int(ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port));
    return -1;
  };
  const auto matches = [&](int fd) {
    sockaddr_storage peer{}, local{};
    socklen_t pl = sizeof(peer), ll = sizeof(local);
    return getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) == 0 &&
           getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) == 0 &&
           port_of(peer) == req.remote_port && port_of(local) == req.local_port;
  };
  thread_local int cached = -1;  // a connection stays on its thread
  if (cached >= 0 && matches(cached)) return cached;
  for (int fd = 3; fd < 8192; ++fd)
    if (matches(fd)) return cached = fd;
  return -1;
}

bool client_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

}  // namespace serve_detail

namespace {

// cpp-httplib 0.11 listens with a backlog of 5: a burst of new connections while the accept
// thread waits for a core overflows it, and the kernel drops their handshakes (clients see a
// reset after a 1 s retransmission). listen() again on the bound socket raises the backlog.
void raise_listen_backlog(int port, int backlog) {
  for (int fd = 3; fd < 8192; ++fd) {
    int accepting = 0;
    socklen_t len = sizeof(accepting);
    sockaddr_storage local{};
    socklen_t ll = sizeof(local);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) continue;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    const int p = local.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port)
                                              : ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
    if (p == port) ::listen(fd, backlog);
  }
}

}  // namespace

Server::ReloadResult Server::Impl::reload(const std::string& name, const std::string& path_in) {
  std::lock_guard<std::mutex> serial(reload_mu);
  std::string path;
  {
    std::lock_guard<std::mutex> lock(models_mu);
    const auto it = paths.find(name);
    if (it == paths.end()) return {false, fmt::format("no model '{}'", name)};
    path = path_in.empty() ? it->second : path_in;
  }
  const FileStamp st = stamp(path);
  std::shared_ptr<const ServedModel> fresh;
  try {
    fresh = load_served_model(name, path, model_opt);
  } catch (const std::exception& e) {
    metrics.model_reload(name, false);
    std::lock_guard<std::mutex> lock(models_mu);
    if (path == paths[name]) stamps[name] = st;  // the poll does not retry the same bytes
    return {false, fmt::format("refused {}: {} (version {} keeps serving)", path, e.what(), models[name]->version)};
  }
  const std::shared_ptr<const ServedModel> old = model(name);
  if (old->kind != fresh->kind) {
    metrics.model_reload(name, false);
    std::lock_guard<std::mutex> lock(models_mu);
    if (path == paths[name]) stamps[name] = st;
    return {false, fmt::format("refused {}: a {} model cannot replace a {} one", path,
                               fresh->kind == ModelKind::Image ? "image" : "seq2seq",
                               old->kind == ModelKind::Image ? "image" : "seq2seq")};
  }
  {
    std::lock_guard<std::mutex> lock(models_mu);
    models[name] = fresh;
    paths[name] = path;
    stamps[name] = st;
  }
  metrics.model_reload(name, true);
  metrics.model_loaded(name, fresh->version, fresh->load_seconds);
  std::fprintf(stderr, "focus serve: %s: version %s from %s (was %s)\n", name.c_str(),
               fresh->version.c_str(), path.c_str(), old->version.c_str());
  return {true, fresh->version};
}

void Server::Impl::repository_load(Ctx& c, const std::string& name) {
  if (!authorize(c, kRoleAdmin)) return;
  if (!find_model(c, name)) return;
  std::string path;
  if (!c.req.body.empty()) {
    json j;
    try {
      j = json::parse(c.req.body);
    } catch (const json::exception& e) {
      throw RequestError(400, fmt::format("malformed JSON: {}", e.what()));
    }
    const json* p = j.is_object() && j.contains("parameters") ? &j["parameters"] : nullptr;
    if (p && p->contains("path")) {
      if (!(*p)["path"].is_string()) throw RequestError(400, "parameters.path must be a string");
      path = (*p)["path"].get<std::string>();
    }
  }
  const ReloadResult r = reload(name, path);
  if (r.ok)
    reply(c, 200, {{"name", name}, {"version", r.message}});
  else
    refuse(c, 409, "reload_refused", r.message);
}

void Server::Impl::poll_files() {
  std::unique_lock<std::mutex> lock(poll_mu);
  while (!poll_cv.wait_for(lock, std::chrono::milliseconds(opt.poll_ms), [&] { return stop_poll; })) {
    lock.unlock();
    std::map<std::string, std::string> watch;
    std::map<std::string, FileStamp> seen;
    {
      std::lock_guard<std::mutex> l(models_mu);
      watch = paths;
      seen = stamps;
    }
    for (const auto& [name, path] : watch) {
      const FileStamp now = stamp(path);
      if (now.size > 0 && now != seen[name]) {
        const ReloadResult r = reload(name, path);
        if (!r.ok) std::fprintf(stderr, "focus serve: %s: %s\n", name.c_str(), r.message.c_str());
      }
    }
    const FileStamp ks = stamp(opt.keys);
    if (ks.size > 0 && ks != keys_stamp) {
      try {
        keys.replace(load_key_file(opt.keys));
        std::fprintf(stderr, "focus serve: reloaded %zu keys from %s\n", keys.size(), opt.keys.c_str());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "focus serve: key file not reloaded, the old keys stay: %s\n", e.what());
      }
      keys_stamp = ks;
    }
    lock.lock();
  }
}

Server::Server(const ServeOptions& options) : impl_(std::make_unique<Impl>(options)) {
  Impl& s = *impl_;
  validate(s.opt);
  // Compute threads: --threads, else FOCUS_NUM_THREADS, else one core fewer than the machine
  // has (at least 1): the other core reads, parses and writes requests. On 2 cores two compute
  // threads made batch-1 cnn-se 6x slower (11.8 vs 2.0 ms per batch), their OpenMP team waiting
  // on a core the HTTP threads held (docs/BENCHMARKS.md, "Serving").
  if (s.opt.threads > 0)
    set_num_threads(s.opt.threads);
  else if (!std::getenv("FOCUS_NUM_THREADS"))
    set_num_threads(std::max(1, hardware_threads() - 1));
  s.decode_slots = std::make_unique<std::counting_semaphore<4096>>(std::clamp(hardware_threads(), 1, 4096));
  s.limits.max_items = s.opt.max_items;
  s.limits.max_image_pixels = s.opt.max_image_pixels;
  s.limits.max_text_bytes = s.opt.max_text_bytes;
  s.limits.max_values = s.opt.max_items * 3 * 1024 * 1024;
  s.keys.replace(load_key_file(s.opt.keys));
  s.keys_stamp = Impl::stamp(s.opt.keys);
  if (s.keys.size() == 0)
    std::fprintf(stderr, "focus serve: warning: %s holds no keys; every request but health will get 401\n",
                 s.opt.keys.c_str());
  s.model_opt.weights = s.opt.weights == "bf16" ? DType::BF16 : DType::F32;
  s.model_opt.max_batch = s.opt.max_batch;
  for (const std::string& arg : s.opt.models) {
    const auto [name, path] = split_model_arg(arg);
    auto m = load_served_model(name, path, s.model_opt);
    std::fprintf(stderr, "focus serve: %s: %s version %s (%.0f ms)\n", name.c_str(), path.c_str(),
                 m->version.c_str(), 1000 * m->load_seconds);
    s.metrics.model_loaded(name, m->version, m->load_seconds);
    s.metrics.set_queue_capacity(name, s.opt.queue_capacity);
    s.metrics.set_queue_depth(name, 0);
    s.models[name] = m;
    s.pending[name] = std::make_unique<std::atomic<int64_t>>(0);
    s.paths[name] = path;
    s.stamps[name] = Impl::stamp(path);
  }
  SchedulerOptions so;
  so.max_batch = s.opt.max_batch;
  so.max_queue_delay_ms = s.opt.max_queue_delay_ms;
  so.queue_capacity = s.opt.queue_capacity;
  s.sched = std::make_unique<Scheduler>(so, &s.metrics);
  if (!s.opt.tls_cert.empty())
    s.http = std::make_unique<httplib::SSLServer>(s.opt.tls_cert.c_str(), s.opt.tls_key.c_str());
  else
    s.http = std::make_unique<httplib::Server>();
  FOCUS_CHECK(s.http->is_valid(), IOError, "cannot start HTTPS with {} and {} (unreadable or invalid PEM)",
              s.opt.tls_cert, s.opt.tls_key);
  const int threads = s.opt.http_threads;
  s.http->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  s.http->set_payload_max_length(size_t(s.opt.max_body_bytes));
  // Answers are small writes after the headers: without TCP_NODELAY, Nagle's algorithm and the
  // client's delayed ACK hold each keep-alive answer back ~40 ms. Accepted sockets inherit it.
  s.http->set_tcp_nodelay(true);
  s.http->set_keep_alive_max_count(100000);
  s.http->set_keep_alive_timeout(5);
  s.http->set_read_timeout(10);
  s.http->set_write_timeout(10);
  s.routes();
  if (s.opt.poll_ms > 0) s.poller = std::thread([this] { impl_->poll_files(); });
}

Server::~Server() {
  shutdown();
  {
    std::lock_guard<std::mutex> lock(impl_->poll_mu);
    impl_->stop_poll = true;
  }
  impl_->poll_cv.notify_all();
  if (impl_->poller.joinable()) impl_->poller.join();
}

int Server::bind() {
  Impl& s = *impl_;
  if (s.opt.port == 0) {
    s.bound_port = s.http->bind_to_any_port(s.opt.host);
  } else {
    s.bound_port = s.http->bind_to_port(s.opt.host, s.opt.port) ? s.opt.port : -1;
  }
  FOCUS_CHECK(s.bound_port > 0, IOError, "cannot listen on {}:{} (in use, or not an address of this machine)",
              s.opt.host, s.opt.port);
  raise_listen_backlog(s.bound_port, 4096);
  s.ready = true;
  return s.bound_port;
}

int Server::port() const { return impl_->bound_port; }

void Server::run() { impl_->http->listen_after_bind(); }

bool Server::shutdown() {
  Impl& s = *impl_;
  std::call_once(s.shutdown_once, [&] {
    s.draining = true;
    s.ready = false;
    s.drained_ok = s.sched->drain(std::chrono::milliseconds(s.opt.drain_timeout_ms));
    // Waiting threads answer their finished jobs before the listener stops taking requests.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s.http->stop();
  });
  return s.drained_ok;
}

Server::ReloadResult Server::reload(const std::string& model, const std::string& path) {
  return impl_->reload(model, path);
}

}  // namespace focus
