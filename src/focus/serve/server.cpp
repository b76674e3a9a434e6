// The HTTP server (see server.hpp): lifecycle, authentication and limits (server_impl.hpp),
// reload and the file poll; the endpoints are in routes.cpp.
#include "focus/serve/server.hpp"

#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "focus/kernels/cpu.hpp"
#include "focus/serve/server_impl.hpp"

namespace focus {
namespace serve_detail {

bool client_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

}  // namespace serve_detail

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
                               model_kind_name(fresh->kind), model_kind_name(old->kind))};
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
  // Compute threads: --threads, else FOCUS_NUM_THREADS, else every core with several executors
  // (each runs its batches on one thread: no OpenMP team waits on a core the HTTP threads hold),
  // and one core fewer than the machine has (at least 1) with `--executors 1`, the reference
  // policy: there the other core reads, parses and writes requests, and on 2 cores two compute
  // threads made batch-1 cnn-se 6x slower (11.8 vs 2.0 ms per batch), their OpenMP team waiting
  // on a core the HTTP threads held (docs/BENCHMARKS.md, "Serving").
  if (s.opt.threads > 0)
    set_num_threads(s.opt.threads);
  else if (!std::getenv("FOCUS_NUM_THREADS"))
    set_num_threads(s.opt.executors == 1 ? std::max(1, hardware_threads() - 1) : hardware_threads());
  // Executors (serve/scheduler.hpp): one per compute thread unless told, each batch on threads /
  // executors of them, so that they never add up to more than the compute threads.
  const int budget = num_threads();
  const int executors = s.opt.executors > 0 ? s.opt.executors : budget;
  FOCUS_CHECK(executors <= budget, ValueError,
              "--executors {} is more than the {} compute threads (--threads): each executor needs one",
              executors, budget);
  const int executor_threads = executors > 1 ? budget / executors : 0;
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
  s.model_opt.weights = s.opt.weights == "bf16"   ? DType::BF16
                        : s.opt.weights == "int8" ? DType::I8
                                                  : DType::F32;
  s.model_opt.max_batch = s.opt.max_batch;
  s.model_opt.image_weights = s.opt.image_weights;
  s.model_opt.replicas = executors;
  s.model_opt.replica_threads = executor_threads;
  if (s.opt.slo_p99_ms > 0) s.model_opt.image_ladder = slo_ladder_of(s.opt);
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
  so.busy_queue_delay_ms = s.opt.busy_queue_delay_ms;
  so.queue_capacity = s.opt.queue_capacity;
  so.slo_p99_ms = s.opt.slo_p99_ms;
  so.slo_window_ms = s.opt.slo_window_ms;
  so.slo_ladder = s.opt.slo_ladder;  // empty: each model's rungs name themselves
  so.slo_accuracy = s.opt.slo_accuracy;
  so.executors = executors;
  so.executor_threads = executor_threads;
  s.sched = std::make_unique<Scheduler>(so, &s.metrics);
  if (!s.opt.review_store.empty()) {
    s.review = std::make_unique<ReviewDesk>(
        ReviewDeskOptions{.store = s.opt.review_store, .threshold = s.opt.review_threshold,
                          .capacity_per_hour = s.opt.review_capacity_per_hour,
                          .queue_cap = s.opt.review_queue_cap, .audit_share = s.opt.review_audit_share,
                          .lease_ms = s.opt.review_lease_ms,
                          .undo_window_ms = s.opt.review_undo_window_ms,
                          .ttl_ms = s.opt.review_ttl_ms,
                          .webhook = s.opt.review_webhook,
                          .webhook_secret = s.opt.review_webhook_secret},
        &s.metrics);
    std::fprintf(stderr, "focus serve: review queue %s (%s)\n", s.opt.review_store.c_str(),
                 s.opt.review_capacity_per_hour > 0
                     ? fmt::format("capacity {:g} items/h", s.opt.review_capacity_per_hour).c_str()
                     : fmt::format("threshold {:g}", s.opt.review_threshold).c_str());
  }
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
  HttpServer::Options o;
  o.host = s.opt.host;
  o.port = s.opt.port;
  o.tls_cert = s.opt.tls_cert;
  o.tls_key = s.opt.tls_key;
  o.max_body_bytes = s.opt.max_body_bytes;
  o.max_connections = s.opt.max_connections;
  o.handler_nice = s.opt.http_nice;
  // Handler threads: every admitted request may hold one while it waits for its batch (at most
  // queue_capacity per model), and a few more for the light endpoints.
  o.handler_threads = s.opt.http_threads > 0
                          ? s.opt.http_threads
                          : int(std::min<int64_t>(4096, s.opt.queue_capacity * int64_t(s.models.size()) +
                                                            2 * hardware_threads() + 2));
  s.http = std::make_unique<HttpServer>(o, HttpServer::Callbacks{
                                               [&s](HttpRequest& q, HttpResponse& r) { return s.screen(q, r); },
                                               [&s](HttpRequest& q, HttpResponse& r) { s.handle(q, r); }});
  s.bound_port = s.http->port();
  s.ready = true;
  return s.bound_port;
}

int Server::port() const { return impl_->bound_port; }

void Server::run() {
  FOCUS_CHECK(impl_->http, ValueError, "Server::run() before bind()");
  impl_->http->run();
}

bool Server::shutdown() {
  Impl& s = *impl_;
  std::call_once(s.shutdown_once, [&] {
    s.draining = true;
    s.ready = false;
    s.drained_ok = s.sched->drain(std::chrono::milliseconds(s.opt.drain_timeout_ms));
    // Requests whose jobs finished are answered before the connections close.
    if (s.http) s.http->stop(std::chrono::milliseconds(s.opt.drain_timeout_ms));
  });
  return s.drained_ok;
}

Server::ReloadResult Server::reload(const std::string& model, const std::string& path) {
  return impl_->reload(model, path);
}

}  // namespace focus
