// The HTTP layer (serve/http.hpp) on its own, over loopback sockets: a screened refusal is
// answered without the handler and keeps the connection alive for the next request; bodies over
// the limit (by Content-Length, or chunked) are refused and never handed over whole; a throwing
// handler is a 500 and the server goes on; idle connections hold no handler thread; stop() lets
// a running handler answer first; a deferred answer is sent from another thread; addresses and
// TLS files that cannot be used are IOErrors.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "focus/serve/http.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

struct Running {
  HttpServer http;
  std::thread t;
  Running(const HttpServer::Options& o, HttpServer::Callbacks cb) : http(o, std::move(cb)), t([this] { http.run(); }) {}
  ~Running() {
    http.stop();
    t.join();
  }
};

// A raw keep-alive connection: writes requests, reads one answer at a time (by Content-Length).
struct Conn {
  int fd = -1;
  std::string pending;
  explicit Conn(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) ::close(fd), fd = -1;
  }
  ~Conn() {
    if (fd >= 0) ::close(fd);
  }
  void send(const std::string& s) const { ASSERT_EQ(::write(fd, s.data(), s.size()), ssize_t(s.size())); }
  // The next answer's head and body; "" when the connection closed first.
  std::string answer() {
    for (;;) {
      const size_t head_end = pending.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t len = 0;
        const size_t cl = pending.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) len = std::stoul(pending.substr(cl + 16));
        if (pending.size() >= head_end + 4 + len) {
          std::string a = pending.substr(0, head_end + 4 + len);
          pending.erase(0, head_end + 4 + len);
          return a;
        }
      }
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return "";
      pending.append(buf, size_t(n));
    }
  }
};

std::string post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

HttpServer::Callbacks echo(std::atomic<int>& handled) {
  return {[](HttpRequest& q, HttpResponse& r) {
            if (q.too_large) {
              r.status = 413;
              r.set_content("too large", "text/plain");
              return true;
            }
            if (q.path != "/refuse") return false;
            r.status = 429;
            r.set_content("refused", "text/plain");
            return true;
          },
          [&handled](HttpRequest& q, HttpResponse& r) {
            ++handled;
            if (q.path == "/throw") throw std::runtime_error("boom");
            r.set_content((q.too_large ? "too_large:" : "body:") + q.body, "text/plain");
          }};
}

TEST(Http, AScreenedRefusalSkipsTheHandlerAndKeepsTheConnection) {
  std::atomic<int> handled{0};
  HttpServer::Options o;
  Running s(o, echo(handled));
  Conn c(s.http.port());
  ASSERT_GE(c.fd, 0);
  c.send(post("/refuse", std::string(5000, 'x')));
  const std::string a = c.answer();
  EXPECT_EQ(a.rfind("HTTP/1.1 429", 0), 0u) << a;
  EXPECT_NE(a.find("refused"), std::string::npos);
  EXPECT_EQ(handled.load(), 0);
  c.send(post("/echo", "hello"));  // the same connection serves on
  const std::string b = c.answer();
  EXPECT_EQ(b.rfind("HTTP/1.1 200", 0), 0u) << b;
  EXPECT_NE(b.find("body:hello"), std::string::npos) << b;
  EXPECT_EQ(handled.load(), 1);
}

TEST(Http, LargeBodiesStreamThroughTheSmallConnectionPool) {
  std::atomic<int> handled{0};
  Running s(HttpServer::Options{}, echo(handled));  // 8 MiB bodies, 16 KiB per connection
  std::string big(3 << 20, 'a');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = char('a' + (i / 4096) % 26);
  Conn c(s.http.port());
  c.send(post("/echo", big));
  const std::string a = c.answer();
  EXPECT_EQ(a.rfind("HTTP/1.1 200", 0), 0u) << a.substr(0, 200);
  EXPECT_EQ(a.substr(a.find("\r\n\r\n") + 4), "body:" + big);
  c.send(post("/echo", "next"));  // and the connection goes on
  EXPECT_NE(c.answer().find("body:next"), std::string::npos);
}

TEST(Http, BodiesOverTheLimitAreRefusedAndNeverHandedOverWhole) {
  std::atomic<int> handled{0};
  HttpServer::Options o;
  o.max_body_bytes = 1000;
  Running s(o, echo(handled));
  {  // by Content-Length: answered from the headers, the connection closed after
    Conn c(s.http.port());
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + std::string(2000, 'y'));
    const std::string a = c.answer();
    EXPECT_EQ(a.rfind("HTTP/1.1 413", 0), 0u) << a;
    EXPECT_EQ(handled.load(), 0);
  }
  {  // chunked, growing past the limit: the handler learns it, without the body
    Conn c(s.http.port());
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) req += "258\r\n" + std::string(600, 'z') + "\r\n";
    c.send(req + "0\r\n\r\n");
    const std::string a = c.answer();
    EXPECT_NE(a.find("too_large:"), std::string::npos) << a;
    EXPECT_EQ(a.find("zzz"), std::string::npos) << a;
    EXPECT_EQ(handled.load(), 1);
  }
}

