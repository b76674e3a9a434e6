// HttpServer (http.hpp) on libmicrohttpd: an epoll event thread (MHD_USE_EPOLL_INTERNAL_THREAD)
// with suspend/resume, a listening socket this file binds itself (so any free port, the backlog
// and the error message are ours), and a fixed pool of handler threads.
// A request's life: first call (headers in) -> screen; body chunks appended (or dropped when
// screened out or over the limit); last call -> the screened answer is queued, or the connection
// is suspended and the request posted to the pool; the handler fills the answer and resumes the
// connection (or defers: then HttpReply::send resumes it, from whichever thread holds the reply);
// libmicrohttpd calls again and the answer is queued. MHD_OPTION_NOTIFY_COMPLETED
// frees the request.
#include "focus/serve/http.hpp"

#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

template <class V>
const std::string* find_ci(const V& pairs, const char* name) {
  for (const auto& [k, v] : pairs)
    if (strcasecmp(k.c_str(), name) == 0) return &v;
  return nullptr;
}

template <class V>
const std::string* find_exact(const V& pairs, const char* name) {
  for (const auto& [k, v] : pairs)
    if (k == name) return &v;
  return nullptr;
}

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f, IOError, "cannot start HTTPS: cannot read the TLS {} {}", what, path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// A listening TCP socket on host:port (port 0: any free one), non-blocking, backlog 4096.
int listen_socket(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  FOCUS_CHECK(rc == 0, IOError, "cannot listen on {}:{} ({})", host, port, gai_strerror(rc));
  std::string why = "no address";
  int fd = -1;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 4096) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  FOCUS_CHECK(fd >= 0, IOError, "cannot listen on {}:{} ({}: in use, or not an address of this machine)", host,
              port, why);
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

void lower_priority(int nice) {
  if (nice <= 0) return;
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  if (errno == 0) setpriority(PRIO_PROCESS, tid, std::min(19, now + nice));
}

// Each connection is a descriptor: lift the soft limit (often 1,024) toward what the server needs.
void raise_fd_limit(rlim_t want) {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= want) return;
  r.rlim_cur = std::min(want, r.rlim_max);
  setrlimit(RLIMIT_NOFILE, &r);
}

void log_mhd(void*, const char* fmt, va_list ap) {
  std::fputs("focus serve: http: ", stderr);
  std::vfprintf(stderr, fmt, ap);
}

}  // namespace

bool HttpRequest::has_header(const char* name) const { return find_ci(headers, name) != nullptr; }
std::string HttpRequest::get_header_value(const char* name) const {
  const std::string* v = find_ci(headers, name);
  return v ? *v : std::string();
}
bool HttpRequest::has_param(const char* name) const { return find_exact(params, name) != nullptr; }
std::string HttpRequest::get_param_value(const char* name) const {
  const std::string* v = find_exact(params, name);
  return v ? *v : std::string();
}

namespace {

// Behind an HttpReply: resumes its exchange once; dropped unsent, it answers 500 first.
struct PendingReply {
  std::function<void()> resume, fail;
  std::atomic<bool> sent{false};
  void send() {
    if (!sent.exchange(true)) resume();
  }
  ~PendingReply() {
    if (sent.load()) return;
    fail();
    send();
  }
};

}  // namespace

void HttpReply::send() const {
  if (state_) static_cast<PendingReply*>(state_.get())->send();
}

HttpReply HttpRequest::defer() const {
  if (!defer_) throw std::logic_error("HttpRequest::defer() outside a handler, or twice");
  return std::exchange(defer_, nullptr)();
}

struct HttpServer::Impl {
  enum class Phase { Reading, Screened, Handling, Answered };
  struct Exchange {
    MHD_Connection* conn = nullptr;
    Phase phase = Phase::Reading;
    HttpRequest req;
    HttpResponse res;
    bool deferred = false;  // the handler deferred: its reply resumes the connection
  };
  using ExchangePtr = std::shared_ptr<Exchange>;

  // The handler's answer is in x.res: resume the connection (libmicrohttpd queues it).
  void answered(Exchange& x) {
    x.phase = Phase::Answered;
    MHD_resume_connection(x.conn);
    bool wake;  // only stop() waits for in_flight to fall: no wake-up of run() per request
    {
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      wake = stopping;
    }
    if (wake) state_cv.notify_all();
  }

  Options opt;
  Callbacks cb;
  int listen_fd = -1;
  int port = -1;
  std::string tls_cert, tls_key;  // PEM text (libmicrohttpd keeps pointers to them)
  MHD_Daemon* daemon = nullptr;

