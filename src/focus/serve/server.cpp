// The HTTP server (see server.hpp): lifecycle, authentication, limits, reload and the routes.
// Every handler answers JSON (or Prometheus text) and never lets an exception out: a caller's
// mistake is a 4xx naming it, anything else a 500 with the message; the process survives.
#include "focus/serve/server.hpp"

#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "focus/data/png.hpp"
#include "focus/explain/image_explain.hpp"
#include "focus/explain/render.hpp"
#include "focus/explain/seq2seq_explain.hpp"
#include "focus/io/base64.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/serve/access_log.hpp"
#include "focus/serve/decode.hpp"
#include "focus/serve/keys.hpp"
#include "focus/serve/metrics.hpp"
#include "focus/serve/scheduler.hpp"

namespace focus {
namespace {

using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

double ms_since(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

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

bool client_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

std::string header(const Req& req, const char* name) {
  return req.has_header(name) ? req.get_header_value(name) : std::string();
}

}  // namespace

struct Server::Impl {
  ServeOptions opt;
  Metrics metrics;
  KeyStore keys;
  AccessLog log;
  DecodeLimits limits;
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<httplib::Server> http;
  int bound_port = -1;

  mutable std::mutex models_mu;
  std::map<std::string, std::shared_ptr<const ServedModel>> models;
  std::map<std::string, std::string> paths;  // the file each model was loaded from
  std::mutex reload_mu;
  ServedModelOptions model_opt;

  std::atomic<bool> ready{false}, draining{false};
  std::once_flag shutdown_once;
  bool drained_ok = false;
  std::mutex poll_mu;
  std::condition_variable poll_cv;
  bool stop_poll = false;
  std::thread poller;
  // A file's identity and change marks: a file replaced by rename (as focus writes model files)
  // has a new inode even when its size and coarse mtime are unchanged.
  struct FileStamp {
    int64_t inode = 0, mtime_ns = 0, ctime_ns = 0, size = 0;
    bool operator!=(const FileStamp& o) const {
      return inode != o.inode || mtime_ns != o.mtime_ns || ctime_ns != o.ctime_ns || size != o.size;
    }
  };
  std::map<std::string, FileStamp> stamps;  // model -> file stamp last loaded or refused
  FileStamp keys_stamp;

  explicit Impl(const ServeOptions& o) : opt(o), log(o.access_log, o.log_inputs) {}

  std::shared_ptr<const ServedModel> model(const std::string& name) const {
    std::lock_guard<std::mutex> lock(models_mu);
    const auto it = models.find(name);
    return it == models.end() ? nullptr : it->second;
  }

  static FileStamp stamp(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    return {int64_t(st.st_ino), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
            int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec, int64_t(st.st_size)};
  }

  // ---- answering -------------------------------------------------------------------------

  struct Ctx {
    const Req& req;
    Res& res;
    SteadyClock::time_point t0 = SteadyClock::now();
    AccessRecord rec;
    Ctx(const Req& q, Res& s) : req(q), res(s) {
      rec.method = q.method;
      rec.path = q.path;
      rec.bytes_in = int64_t(q.body.size());
    }
  };