TEST(Http, AThrowingHandlerIsA500AndTheServerGoesOn) {
  std::atomic<int> handled{0};
  Running s(HttpServer::Options{}, echo(handled));
  httplib::Client c("127.0.0.1", s.http.port());
  auto r = c.Post("/throw", "x", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  r = c.Post("/echo", "ok", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "body:ok");
}

TEST(Http, IdleConnectionsHoldNoHandlerThread) {
  std::atomic<int> handled{0};
  HttpServer::Options o;
  o.handler_threads = 1;
  Running s(o, echo(handled));
  std::vector<std::unique_ptr<Conn>> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(std::make_unique<Conn>(s.http.port()));
    ASSERT_GE(idle.back()->fd, 0);
  }
  idle[7]->send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");  // a request that started and stalls
  idle[8]->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  Conn c(s.http.port());
  c.send(post("/echo", "through"));
  const std::string a = c.answer();
  EXPECT_NE(a.find("body:through"), std::string::npos) << a;
  EXPECT_NE(idle[7]->answer().find("body:"), std::string::npos);
}

TEST(Http, StopLetsARunningHandlerAnswer) {
  std::atomic<bool> started{false};
  HttpServer::Callbacks cb{[](HttpRequest&, HttpResponse&) { return false; },
                           [&](HttpRequest&, HttpResponse& r) {
                             started = true;
                             std::this_thread::sleep_for(std::chrono::milliseconds(300));
                             r.set_content("late", "text/plain");
                           }};
  auto s = std::make_unique<Running>(HttpServer::Options{}, cb);
  Conn c(s->http.port());
  c.send(post("/slow", "x"));
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread stopper([&] { s.reset(); });
  const std::string a = c.answer();
  stopper.join();
  EXPECT_NE(a.find("late"), std::string::npos) << a;
}

// A handler that defers returns at once (its thread is free); the answer goes out when another
// thread sends the reply, on the kept-alive connection. A reply dropped unsent is a 500, never
// a connection left hanging; defer() outside a handler is a logic_error.
TEST(Http, ADeferredAnswerIsSentFromAnotherThread) {
  std::mutex mu;
  std::vector<std::thread> senders;
  std::atomic<int> returned{0};
  HttpServer::Options o;
  o.handler_threads = 1;  // one handler thread: the second request needs the first one's returned
  HttpServer::Callbacks cb{[](HttpRequest&, HttpResponse&) { return false; },
                           [&](HttpRequest& q, HttpResponse& r) {
                             HttpReply reply = q.defer();
                             if (q.path == "/drop") return;  // never sent: 500
                             std::lock_guard<std::mutex> lock(mu);
                             ++returned;
                             senders.emplace_back([reply, &r, &returned, body = q.body] {
                               // No answer before both first requests were handed over: the one
                               // handler thread must be free again while an answer is pending.
                               for (int i = 0; i < 500 && returned.load() < 2; ++i)
                                 std::this_thread::sleep_for(std::chrono::milliseconds(10));
                               if (returned.load() < 2) return;  // dropped: a 500 fails the test
                               r.set_content("later:" + body, "text/plain");
                               reply.send();
                               reply.send();  // a second send does nothing
                             });
                           }};
  {
    Running s(o, cb);
    Conn a(s.http.port()), b(s.http.port());
    a.send(post("/x", "one"));
    b.send(post("/x", "two"));
    const std::string ra = a.answer(), rb = b.answer();
    EXPECT_NE(ra.find("later:one"), std::string::npos) << ra;
    EXPECT_NE(rb.find("later:two"), std::string::npos) << rb;
    a.send(post("/x", "again"));  // the connection goes on
    EXPECT_NE(a.answer().find("later:again"), std::string::npos);
    Conn d(s.http.port());
    d.send(post("/drop", ""));
    EXPECT_EQ(d.answer().rfind("HTTP/1.1 500", 0), 0u);
    for (std::thread& t : senders) t.join();
  }
  EXPECT_EQ(returned.load(), 3);
  HttpRequest outside;
  EXPECT_THROW(outside.defer(), std::logic_error);
}

TEST(Http, UnusableAddressesAndTlsFilesAreIOErrors) {
  std::atomic<int> handled{0};
  Running s(HttpServer::Options{}, echo(handled));
  HttpServer::Options taken;
  taken.port = s.http.port();
  try {
    HttpServer again(taken, echo(handled));
    ADD_FAILURE() << "a second server bound a port in use";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(taken.port)), std::string::npos)
        << e.what();
  }
  HttpServer::Options bad_host;
  bad_host.host = "no.such.host.invalid";
  EXPECT_THROW(HttpServer(bad_host, echo(handled)), IOError);
  HttpServer::Options tls;
  tls.tls_cert = tls.tls_key = "/nonexistent/cert.pem";
  try {
    HttpServer t(tls, echo(handled));
    ADD_FAILURE() << "HTTPS started without its files";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot start HTTPS"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace focus