  std::mutex mu;
  std::condition_variable work_cv;    // work queued, or stopped: wakes a handler thread
  std::condition_variable state_cv;   // in_flight fell, or stopped: wakes stop() and run()
  std::deque<ExchangePtr> work;
  std::vector<std::thread> pool;
  int64_t in_flight = 0;              // requests posted and not yet resumed
  bool stopping = false, stopped = false;
  std::once_flag stop_once;

  void worker() {
    lower_priority(opt.handler_nice);
    for (;;) {
      ExchangePtr x;
      {
        std::unique_lock<std::mutex> lock(mu);
        work_cv.wait(lock, [&] { return !work.empty() || stopped; });
        if (work.empty()) return;
        x = std::move(work.front());
        work.pop_front();
      }
      x->req.defer_ = [this, x] {
        x->deferred = true;
        auto p = std::make_shared<PendingReply>();
        p->resume = [this, x] { answered(*x); };
        p->fail = [x] {
          x->res = HttpResponse{};
          x->res.status = 500;
          x->res.set_content(std::string("{\"error\":\"internal error: the answer was never sent\"}"), "application/json");
        };
        return HttpReply(std::move(p));
      };
      try {
        cb.handle(x->req, x->res);
      } catch (const std::exception& e) {
        if (!x->deferred) {  // a deferred answer belongs to its reply's holder
          x->res = HttpResponse{};
          x->res.status = 500;
          x->res.set_content(std::string("{\"error\":\"internal error\"}"), "application/json");
        }
      }
      x->req.defer_ = nullptr;
      if (!x->deferred) answered(*x);
    }
  }

  static MHD_Result queue(MHD_Connection* conn, HttpResponse& res) {
    MHD_Response* r = MHD_create_response_from_buffer(res.body.size(), res.body.data(), MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res.content_type.c_str());
    for (const auto& [k, v] : res.headers) MHD_add_response_header(r, k.c_str(), v.c_str());
    const MHD_Result ok = MHD_queue_response(conn, unsigned(res.status), r);
    MHD_destroy_response(r);
    return ok;
  }

  static MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
    static_cast<std::vector<std::pair<std::string, std::string>>*>(cls)->emplace_back(key ? key : "",
                                                                                     value ? value : "");
    return MHD_YES;
  }

  MHD_Result on_request(MHD_Connection* conn, const char* url, const char* method, const char* data,
                        size_t* size, void** con_cls) {
    auto* slot = static_cast<ExchangePtr*>(*con_cls);
    if (!slot) {  // the headers are in; the body (if any) is not read yet
      auto x = std::make_shared<Exchange>();
      x->conn = conn;
      HttpRequest& q = x->req;
      q.method = method ? method : "";
      q.path = url ? url : "";
      MHD_get_connection_values(conn, MHD_HEADER_KIND, &Impl::collect, &q.headers);
      MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, &Impl::collect, &q.params);
      if (const MHD_ConnectionInfo* ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD))
        q.fd = ci->connect_fd;
      if (const std::string* cl = find_ci(q.headers, "Content-Length")) {
        char* end = nullptr;
        const long long n = std::strtoll(cl->c_str(), &end, 10);
        if (!cl->empty() && *end == 0 && n >= 0) q.content_length = n;
      }
      q.too_large = q.content_length > opt.max_body_bytes;
      *con_cls = new ExchangePtr(x);
      bool answered = false;
      try {
        answered = cb.screen(q, x->res);
      } catch (const std::exception&) {
        x->res = HttpResponse{};
        x->res.status = 500;
        x->res.set_content(std::string("{\"error\":\"internal error\"}"), "application/json");
        answered = true;
      }
      if (!answered) return MHD_YES;
      x->phase = Phase::Screened;
      // A body too large to read is not read: answer now and close the connection after.
      if (q.too_large) {
        x->res.set_header("Connection", "close");
        return queue(conn, x->res);
      }
      return MHD_YES;
    }
    Exchange& x = **slot;
    if (*size > 0) {  // a piece of the body
      if (x.phase == Phase::Reading && !x.req.too_large) {
        if (int64_t(x.req.body.size() + *size) > opt.max_body_bytes) {
          x.req.too_large = true;
          std::string().swap(x.req.body);
        } else {
          if (x.req.body.empty() && x.req.content_length > 0) x.req.body.reserve(size_t(x.req.content_length));
          x.req.body.append(data, *size);
        }
      }
      *size = 0;
      return MHD_YES;
    }
    switch (x.phase) {
      case Phase::Screened:
      case Phase::Answered:
        return queue(conn, x.res);
      case Phase::Reading: {
        x.phase = Phase::Handling;
        MHD_suspend_connection(conn);
        {
          std::lock_guard<std::mutex> lock(mu);
          ++in_flight;
          work.push_back(*slot);
        }
        work_cv.notify_one();
        return MHD_YES;
      }
      case Phase::Handling:
        return MHD_YES;
    }
    return MHD_YES;
  }

  static MHD_Result on_request_cb(void* cls, MHD_Connection* conn, const char* url, const char* method,
                                  const char*, const char* data, size_t* size, void** con_cls) {
    return static_cast<Impl*>(cls)->on_request(conn, url, method, data, size, con_cls);
  }

  static void on_completed(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
    delete static_cast<ExchangePtr*>(*con_cls);
    *con_cls = nullptr;
  }
};

