// The labels.jsonl export of the review queue and its reader for training (reviewed_labels.hpp).
#include "focus/review/reviewed_labels.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "focus/data/png.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/io/base64.hpp"

namespace focus::review {

using json = nlohmann::json;

json labelled_item_json(const QueueItem& it) {
  json scores = json::parse(it.data.scores, nullptr, /*allow_exceptions=*/false);
  if (scores.is_discarded()) scores = it.data.scores;  // stored unchecked by an older writer: keep the text
  return {{"id", it.id},
          {"request_id", it.data.request_id},
          {"model", it.data.model},
          {"model_version", it.data.model_version},
          {"content_type", it.data.content_type},
          {"input_base64", base64_encode(it.data.input)},
          {"prediction", it.data.prediction},
          {"scores", scores},
          {"uncertainty", it.data.uncertainty},
          {"priority", it.data.priority},
          {"created_ms", it.created_ms},
          {"reviewer", it.reviewer},
          {"label", it.label},
          {"labelled_ms", it.labelled_ms},
          {"time_spent_ms", it.time_spent_ms},
          {"label_seq", it.label_seq}};
}

ExportSummary export_labels(QueueStore& store, const std::string& path, int64_t cursor, int64_t page) {
  AtomicFile out(path);
  ExportSummary s;
  s.next_cursor = cursor;
  for (;;) {
    const ExportPage p = store.labelled_since(s.next_cursor, page);
    if (p.items.empty()) break;
    for (const QueueItem& it : p.items) out.write(labelled_item_json(it).dump() + "\n");
    s.items += int64_t(p.items.size());
    s.next_cursor = p.next_cursor;
  }
  out.commit();
  return s;
}

namespace {

int64_t class_index(const std::string& label, const std::vector<std::string>& names) {
  const auto it = std::find(names.begin(), names.end(), label);
  if (it != names.end()) return int64_t(it - names.begin());
  if (!label.empty() && label.size() < 10 && std::all_of(label.begin(), label.end(), ::isdigit)) {
    const int64_t k = std::stoll(label);
    if (k < int64_t(names.size())) return k;
  }
  return -1;
}

// One labelled item into `r`: skipped (counted) unless an image/png; else decoded, made gray and
// resized, its label mapped to a class.
void add_item(ReviewedImages& r, const std::string& content_type, const std::string& label,
              const std::string& png, const std::string& where,
              const std::vector<std::string>& class_names, int64_t height, int64_t width) {
  if (content_type != "image/png") {
    ++r.skipped;
    return;
  }
  const int64_t k = class_index(label, class_names);
  FOCUS_CHECK(k >= 0, FormatError, "{}: the label '{}' is not one of the model's {} classes", where, label,
              class_names.size());
  const Image img = resize(to_gray(decode_png(png, where, 4096 * 4096)), height, width);
  for (float v : img.data) r.pixels.push_back(uint8_t(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)));
  r.labels.push_back(k);
}

}  // namespace

ReviewedImages read_reviewed_images(const std::string& path, const std::vector<std::string>& class_names,
                                    int64_t height, int64_t width) {
  std::ifstream f(path);
  FOCUS_CHECK(f, IOError, "cannot read the reviewed labels '{}'", path);
  ReviewedImages r;
  std::map<int64_t, size_t> seen;  // item id -> its row: a later line (an undone label relabelled) supersedes
  int64_t lineno = 0;
  for (std::string line; std::getline(f, line);) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path, lineno);
    const json j = json::parse(line, nullptr, false);
    FOCUS_CHECK(j.is_object(), FormatError, "{}: not a JSON object", where);
    for (const char* key : {"content_type", "label"})
      FOCUS_CHECK(j.contains(key) && j[key].is_string(), FormatError, "{}: no string field '{}'", where, key);
    const std::string content_type = j["content_type"].get<std::string>();
    std::string bytes;
    if (content_type == "image/png") {
      FOCUS_CHECK(j.contains("input_base64") && j["input_base64"].is_string(), FormatError,
                  "{}: no string field 'input_base64'", where);
      if (j.contains("id") && j["id"].is_number_integer()) {
        const int64_t id = j["id"].get<int64_t>();
        if (const auto at = seen.find(id); at != seen.end()) {  // relabelled after an undo: the later label wins
          const std::string label = j["label"].get<std::string>();
          const int64_t k = class_index(label, class_names);
          FOCUS_CHECK(k >= 0, FormatError, "{}: the label '{}' is not one of the model's {} classes", where, label,
                      class_names.size());
          r.labels[at->second] = k;
          ++r.superseded;
          continue;
        }
        seen.emplace(id, r.labels.size());
      }
      bytes = base64_decode(j["input_base64"].get<std::string>(), where + ": input_base64");
    }
    add_item(r, content_type, j["label"].get<std::string>(), bytes, where, class_names, height, width);
  }
  return r;
}

ReviewedImages read_reviewed_images(QueueStore& store, const std::string& name,
                                    const std::vector<std::string>& class_names, int64_t height,
                                    int64_t width) {
  ReviewedImages r;
  for (int64_t cursor = 0;;) {
    const ExportPage p = store.labelled_since(cursor, 500);
    if (p.items.empty()) break;
    for (const QueueItem& it : p.items)
      add_item(r, it.data.content_type, it.label, it.data.input, fmt::format("{} item {}", name, it.id),
               class_names, height, width);
    cursor = p.next_cursor;
  }
  return r;
}

ReviewedImages load_reviewed_images(const std::string& source, const std::vector<std::string>& class_names,
                                    int64_t height, int64_t width) {
  namespace fs = std::filesystem;
  auto ends_with = [&](std::string_view suffix) {
    return source.size() >= suffix.size() && source.compare(source.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const bool postgres = source.rfind("postgresql://", 0) == 0 || source.rfind("postgres://", 0) == 0;
  if (!postgres) {
    const std::string path = source.rfind("sqlite://", 0) == 0 ? source.substr(9) : source;
    FOCUS_CHECK(fs::is_regular_file(path), IOError, "no reviewed labels at '{}' (not a file)", source);
    bool jsonl = ends_with(".jsonl") || ends_with(".json");
    if (!jsonl) {
      std::ifstream f(path, std::ios::binary);
      char c = 0;
      jsonl = f.get(c) && c == '{';
    }
    if (jsonl) return read_reviewed_images(path, class_names, height, width);
  }
  const auto store = open_queue_store(source);
  // (a PostgreSQL URL may hold a password: messages name the backend, not the URL)
  return read_reviewed_images(*store, postgres ? std::string("the PostgreSQL review store") : source,
                              class_names, height, width);
}

}  // namespace focus::review