  void finish(Ctx& c, int status, const std::string& body, const char* type) {
    c.res.status = status;
    c.res.set_content(body, type);
    if (draining) c.res.set_header("Connection", "close");
    c.rec.status = status;
    c.rec.bytes_out = int64_t(body.size());
    c.rec.total_ms = ms_since(c.t0);
    metrics.request(c.rec.model, status, c.rec.key);
    if (!c.rec.model.empty()) metrics.observe_request(c.rec.model, c.rec.total_ms / 1000);
    log.write(c.rec);
  }
  void reply(Ctx& c, int status, const json& body) {
    finish(c, status, body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }
  // A refusal: JSON {"error": message}, counted by reason.
  void refuse(Ctx& c, int status, const std::string& reason, const std::string& message) {
    metrics.rejection(reason);
    c.rec.error = message;
    reply(c, status, json{{"error", message}});
  }

  // Authenticates and checks the role and the key's limits. False when it has answered.
  bool authorize(Ctx& c, unsigned role) {
    const std::string auth = header(c.req, "Authorization"), xkey = header(c.req, "X-API-Key");
    const std::string_view secret = bearer_secret(auth, xkey);
    if (secret.empty()) {
      c.res.set_header("WWW-Authenticate", "Bearer");
      refuse(c, 401, "auth", "missing API key: send Authorization: Bearer KEY or X-API-Key: KEY");
      return false;
    }
    const std::optional<ApiKey> key = keys.authenticate(secret);
    if (!key) {
      c.res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      refuse(c, 401, "auth", "invalid API key");
      return false;
    }
    c.rec.key = key->id;
    if (role && !(key->roles & role)) {
      refuse(c, 403, "auth", fmt::format("key '{}' lacks the role '{}' (it has: {})", key->id,
                                         roles_to_string(role), roles_to_string(key->roles)));
      return false;
    }
    const Admission a = keys.admit(*key);
    if (a.limited) {
      c.res.set_header("RateLimit-Limit", std::to_string(a.limit));
      c.res.set_header("RateLimit-Remaining", std::to_string(a.remaining));
      c.res.set_header("RateLimit-Reset", std::to_string(a.reset_s));
    }
    if (!a.allowed) {
      c.res.set_header("Retry-After", std::to_string(a.retry_after_s));
      refuse(c, 429, a.reason,
             std::string(a.reason) == "quota"
                 ? fmt::format("key '{}' has used its daily quota of {} requests", key->id, a.limit)
                 : fmt::format("key '{}' is over its rate limit", key->id));
      return false;
    }
    return true;
  }

  // The model named in the path, or nullptr after answering 404.
  std::shared_ptr<const ServedModel> find_model(Ctx& c, const std::string& name) {
    c.rec.model = name;
    auto m = model(name);
    if (!m) {
      c.rec.model.clear();  // unknown names stay out of the metrics' label values
      refuse(c, 404, "not_found", fmt::format("no model '{}' (GET /v1/models lists them)", name));
    }
    return m;
  }

  // The request's deadline: ?timeout_ms= (at most max_timeout_ms) or the default.
  bool deadline_of(Ctx& c, SteadyClock::time_point& deadline) {
    int64_t ms = opt.timeout_ms;
    if (c.req.has_param("timeout_ms")) {
      const std::string v = c.req.get_param_value("timeout_ms");
      char* end = nullptr;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || x < 1 || x > opt.max_timeout_ms) {
        refuse(c, 400, "bad_request", fmt::format("timeout_ms={} must be an integer in [1, {}]", v,
                                                   opt.max_timeout_ms));
        return false;
      }
      ms = x;
    }
    deadline = c.t0 + std::chrono::milliseconds(ms);
    return true;
  }

