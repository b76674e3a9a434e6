// The server's private parts, shared by server.cpp (lifecycle, keys and limits, reload) and
// routes.cpp (the endpoints): the state behind Server and the per-request context.
#pragma once
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <semaphore>
#include <mutex>
#include <thread>

#include "focus/serve/access_log.hpp"
#include "focus/serve/decode.hpp"
#include "focus/serve/http.hpp"
#include "focus/serve/keys.hpp"
#include "focus/serve/metrics.hpp"
#include "focus/serve/review_desk.hpp"
#include "focus/serve/scheduler.hpp"
#include "focus/serve/server.hpp"

namespace focus {
namespace serve_detail {

using nlohmann::json;
using Req = HttpRequest;
using Res = HttpResponse;

inline double ms_since(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}
inline std::string header(const Req& req, const char* name) {
  return req.has_header(name) ? req.get_header_value(name) : std::string();
}
// True when the peer has closed or reset the connection (server.cpp).
bool client_gone(int fd);

}  // namespace serve_detail

using namespace serve_detail;

struct Server::Impl {
  ServeOptions opt;
  Metrics metrics;
  KeyStore keys;
  AccessLog log;
  DecodeLimits limits;
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<ReviewDesk> review;  // the human review queue, when --review-store is set
  std::unique_ptr<HttpServer> http;
  int bound_port = -1;

  mutable std::mutex models_mu;
  std::map<std::string, std::shared_ptr<const ServedModel>> models;
  std::map<std::string, std::string> paths;  // the file each model was loaded from
  std::mutex reload_mu;
  ServedModelOptions model_opt;

  // Admission before decoding: per model, the requests being decoded, queued or computed
  // (at most queue_capacity; more get 429 without their body being parsed), and the decode slots
  // (one per core: parsing bodies must not crowd out the compute threads).
  std::map<std::string, std::unique_ptr<std::atomic<int64_t>>> pending;
  std::unique_ptr<std::counting_semaphore<4096>> decode_slots;

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
    SteadyClock::time_point t0;
    AccessRecord rec;
    Ctx(const Req& q, Res& s) : req(q), res(s), t0(q.received) {
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

  // An admitted request's place: counted in its model's `pending` from admission (in the screen,
  // before the body is read) until the request is done and answered, and holding a decode slot
  // until decoded() (or the end).
  struct Place {
    Impl* s = nullptr;
    std::atomic<int64_t>* count = nullptr;
    std::string model;
    bool slot = false;
    Place() = default;
    Place(const Place&) = delete;
    Place& operator=(const Place&) = delete;
    void decoded() {
      if (slot) s->decode_slots->release(), slot = false;
    }
    ~Place() {
      decoded();
      if (count) count->fetch_sub(1), s->metrics.add_in_flight(model, -1);
    }
  };
  // What the screen hands to a work endpoint's handler (HttpRequest::state).
  struct Admitted {
    std::shared_ptr<const ServedModel> model;
    std::string key;  // the key's id, for the access record
    SteadyClock::time_point deadline;
    Place place;
  };

  // Admits a request to `model` before its body is read: 429 at once when queue_capacity
  // requests of the model are already being decoded, queued or computed. False when it has
  // answered.
  bool admit(Ctx& c, const std::string& model, Place& place) {
    std::atomic<int64_t>& n = *pending.at(model);
    if (n.fetch_add(1) >= opt.queue_capacity) {
      n.fetch_sub(1);
      c.res.set_header("Retry-After", std::to_string(opt.retry_after_s));
      refuse(c, 429, "queue_full", fmt::format("model '{}' has {} requests in progress, its limit: retry later",
                                               model, opt.queue_capacity));
      return false;
    }
    place.s = this, place.count = &n, place.model = model;
    metrics.add_in_flight(model, 1);
    return true;
  }

  // The screen's part of a work endpoint (event thread, headers only): key and role, the model,
  // the deadline, admission. The admitted request, or nullptr after answering.
  std::shared_ptr<Admitted> screen_work(Ctx& c, const std::string& name, unsigned role) {
    if (!authorize(c, role)) return nullptr;
    auto a = std::make_shared<Admitted>();
    a->key = c.rec.key;
    a->model = find_model(c, name);
    if (!a->model || !deadline_of(c, a->deadline) || !admit(c, name, a->place)) return nullptr;
    return a;
  }

  // The handler's start of a work endpoint: the screen's admission, and a decode slot (one per
  // core: parsing bodies must not crowd out the compute threads) taken before the deadline (504).
  // The model, or nullptr after answering.
  std::shared_ptr<const ServedModel> begin_work(Ctx& c, SteadyClock::time_point& deadline, Place*& place) {
    auto* a = static_cast<Admitted*>(c.req.state.get());
    if (!a) throw std::logic_error("a work endpoint ran without admission");
    c.rec.model = a->model->name;
    c.rec.key = a->key;
    if (!decode_slots->try_acquire_until(a->deadline)) {
      refuse(c, 504, "deadline", "the request could not start before its deadline");
      return nullptr;
    }
    a->place.slot = true;
    deadline = a->deadline;
    place = &a->place;
    return a->model;
  }

  // Queues the job. False when it has answered (429, 503).
  bool submit_job(Ctx& c, const std::shared_ptr<Job>& job) {
    job->admitted = SteadyClock::now();
    switch (sched->submit(job)) {
      case Admit::Ok: return true;
      case Admit::QueueFull:
        c.res.set_header("Retry-After", std::to_string(opt.retry_after_s));
        refuse(c, 429, "queue_full", fmt::format("model '{}' has {} requests queued, its limit: retry later",
                                                 job->model->name, opt.queue_capacity));
        return false;
      case Admit::Shed:
        c.res.set_header("Retry-After", std::to_string(opt.retry_after_s));
        refuse(c, 429, "slo_shed", fmt::format("model '{}' is loaded past its latency SLO ({:g} ms): retry later",
                                               job->model->name, opt.slo_p99_ms));
        return false;
      case Admit::Draining:
        refuse(c, 503, "draining", "the server is shutting down");
        return false;
    }
    return false;
  }

  // An ended job's outcome: its times in the access record, and the answer to a job that did
  // not run (504, 499) or failed. False when it has answered.
  bool job_outcome(Ctx& c, const Job& job) {
    if (job.status == 499) {
      metrics.rejection("cancelled");
      c.rec.error = job.error;
      finish(c, 499, "", "text/plain");
      return false;
    }
    if (job.status == 504 && job.started == SteadyClock::time_point{}) {
      refuse(c, 504, "deadline", fmt::format("the request could not start within {:.0f} ms",
                                             std::chrono::duration<double, std::milli>(job.deadline - c.t0).count()));
      return false;
    }
    c.rec.queue_ms = std::chrono::duration<double, std::milli>(job.started - job.admitted).count();
    c.rec.compute_ms = std::chrono::duration<double, std::milli>(job.finished - job.started).count();
    c.rec.batch = job.batch_items;
    if (job.status != 0) {  // a 504 never started: answered above
      refuse(c, job.status, job.status < 500 ? "bad_request" : "error", job.error);
      return false;
    }
    return true;
  }

  // Queues the job and waits for it. False when it has answered (429, 503, 504, a failed job),
  // or the client left.
  bool run_job(Ctx& c, const std::shared_ptr<Job>& job) {
    if (!submit_job(c, job)) return false;
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
        if (c.req.fd >= 0 && client_gone(c.req.fd) && job->cancel()) {
          metrics.rejection("cancelled");
          c.rec.error = "the client closed the connection while queued";
          finish(c, 499, "", "text/plain");
          return false;
        }
      }
    }
    return job_outcome(c, *job);
  }

