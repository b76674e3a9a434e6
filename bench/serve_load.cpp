// serve_load: the open-loop HTTP/1.1 load generator of the serving benchmark
// (bench/compare_serve.py; wrk measures saturation throughput, this measures latency at a rate).
// Requests are scheduled at --rate R per second (Poisson or constant arrivals), whatever the server
// answers, and each one's latency runs from its SCHEDULED send time: when the server falls behind
// (or every one of the --connections C is busy), the wait shows up in the latency instead of being
// hidden by a client that politely waits (coordinated omission). --rate 0 is closed-loop instead:
// every connection sends again as soon as its answer arrives, latency from the actual send.
// Cheap on purpose, as it shares the CPUs with the server it measures: one thread, epoll,
// non-blocking keep-alive sockets, pre-formatted request bytes, responses parsed only for the
// status line, Content-Length / chunked and Connection: close. It reports its own CPU time.
// Bodies: --body-file holds one request body per line (used round-robin), e.g. compact JSON.
// Output (stdout, JSON): counts by status (200, 429, 503, 504, other, timeout, error, unsent:
// still waiting for a connection when the run ended), 200s completed per second in the window
// (whenever they were scheduled: the goodput), latency percentiles of the 200s, of the
// rejections (429/503) and of all requests (unsent ones with the time they had waited: a lower
// bound), the send lag (scheduled -> first byte written), the service time (first byte written ->
// answered) of the 200s and of the rejections, and the client's CPU seconds.
// Statistics cover the requests scheduled after --warmup seconds.
// Limits: Linux (epoll_pwait2), IPv4 host literals, HTTP/1.1 without TLS, one request in flight
// per connection (no pipelining); a connection the server closed while idle is reopened and the
// request retried once.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path = "/";
  std::string method = "POST";
  std::vector<std::string> headers;
  std::string content_type = "application/json";
  std::string body_file;
  double rate = 100;  // requests per second; 0 = closed loop
  int connections = 64;
  double duration = 10, warmup = 1;
  std::string arrivals = "poisson";
  double timeout = 10;  // seconds a request may be in flight
  uint64_t seed = 1;
};

// Samples recorded for requests scheduled inside the window.
struct Sample {
  float latency_ms;  // scheduled (open loop) or sent (closed loop) -> answered
  float lag_ms;      // scheduled -> first byte written
  float service_ms;  // first byte written -> answered (what the server alone took, queueing in
                     // the kernel's and the server's accept queues included)
  int status;        // HTTP status, or kTimeout / kError
};
constexpr int kTimeout = -1, kError = -2, kUnsent = -3;  // kUnsent: latency is a lower bound

struct Conn {
  int fd = -1;
  uint32_t gen = 0;
  bool connected = false, busy = false, used = false, retried = false;
  const std::string* req = nullptr;
  size_t sent = 0;
  double sched = 0, send_time = 0, first_write = 0;  // scheduled, dispatched, first byte out
  std::string buf;
};