  // Queues the job and waits for it. False when it has answered (429, 503, 504, a failed job),
  // or the client left.
  bool run_job(Ctx& c, const std::shared_ptr<Job>& job) {
    job->admitted = SteadyClock::now();
    switch (sched->submit(job)) {
      case Admit::Ok: break;
      case Admit::QueueFull:
        c.res.set_header("Retry-After", std::to_string(opt.retry_after_s));
        refuse(c, 429, "queue_full", fmt::format("model '{}' has {} requests queued, its limit: retry later",
                                                 job->model->name, opt.queue_capacity));
        return false;
      case Admit::Draining:
        refuse(c, 503, "draining", "the server is shutting down");
        return false;
    }
    metrics.add_in_flight(job->model->name, 1);
    struct InFlight {
      Metrics& m;
      const std::string& name;
      ~InFlight() { m.add_in_flight(name, -1); }
    } in_flight{metrics, job->model->name};
    int fd = -2;
    while (!job->wait_until(std::min(job->deadline, SteadyClock::now() + std::chrono::milliseconds(20)))) {
      const auto now = SteadyClock::now();
      if (now >= job->deadline) {
        if (job->cancel()) {
          refuse(c, 504, "deadline", fmt::format("the request could not start within {:.0f} ms",
                                                 std::chrono::duration<double, std::milli>(job->deadline - c.t0).count()));
          return false;
        }
        job->wait_until(SteadyClock::time_point::max());  // it started: it finishes
        break;
      }
      if (now - job->admitted > std::chrono::milliseconds(50)) {
        if (fd == -2) fd = client_socket(c.req);
        if (fd >= 0 && client_gone(fd) && job->cancel()) {
          metrics.rejection("cancelled");
          c.rec.error = "the client closed the connection while queued";
          finish(c, 499, "", "text/plain");
          return false;
        }
      }
    }
    c.rec.queue_ms = std::chrono::duration<double, std::milli>(job->started - job->admitted).count();
    c.rec.compute_ms = std::chrono::duration<double, std::milli>(job->finished - job->started).count();
    c.rec.batch = job->batch_items;
    if (job->status != 0) {
      if (job->status == 504) {
        refuse(c, 504, "deadline", job->error);
      } else {
        refuse(c, job->status, job->status < 500 ? "bad_request" : "error", job->error);
      }
      return false;
    }
    return true;
  }

  std::shared_ptr<Job> make_job(const std::shared_ptr<const ServedModel>& m, SteadyClock::time_point deadline) {
    auto job = std::make_shared<Job>();
    job->model = m;
    job->deadline = deadline;
    return job;
  }

  // Wraps a handler: any exception becomes an answer, the server goes on.
  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const Req& req, Res& res) {
      Ctx c(req, res);
      try {
        f(c);
      } catch (const RequestError& e) {
        refuse(c, e.status(), e.status() == 413 ? "too_large" : "bad_request", e.what());
      } catch (const InputError& e) {
        refuse(c, 400, "bad_request", e.what());
      } catch (const ValueError& e) {
        refuse(c, 400, "bad_request", e.what());
      } catch (const std::exception& e) {
        refuse(c, 500, "error", fmt::format("internal error: {}", e.what()));
      }
    };
  }

  // ---- routes ------------------------------------------------------------------------------

  void routes();
  void infer_v2(Ctx& c, const std::string& name);
  void classify(Ctx& c, const std::string& name);
  void translate(Ctx& c, const std::string& name);
  void explain(Ctx& c, const std::string& name);
  void repository_load(Ctx& c, const std::string& name);
  ReloadResult reload(const std::string& name, const std::string& path);
  void poll_files();
};

