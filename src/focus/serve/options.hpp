// ServeOptions: the one typed option schema of `focus serve`. The same field list (visit_fields)
// binds the CLI flags (apps/cmd_serve.cpp), reads a JSON config file (--config serve.json, keys
// spelled as the flags without dashes: "max-batch"), and prints the effective configuration
// (--dump-config). Precedence: defaults < config file < flags.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace focus {

struct ServeOptions {
  std::vector<std::string> models;   // NAME=FILE, at least one
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0 = any free port (printed when listening)
  std::string keys;                  // key file (focus keys create); required
  int64_t max_batch = 64;            // items per batch
  double max_queue_delay_ms = 0;     // a batch head's wait for company (0: batch what queued)
  double busy_queue_delay_ms = 0;    // the same while another batch computes (the larger counts)
  int64_t queue_capacity = 256;      // requests in progress per model (decoding, queued, computing); more -> 429
  int64_t timeout_ms = 2000;         // default deadline to start a request; full -> 504
  int64_t max_timeout_ms = 60000;    // the most a client may ask for (?timeout_ms=)
  int64_t max_body_bytes = 8 << 20;  // larger bodies -> 413
  int64_t max_items = 256;           // images / sentences per request
  int64_t max_image_pixels = 2048 * 2048;  // of a request's images together, checked before decoding
  int64_t max_text_bytes = 4096;
  int http_threads = 0;              // handler threads (0 = queue capacities + 2 per core)
  int max_connections = 4096;        // open connections at once
  int threads = 0;                   // compute threads (0 = FOCUS_NUM_THREADS, else cores; cores - 1 with executors 1)
  int executors = 0;                 // batches computing at once (0 = the compute threads; 1 = the reference)
  int http_nice = 10;                // handler threads run this much nicer than compute (0 = same)
  int64_t drain_timeout_ms = 10000;  // SIGTERM: how long queued and running work may take
  int64_t poll_ms = 0;               // reload a model when its file changes, checked this often (0 = off)
  int64_t retry_after_s = 1;         // Retry-After of a full queue
  std::string access_log;            // JSON-lines access log: a file, "-" = stderr, "" = none
  bool log_inputs = false;           // also log text inputs, masked (e-mails, phones, digit runs)
  std::string weights = "f32";       // seq2seq inference weights: f32 | bf16 | int8
  std::string image_weights = "f32";  // image models: f32 | bf16 | int8 | auto (infer/)
  // The latency SLO (serve/slo_controller.hpp): > 0 serves image models by a ladder of variants.
  double slo_p99_ms = 0;
  std::vector<std::string> slo_ladder;  // image weights, most accurate first (default: slo_ladder_of)
  std::vector<double> slo_accuracy;     // each rung's validation accuracy (focus plan), for the metrics
  double slo_window_ms = 1000;          // the controller's decision window
  std::string tls_cert, tls_key;     // both set: HTTPS
  // The human review queue (serve/review_desk.hpp, docs/REVIEW.md): off unless review_store is set.
  std::string review_store;          // sqlite:///path.db | postgresql://...
  double review_threshold = 0.2;     // defer a classification whose error score is above it
  double review_capacity_per_hour = 0;  // > 0: the capacity controller sets the threshold
  int64_t review_queue_cap = 1000;   // items waiting at most (then the model answers, flagged)
  double review_audit_share = 0;     // share of the auto-accepted also sent to review
  int64_t review_lease_ms = 300000;  // a reviewer's claim on an item
  int64_t review_undo_window_ms = 600000;  // a reviewer may take back their label this long (U)
  int64_t review_ttl_ms = 0;         // > 0: a review item unlabelled this long expires
  std::string review_webhook;        // http://HOST[:PORT]/PATH: closed tickets are POSTed there
  std::string review_webhook_secret;  // sent as Authorization: Bearer
  bool review_evidence = true;       // queue each deferred item with its explanation overlay
};

