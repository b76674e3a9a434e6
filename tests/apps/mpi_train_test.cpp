// `mpirun -np 2 focus train` end to end (loopback; as root: --allow-run-as-root --oversubscribe),
// one thread per rank (FOCUS_NUM_THREADS=1; the test machine has 2 cores):
// - two ranks give the parameters that one process gives on the same global batches, BIT FOR BIT
//   (dropout and augmentation on): one process with --accum 2 --data-parallel runs the same two
//   parts with the same dropout streams and adds their gradients as a + b, which is what a
//   2-rank all-reduce computes (train/distributed.hpp); images (vit), seq2seq (translate), text
//   classification and the recommender (the tasks of the one training loop);
// - the all-reduce overlapped with the backward pass equals the blocking one, bit for bit
//   (seq2seq with a tied embedding, 2 parts per rank, small buckets; images);
// - resume on two ranks after rank 0 was killed right after its epoch-1 checkpoint equals the
//   uninterrupted two-rank run, bit for bit (and the kill ended the job, non-zero);
// - a rank killed mid-step ends the job with a message and a non-zero status (no hang); a rank
//   that hangs (SIGSTOP) is ended by the others' watchdog (FOCUS_DIST_TIMEOUT) with status 70;
// - replicas made to differ stop every rank with an error naming the step;
// - across two network namespaces joined by a veth pair (tools/netns-mpirun.sh, one rank in
//   each, TCP): the same parameters as one process.
// Skipped with a message when focus was built without MPI or mpirun is missing (and the image
// test without Fashion-MNIST, the namespace test without root / ip netns).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/temp_dir.hpp"
#include "focus/dist/communicator.hpp"
#include "focus/io/safetensors.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;
using focus::testing::CommandResult;
using focus::testing::run_command;
using focus::testing::TempDir;

namespace {

// LeakSanitizer off in the ranks (`make asan`): OpenMPI keeps allocations past MPI_Finalize;
// focus's own code on these paths is covered leak-checked by the single-process tests.
const std::string kMpirun =
    "LSAN_OPTIONS=detect_leaks=0 timeout 120 mpirun --allow-run-as-root --oversubscribe "
    "-x FOCUS_NUM_THREADS=1 ";
const std::string kFashion = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Empty when mpirun training can run here, else why not.
std::string mpi_missing() {
  if (!focus::mpi_built()) return "focus was built without MPI (libopenmpi-dev not found)";
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0)
    return "mpirun not installed (Debian openmpi-bin)";
  return "";
}

#define SKIP_WITHOUT_MPI()                                     \
  if (const std::string why = mpi_missing(); !why.empty()) \
  GTEST_SKIP() << why

