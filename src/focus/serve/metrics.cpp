// Prometheus metrics (see metrics.hpp).
#include "focus/serve/metrics.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fmt/format.h>

namespace focus {
namespace {

const std::vector<double> kLatencyBounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                            0.1,    0.2,   0.5,   1,     2,    5,    10};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

const char* kHelp[][3] = {
    {"focus_requests_total", "counter", "Requests answered, by model, HTTP status and key id."},
    {"focus_rejections_total", "counter", "Requests refused, by reason."},
    {"focus_queue_seconds", "histogram", "Time from admission to the start of the request's batch."},
    {"focus_compute_seconds", "histogram", "Time the request's batch spent computing."},
    {"focus_request_seconds", "histogram", "Time from receiving the request to answering it."},
    {"focus_batch_size", "histogram", "Items (images, sentences) per executed batch."},
    {"focus_queue_depth", "gauge", "Requests waiting in the model's queue."},
    {"focus_queue_capacity", "gauge", "Requests the model's queue holds at most (then 429)."},
    {"focus_in_flight", "gauge", "Requests admitted and not yet answered."},
    {"focus_model_info", "gauge", "The model version being served (1)."},
    {"focus_model_load_seconds", "gauge", "Seconds the served version took to load and check."},
    {"focus_model_loaded_timestamp_seconds", "gauge", "When the served version was loaded (Unix time)."},
    {"focus_model_reloads_total", "counter", "Reload attempts, by result (ok, refused)."},
    {"focus_review_routed_total", "counter",
     "Classified items by who answers: model, review (deferred), audit, queue_full (model, flagged)."},
    {"focus_review_labels_total", "counter", "Reviewers' labels, by model and agreement with the model."},
    {"focus_review_webhook_total", "counter", "Closed tickets sent to --review-webhook, by outcome (ok, failed after 3 tries, dropped)."},
    {"focus_review_undone_total", "counter",
     "Labels taken back by their reviewer (U), by model and agreement: labels_total - undone_total are the standing ones."},
    {"focus_review_audit_labels_total", "counter",
     "Labels of audited items (a random share of the auto-accepted), by outcome (correct, error)."},
    {"focus_slo_target_seconds", "gauge", "The latency SLO (p99 of a request, admission to answer)."},
    {"focus_slo_rung", "gauge", "The SLO ladder's rung serving the model (0 = the most accurate variant)."},
    {"focus_slo_variant", "gauge", "1 for the variant serving the model under the SLO, 0 for the others."},
    {"focus_slo_effective_accuracy", "gauge", "Validation accuracy of the variant in use (--slo-accuracy)."},
    {"focus_slo_shed_factor", "gauge", "Admission sheds a request whose estimated latency passes this x the SLO (adaptive)."},
    {"focus_slo_batch_cap", "gauge", "The most items a batch may hold under the SLO (its estimated compute within a share of it)."},
    {"focus_slo_window_p99_seconds", "gauge", "p99 latency of the controller's last window with requests."},
    {"focus_slo_windows_total", "counter", "Controller windows with requests, by outcome (met, missed)."},
    {"focus_slo_steps_total", "counter", "Controller moves along the ladder, by direction (down = faster, up)."},
    {"focus_review_threshold", "gauge", "Error score above which a classification is deferred to review (the controller's, latest)."},
    {"focus_review_waiting", "gauge", "Review items waiting for a reviewer (pending or with an expired claim)."},
    {"focus_review_claimed", "gauge", "Review items under a live reviewer's claim."},
    {"focus_review_queue_cap", "gauge", "Review items that may wait at most (beyond: the model answers, flagged)."},
    {"focus_review_oldest_age_seconds", "gauge", "Age of the oldest waiting review item."},
    {"focus_review_labels_last_hour", "gauge", "Labels committed in the last hour (the reviewers' pace)."},
    {"focus_review_capacity_per_hour", "gauge", "Items the reviewers are expected to answer per hour (0: fixed threshold)."},
};

std::string fmt_value(double v) {
  if (v == double(int64_t(v)) && std::abs(v) < 1e15) return fmt::format("{}", int64_t(v));
  return fmt::format("{:.9g}", v);
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string prometheus_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

int64_t process_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long size = 0, resident = 0;
  const int got = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return got == 2 ? int64_t(resident) * sysconf(_SC_PAGESIZE) : 0;
}

Metrics::Metrics() : start_time_(unix_now()) {}

void Metrics::request(const std::string& model, int status, const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_["focus_requests_total"][fmt::format("model=\"{}\",status=\"{}\",key=\"{}\"",
                                                prometheus_label(model), status,
                                                prometheus_label(key_id))] += 1;
}

void Metrics::rejection(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_["focus_rejections_total"][fmt::format("reason=\"{}\"", prometheus_label(reason))] += 1;
}

void Metrics::observe(const char* family, const std::vector<double>& bounds,
                      const std::string& model, double v) {
  std::lock_guard<std::mutex> lock(mu_);
  Histogram& h = histograms_[family][fmt::format("model=\"{}\"", prometheus_label(model))];
  if (h.bounds.empty()) h.bounds = bounds, h.counts.assign(bounds.size() + 1, 0);
  size_t b = 0;
  while (b < h.bounds.size() && v > h.bounds[b]) ++b;
  ++h.counts[b];
  h.sum += v;
  ++h.n;
}

void Metrics::observe_queue(const std::string& m, double s) { observe("focus_queue_seconds", kLatencyBounds, m, s); }
void Metrics::observe_compute(const std::string& m, double s) { observe("focus_compute_seconds", kLatencyBounds, m, s); }
void Metrics::observe_request(const std::string& m, double s) { observe("focus_request_seconds", kLatencyBounds, m, s); }
void Metrics::observe_batch(const std::string& m, int64_t n) { observe("focus_batch_size", kBatchBounds, m, double(n)); }

void Metrics::set_queue_depth(const std::string& model, int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_["focus_queue_depth"][fmt::format("model=\"{}\"", prometheus_label(model))] = double(n);
}

void Metrics::set_queue_capacity(const std::string& model, int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_["focus_queue_capacity"][fmt::format("model=\"{}\"", prometheus_label(model))] = double(n);
}

void Metrics::add_in_flight(const std::string& model, int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_["focus_in_flight"][fmt::format("model=\"{}\"", prometheus_label(model))] += double(delta);
}

void Metrics::model_loaded(const std::string& model, const std::string& version, double load_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string m = fmt::format("model=\"{}\"", prometheus_label(model));
  auto& info = gauges_["focus_model_info"];
  for (auto it = info.begin(); it != info.end();)  // one version per model
    it = it->first.rfind(m + ",", 0) == 0 ? info.erase(it) : std::next(it);
  info[fmt::format("{},version=\"{}\"", m, prometheus_label(version))] = 1;
  gauges_["focus_model_load_seconds"][m] = load_seconds;
  gauges_["focus_model_loaded_timestamp_seconds"][m] = unix_now();
}

void Metrics::model_reload(const std::string& model, bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_["focus_model_reloads_total"][fmt::format("model=\"{}\",result=\"{}\"",
                                                     prometheus_label(model), ok ? "ok" : "refused")] += 1;
}

void Metrics::review_routed(const std::string& model, const char* route) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_["focus_review_routed_total"][fmt::format("model=\"{}\",route=\"{}\"", prometheus_label(model), route)] += 1;
}

