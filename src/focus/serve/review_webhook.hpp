// The review queue's webhook (focus serve --review-webhook URL): when a reviewer's label closes a
// ticket, the ticket's final state is POSTed as JSON to the URL, so a client need not poll
// GET /v1/review/tickets/{id}. Delivery runs on its own thread, never on a request's: events
// wait in a bounded queue (1,000; beyond, they are dropped and counted), each is tried up to 3
// times (2 s timeout each, 0.1 s then 0.4 s apart); outcomes are counted in
// focus_review_webhook_total{outcome=ok|failed|dropped}. Plain HTTP/1.1 only (http://host[:port]/
// path; for HTTPS put a local relay in front); `secret`, when given, is sent as
// `Authorization: Bearer SECRET`. The only network client of the server, in this file.
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace focus {

class Metrics;

class Webhook {
 public:
  // ValueError naming the URL unless it is http://HOST[:PORT][/PATH].
  Webhook(const std::string& url, std::string secret, Metrics* metrics);
  ~Webhook();  // delivers what is queued for up to 2 s more, then stops
  Webhook(const Webhook&) = delete;
  Webhook& operator=(const Webhook&) = delete;

  void post(nlohmann::json event);  // queues it; never blocks on the network

 private:
  bool deliver(const std::string& body);  // one attempt: true on a 2xx answer
  void loop();

  std::string host_, port_, path_, secret_;
  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace focus