// Strings over "abcde" and their reversals: a translate task of 160 training, 16 dev pairs.
void write_tsvs(const TempDir& d) {
  uint64_t x = 12345;
  auto next = [&] { return (x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  for (const auto& [name, n] : {std::pair{"train.tsv", 160}, std::pair{"valid.tsv", 16}}) {
    std::ofstream f(d.file(name));
    for (int i = 0; i < n; ++i) {
      std::string s;
      for (uint64_t j = 0, len = 2 + next() % 5; j < len; ++j) s += char('a' + next() % 5);
      f << s << "\t" << std::string(s.rbegin(), s.rend()) << "\n";
    }
  }
}

std::string seq2seq_args(const TempDir& d, int epochs = 2) {
  return std::string(FOCUS_BINARY) + " train --task translate --train " + d.file("train.tsv") +
         " --valid " + d.file("valid.tsv") +
         " --src-tokenizer char --tgt-tokenizer char --max-tokens 160 --beam 1 --epochs " +
         std::to_string(epochs) +
         " --model-config '{\"d_model\":32,\"n_enc_layers\":1,\"n_dec_layers\":1,\"n_heads\":2,"
         "\"d_ff\":64,\"dropout\":0.1}'";
}

std::string image_args() {
  return std::string(FOCUS_BINARY) +
         " train --model vit --model-config '{\"dim\":32,\"depth\":1,\"heads\":2,\"dropout\":0.1}'"
         " --limit-train 500 --val-size 100 --batch 40 --epochs 2 --augment true";
}

// The parameters of two model files are the same bits.
void expect_same_model(const std::string& a, const std::string& b) {
  ASSERT_TRUE(fs::exists(a)) << a;
  ASSERT_TRUE(fs::exists(b)) << b;
  const auto fa = focus::load_safetensors(a), fb = focus::load_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  int differ = 0;
  for (const auto& [name, t] : fa.tensors) {
    const auto it = fb.tensors.find(name);
    ASSERT_NE(it, fb.tensors.end()) << name;
    ASSERT_EQ(t.nbytes(), it->second.nbytes()) << name;
    if (std::memcmp(t.contiguous().raw_data(), it->second.contiguous().raw_data(), t.nbytes()) != 0) {
      ++differ;
      ADD_FAILURE() << name << " differs between " << a << " and " << b;
    }
  }
  EXPECT_EQ(differ, 0);
}

// A text task: "pos" texts hold good / great, "neg" ones bad / awful, among fillers.
void write_text_tsvs(const TempDir& d) {
  const char* fill[] = {"the", "phone", "screen", "battery", "was", "really", "quite", "case"};
  std::ofstream train(d.file("text_train.tsv")), valid(d.file("text_valid.tsv"));
  for (int i = 0; i < 100; ++i) {
    const bool pos = i % 2 == 0;
    const std::string word = pos ? (i % 4 == 0 ? "good" : "great") : (i % 4 == 1 ? "bad" : "awful");
    (i < 80 ? train : valid) << (pos ? "pos" : "neg") << "\t" << fill[i % 8] << " " << fill[(i / 8) % 8]
                             << " " << word << " " << fill[(i / 3) % 8] << "\n";
  }
}

std::string text_args(const TempDir& d) {
  return std::string(FOCUS_BINARY) + " train --task text --train " + d.file("text_train.tsv") +
         " --valid " + d.file("text_valid.tsv") + " --epochs 2 --batch 16 --min-count 1"
         " --model-config '{\"dim\":16,\"depth\":1,\"heads\":2,\"dropout\":0.1}'";
}

// A recommender task: 40 users walking a cycle of 12 items from different starts.
std::string recsys_args(const TempDir& d) {
  std::ofstream f(d.file("ratings.dat"));
  for (int u = 1; u <= 40; ++u)
    for (int t = 0; t < 8; ++t) f << u << "::" << 100 + 10 * ((u + t) % 12) << "::" << 1 + t % 5 << "::" << 1000 + t << "\n";
  return std::string(FOCUS_BINARY) + " train --task recsys --interactions " + d.file("ratings.dat") +
         " --epochs 2 --batch 8 --model-config '{\"dim\":16,\"depth\":1}'";
}

CommandResult one_process(const std::string& args, const std::string& out) {
  return run_command("FOCUS_NUM_THREADS=1 " + args + " --accum 2 --data-parallel true --out " + out);
}

// Trains `args` in one process (into d/one) and on 2 ranks (into d/two): both succeed, the ranks
// say so, and the final models are equal bit for bit.
void expect_two_ranks_equal_one(const TempDir& d, const std::string& args) {
  const CommandResult one = one_process(args, d.file("one"));
  ASSERT_EQ(one.code, 0) << one.out;
  const CommandResult two = run_command(kMpirun + "-np 2 " + args + " --out " + d.file("two"));
  ASSERT_EQ(two.code, 0) << two.out;
  EXPECT_TRUE(contains(two.out, "data-parallel training on 2 ranks (mpi)")) << two.out;
  expect_same_model(d.file("one/model_last.safetensors"), d.file("two/model_last.safetensors"));
}

}  // namespace

TEST(MpiTrain, TwoRanksEqualOneProcessSeq2Seq) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_tsvs(d);
  expect_two_ranks_equal_one(d, seq2seq_args(d));
  if (HasFatalFailure()) return;
  expect_same_model(d.file("one/checkpoint_last.safetensors"), d.file("two/checkpoint_last.safetensors"));
}

TEST(MpiTrain, TwoRanksEqualOneProcessText) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_text_tsvs(d);
  expect_two_ranks_equal_one(d, text_args(d));
}

TEST(MpiTrain, TwoRanksEqualOneProcessRecommender) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  expect_two_ranks_equal_one(d, recsys_args(d));
}

