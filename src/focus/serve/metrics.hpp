// Server metrics in the Prometheus text exposition format (version 0.0.4), kept by hand in a
// few maps: the set is small and fixed, and a client library would be a dependency for 150 lines.
// Families (all prefixed focus_):
//   requests_total{model,status,key}           counter  every answered request
//   rejections_total{reason}                   counter  rate quota queue_full deadline too_large
//                                                       bad_request auth draining not_found
//   queue_seconds / compute_seconds / request_seconds{model}  histograms
//   batch_size{model}                          histogram of requests' items per executed batch
//   queue_depth{model}, queue_capacity{model}, in_flight{model}  gauges
//   model_info{model,version} 1, model_load_seconds{model}, model_loaded_timestamp_seconds{model}
//   model_reloads_total{model,result}          counter (ok | refused)
//   process_resident_memory_bytes, process_start_time_seconds, up-time via the latter
// Thread-safe (one mutex; updates are a few map operations per request).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace focus {

class Metrics {
 public:
  Metrics();
  void request(const std::string& model, int status, const std::string& key_id);
  void rejection(const std::string& reason);
  void observe_queue(const std::string& model, double seconds);
  void observe_compute(const std::string& model, double seconds);
  void observe_request(const std::string& model, double seconds);
  void observe_batch(const std::string& model, int64_t size);
  void set_queue_depth(const std::string& model, int64_t n);
  void set_queue_capacity(const std::string& model, int64_t n);
  void add_in_flight(const std::string& model, int64_t delta);
  void model_loaded(const std::string& model, const std::string& version, double load_seconds);
  void model_reload(const std::string& model, bool ok);
  // The review queue (serve/review_desk.hpp).
  struct ReviewGauges {
    int64_t waiting = 0, claimed = 0, queue_cap = 0;
    double oldest_age_s = 0, labels_last_hour = 0, capacity_per_hour = 0, threshold = 0;
  };
  void review_routed(const std::string& model, const char* route);
  void review_labelled(const std::string& model, bool agree, bool audit);
  void review_undone(const std::string& model, bool agree);
  void review_webhook(const char* outcome);  // ok | failed | dropped  // a label taken back (it is given again)
  void set_review_queue(const ReviewGauges& g);
  // The latency SLO controller's state for a model (scheduler.cpp).
  struct SloGauges {
    int rung = 0;
    std::string variant;   // the rung's weights
    std::vector<std::string> ladder;  // every rung's (each gets a focus_slo_variant gauge)
    double accuracy = -1;  // its validation accuracy (< 0: unknown)
    double target_ms = 0, last_p99_ms = 0;
    double shed_factor = 0;  // admission refuses an estimated latency past this x SLO
    int64_t batch_cap = 0;   // the most items a batch of the rung may hold now
    int64_t windows = 0, windows_met = 0, steps_down = 0, steps_up = 0;
  };
  void set_slo(const std::string& model, const SloGauges& g);
  std::string render() const;

 private:
  struct Histogram {
    std::vector<double> bounds;     // upper bounds, ascending (+Inf implied)
    std::vector<uint64_t> counts;   // per bucket, not cumulative
    double sum = 0;
    uint64_t n = 0;
  };
  void observe(const char* family, const std::vector<double>& bounds, const std::string& model,
               double v);
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> counters_;   // family -> labels -> value
  std::map<std::string, std::map<std::string, double>> gauges_;
  std::map<std::string, std::map<std::string, Histogram>> histograms_;
  double start_time_ = 0;
};

// The process's resident set in bytes (/proc/self/statm); 0 where unavailable.
int64_t process_rss_bytes();
// Escapes a label value (backslash, quote, newline) for the text format.
std::string prometheus_label(const std::string& v);

}  // namespace focus