HttpServer::HttpServer(const Options& options, Callbacks callbacks) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.opt = options;
  s.cb = std::move(callbacks);
  FOCUS_CHECK(s.cb.screen && s.cb.handle, ValueError, "HttpServer needs a screen and a handle callback");
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
  if (!s.opt.tls_cert.empty()) {
    FOCUS_CHECK(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES, IOError,
                "this libmicrohttpd was built without TLS: cannot serve HTTPS");
    s.tls_cert = read_text_file(s.opt.tls_cert, "certificate");
    s.tls_key = read_text_file(s.opt.tls_key, "key");
    flags |= MHD_USE_TLS;
  }
  raise_fd_limit(rlim_t(s.opt.max_connections) + rlim_t(s.opt.handler_threads) + 256);
  s.listen_fd = listen_socket(s.opt.host, s.opt.port);
  s.port = bound_port(s.listen_fd);
  std::vector<MHD_OptionItem> o = {
      {MHD_OPTION_EXTERNAL_LOGGER, intptr_t(&log_mhd), nullptr},
      {MHD_OPTION_LISTEN_SOCKET, intptr_t(s.listen_fd), nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, intptr_t(std::max(16, s.opt.max_connections)), nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, intptr_t(std::max(1, s.opt.idle_timeout_s)), nullptr},
      // Per connection: the request's headers and the read buffer bodies stream through (they
      // are copied out as they come). 16 KiB, not libmicrohttpd's 32: at 1,024 connections the
      // pools are most of what the server's memory grows by under overload (docs/SERVING.md).
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, intptr_t(16 * 1024), nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, intptr_t(&Impl::on_completed), nullptr},
  };
  if (flags & MHD_USE_TLS) {
    o.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, s.tls_cert.data()});
    o.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, s.tls_key.data()});
  }
  o.push_back({MHD_OPTION_END, 0, nullptr});
  for (int i = 0; i < std::max(1, s.opt.handler_threads); ++i) s.pool.emplace_back([&s] { s.worker(); });
  s.daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::on_request_cb, &s, MHD_OPTION_ARRAY,
                              o.data(), MHD_OPTION_END);
  if (!s.daemon) {
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.stopped = true;
    }
    s.work_cv.notify_all();
    for (std::thread& t : s.pool) t.join();
    ::close(s.listen_fd);
    FOCUS_CHECK(s.tls_cert.empty(), IOError,
                "cannot start HTTPS on {}:{} with {} and {} (invalid PEM, or a key that does not match)",
                s.opt.host, s.port, s.opt.tls_cert, s.opt.tls_key);
    FOCUS_CHECK(false, IOError, "cannot start the HTTP server on {}:{}", s.opt.host, s.port);
  }
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::port() const { return impl_->port; }

void HttpServer::run() {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.state_cv.wait(lock, [&] { return s.stopped; });
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  std::call_once(s.stop_once, [&] {
    // No new connections from here on; the socket is ours to close, after MHD_stop_daemon.
    const MHD_socket fd = MHD_quiesce_daemon(s.daemon);
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.stopping = true;
      s.state_cv.wait_for(lock, grace, [&] { return s.in_flight == 0; });
      // A handler still running holds a suspended connection, which libmicrohttpd must not be
      // stopped with: handlers end at their requests' deadlines, so wait for them.
      s.state_cv.wait(lock, [&] { return s.in_flight == 0; });
    }
    // The last answers were resumed: give the event thread a moment to write them.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    MHD_stop_daemon(s.daemon);
    s.daemon = nullptr;
    if (fd != MHD_INVALID_SOCKET) ::close(fd);
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.stopped = true;
    }
    s.work_cv.notify_all();
    s.state_cv.notify_all();
    for (std::thread& t : s.pool) t.join();
  });
}

}  // namespace focus