void Metrics::review_labelled(const std::string& model, bool agree, bool audit) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string m = prometheus_label(model);
  counters_["focus_review_labels_total"][fmt::format("model=\"{}\",agree=\"{}\"", m, agree)] += 1;
  if (audit)
    counters_["focus_review_audit_labels_total"][fmt::format("model=\"{}\",outcome=\"{}\"", m,
                                                              agree ? "correct" : "error")] += 1;
}

void Metrics::review_undone(const std::string& model, bool agree) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_["focus_review_undone_total"][fmt::format("model=\"{}\",agree=\"{}\"", prometheus_label(model), agree)] += 1;
}

void Metrics::review_webhook(const char* outcome) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_["focus_review_webhook_total"][fmt::format("outcome=\"{}\"", outcome)] += 1;
}

void Metrics::set_slo(const std::string& model, const SloGauges& g) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string m = fmt::format("model=\"{}\"", prometheus_label(model));
  gauges_["focus_slo_target_seconds"][m] = g.target_ms / 1000.0;
  gauges_["focus_slo_rung"][m] = double(g.rung);
  auto& variants = gauges_["focus_slo_variant"];
  const std::string prefix = m + ",variant=";
  for (auto& [labels, v] : variants)
    if (labels.rfind(prefix, 0) == 0) v = 0;
  for (const std::string& name : g.ladder) variants[fmt::format("{}\"{}\"", prefix, prometheus_label(name))] = 0;
  variants[fmt::format("{}\"{}\"", prefix, prometheus_label(g.variant))] = 1;
  if (g.accuracy >= 0) gauges_["focus_slo_effective_accuracy"][m] = g.accuracy;
  gauges_["focus_slo_shed_factor"][m] = g.shed_factor;
  gauges_["focus_slo_batch_cap"][m] = double(g.batch_cap);
  if (g.windows > 0) gauges_["focus_slo_window_p99_seconds"][m] = g.last_p99_ms / 1000.0;
  counters_["focus_slo_windows_total"][m + ",outcome=\"met\""] = double(g.windows_met);
  counters_["focus_slo_windows_total"][m + ",outcome=\"missed\""] = double(g.windows - g.windows_met);
  counters_["focus_slo_steps_total"][m + ",direction=\"down\""] = double(g.steps_down);
  counters_["focus_slo_steps_total"][m + ",direction=\"up\""] = double(g.steps_up);
}