void Server::Impl::routes() {
  httplib::Server& s = *http;
  s.Get("/v2/health/live", guarded([this](Ctx& c) { reply(c, 200, {{"live", true}}); }));
  s.Get("/v2/health/ready", guarded([this](Ctx& c) {
    const bool ok = ready && !draining;
    reply(c, ok ? 200 : 503, {{"ready", ok}});
  }));
  s.Get("/v2", guarded([this](Ctx& c) {
    reply(c, 200, {{"name", "focus"}, {"version", FOCUS_VERSION}, {"extensions", json::array()}});
  }));
  s.Get(R"(/v2/models/([^/]+)(?:/versions/[^/]+)?)", guarded([this](Ctx& c) {
    if (!authorize(c, 0)) return;
    if (auto m = find_model(c, c.req.matches[1])) reply(c, 200, m->metadata());
  }));
  s.Get(R"(/v2/models/([^/]+)(?:/versions/[^/]+)?/ready)", guarded([this](Ctx& c) {
    if (!authorize(c, 0)) return;
    if (auto m = find_model(c, c.req.matches[1])) reply(c, ready && !draining ? 200 : 503, {{"name", m->name}, {"ready", ready && !draining}});
  }));
  s.Post(R"(/v2/models/([^/]+)(?:/versions/[^/]+)?/infer)",
         guarded([this](Ctx& c) { infer_v2(c, c.req.matches[1]); }));
  s.Post(R"(/v1/models/([^/]+)/classify)", guarded([this](Ctx& c) { classify(c, c.req.matches[1]); }));
  s.Post(R"(/v1/models/([^/]+)/translate)", guarded([this](Ctx& c) { translate(c, c.req.matches[1]); }));
  s.Post(R"(/v1/models/([^/]+)/explain)", guarded([this](Ctx& c) { explain(c, c.req.matches[1]); }));
  s.Get("/v1/models", guarded([this](Ctx& c) {
    if (!authorize(c, 0)) return;
    json list = json::array();
    std::lock_guard<std::mutex> lock(models_mu);
    for (const auto& [name, m] : models) list.push_back(m->summary());
    reply(c, 200, {{"models", list}});
  }));
  s.Post(R"(/v2/repository/models/([^/]+)/load)",
         guarded([this](Ctx& c) { repository_load(c, c.req.matches[1]); }));
  s.Post("/v2/repository/index", guarded([this](Ctx& c) {
    if (!authorize(c, kRoleAdmin)) return;
    json list = json::array();
    std::lock_guard<std::mutex> lock(models_mu);
    for (const auto& [name, m] : models)
      list.push_back({{"name", name}, {"version", m->version}, {"state", "READY"}});
    reply(c, 200, list);
  }));
  s.Get("/metrics", guarded([this](Ctx& c) {
    if (!authorize(c, kRoleMetrics)) return;
    finish(c, 200, metrics.render(), "text/plain; version=0.0.4");
  }));
  // Requests no route takes, and bodies over the limit (cpp-httplib answers 413 itself):
  // a JSON body naming the problem.
  s.set_error_handler([this](const Req& req, Res& res) {
    if (!res.body.empty()) return;
    Ctx c(req, res);
    if (res.status == 413) {
      refuse(c, 413, "too_large", fmt::format("request body over the limit of {} bytes", opt.max_body_bytes));
    } else if (res.status == 404) {
      refuse(c, 404, "not_found", fmt::format("no endpoint {} {} (see docs/SERVING.md)", req.method, req.path));
    } else {
      refuse(c, res.status, "bad_request", fmt::format("HTTP {}", res.status));
    }
  });
  s.set_exception_handler([this](const Req& req, Res& res, std::exception_ptr ep) {
    Ctx c(req, res);
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    refuse(c, 500, "error", fmt::format("internal error: {}", what));
  });
  // While draining, new work is refused before its body is parsed.
  s.set_pre_routing_handler([this](const Req& req, Res& res) {
    if (!draining || req.path.rfind("/v2/health", 0) == 0 || req.method == "GET")
      return httplib::Server::HandlerResponse::Unhandled;
    Ctx c(req, res);
    refuse(c, 503, "draining", "the server is shutting down");
    return httplib::Server::HandlerResponse::Handled;
  });
}