  // run_job without a waiting thread: the request is deferred (HttpRequest::defer) and the
  // handler returns at once; answer(ctx, job) writes the answer to a job that ran, on the thread
  // that ends it (its batch's executor; the scheduler's watch for a deadline or a departed
  // client). For answers that are quick to write (no files, no database): they hold up the batch.
  template <class F>
  void run_job_deferred(Ctx& c, const std::shared_ptr<Job>& job, F answer) {
    const HttpReply reply = c.req.defer();
    auto ctx = std::make_shared<Ctx>(c);  // the request and its response live until the reply is sent
    const int fd = c.req.fd;
    job->client_left = [fd] { return fd >= 0 && client_gone(fd); };
    job->on_done = [this, ctx, reply, answer = std::move(answer)](Job& j) {
      if (job_outcome(*ctx, j)) guarded(*ctx, [&](Ctx& cc) { answer(cc, j); });
      reply.send();
    };
    if (!submit_job(c, job)) {
      job->on_done = nullptr;
      reply.send();
    }
  }

  // A request's job: the SLO's latencies run from the request's arrival (c.t0).
  std::shared_ptr<Job> make_job(const Ctx& c, const std::shared_ptr<const ServedModel>& m, SteadyClock::time_point deadline) {
    auto job = std::make_shared<Job>();
    job->model = m;
    job->deadline = deadline;
    job->received = c.t0;
    return job;
  }

  // Runs f(c): any exception becomes an answer naming it, the server goes on.
  template <class F>
  void guarded(Ctx& c, F&& f) {
    try {
      f(c);
    } catch (const RequestError& e) {
      refuse(c, e.status(), e.status() == 413 ? "too_large" : "bad_request", e.what());
    } catch (const InputError& e) {
      refuse(c, 400, "bad_request", e.what());
    } catch (const ValueError& e) {
      refuse(c, 400, "bad_request", e.what());
    } catch (const ShapeError& e) {  // from the request's tensors, before anything is queued
      refuse(c, 400, "bad_request", e.what());
    } catch (const DTypeError& e) {
      refuse(c, 400, "bad_request", e.what());
    } catch (const std::exception& e) {
      refuse(c, 500, "error", fmt::format("internal error: {}", e.what()));
    }
  }

  // ---- routes ------------------------------------------------------------------------------

  // A route: method and path patterns; work routes (model computations) are admitted by the
  // screen before their bodies are read.
  struct Route {
    std::string method;
    std::vector<std::string> patterns;
    unsigned work_role = 0;  // non-zero: a work route needing this role, the model in group 1
    std::function<void(Ctx&)> fn;
  };
  std::vector<Route> route_table;
  void routes();
  bool screen(Req& req, Res& res);  // HttpServer's callbacks
  void handle(Req& req, Res& res);
  void infer_v2(Ctx& c, const std::string& name);
  void classify(Ctx& c, const std::string& name);
  void classify_text(Ctx& c, const std::shared_ptr<const ServedModel>& m, SteadyClock::time_point deadline,
                     Place* place, const std::string& top_param);
  void translate(Ctx& c, const std::string& name);
  void recommend(Ctx& c, const std::string& name);
  void explain(Ctx& c, const std::string& name);
  nlohmann::json evidence(const std::shared_ptr<const ServedModel>& m, const Image& image);
  void repository_load(Ctx& c, const std::string& name);
  void review_routes();  // the review queue's endpoints and the reviewer page (routes.cpp)
  ReloadResult reload(const std::string& name, const std::string& path);
  void poll_files();
};

}  // namespace focus
