// IDX reading: hand-written headers (plain and gzipped) read back, every corruption is a
// FormatError naming the file, a missing file is an IOError with the install hint; the real
// Debian Fashion-MNIST files load with the known counts and pixel statistics when installed.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

#include "data/temp_dir.hpp"
#include "focus/data/dataset.hpp"
#include "focus/data/idx.hpp"

using namespace focus;
using focus::testing::read_bytes;
using focus::testing::TempDir;
using focus::testing::throws_with;
using focus::testing::write_bytes;

namespace {

// A (2, 2, 3) image file written byte by byte, independent of write_idx.
std::vector<uint8_t> image_file_bytes() {
  std::vector<uint8_t> b = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (int i = 0; i < 12; ++i) b.push_back(static_cast<uint8_t>(10 * i + 1));
  return b;
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& b) {
  gzFile g = gzopen(path.c_str(), "wb");
  ASSERT_TRUE(g);
  ASSERT_EQ(gzwrite(g, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  ASSERT_EQ(gzclose(g), Z_OK);
}

}  // namespace

TEST(Idx, ReadsHandWrittenPlainAndGzip) {
  TempDir dir;
  const std::string plain = dir.file("img.idx"), gz = dir.file("img.idx.gz");
  write_bytes(plain, image_file_bytes());
  write_gzip(gz, image_file_bytes());
  for (const std::string& p : {plain, gz}) {
    const IdxArray a = read_idx_images(p);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 2, 3})) << p;
    ASSERT_EQ(a.data.size(), 12u);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(a.data[i], 10 * i + 1);
  }
  // Concatenated gzip members are one valid gzip file.
  std::vector<uint8_t> bytes = image_file_bytes();
  write_gzip(dir.file("a.gz"), {bytes.begin(), bytes.begin() + 7});
  write_gzip(dir.file("b.gz"), {bytes.begin() + 7, bytes.end()});
  std::vector<uint8_t> two = read_bytes(dir.file("a.gz")), second = read_bytes(dir.file("b.gz"));
  two.insert(two.end(), second.begin(), second.end());
  write_bytes(dir.file("two.gz"), two);
  EXPECT_EQ(read_idx(dir.file("two.gz")).data, read_idx(plain).data);
}

TEST(Idx, WriteReadRoundTrip) {
  TempDir dir;
  std::vector<uint8_t> labels;
  for (int i = 0; i < 300; ++i) labels.push_back(static_cast<uint8_t>((i * 7) % 10));
  for (bool gzip : {false, true}) {
    const std::string p = dir.file(gzip ? "l.gz" : "l");
    write_idx(p, {300}, labels, gzip);
    const IdxArray a = read_idx_labels(p, 10);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{300}));
    EXPECT_EQ(a.data, labels);
  }
  // The writer's header is byte-for-byte the documented one.
  const std::vector<uint8_t> ref = image_file_bytes();
  write_idx(dir.file("h"), {2, 2, 3}, {ref.begin() + 16, ref.end()}, false);
  EXPECT_EQ(read_bytes(dir.file("h")), ref);
  EXPECT_THROW(write_idx(dir.file("x"), {2, 3}, std::vector<uint8_t>(5), false), ShapeError);
}