void Server::Impl::infer_v2(Ctx& c, const std::string& name) {
  if (!authorize(c, kRoleInfer)) return;
  auto m = find_model(c, name);
  if (!m) return;
  SteadyClock::time_point deadline;
  if (!deadline_of(c, deadline)) return;
  if (m->kind != ModelKind::Image)
    throw RequestError(400, fmt::format("model '{}' is a seq2seq model: use POST /v1/models/{}/translate", name, name));
  V2InferRequest r = decode_v2_infer(c.req.body, limits);
  if (r.inputs.size() != 1)
    throw RequestError(400, fmt::format("the model takes one input tensor (\"pixels\"), got {}", r.inputs.size()));
  const V2Tensor& t = r.inputs[0];
  const ImagePredictor& p = *m->image;
  const std::vector<int64_t> want = {p.channels(), p.image_size(), p.image_size()};
  if (t.shape.size() != 4 || !std::equal(want.begin(), want.end(), t.shape.begin() + 1) || t.shape[0] < 1)
    throw RequestError(400, fmt::format("inputs[0].shape {} must be [N, {}, {}, {}] with N >= 1",
                                        json(t.shape).dump(), want[0], want[1], want[2]));
  auto job = make_job(m, deadline);
  job->batch_key = "image";
  job->items = t.shape[0];
  job->pixels = Tensor::from_vector(t.data, t.shape);  // (N, C, S, S)
  if (!run_job(c, job)) return;
  const int64_t K = job->probs.size(1);
  json out = {{"model_name", name},
              {"model_version", m->version},
              {"outputs", {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {job->items, K}},
                            {"data", job->probs.to_vector<float>()}}}}};
  if (!r.id.empty()) out["id"] = r.id;
  reply(c, 200, out);
}

void Server::Impl::classify(Ctx& c, const std::string& name) {
  if (!authorize(c, kRoleInfer)) return;
  auto m = find_model(c, name);
  if (!m) return;
  SteadyClock::time_point deadline;
  if (!deadline_of(c, deadline)) return;
  if (m->kind != ModelKind::Image)
    throw RequestError(400, fmt::format("model '{}' is a seq2seq model: use POST /v1/models/{}/translate", name, name));
  const std::string top_param = c.req.has_param("top") ? c.req.get_param_value("top") : "";
  ClassifyRequest r = decode_classify(c.req.body, header(c.req, "Content-Type"), top_param, limits);
  auto job = make_job(m, deadline);
  job->batch_key = "image";
  job->items = int64_t(r.images.size());
  job->pixels = m->image->pixels(r.images);  // (N, C, S, S)
  if (!run_job(c, job)) return;
  const std::vector<std::string>& names = m->image->info().class_names;
  const int64_t K = job->probs.size(1), top = std::min<int64_t>(r.top, K);
  const std::vector<float> probs = job->probs.to_vector<float>();  // (N, K)
  json preds = json::array();
  for (int64_t n = 0; n < job->items; ++n) {
    std::vector<int64_t> order(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) order[size_t(k)] = k;
    const float* row = probs.data() + n * K;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    json t = json::array();
    for (int64_t i = 0; i < top; ++i) {
      const int64_t k = order[size_t(i)];
      t.push_back({{"index", k}, {"name", size_t(k) < names.size() ? names[size_t(k)] : std::to_string(k)},
                   {"prob", row[k]}});
    }
    preds.push_back({{"top", t}});
  }
  reply(c, 200, {{"model", name}, {"model_version", m->version}, {"predictions", preds}});
}

void Server::Impl::translate(Ctx& c, const std::string& name) {
  if (!authorize(c, kRoleInfer)) return;
  auto m = find_model(c, name);
  if (!m) return;
  SteadyClock::time_point deadline;
  if (!deadline_of(c, deadline)) return;
  if (m->kind != ModelKind::Seq2Seq)
    throw RequestError(400, fmt::format("model '{}' is an image classifier: use POST /v1/models/{}/classify", name, name));
  TranslateRequest r = decode_translate(c.req.body, limits);
  if (log.log_inputs()) c.rec.inputs = r.inputs;
  auto job = make_job(m, deadline);
  job->items = int64_t(r.inputs.size());
  for (size_t i = 0; i < r.inputs.size(); ++i) job->sources.push_back(m->translator->encode(r.inputs[i], i));
  job->texts = std::move(r.inputs);
  job->search = r.search;
  job->batch_key = fmt::format("beam={} nbest={} lp={} max_len={}", r.search.beam, r.search.nbest,
                               r.search.length_penalty, r.search.max_len);
  if (!run_job(c, job)) return;
  json outs = json::array();
  for (const Translation& t : job->translations) {
    json nbest = json::array();
    for (const TranslationHypothesis& h : t.nbest)
      nbest.push_back({{"text", h.text}, {"score", h.score}, {"log_prob", h.log_prob}, {"finished", h.finished}});
    outs.push_back({{"input", t.input}, {"output", t.nbest.empty() ? "" : t.nbest[0].text}, {"nbest", nbest}});
  }
  reply(c, 200, {{"model", name}, {"model_version", m->version}, {"translations", outs}});
}