TEST(MpiTrain, TwoRanksEqualOneProcessImages) {
  SKIP_WITHOUT_MPI();
  if (!fs::exists(kFashion)) GTEST_SKIP() << "Fashion-MNIST not installed (" << kFashion << ")";
  TempDir d;
  const CommandResult one = one_process(image_args(), d.file("one"));
  ASSERT_EQ(one.code, 0) << one.out;
  const CommandResult two = run_command(kMpirun + "-np 2 " + image_args() + " --out " + d.file("two"));
  ASSERT_EQ(two.code, 0) << two.out;
  expect_same_model(d.file("one/model_last.safetensors"), d.file("two/model_last.safetensors"));
  // Only rank 0 writes: one metrics line per epoch, with the ranks and the exchange time.
  std::ifstream m(d.file("two/metrics.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(m, line)) {
    ++lines;
    EXPECT_TRUE(contains(line, "\"ranks\":2") && contains(line, "comm_seconds")) << line;
  }
  EXPECT_EQ(lines, 2);
}

// The all-reduce overlapped with the backward (the default: buckets start as backward makes their
// gradients final) gives the blocking reference's bits (--dist-overlap false: every bucket after
// the backward): on 2 ranks both add a + b. Two parts per rank (--accum 2: the first part's sum
// joins the second's in the buckets), small buckets (one or a few parameters each), and the
// seq2seq model's output projection is tied to the target embedding (final only after its last
// use, the embedding lookup at the start of the decoder).
TEST(MpiTrain, OverlappedAllReduceEqualsBlockingSeq2SeqTied) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_tsvs(d);
  const std::string args = kMpirun + "-np 2 " + seq2seq_args(d) + " --accum 2 --dist-bucket-mb 0.01";
  const CommandResult ov = run_command(args + " --out " + d.file("ov"));
  ASSERT_EQ(ov.code, 0) << ov.out;
  const CommandResult ref = run_command(args + " --dist-overlap false --out " + d.file("ref"));
  ASSERT_EQ(ref.code, 0) << ref.out;
  expect_same_model(d.file("ov/checkpoint_last.safetensors"), d.file("ref/checkpoint_last.safetensors"));
}

TEST(MpiTrain, OverlappedAllReduceEqualsBlockingImages) {
  SKIP_WITHOUT_MPI();
  if (!fs::exists(kFashion)) GTEST_SKIP() << "Fashion-MNIST not installed (" << kFashion << ")";
  TempDir d;
  const std::string args = kMpirun + "-np 2 " + image_args() + " --dist-bucket-mb 0.02";
  const CommandResult ov = run_command(args + " --out " + d.file("ov"));
  ASSERT_EQ(ov.code, 0) << ov.out;
  const CommandResult ref = run_command(args + " --dist-overlap false --out " + d.file("ref"));
  ASSERT_EQ(ref.code, 0) << ref.out;
  expect_same_model(d.file("ov/checkpoint_last.safetensors"), d.file("ref/checkpoint_last.safetensors"));
}

// The uninterrupted run is the blocking reference; the killed and resumed one overlaps (default).
TEST(MpiTrain, KilledRankZeroThenResumeOnTwoRanksEqualsUninterrupted) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_tsvs(d);
  const CommandResult full =
      run_command(kMpirun + "-np 2 " + seq2seq_args(d) + " --dist-overlap false --out " + d.file("full"));
  ASSERT_EQ(full.code, 0) << full.out;
  // Rank 0 (the only writer) dies right after committing epoch 1; the job must end, non-zero.
  const CommandResult killed =
      run_command("FOCUS_TEST_KILL_AT=after:checkpoint_last.safetensors " + kMpirun +
                  "-x FOCUS_TEST_KILL_AT -np 2 " + seq2seq_args(d) + " --out " + d.file("part"));
  EXPECT_NE(killed.code, 0) << killed.out;
  EXPECT_NE(killed.code, 124) << "the job hung: " << killed.out;
  EXPECT_TRUE(contains(killed.out, "exited on signal 9")) << killed.out;
  ASSERT_FALSE(fs::exists(d.file("part/model_last.safetensors")));  // killed before deriving it
  const CommandResult resumed =
      run_command(kMpirun + "-np 2 " + std::string(FOCUS_BINARY) + " train --resume " +
                  d.file("part/checkpoint_last.safetensors") + " --out " + d.file("part"));
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  expect_same_model(d.file("full/model_last.safetensors"), d.file("part/model_last.safetensors"));
  expect_same_model(d.file("full/checkpoint_last.safetensors"), d.file("part/checkpoint_last.safetensors"));
}