template <class V>
void visit_fields(ServeOptions& o, V&& v) {
  v("model", o.models, "a model to serve, NAME=FILE (repeat for more)");
  v("host", o.host, "address to listen on");
  v("port", o.port, "port to listen on (0 = any free port)");
  v("keys", o.keys, "API key file (focus keys create)");
  v("max-batch", o.max_batch, "items (images, sentences) per batch");
  v("max-queue-delay-ms", o.max_queue_delay_ms,
    "how long a queued request may wait for others to batch with (0: batch what has queued)");
  v("busy-queue-delay-ms", o.busy_queue_delay_ms,
    "how long a queued request may wait for others while another batch is computing (the server "
    "is busy): batches of a few cost less per item than batches of one; an idle server never waits");
  v("queue-capacity", o.queue_capacity,
    "requests in progress per model (being decoded, queued or computed); more get 429 unparsed");
  v("timeout-ms", o.timeout_ms, "default deadline: a request not started by then gets 504");
  v("max-timeout-ms", o.max_timeout_ms, "the largest ?timeout_ms= a client may ask for");
  v("max-body-bytes", o.max_body_bytes, "largest request body (413 above)");
  v("max-items", o.max_items, "images or sentences per request (413 above)");
  v("max-image-pixels", o.max_image_pixels,
    "pixels of a request's images together, from their headers before decoding (413 above)");
  v("max-text-bytes", o.max_text_bytes, "bytes of one text (413 above)");
  v("http-threads", o.http_threads,
    "handler threads: requests handled at once, an admitted request holds one while it waits for "
    "its batch (0 = the models' queue capacities + 2 per core); connections need none");
  v("max-connections", o.max_connections, "open connections at once (more are closed at once)");
  v("threads", o.threads, "compute threads (0 = FOCUS_NUM_THREADS, else the cores; one fewer with --executors 1)");
  v("executors", o.executors,
    "batch executors: batches computing at once, each on threads / executors threads and its own "
    "copy of an image model (0 = one per compute thread; 1 = the reference policy: one executor, "
    "each batch on all the compute threads)");
  v("http-nice", o.http_nice,
    "scheduling priority of the handler threads below the compute threads (0-19): under "
    "overload the cores go to batches first");
  v("drain-timeout-ms", o.drain_timeout_ms, "on SIGTERM, how long admitted work may take to finish");
  v("poll-ms", o.poll_ms, "reload a model when its file changes, checking this often (0 = off)");
  v("retry-after-s", o.retry_after_s, "Retry-After of a 429 for a full queue");
  v("access-log", o.access_log, "JSON-lines access log file (- = stderr)");
  v("log-inputs", o.log_inputs, "write text inputs to the access log, masked");
  v("weights", o.weights, "seq2seq inference weights: f32 | bf16 | int8 (every Linear and the output projection)");
  v("image-weights", o.image_weights,
    "image models' inference weights: f32 | bf16 (AVX512-BF16 / AMX CPUs for cnn_se) | int8 (the "
    "file's int8 plan, else every layer) | auto (int8 when the file has a plan from focus quantize)");
  v("slo-p99-ms", o.slo_p99_ms,
    "latency SLO: > 0 lets a controller step image models down --slo-ladder (to faster variants) "
    "when a window's p99 nears it, and back up when load falls (0 = off)");
  v("slo-ladder", o.slo_ladder, "the SLO's variants, image weights from most accurate to fastest "
    "(default: --image-weights then int8, the faster variant of every image model)");
  v("slo-accuracy", o.slo_accuracy, "each rung's validation accuracy (from focus plan), for "
    "focus_slo_effective_accuracy");
  v("slo-window-ms", o.slo_window_ms, "the SLO controller's decision window");
  v("tls-cert", o.tls_cert, "TLS certificate (PEM); with --tls-key, serve HTTPS");
  v("tls-key", o.tls_key, "TLS private key (PEM)");
  v("review-store", o.review_store,
    "human review queue (sqlite:///path.db or postgresql://...): classify defers uncertain images to it");
  v("review-threshold", o.review_threshold,
    "defer a classification whose error score (1 - calibrated top probability) is above this");
  v("review-capacity-per-hour", o.review_capacity_per_hour,
    "items the reviewers answer per hour: > 0 lets the capacity controller set the threshold");
  v("review-queue-cap", o.review_queue_cap, "review items waiting at most; beyond, the model answers, flagged");
  v("review-audit-share", o.review_audit_share,
    "share of auto-accepted classifications also sent to review (unbiased error estimate)");
  v("review-lease-ms", o.review_lease_ms, "how long a reviewer's claim on an item holds");
  v("review-undo-window-ms", o.review_undo_window_ms,
    "how long after labelling a reviewer may take the label back (U on the reviewer page)");
  v("review-ttl-ms", o.review_ttl_ms,
    "an item nobody labelled within this time expires: no longer handed out, its ticket says "
    "\"expired\" with the model's answer (0 = never)");
  v("review-webhook", o.review_webhook,
    "POST each ticket a reviewer closes, as JSON, to this http://HOST[:PORT]/PATH (3 tries, async)");
  v("review-webhook-secret", o.review_webhook_secret, "sent to the webhook as Authorization: Bearer");
  v("review-evidence", o.review_evidence,
    "compute each deferred item's explanation (rollout or Grad-CAM overlay) when it is queued");
}

// Reads a JSON object of fields into o; ValueError naming an unknown key or a bad type.
void apply_json(ServeOptions& o, const nlohmann::json& j, const std::string& source);
void load_config_file(ServeOptions& o, const std::string& path);
nlohmann::json to_json(const ServeOptions& o);
// Checks ranges and the NAME=FILE list; ValueError naming the field.
void validate(const ServeOptions& o);
// The image variants the SLO controller moves along: --slo-ladder, else --image-weights and then
// int8 (just --image-weights when that is int8 or auto).
std::vector<std::string> slo_ladder_of(const ServeOptions& o);
// "NAME=FILE" -> {NAME, FILE}; ValueError for a malformed entry.
std::pair<std::string, std::string> split_model_arg(const std::string& arg);

}  // namespace focus
