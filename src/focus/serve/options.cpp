// ServeOptions binding to JSON and its checks (see options.hpp); the CLI binding is in
// apps/cmd_serve.cpp.
#include "focus/serve/options.hpp"


#include <cmath>
#include <set>

#include "focus/io/config_json.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

void apply_json(ServeOptions& o, const nlohmann::json& j, const std::string& source) {
  apply_json_fields(o, j, source);
}

void load_config_file(ServeOptions& o, const std::string& path) {
  apply_json(o, read_config_json(path), path);
}

nlohmann::json to_json(const ServeOptions& o) { return fields_to_json(o); }

std::pair<std::string, std::string> split_model_arg(const std::string& arg) {
  const size_t eq = arg.find('=');
  FOCUS_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < arg.size(), ValueError,
              "--model '{}' must be NAME=FILE", arg);
  const std::string name = arg.substr(0, eq);
  for (char c : name)
    FOCUS_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.',
                ValueError, "--model '{}': the name may hold only letters, digits, _ - .", arg);
  return {name, arg.substr(eq + 1)};
}

std::vector<std::string> slo_ladder_of(const ServeOptions& o) {
  if (!o.slo_ladder.empty()) return o.slo_ladder;
  // int8: the faster variant of both image models (compiled cnn_se 2.1-2.3x f32, vit 1.5-1.9x;
  // bf16 cnn_se 1.7-1.8x); docs/BUDGET.md. focus plan measures all three.
  if (o.image_weights == "f32") return {"f32", "int8"};
  return {o.image_weights};
}

void validate(const ServeOptions& o) {
  FOCUS_CHECK(!o.models.empty(), ValueError, "no model to serve: give --model NAME=FILE");
  std::set<std::string> names;
  for (const std::string& m : o.models) {
    const auto [name, file] = split_model_arg(m);
    FOCUS_CHECK(names.insert(name).second, ValueError, "--model: the name '{}' is given twice", name);
  }
  FOCUS_CHECK(!o.keys.empty(), ValueError,
              "--keys FILE is required (create one: focus keys create --file FILE --id NAME --roles infer,metrics)");
  FOCUS_CHECK(o.port >= 0 && o.port <= 65535, ValueError, "--port {} must be in [0, 65535]", o.port);
  const auto positive = [](const char* name, int64_t v) {
    FOCUS_CHECK(v >= 1, ValueError, "--{} {} must be >= 1", name, v);
  };
  positive("max-batch", o.max_batch);
  positive("queue-capacity", o.queue_capacity);
  positive("timeout-ms", o.timeout_ms);
  positive("max-timeout-ms", o.max_timeout_ms);
  positive("max-body-bytes", o.max_body_bytes);
  positive("max-items", o.max_items);
  positive("max-image-pixels", o.max_image_pixels);
  positive("max-text-bytes", o.max_text_bytes);
  FOCUS_CHECK(o.http_threads >= 0, ValueError, "--http-threads {} must be >= 0", o.http_threads);
  positive("max-connections", o.max_connections);
  positive("retry-after-s", o.retry_after_s);
  FOCUS_CHECK(o.max_queue_delay_ms >= 0 && o.max_queue_delay_ms <= 10000, ValueError,
              "--max-queue-delay-ms {} must be in [0, 10000]", o.max_queue_delay_ms);
  FOCUS_CHECK(o.busy_queue_delay_ms >= 0 && o.busy_queue_delay_ms <= 10000, ValueError,
              "--busy-queue-delay-ms {} must be in [0, 10000]", o.busy_queue_delay_ms);
  FOCUS_CHECK(o.threads >= 0 && o.drain_timeout_ms >= 0 && o.poll_ms >= 0, ValueError,
              "--threads, --drain-timeout-ms and --poll-ms must be >= 0");
  FOCUS_CHECK(o.executors >= 0 && o.executors <= 32, ValueError, "--executors {} must be in [0, 32]", o.executors);
  FOCUS_CHECK(o.http_nice >= 0 && o.http_nice <= 19, ValueError, "--http-nice {} must be in [0, 19]", o.http_nice);
  FOCUS_CHECK(o.weights == "f32" || o.weights == "bf16" || o.weights == "int8", ValueError,
              "--weights '{}' must be f32, bf16 or int8", o.weights);
  FOCUS_CHECK(o.image_weights == "f32" || o.image_weights == "bf16" || o.image_weights == "int8" ||
                  o.image_weights == "auto",
              ValueError, "--image-weights '{}' must be f32, bf16, int8 or auto", o.image_weights);
  FOCUS_CHECK(o.review_ttl_ms >= 0, ValueError, "--review-ttl-ms {} must be >= 0", o.review_ttl_ms);
  FOCUS_CHECK(std::isfinite(o.slo_p99_ms) && o.slo_p99_ms >= 0, ValueError, "--slo-p99-ms {} must be >= 0", o.slo_p99_ms);
  FOCUS_CHECK(std::isfinite(o.slo_window_ms) && o.slo_window_ms > 0, ValueError,
              "--slo-window-ms {} must be > 0", o.slo_window_ms);
  std::set<std::string> rungs;
  for (const std::string& w : o.slo_ladder) {
    FOCUS_CHECK(w == "f32" || w == "bf16" || w == "int8", ValueError,
                "--slo-ladder: '{}' is not f32, bf16 or int8", w);
    FOCUS_CHECK(rungs.insert(w).second, ValueError, "--slo-ladder: '{}' is given twice", w);
  }
  const size_t n = slo_ladder_of(o).size();
  FOCUS_CHECK(o.slo_accuracy.empty() || o.slo_accuracy.size() == n, ValueError,
              "--slo-accuracy gives {} figures for a ladder of {} variants", o.slo_accuracy.size(), n);
  for (double a : o.slo_accuracy)
    FOCUS_CHECK(a >= 0 && a <= 1, ValueError, "--slo-accuracy {} must be a fraction in [0, 1]", a);
  FOCUS_CHECK(o.tls_cert.empty() == o.tls_key.empty(), ValueError,
              "--tls-cert and --tls-key go together");
}

}  // namespace focus
