// Reviewed labels as a file, and back into training. `focus review export` writes the labelled
// items of a queue (queue_store.hpp) as JSON lines, atomically; `focus train --extra-labels F`
// reads the image items of such a file back as training images; `focus train --resume CKPT
// --reviewed SOURCE` (train/fine_tune.hpp) reads them from such a file or straight from a store.
//
// One line per labelled item, in label order:
//   {"id": 7, "request_id": "req-1", "model": "cnn-se", "model_version": "sha256:..",
//    "content_type": "image/png", "input_base64": "iVBOR...", "prediction": "Coat",
//    "scores": {...}, "uncertainty": 0.41, "priority": 0.41, "created_ms": ..,
//    "reviewer": "alice", "label": "Pullover", "labelled_ms": .., "time_spent_ms": 2300,
//    "label_seq": 3}
// (`scores` is the JSON the item was queued with.) The label is a class name, or a class index
// written as a decimal integer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/review/queue_store.hpp"

namespace focus::review {

nlohmann::json labelled_item_json(const QueueItem& item);

struct ExportSummary {
  int64_t items = 0;        // lines written
  int64_t next_cursor = 0;  // the label_seq of the last one (the cursor for a later export)
};
// Writes every item labelled after `cursor` to `path` as JSON lines, atomically (the file is
// complete or untouched), paging through the store `page` items at a time.
ExportSummary export_labels(QueueStore& store, const std::string& path, int64_t cursor = 0,
                            int64_t page = 500);

// Reviewed images ready to join an image dataset: (N, 1, height, width) 8-bit gray pixels.
struct ReviewedImages {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;  // class indices
  int64_t skipped = 0;          // lines whose content type is not image/png (text items)
  int64_t superseded = 0;       // lines that relabelled an item listed before (its later label wins)
  int64_t size() const { return int64_t(labels.size()); }
};
// Reads a labels.jsonl: each image/png item's input is decoded, made gray and resized to
// (height, width) as the server's predictor sees it; its label must name one of `class_names`
// (or be an index below their count). An item listed twice (its label undone and given again after
// an export) keeps its later label. FormatError naming the file and line for a bad line, an
// undecodable image or an unknown label; IOError when the file cannot be read.
ReviewedImages read_reviewed_images(const std::string& path, const std::vector<std::string>& class_names,
                                    int64_t height = 28, int64_t width = 28);

// The image items among every labelled item of `store`, in label order, decoded and checked as
// read_reviewed_images does (errors name `name` and the item's id).
ReviewedImages read_reviewed_images(QueueStore& store, const std::string& name,
                                    const std::vector<std::string>& class_names, int64_t height = 28,
                                    int64_t width = 28);
// `source` is a labels.jsonl export (a name ending in .jsonl or .json, or a file that starts with
// '{') or a queue store as open_queue_store takes it (a postgresql:// URL, a sqlite:// URL or a
// plain SQLite path). IOError for a missing file (a SQLite store is never created here);
// QueueStoreError for a file that is not a store; FormatError as the readers above.
ReviewedImages load_reviewed_images(const std::string& source, const std::vector<std::string>& class_names,
                                    int64_t height = 28, int64_t width = 28);

}  // namespace focus::review