void Server::Impl::explain(Ctx& c, const std::string& name) {
  if (!authorize(c, kRoleExplain)) return;
  auto m = find_model(c, name);
  if (!m) return;
  SteadyClock::time_point deadline;
  if (!deadline_of(c, deadline)) return;
  const bool image = m->kind == ModelKind::Image;
  ExplainRequest r = decode_explain(c.req.body, header(c.req, "Content-Type"), image, limits);
  auto job = make_job(m, deadline);
  json result;
  if (image) {
    ImageExplainOptions eo;
    if (!r.method.empty()) eo.method = parse_image_method(r.method);
    eo.layer = r.layer, eo.head = r.head, eo.target = r.target;
    const Tensor pixels = m->image->pixels({r.image});  // (1, C, S, S)
    job->run_alone = [&result, &r, eo, pixels](Job& j) {
      const ImagePredictor& p = *j.model->image;
      const Tensor x = p.normalized(pixels);
      const auto methods = image_methods_for(p.model(), x);
      ImageExplainOptions o = eo;
      if (std::find(methods.begin(), methods.end(), o.method) == methods.end()) o.method = methods.front();
      const ImageExplanation e = explain_image(p.model(), x, o);
      json j2 = {{"method", image_method_name(e.method)}, {"target", e.target}, {"predicted", e.predicted},
                 {"probabilities", e.probs}, {"relevance", json::array()}};
      const int64_t gh = e.relevance.size(0), gw = e.relevance.size(1);
      const std::vector<float> rel = e.relevance.contiguous().to_vector<float>();
      for (int64_t y = 0; y < gh; ++y) j2["relevance"].push_back(std::vector<float>(rel.begin() + y * gw, rel.begin() + (y + 1) * gw));
      const std::vector<std::string>& names = p.info().class_names;
      if (size_t(e.target) < names.size()) j2["target_name"] = names[size_t(e.target)];
      Image shown = make_image(p.channels(), p.image_size(), p.image_size());
      const std::vector<float> px = pixels.to_vector<float>();
      shown.data.assign(px.begin(), px.end());
      j2["png"] = "data:image/png;base64," + base64_encode(encode_png(heatmap_overlay(shown, e.relevance)));
      if (r.maps) j2["maps"] = attention_maps_json(e.maps);
      result = std::move(j2);
    };
  } else {
    if (log.log_inputs()) c.rec.inputs = {r.text};
    m->translator->encode(r.text, 0);  // InputError now, before queueing
    job->run_alone = [&result, &r](Job& j) {
      SearchOptions so;
      const AlignmentExplanation e = explain_translation(*j.model->translator, r.text, so);
      json j2 = alignment_to_json(e);
      if (!r.maps) {
        j2.erase("cross");
        j2.erase("decoder_self");
        j2.erase("encoder_self");
      }
      const Tensor map = pick_map(e.cross, r.layer, r.head);  // (T, S)
      j2["alignment"] = json::array();
      const std::vector<float> v = map.contiguous().to_vector<float>();
      for (int64_t t = 0; t < map.size(0); ++t)
        j2["alignment"].push_back(std::vector<float>(v.begin() + t * map.size(1), v.begin() + (t + 1) * map.size(1)));
      result = std::move(j2);
    };
  }
  job->batch_key = "explain";
  if (!run_job(c, job)) return;
  result["model"] = name;
  result["model_version"] = m->version;
  reply(c, 200, result);
}

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
  if (s.opt.threads > 0) set_num_threads(s.opt.threads);
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