TEST(Idx, EveryCorruptionIsAFormatErrorNamingTheFile) {
  TempDir dir;
  const std::vector<uint8_t> good = image_file_bytes();
  auto variant = [&](const std::string& name, std::vector<uint8_t> b) {
    const std::string p = dir.file(name);
    write_bytes(p, b);
    return p;
  };
  auto bad = [&](const std::string& p, const std::string& what) {
    EXPECT_TRUE(throws_with<FormatError>([&] { read_idx_images(p); }, p)) << what;
  };
  bad(variant("short_payload", {good.begin(), good.end() - 1}), "payload one byte short");
  auto extra = good;
  extra.push_back(0);
  bad(variant("extra_byte", extra), "one byte too many");
  auto magic = good;
  magic[0] = 1;
  bad(variant("bad_magic", magic), "bad magic");
  auto type = good;
  type[2] = 0x0D;  // float elements
  bad(variant("float_type", type), "unsupported element type");
  auto rank = good;
  rank[3] = 0;
  bad(variant("rank0", rank), "rank 0");
  bad(variant("short_header", {good.begin(), good.begin() + 9}), "header cut in a dim");
  bad(variant("tiny", {0, 0}), "two bytes");
  bad(variant("empty", {}), "empty file");
  // A label file where an image file is expected, and an out-of-range label.
  const std::string labels = dir.file("labels");
  write_idx(labels, {3}, {1, 2, 12}, false);
  bad(labels, "labels given as images");
  EXPECT_TRUE(throws_with<FormatError>([&] { read_idx_labels(labels, 10); }, labels));
  EXPECT_NO_THROW(read_idx_labels(labels, 13));

  // gzip: truncated stream, corrupt deflate data, trailing garbage.
  write_gzip(dir.file("full.gz"), good);
  const std::vector<uint8_t> gz = read_bytes(dir.file("full.gz"));
  bad(variant("cut.gz", {gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)}),
      "gzip cut in half");
  bad(variant("cut_trailer.gz", {gz.begin(), gz.end() - 3}), "gzip trailer cut");
  auto flipped = gz;
  for (size_t i = 12; i < flipped.size() - 8; ++i) flipped[i] ^= 0x5A;
  bad(variant("flipped.gz", flipped), "corrupt deflate data");
  auto trailing = gz;
  trailing.push_back('x');
  trailing.push_back('y');
  bad(variant("trailing.gz", trailing), "garbage after the gzip stream");
}

TEST(Idx, MissingFilesAreIOErrorsWithInstallHint) {
  TempDir dir;
  EXPECT_TRUE(throws_with<IOError>([&] { read_idx(dir.file("nope")); }, dir.file("nope")));
  EXPECT_TRUE(throws_with<IOError>([&] { load_fashion_mnist(dir.str(), Split::Train); },
                                   "apt-get install dataset-fashion-mnist"));
}

TEST(Idx, FashionLoaderChecksImageAndLabelCounts) {
  TempDir dir;
  write_idx(dir.file("t10k-images-idx3-ubyte.gz"), {3, 28, 28}, std::vector<uint8_t>(3 * 784, 7),
            true);
  write_idx(dir.file("t10k-labels-idx1-ubyte"), {4}, {0, 1, 2, 3}, false);  // plain, one too many
  EXPECT_TRUE(throws_with<FormatError>([&] { load_fashion_mnist(dir.str(), Split::Test); },
                                       dir.file("t10k-labels-idx1-ubyte")));
  write_idx(dir.file("t10k-labels-idx1-ubyte"), {3}, {9, 0, 4}, false);
  const ImageDataset ds = load_fashion_mnist(dir.str(), Split::Test);
  EXPECT_EQ(ds.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(ds.labels(), (std::vector<int64_t>{9, 0, 4}));
  EXPECT_EQ(ds.class_names()[9], "Ankle boot");
  EXPECT_EQ(ds.image(2)[783], 7);
  // Wrong image size.
  write_idx(dir.file("t10k-images-idx3-ubyte.gz"), {3, 28, 27}, std::vector<uint8_t>(3 * 756),
            true);
  EXPECT_THROW(load_fashion_mnist(dir.str(), Split::Test), FormatError);
}

TEST(Idx, RealFashionMnist) {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const ImageDataset train = load_fashion_mnist(kFashionMnistDir, Split::Train);
  EXPECT_EQ(train.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(train.class_counts(), std::vector<int64_t>(10, 6000));
  const Normalization st = train.pixel_stats();
  EXPECT_NEAR(st.mean, 0.2860, 5e-4);
  EXPECT_NEAR(st.std, 0.3530, 5e-4);
  const ImageDataset test = load_fashion_mnist(kFashionMnistDir, Split::Test);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.class_counts(), std::vector<int64_t>(10, 1000));
  // The default split: 55k / 5k, 500 validation images per class.
  const TrainValSplit s = split_train_val(train);
  EXPECT_EQ(s.train.size(), 55000u);
  EXPECT_EQ(s.val.size(), 5000u);
  std::vector<int64_t> per_class(10, 0);
  for (int64_t i : s.val) ++per_class[train.label(i)];
  EXPECT_EQ(per_class, std::vector<int64_t>(10, 500));
}