class Load {
 public:
  explicit Load(const Options& o) : o_(o), rng_(o.seed) {
    conns_.resize(o.connections);
    for (int i = o.connections - 1; i >= 0; --i) closed_.push_back(i);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o.port));
    if (inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1)
      throw std::runtime_error("serve_load: --host must be an IPv4 address, got " + o.host);
    addr_ = a;
    ep_ = epoll_create1(0);
    load_requests();
  }

  nlohmann::json run() {
    rusage r0{};
    getrusage(RUSAGE_SELF, &r0);
    t0_ = now_s() + 0.01;
    const double win0 = t0_ + o_.warmup, win1 = win0 + o_.duration;
    double next = t0_ + gap();
    uint64_t scheduled = 0, unsent = 0;
    std::vector<epoll_event> events(256);
    double last_sweep = 0;
    bool generating = true;
    for (;;) {
      const double now = now_s();
      if (generating && now >= win1) {  // requests never sent waited at least until now
        generating = false;
        unsent = backlog_.size();
        for (double sched : backlog_)
          if (sched >= win0) samples_.push_back({static_cast<float>((now - sched) * 1e3), 0.f, 0.f, kUnsent});
        backlog_.clear();
      }
      if (generating) {
        if (o_.rate > 0) {
          for (; next <= now && next < win1; next += gap()) {
            backlog_.push_back(next);
            ++scheduled;
          }
        } else {  // closed loop: every free connection sends now
          while (free_slots() > (backlog_.empty() ? 0u : backlog_.size())) {
            backlog_.push_back(now);
            ++scheduled;
          }
        }
        dispatch(now);
      }
      if (!generating && busy_ == 0) break;
      if (!generating && now > win1 + o_.timeout + 1) break;
      if (now - last_sweep > 0.01) {
        sweep_timeouts(now);
        last_sweep = now;
      }
      // Sleep until the next arrival (or 10 ms), waking on socket events.
      double wait = 0.01;
      if (generating && o_.rate > 0) wait = std::clamp(next - now_s(), 0.0, 0.01);
      if (!backlog_.empty() && free_slots() > 0) wait = 0;
      timespec ts{static_cast<time_t>(wait), static_cast<long>((wait - std::floor(wait)) * 1e9)};
      const int n = epoll_pwait2(ep_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
      if (n < 0 && errno != EINTR) throw std::runtime_error("serve_load: epoll_pwait2 failed");
      for (int i = 0; i < n; ++i) on_event(events[i]);
    }
    const double wall = now_s() - t0_;
    rusage r1{};
    getrusage(RUSAGE_SELF, &r1);
    auto tv = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
    const double cpu = tv(r1.ru_utime) - tv(r0.ru_utime) + tv(r1.ru_stime) - tv(r0.ru_stime);
    return report(scheduled, unsent, wall, cpu);
  }

 private:
  double gap() {
    if (o_.rate <= 0) return 0;
    if (o_.arrivals == "constant") return 1.0 / o_.rate;
    return std::exponential_distribution<double>(o_.rate)(rng_);
  }

  void load_requests() {
    std::vector<std::string> bodies;
    if (!o_.body_file.empty()) {
      std::ifstream f(o_.body_file);
      if (!f) throw std::runtime_error("serve_load: cannot read --body-file " + o_.body_file);
      for (std::string line; std::getline(f, line);)
        if (!line.empty()) bodies.push_back(line);
      if (bodies.empty()) throw std::runtime_error("serve_load: --body-file has no bodies");
    } else {
      bodies.push_back("");
    }
    for (const auto& b : bodies) {
      std::string r = o_.method + " " + o_.path + " HTTP/1.1\r\nHost: " + o_.host + ":" +
                      std::to_string(o_.port) + "\r\n";
      for (const auto& h : o_.headers) r += h + "\r\n";
      if (!b.empty() || o_.method == "POST")
        r += "Content-Type: " + o_.content_type + "\r\nContent-Length: " + std::to_string(b.size()) +
             "\r\n";
      r += "\r\n" + b;
      requests_.push_back(std::move(r));
    }
  }

  size_t free_slots() const { return idle_.size() + closed_.size(); }

  void dispatch(double now) {
    while (!backlog_.empty() && free_slots() > 0) {
      const double sched = backlog_.front();
      backlog_.pop_front();
      int slot;
      if (!idle_.empty()) {  // most recently used first: keeps few connections warm
        slot = idle_.back();
        idle_.pop_back();
      } else {
        slot = closed_.back();
        closed_.pop_back();
      }
      Conn& c = conns_[slot];
      c.busy = true;
      c.retried = false;
      c.req = &requests_[next_req_++ % requests_.size()];
      c.sent = 0;
      c.sched = sched;
      c.send_time = now;
      c.buf.clear();
      ++busy_;
      start(slot);
    }
  }

  // Connects if needed, then writes what it can.
  void start(int slot) {
    Conn& c = conns_[slot];
    if (c.fd < 0) {
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ++c.gen;
      c.connected = false;
      c.used = false;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
      ev.data.u64 = (static_cast<uint64_t>(c.gen) << 32) | static_cast<uint32_t>(slot);
      epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
      ++connects_;
      if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) == 0) {
        c.connected = true;
      } else if (errno != EINPROGRESS) {
        finish(slot, kError, true);
        return;
      } else {
        return;  // EPOLLOUT says when
      }
    }
    write_some(slot);
  }

  void write_some(int slot) {
    Conn& c = conns_[slot];
    while (c.sent < c.req->size()) {
      const ssize_t n = send(c.fd, c.req->data() + c.sent, c.req->size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        if (c.sent == 0) c.first_write = now_s();
        c.sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        broken(slot);
        return;
      }
    }
  }

  void on_event(const epoll_event& ev) {
    const int slot = static_cast<int>(ev.data.u64 & 0xffffffffu);
    Conn& c = conns_[slot];
    if (c.fd < 0 || static_cast<uint32_t>(ev.data.u64 >> 32) != c.gen) return;  // stale
    if (!c.connected && (ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        if (c.busy) finish(slot, kError, true);
        else close_slot(slot);
        return;
      }
      c.connected = true;
    }
    if (c.busy && c.connected && c.sent < c.req->size() && (ev.events & EPOLLOUT)) write_some(slot);
    if (conns_[slot].fd >= 0 && (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
      read_some(slot);
  }

  void read_some(int slot) {
    Conn& c = conns_[slot];
    char tmp[16384];
    for (;;) {
      const ssize_t n = recv(c.fd, tmp, sizeof tmp, 0);
      if (n > 0) {
        if (!c.busy) continue;  // unsolicited bytes: ignore
        c.buf.append(tmp, static_cast<size_t>(n));
        if (parse(slot)) return;
      } else if (n == 0) {  // peer closed
        if (!c.busy) {
          close_slot(slot);
        } else if (!c.buf.empty() && parse(slot, /*eof=*/true)) {
        } else {
          broken(slot);
        }
        return;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      } else {
        if (c.busy) broken(slot);
        else close_slot(slot);
        return;
      }
    }
  }

  // A connection failed under a request: retry once on a fresh connection when nothing of an
  // answer arrived on a reused keep-alive connection (the server closed it while idle), else an
  // error.
  void broken(int slot) {
    Conn& c = conns_[slot];
    if (c.used && !c.retried && c.buf.empty()) {
      close_fd(slot);
      c.retried = true;
      c.sent = 0;
      ++retries_;
      start(slot);
      return;
    }
    finish(slot, kError, true);
  }

  // True when a whole response is in buf (then recorded and the slot freed).
  bool parse(int slot, bool eof = false) {
    Conn& c = conns_[slot];
    const size_t hend = c.buf.find("\r\n\r\n");
    if (hend == std::string::npos) return false;
    int status = 0;
    if (c.buf.size() < 12 || std::sscanf(c.buf.c_str() + 9, "%3d", &status) != 1) {
      finish(slot, kError, true);
      return true;
    }
    std::string head = c.buf.substr(0, hend + 2);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
    const bool close = head.find("\r\nconnection: close\r\n") != std::string::npos ||
                       c.buf.compare(0, 8, "HTTP/1.0") == 0;
    const size_t body0 = hend + 4;
    const size_t cl = head.find("\r\ncontent-length:");
    if (cl != std::string::npos) {
      const size_t len = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
      if (c.buf.size() < body0 + len) return false;
    } else if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
      size_t p = body0;
      for (;;) {  // walk the chunks: size line, data, CRLF; the last has size 0
        const size_t eol = c.buf.find("\r\n", p);
        if (eol == std::string::npos) return false;
        const size_t len = std::strtoull(c.buf.c_str() + p, nullptr, 16);
        if (len == 0) {
          if (c.buf.find("\r\n\r\n", eol) == std::string::npos) return false;
          break;
        }
        p = eol + 2 + len + 2;
        if (c.buf.size() < p) return false;
      }
    } else if (!eof && status != 204 && status != 304) {
      return false;  // body runs to EOF
    }
    finish(slot, status, close || eof);
    return true;
  }

  void finish(int slot, int status, bool close) {
    Conn& c = conns_[slot];
    const double t = now_s();
    if (status == 200 && t >= t0_ + o_.warmup && t <= t0_ + o_.warmup + o_.duration) ++ok_in_window_;
    if (c.sched >= t0_ + o_.warmup) {
      const double base = o_.rate > 0 ? c.sched : c.send_time;
      const double sent_at = c.sent > 0 ? c.first_write : t;
      samples_.push_back({static_cast<float>((t - base) * 1e3), static_cast<float>((sent_at - c.sched) * 1e3),
                          static_cast<float>((t - sent_at) * 1e3), status});
    }
    c.busy = false;
    c.used = true;
    --busy_;
    if (close || c.fd < 0) {
      close_slot(slot);
    } else {
      c.buf.clear();
      idle_.push_back(slot);
    }
  }

  void close_fd(int slot) {
    Conn& c = conns_[slot];
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.connected = false;
    c.buf.clear();
  }

  // Closes a slot that is not busy and files it as closed (removing it from the idle list).
  void close_slot(int slot) {
    close_fd(slot);
    auto it = std::find(idle_.begin(), idle_.end(), slot);
    if (it != idle_.end()) idle_.erase(it);
    if (std::find(closed_.begin(), closed_.end(), slot) == closed_.end()) closed_.push_back(slot);
  }

  void sweep_timeouts(double now) {
    for (int i = 0; i < static_cast<int>(conns_.size()); ++i) {
      Conn& c = conns_[i];
      if (c.busy && now - c.send_time > o_.timeout) {
        close_fd(i);
        finish(i, kTimeout, true);
      }
    }
  }

  static nlohmann::json percentiles(std::vector<float> v) {
    nlohmann::json j;
    j["n"] = v.size();
    if (v.empty()) return j;
    std::sort(v.begin(), v.end());
    auto q = [&](double p) {
      const size_t i = std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * v.size())) - (p > 0));
      return v[i];
    };
    double sum = 0;
    for (float x : v) sum += x;
    j["p50"] = q(0.5);
    j["p90"] = q(0.9);
    j["p99"] = q(0.99);
    j["p999"] = q(0.999);
    j["max"] = v.back();
    j["mean"] = sum / v.size();
    return j;
  }

  nlohmann::json report(uint64_t scheduled, uint64_t unsent, double wall, double cpu) {
    std::map<std::string, uint64_t> by_status;
    std::vector<float> ok, reject, all, lag, ok_service, reject_service;
    for (const auto& s : samples_) {
      std::string k = s.status == kTimeout ? "timeout"
                      : s.status == kError ? "error"
                      : s.status == kUnsent ? "unsent"
                      : (s.status == 200 || s.status == 429 || s.status == 503 || s.status == 504)
                          ? std::to_string(s.status)
                          : "other";
      ++by_status[k];
      if (s.status == 200) {
        ok.push_back(s.latency_ms);
        ok_service.push_back(s.service_ms);
      }
      if (s.status == 429 || s.status == 503) {
        reject.push_back(s.latency_ms);
        reject_service.push_back(s.service_ms);
      }
      all.push_back(s.latency_ms);
      if (s.status != kUnsent) lag.push_back(s.lag_ms);
    }
    nlohmann::json j;
    j["rate"] = o_.rate;
    j["arrivals"] = o_.rate > 0 ? o_.arrivals : "closed-loop";
    j["connections"] = o_.connections;
    j["duration_s"] = o_.duration;
    j["warmup_s"] = o_.warmup;
    j["scheduled"] = scheduled;
    j["recorded"] = samples_.size();
    j["unsent_at_end"] = unsent;
    j["by_status"] = by_status;
    j["ok_per_s"] = ok_in_window_ / o_.duration;
    j["latency_ms_ok"] = percentiles(ok);
    j["latency_ms_reject"] = percentiles(reject);
    j["latency_ms_all"] = percentiles(all);
    j["service_ms_ok"] = percentiles(ok_service);
    j["service_ms_reject"] = percentiles(reject_service);
    j["send_lag_ms"] = percentiles(lag);
    j["connects"] = connects_;
    j["retries"] = retries_;
    j["wall_s"] = wall;
    j["client_cpu_s"] = cpu;
    j["client_cpu_frac"] = wall > 0 ? cpu / wall : 0;
    return j;
  }

  Options o_;
  std::mt19937_64 rng_;
  sockaddr_in addr_{};
  int ep_ = -1;
  double t0_ = 0;
  std::vector<std::string> requests_;
  size_t next_req_ = 0;
  std::vector<Conn> conns_;
  std::vector<int> idle_, closed_;
  std::deque<double> backlog_;  // scheduled send times waiting for a free connection
  size_t busy_ = 0;
  uint64_t connects_ = 0, retries_ = 0, ok_in_window_ = 0;
  std::vector<Sample> samples_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"open-loop HTTP load generator (latency from each request's scheduled time)"};
  app.add_option("--host", o.host, "server address (IPv4)");
  app.add_option("--port", o.port, "server port")->required();
  app.add_option("--path", o.path, "request path, e.g. /v2/models/cnn_se/infer");
  app.add_option("--method", o.method, "GET or POST");
  app.add_option("--header", o.headers, "extra header 'Name: value' (repeat)");
  app.add_option("--content-type", o.content_type, "Content-Type of the bodies");
  app.add_option("--body-file", o.body_file, "one request body per line, used round-robin");
  app.add_option("--rate", o.rate, "requests per second (0 = closed loop)")->check(CLI::NonNegativeNumber);
  app.add_option("--connections", o.connections, "connections (at most this many in flight)")
      ->check(CLI::Range(1, 60000));
  app.add_option("--duration", o.duration, "measured seconds")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "seconds before the window (sent, not recorded)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--arrivals", o.arrivals, "poisson | constant")
      ->check(CLI::IsMember({"poisson", "constant"}));
  app.add_option("--timeout", o.timeout, "seconds a request may be in flight")->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "arrival-time seed");
  CLI11_PARSE(app, argc, argv);
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  try {
    Load load(o);
    std::printf("%s\n", load.run().dump(2).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