void Metrics::set_review_queue(const ReviewGauges& g) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_["focus_review_waiting"][""] = double(g.waiting);
  gauges_["focus_review_claimed"][""] = double(g.claimed);
  gauges_["focus_review_queue_cap"][""] = double(g.queue_cap);
  gauges_["focus_review_oldest_age_seconds"][""] = g.oldest_age_s;
  gauges_["focus_review_labels_last_hour"][""] = g.labels_last_hour;
  gauges_["focus_review_capacity_per_hour"][""] = g.capacity_per_hour;
  gauges_["focus_review_threshold"][""] = g.threshold;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, type, help] : kHelp) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    if (std::string(type) == "histogram") {
      const auto f = histograms_.find(name);
      if (f == histograms_.end()) continue;
      for (const auto& [labels, h] : f->second) {
        uint64_t cum = 0;
        for (size_t b = 0; b < h.counts.size(); ++b) {
          cum += h.counts[b];
          const std::string le = b < h.bounds.size() ? fmt_value(h.bounds[b]) : "+Inf";
          out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, le, cum);
        }
        out += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, fmt_value(h.sum),
                           name, labels, h.n);
      }
      continue;
    }
    const auto& source = std::string(type) == "counter" ? counters_ : gauges_;
    const auto f = source.find(name);
    if (f == source.end()) continue;
    for (const auto& [labels, v] : f->second)
      out += labels.empty() ? fmt::format("{} {}\n", name, fmt_value(v))
                            : fmt::format("{}{{{}}} {}\n", name, labels, fmt_value(v));
  }
  out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
         "# TYPE process_resident_memory_bytes gauge\n";
  out += fmt::format("process_resident_memory_bytes {}\n", process_rss_bytes());
  out += "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
         "# TYPE process_start_time_seconds gauge\n";
  out += fmt::format("process_start_time_seconds {}\n", fmt_value(start_time_));
  return out;
}

}  // namespace focus
