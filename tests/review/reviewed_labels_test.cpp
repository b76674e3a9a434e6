// The labels.jsonl export and its reader for training: a queue's labelled items exported in label
// order with their inputs (base64) and scores; PNG items read back as the exact 8-bit gray pixels
// with class indices (by name or by index), text items skipped, and bad lines refused naming the
// file and line; the same items read straight from a store (`focus train --reviewed`), and the
// source picked from its name (export or store), a missing store never created.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/data/png.hpp"
#include "focus/io/base64.hpp"
#include "focus/review/queue_store.hpp"
#include "focus/review/reviewed_labels.hpp"
#include "support/expect_error.hpp"

namespace focus::review {
namespace {

using focus::testing::expect_error;
using json = nlohmann::json;

const std::vector<std::string> kNames = {"zero", "one", "two"};

// A 4x3 gray image whose pixel (y, x) is 20 (3 y + x) / 255.
Image ramp() {
  Image img = make_image(1, 4, 3);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(20 * i) / 255.f;
  return img;
}

TEST(ReviewedLabels, ExportThenReadBack) {
  const std::string dir = ::testing::TempDir();
  auto q = open_queue_store(dir + "labels.db");
  const std::string png = encode_png(ramp());
  NewItem a{.request_id = "a", .content_type = "image/png", .input = png, .prediction = "one", .scores = R"({"p":[0.2,0.7,0.1]})"};
  NewItem b{.request_id = "b", .content_type = "text/plain", .input = "some text"};
  NewItem c{.request_id = "c", .content_type = "image/png", .input = png};
  const int64_t ia = q->enqueue(a).id, ib = q->enqueue(b).id, ic = q->enqueue(c).id;
  q->enqueue(NewItem{.request_id = "d", .content_type = "image/png", .input = png});  // never labelled
  q->label(ic, "alice", "2");  // an index
  q->label(ib, "alice", "one");
  q->label(ia, "bob", "zero");
  const ExportSummary s = export_labels(*q, dir + "labels.jsonl", 0, 2);  // pages of 2
  EXPECT_EQ(s.items, 3);
  EXPECT_EQ(s.next_cursor, 3);
  std::ifstream f(dir + "labels.jsonl");
  std::vector<json> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].at("id"), ic);
  EXPECT_EQ(lines[2].at("reviewer"), "bob");
  EXPECT_EQ(lines[2].at("scores").at("p")[1], 0.7);
  EXPECT_EQ(base64_decode(lines[2].at("input_base64").get<std::string>()), png);
  // From a cursor: only what came after.
  EXPECT_EQ(export_labels(*q, dir + "later.jsonl", 2).items, 1);

  const ReviewedImages r = read_reviewed_images(dir + "labels.jsonl", kNames, 4, 3);
  ASSERT_EQ(r.size(), 2);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.labels, (std::vector<int64_t>{2, 0}));
  ASSERT_EQ(r.pixels.size(), 24u);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(r.pixels[i], 20 * i);
    EXPECT_EQ(r.pixels[12 + i], 20 * i);
  }
}

TEST(ReviewedLabels, AnUndoneLabelGivenAgainSupersedesTheExportedOne) {
  const std::string dir = ::testing::TempDir();
  std::filesystem::remove(dir + "undo.db");
  auto q = open_queue_store(dir + "undo.db");
  const std::string png = encode_png(ramp());
  const int64_t a = q->enqueue(NewItem{.request_id = "a", .content_type = "image/png", .input = png}).id;
  const int64_t b = q->enqueue(NewItem{.request_id = "b", .content_type = "image/png", .input = png}).id;
  q->label(a, "alice", "one");
  q->label(b, "alice", "two");
  const ExportSummary first = export_labels(*q, dir + "undo1.jsonl");
  q->undo_label(a, "alice", 60000, 60000);
  q->label(a, "alice", "zero");
  const ExportSummary later = export_labels(*q, dir + "undo2.jsonl", first.next_cursor);
  EXPECT_EQ(later.items, 1);
  // Both exports concatenated, as a consumer appending pages would keep them.
  std::ofstream(dir + "undo_all.jsonl") << std::ifstream(dir + "undo1.jsonl").rdbuf()
                                        << std::ifstream(dir + "undo2.jsonl").rdbuf();
  const ReviewedImages r = read_reviewed_images(dir + "undo_all.jsonl", kNames, 4, 3);
  EXPECT_EQ(r.size(), 2);
  EXPECT_EQ(r.superseded, 1);
  EXPECT_EQ(r.labels, (std::vector<int64_t>{0, 2}));  // item a's later label, then b's
}

