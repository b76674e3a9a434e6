// The HTTP layer of focus serve, behind this one small interface (libmicrohttpd underneath, in
// http.cpp only): HTTP/1.1 with keep-alive, optional TLS, one epoll event thread that reads,
// parses and writes every connection, and a bounded pool of handler threads.
//
// Each request meets two callbacks:
//   screen  runs on the event thread as soon as the request line and headers are in, before the
//           body is read. It may answer at once (a refusal: 401, 404, 429, 503): the body is then
//           read and dropped, never stored or parsed, the answer sent on the kept-alive
//           connection. It must be quick: it holds up every connection.
//   handle  runs on a handler thread with the whole body; the connection is suspended meanwhile
//           (it costs no thread and no polling while it waits) and resumed with the answer.
//           A handler whose answer comes later (a queued batch) calls req.defer() and returns:
//           the thread is free at once, and whoever holds the returned Reply fills the response
//           and sends it, from any thread (the batch's executor: no thread waits per request).
// So refusals under overload cost microseconds of one thread, and a thread is held only by
// requests that were admitted (the server bounds those), never by an idle connection.
//
//   HttpServer http(options, {screen, handle});  // binds; IOError when it cannot
//   std::thread t([&] { http.run(); });           // serves until stop()
//   http.stop();                                  // stops accepting, lets handlers finish, closes
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace focus {

class HttpReply;

struct HttpRequest {
  std::string method, path, body;
  std::vector<std::pair<std::string, std::string>> headers, params;  // in arrival order
  std::vector<std::string> matches;  // the path, then the route's captured segments (the screen's)
  int route = -1;                    // the route the screen picked
  std::shared_ptr<void> state;       // what the screen hands to the handler
  int fd = -1;                       // the connection's socket (to notice a client that left)
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  int64_t content_length = -1;       // from the header, -1 when absent
  bool too_large = false;            // the body passed Options::max_body_bytes (it was dropped)

  // Header names case-insensitively; the first of repeated ones.
  bool has_header(const char* name) const;
  std::string get_header_value(const char* name) const;
  bool has_param(const char* name) const;
  std::string get_param_value(const char* name) const;

  // In `handle` only: the answer is sent later, by HttpReply::send(). Once per request; the
  // request and its response stay valid until then. Outside a handler: std::logic_error.
  HttpReply defer() const;
  mutable std::function<HttpReply()> defer_;  // set by HttpServer for the handler's call
};

struct HttpResponse {
  int status = 200;
  std::string body, content_type = "text/plain";
  std::vector<std::pair<std::string, std::string>> headers;
  void set_header(const std::string& name, const std::string& value) { headers.emplace_back(name, value); }
  void set_content(std::string b, const char* type) { body = std::move(b), content_type = type; }
};

// A deferred answer (HttpRequest::defer): send() resumes the connection with the response as it
// stands. Copyable; the first send() counts, later ones do nothing; a reply never sent (every
// copy gone) sends a 500, so a connection is never left suspended.
class HttpReply {
 public:
  HttpReply() = default;
  explicit HttpReply(std::shared_ptr<void> state) : state_(std::move(state)) {}
  void send() const;

 private:
  std::shared_ptr<void> state_;
};

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 0;                   // 0 = any free port
    std::string tls_cert, tls_key;  // PEM files; both set: HTTPS
    int64_t max_body_bytes = 8 << 20;
    int handler_threads = 8;        // requests handled at once; more wait for a thread
    int handler_nice = 0;           // the handler threads' priority below the caller's
    int max_connections = 4096;     // open connections; more are accepted and closed
    int idle_timeout_s = 30;        // a connection silent this long is closed
  };
  struct Callbacks {
    // True when res holds the answer (the body is then dropped). Runs on the event thread.
    std::function<bool(HttpRequest&, HttpResponse&)> screen;
    // Answers a screened request with its body. Runs on a handler thread; must not throw.
    std::function<void(HttpRequest&, HttpResponse&)> handle;
  };

  // Binds the address (the event thread starts in run()). IOError naming the address when it
  // cannot, or when the TLS files are unreadable or invalid.
  HttpServer(const Options& options, Callbacks callbacks);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  void run();   // serves until stop()
  // Stops accepting connections, waits up to `grace` for requests being handled to be answered,
  // then closes every connection and returns run(). Thread-safe; idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace focus
