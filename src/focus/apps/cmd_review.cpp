// `focus review enqueue|next|label|release|stats|export --store URL`: the durable review queue
// (review/queue_store.hpp) from the command line, so an operator can fill, work and drain a queue
// without the server. URL: sqlite:///path.db (or a plain path) or postgresql://user@host:port/db.
// Every subcommand prints one JSON object on stdout (stats: text unless --json); errors (a label
// conflict, an unknown id, a database failure) are one line on stderr and exit code 1.
//   focus review enqueue --store sqlite:///q.db --request-id r1 --input shirt.png --prediction Coat --priority 0.4
//   focus review next --store sqlite:///q.db --reviewer alice --save-input item.png
//   focus review label --store sqlite:///q.db --id 1 --reviewer alice --label Shirt
//   focus review export --store sqlite:///q.db --out labels.jsonl   (then focus train --extra-labels)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/review/queue_store.hpp"
#include "focus/review/reviewed_labels.hpp"

namespace focus {

namespace {

using json = nlohmann::json;
using namespace focus::review;

struct ReviewOpts {
  std::string store, request_id, input, content_type, model, model_version, prediction, scores = "{}";
  std::string reviewer, label, save_input, out;
  double uncertainty = 0, priority = 0, lease_s = 300;
  int64_t id = 0, since = 0;
  bool json = false;
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f, IOError, "cannot read the input file '{}'", path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string content_type_of(const std::string& path) {
  auto ends = [&](const char* ext) {
    const std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".png") || ends(".PNG")) return "image/png";
  if (ends(".txt")) return "text/plain";
  return "application/octet-stream";
}

// An item's fields without its input bytes (their size instead).
json item_summary(const QueueItem& it) {
  json j = labelled_item_json(it);
  j.erase("input_base64");
  j["input_bytes"] = it.data.input.size();
  j["state"] = item_state_name(it.state);
  j["claimed_ms"] = it.claimed_ms;
  j["lease_until_ms"] = it.lease_until_ms;
  return j;
}

void print(const json& j) { std::printf("%s\n", j.dump().c_str()); }

int run_enqueue(const ReviewOpts& o) {
  NewItem it;
  it.request_id = o.request_id;
  it.model = o.model;
  it.model_version = o.model_version;
  it.input = read_bytes(o.input);
  it.content_type = o.content_type.empty() ? content_type_of(o.input) : o.content_type;
  it.prediction = o.prediction;
  it.scores = o.scores;
  it.uncertainty = o.uncertainty;
  it.priority = o.priority;
  const EnqueueResult r = open_queue_store(o.store)->enqueue(it);
  print({{"id", r.id}, {"created", r.created}});
  return 0;
}

int run_next(const ReviewOpts& o) {
  FOCUS_CHECK(o.lease_s > 0 && o.lease_s < 1e9, ValueError, "--lease-s must be positive, got {}", o.lease_s);
  const auto it = open_queue_store(o.store)->claim(o.reviewer, int64_t(o.lease_s * 1000));
  if (!it) {
    print(json(nullptr));
    return 0;
  }
  if (!o.save_input.empty()) write_file_atomic(o.save_input, it->data.input);
  print(item_summary(*it));
  return 0;
}

int run_label(const ReviewOpts& o) {
  const bool recorded = open_queue_store(o.store)->label(o.id, o.reviewer, o.label);
  print({{"id", o.id}, {"label", o.label}, {"recorded", recorded}});
  return 0;
}

int run_release(const ReviewOpts& o) {
  const bool released = open_queue_store(o.store)->release(o.id, o.reviewer);
  print({{"id", o.id}, {"released", released}});
  return 0;
}

int run_stats(const ReviewOpts& o) {
  auto q = open_queue_store(o.store);
  const QueueCounts n = q->counts();
  const QueueCapacity c = q->capacity();
  const json j = {{"backend", q->backend()}, {"schema_version", q->schema_version()},
                  {"pending", n.pending}, {"claimed", n.claimed}, {"done", n.done},
                  {"oldest_waiting_s", c.oldest_age_s}, {"labels_last_hour", c.labels_last_hour}};
  if (o.json) {
    print(j);
  } else {
    std::printf("%s queue (schema %d): %lld waiting, %lld claimed, %lld labelled; oldest waiting %.0f s; "
                "%.0f labels in the last hour\n",
                q->backend().c_str(), q->schema_version(), (long long)n.pending, (long long)n.claimed,
                (long long)n.done, c.oldest_age_s, c.labels_last_hour);
  }
  return 0;
}

int run_export(const ReviewOpts& o) {
  auto q = open_queue_store(o.store);
  const ExportSummary s = export_labels(*q, o.out, o.since);
  std::fprintf(stderr, "focus: %lld labelled items written to %s\n", (long long)s.items, o.out.c_str());
  print({{"items", s.items}, {"out", o.out}, {"next_cursor", s.next_cursor}});
  return 0;
}

}  // namespace

Command add_review_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("review", "the durable human-review queue (SQLite or PostgreSQL): "
                                               "enqueue, next, label, release, stats, export");
  sub->require_subcommand(1);
  auto o = std::make_shared<ReviewOpts>();
  auto store = [&](CLI::App* s) {
    s->add_option("--store", o->store, "queue URL: sqlite:///path.db (or a path) | postgresql://user@host:port/db")
        ->required();
  };
  CLI::App* enq = sub->add_subcommand("enqueue", "queue an item for review (idempotent by --request-id)");
  store(enq);
  enq->add_option("--request-id", o->request_id, "idempotency key")->required();
  enq->add_option("--input", o->input, "the input file (a PNG image, text...)")->required();
  enq->add_option("--content-type", o->content_type, "the input's type (default by extension: .png image/png)");
  enq->add_option("--model", o->model, "model name");
  enq->add_option("--model-version", o->model_version, "model version (e.g. its file's SHA-256)");
  enq->add_option("--prediction", o->prediction, "the model's answer");
  enq->add_option("--scores", o->scores, "the model's scores as JSON (top-k, probabilities)")->capture_default_str();
  enq->add_option("--uncertainty", o->uncertainty, "error score in [0, 1]");
  enq->add_option("--priority", o->priority, "higher is reviewed first");
  CLI::App* next = sub->add_subcommand("next", "claim the next item (highest priority, then oldest)");
  store(next);
  next->add_option("--reviewer", o->reviewer, "who claims it")->required();
  next->add_option("--lease-s", o->lease_s, "seconds until an unanswered claim returns to the queue")
      ->capture_default_str();
  next->add_option("--save-input", o->save_input, "write the item's input bytes to this file");
  CLI::App* lab = sub->add_subcommand("label", "submit a label (the first label wins; a repeat is a no-op)");
  store(lab);
  lab->add_option("--id", o->id, "item id")->required();
  lab->add_option("--reviewer", o->reviewer, "who labels it")->required();
  lab->add_option("--label", o->label, "the label (a class name)")->required();
  CLI::App* rel = sub->add_subcommand("release", "give a claimed item back to the queue");
  store(rel);
  rel->add_option("--id", o->id, "item id")->required();
  rel->add_option("--reviewer", o->reviewer, "who holds the claim")->required();
  CLI::App* stats = sub->add_subcommand("stats", "counts by state and capacity figures");
  store(stats);
  stats->add_flag("--json", o->json, "print JSON");
  CLI::App* exp = sub->add_subcommand("export", "write the labelled items as JSON lines (atomically)");
  store(exp);
  exp->add_option("--out", o->out, "output file, e.g. labels.jsonl (for focus train --extra-labels)")->required();
  exp->add_option("--since", o->since, "export cursor: labels after this label_seq (0 = all)");
  return [sub, o]() -> int {
    if (sub->got_subcommand("enqueue")) return run_enqueue(*o);
    if (sub->got_subcommand("next")) return run_next(*o);
    if (sub->got_subcommand("label")) return run_label(*o);
    if (sub->got_subcommand("release")) return run_release(*o);
    if (sub->got_subcommand("stats")) return run_stats(*o);
    return run_export(*o);
  };
}

}  // namespace focus