TEST(ReviewedLabels, BadLinesNameFileAndLine) {
  const std::string p = ::testing::TempDir() + "bad.jsonl";
  const std::string good = json{{"content_type", "image/png"}, {"label", "one"},
                                {"input_base64", base64_encode(encode_png(ramp()))}}.dump();
  auto write = [&](const std::string& second) { std::ofstream(p) << good << "\n\n" << second << "\n"; };
  write("[1, 2]");
  expect_error<FormatError>([&] { read_reviewed_images(p, kNames, 4, 3); }, {"bad.jsonl:3", "not a JSON object"});
  write(R"({"content_type": "image/png", "label": "three", "input_base64": ""})");
  expect_error<FormatError>([&] { read_reviewed_images(p, kNames, 4, 3); }, {"bad.jsonl:3", "'three'", "3 classes"});
  write(R"({"content_type": "image/png", "label": "5", "input_base64": ""})");
  expect_error<FormatError>([&] { read_reviewed_images(p, kNames, 4, 3); }, {"bad.jsonl:3", "'5'"});
  write(R"({"content_type": "image/png", "label": "one"})");
  expect_error<FormatError>([&] { read_reviewed_images(p, kNames, 4, 3); }, {"bad.jsonl:3", "input_base64"});
  write(R"({"content_type": "image/png", "label": "one", "input_base64": "aGVsbG8="})");  // "hello"
  expect_error<FormatError>([&] { read_reviewed_images(p, kNames, 4, 3); }, {"bad.jsonl:3"});
  expect_error<IOError>([&] { read_reviewed_images(p + ".missing", kNames); }, {"bad.jsonl.missing"});
}

TEST(ReviewedLabels, FromAStoreAndFromEitherSource) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "reviewed_source/";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string db = dir + "queue.db";
  {
    auto q = open_queue_store(db);
    const std::string png = encode_png(ramp());
    const int64_t a = q->enqueue(NewItem{.request_id = "a", .content_type = "image/png", .input = png}).id;
    const int64_t b = q->enqueue(NewItem{.request_id = "b", .content_type = "text/plain", .input = "x"}).id;
    const int64_t c = q->enqueue(NewItem{.request_id = "c", .content_type = "image/png", .input = png}).id;
    q->enqueue(NewItem{.request_id = "d", .content_type = "image/png", .input = png});  // never labelled
    q->label(c, "alice", "two");
    q->label(b, "alice", "one");
    q->label(a, "bob", "1");
    export_labels(*q, dir + "labels.jsonl");
    std::ofstream(dir + "labels.export") << std::ifstream(dir + "labels.jsonl").rdbuf();  // no suffix
  }
  auto store = open_queue_store(db);
  const ReviewedImages direct = read_reviewed_images(*store, db, kNames, 4, 3);
  EXPECT_EQ(direct.labels, (std::vector<int64_t>{2, 1}));  // label order, text skipped
  EXPECT_EQ(direct.skipped, 1);
  for (const std::string& src : {db, "sqlite://" + db, dir + "labels.jsonl", dir + "labels.export"}) {
    const ReviewedImages r = load_reviewed_images(src, kNames, 4, 3);
    EXPECT_EQ(r.labels, direct.labels) << src;
    EXPECT_EQ(r.pixels, direct.pixels) << src;
    EXPECT_EQ(r.skipped, 1) << src;
  }
  // A missing store is an error, not a new empty database.
  expect_error<IOError>([&] { load_reviewed_images(dir + "none.db", kNames); }, {"none.db", "not a file"});
  EXPECT_FALSE(fs::exists(dir + "none.db"));
  expect_error<IOError>([&] { load_reviewed_images("sqlite://" + dir + "none.db", kNames); }, {"none.db"});
  // A file that is neither an export nor a database.
  std::ofstream(dir + "junk.db") << "this is not a database, it is a text file of some length..........";
  EXPECT_THROW(load_reviewed_images(dir + "junk.db", kNames), QueueStoreError);
  // An item whose label names no class: the store and the item's id.
  store->label(store->enqueue(NewItem{.request_id = "e", .content_type = "image/png",
                                      .input = encode_png(ramp())}).id, "bob", "Hat");
  expect_error<FormatError>([&] { load_reviewed_images(db, kNames, 4, 3); }, {"queue.db item", "'Hat'"});
}

}  // namespace
}  // namespace focus::review