TEST(MpiTrain, RankKilledMidStepEndsTheJob) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_tsvs(d);
  const auto t0 = std::chrono::steady_clock::now();
  // MPMD: rank 1 alone SIGKILLs itself in its first step (gradients computed, not yet summed).
  const std::string args = seq2seq_args(d) + " --out " + d.file("out");
  const CommandResult r = run_command(kMpirun + "-np 1 " + args + " : -np 1 -x FOCUS_TEST_KILL_AT=step " + args);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.code, 124) << "the job hung: " << r.out;
  EXPECT_LT(seconds, 60);
  EXPECT_TRUE(contains(r.out, "rank 1") && contains(r.out, "signal 9")) << r.out;  // mpirun's
  EXPECT_TRUE(contains(r.out, "focus: rank 0/2:")) << r.out;  // the survivor's own line
}

TEST(MpiTrain, HangingRankIsEndedByTheWatchdog) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_tsvs(d);
  // Rank 1 is stopped (SIGSTOP) once training runs; rank 0's all-reduce waits 3 s, then its
  // watchdog ends it (status 70) and mpirun the rest.
  const std::string out = d.file("out");
  const std::string script =
      "FOCUS_DIST_TIMEOUT=3 " + kMpirun + "-x FOCUS_DIST_TIMEOUT -np 2 " + seq2seq_args(d, 2000) +
      " --out " + out + " > " + d.file("log") + " 2>&1 & M=$!; "
      "for i in $(seq 300); do [ -f " + out + "/config.json ] && break; sleep 0.1; done; sleep 0.5; "
      "for p in $(pgrep -f -- '--out " + out + "'); do "
      "  tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && kill -STOP $p; "
      "done; wait $M; rc=$?; cat " + d.file("log") + "; exit $rc";
  const CommandResult r = run_command("bash -c \"" + [&] {
    std::string esc;
    for (char c : script) {
      if (c == '"' || c == '$' || c == '\\' || c == '`') esc += '\\';
      esc += c;
    }
    return esc;
  }() + "\"");
  EXPECT_EQ(r.code, 70) << r.out;
  EXPECT_TRUE(contains(r.out, "rank 0/2: all-reduce")) << r.out;
  EXPECT_TRUE(contains(r.out, "has waited 3 s for the other ranks")) << r.out;
}

TEST(MpiTrain, DifferingReplicasStopNamingTheStep) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_tsvs(d);
  // The last rank nudges a weight after step 3 (test hook); the compare every 2 steps sees it
  // after step 4.
  const CommandResult r =
      run_command("FOCUS_TEST_DIVERGE_AT=3 " + kMpirun + "-x FOCUS_TEST_DIVERGE_AT -np 2 " +
                  seq2seq_args(d) + " --dist-check-every 2 --out " + d.file("out"));
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.code, 124) << "the job hung: " << r.out;
  EXPECT_TRUE(contains(r.out, "error: the model replicas differ after step 4")) << r.out;
  EXPECT_TRUE(contains(r.out, "but rank 1 (")) << r.out;
}

TEST(MpiTrain, AcrossNetworkNamespacesOverTcp) {
  SKIP_WITHOUT_MPI();
  TempDir d;
  write_tsvs(d);
  const CommandResult one = one_process(seq2seq_args(d), d.file("one"));
  ASSERT_EQ(one.code, 0) << one.out;
  const CommandResult two =
      run_command("LSAN_OPTIONS=detect_leaks=0 timeout 120 " + std::string(FOCUS_SOURCE_DIR) +
                  "/tools/netns-mpirun.sh -x FOCUS_NUM_THREADS=1 -- " + seq2seq_args(d) + " --out " +
                  d.file("two"));
  if (two.code == 77) GTEST_SKIP() << "no network namespaces here: " << two.out;
  ASSERT_EQ(two.code, 0) << two.out;
  expect_same_model(d.file("one/model_last.safetensors"), d.file("two/model_last.safetensors"));
}
