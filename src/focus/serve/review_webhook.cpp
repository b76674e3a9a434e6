// The review queue's webhook (see review_webhook.hpp).
#include "focus/serve/review_webhook.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "focus/serve/metrics.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

constexpr size_t kMaxQueued = 1000;
constexpr int kTimeoutMs = 2000;

// Waits until fd is ready for `events` or the deadline passes.
bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
  if (left <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, left) == 1 && !(p.revents & (POLLERR | POLLNVAL));
}

}  // namespace

Webhook::Webhook(const std::string& url, std::string secret, Metrics* metrics)
    : secret_(std::move(secret)), metrics_(metrics) {
  const std::string scheme = "http://";
  FOCUS_CHECK(url.rfind(scheme, 0) == 0, ValueError,
              "--review-webhook '{}' must be http://HOST[:PORT][/PATH] (HTTPS: put a local relay in front)", url);
  const std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  path_ = slash == std::string::npos ? "/" : rest.substr(slash);
  const size_t colon = authority.rfind(':');
  host_ = colon == std::string::npos ? authority : authority.substr(0, colon);
  port_ = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  FOCUS_CHECK(!host_.empty() && !port_.empty() && port_.find_first_not_of("0123456789") == std::string::npos &&
                  path_.find_first_of(" \r\n") == std::string::npos,
              ValueError, "--review-webhook '{}' must be http://HOST[:PORT][/PATH]", url);
  thread_ = std::thread([this] { loop(); });
}

Webhook::~Webhook() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Webhook::post(nlohmann::json event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      if (metrics_) metrics_->review_webhook("dropped");
      return;
    }
    queue_.push_back(event.dump());
  }
  cv_.notify_one();
}

bool Webhook::deliver(const std::string& body) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res) != 0 || !res) return false;
  const int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
  bool ok = false;
  if (fd >= 0) {
    const int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
    if ((rc == 0 || errno == EINPROGRESS) && wait_fd(fd, POLLOUT, deadline)) {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      std::string req = fmt::format("POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
                                    "Content-Length: {}\r\nConnection: close\r\nUser-Agent: focus-serve\r\n",
                                    path_, host_, port_, body.size());
      if (!secret_.empty()) req += "Authorization: Bearer " + secret_ + "\r\n";
      req += "\r\n" + body;
      size_t sent = 0;
      while (err == 0 && sent < req.size() && wait_fd(fd, POLLOUT, deadline)) {
        const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += size_t(n);
      }
      std::string reply;  // the status line is enough: "HTTP/1.1 2xx"
      char buf[512];
      while (sent == req.size() && reply.find("\r\n") == std::string::npos && wait_fd(fd, POLLIN, deadline)) {
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        reply.append(buf, size_t(n));
      }
      ok = reply.size() >= 12 && reply.rfind("HTTP/1.", 0) == 0 && reply[9] == '2';
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ok;
}

void Webhook::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  std::chrono::steady_clock::time_point stop_by{};
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_ && stop_by == std::chrono::steady_clock::time_point{})
      stop_by = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    if (queue_.empty() || (stop_ && std::chrono::steady_clock::now() > stop_by)) {
      if (stop_) return;
      continue;
    }
    const std::string body = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    bool ok = false;
    for (int attempt = 0; attempt < 3 && !ok; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(attempt == 1 ? 100 : 400));
      ok = deliver(body);
    }
    if (metrics_) metrics_->review_webhook(ok ? "ok" : "failed");
    lock.lock();
  }
}

}  // namespace focus
