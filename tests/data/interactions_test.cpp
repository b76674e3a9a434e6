// Interaction readers (MovieLens ratings.dat, CSV: good and malformed files), the leave-one-out
// split, the ranking metrics on hand-computed cases, the count baselines and the synthetic
// generator's oracle.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "focus/data/interactions.hpp"
#include "focus/data/ranking_metrics.hpp"
#include "focus/data/synthetic_interactions.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

void write_text(const std::string& path, const std::string& s) { std::ofstream(path) << s; }

// The error's message, or "" when `f` does not throw E.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

TEST(Interactions, ReadsMovieLensRatingsOrderedByTime) {
  testing::TempDir dir;
  const std::string path = dir.file("ratings.dat");
  // User 1: items 10 (t=30), 20 (t=10), 30 (t=20), 40 (t=20): time order 20, 30, 40, 10.
  // User 2: two ratings only (dropped, min 3). User 3: 20, 50, 10.
  write_text(path,
             "1::10::5::30\n1::20::3::10\n2::10::4::5\n1::30::4::20\n1::40::1::20\n"
             "3::20::2::1\n2::20::4::6\n3::50::5::2\n\n3::10::5::3\r\n");
  const Interactions d = read_interactions(path);
  ASSERT_EQ(d.num_users(), 2);
  EXPECT_EQ(d.skipped_users, 1);
  EXPECT_EQ(d.lines, 9);  // the empty line is not an interaction
  EXPECT_EQ(d.user_names, (std::vector<std::string>{"1", "3"}));
  // Items numbered by first appearance among kept users: 10, 20, 30, 40, 50.
  EXPECT_EQ(d.item_names, (std::vector<std::string>{"<pad>", "10", "20", "30", "40", "50"}));
  EXPECT_EQ(d.sequences[0], (std::vector<int64_t>{2, 3, 4, 1}));
  EXPECT_EQ(d.sequences[1], (std::vector<int64_t>{2, 5, 1}));
}

TEST(Interactions, ReadsCsvWithHeader) {
  testing::TempDir dir;
  const std::string path = dir.file("log.csv");
  write_text(path, "user,item,timestamp\nalice,apple,3\nalice,pear,1\nbob,apple,0\nalice,fig,2\n"
                   "bob,fig,1\nbob,kiwi,2\n");
  const Interactions d = read_interactions(path);
  ASSERT_EQ(d.num_users(), 2);
  EXPECT_EQ(d.item_names, (std::vector<std::string>{"<pad>", "apple", "pear", "fig", "kiwi"}));
  EXPECT_EQ(d.sequences[0], (std::vector<int64_t>{2, 3, 1}));  // pear, fig, apple
  EXPECT_EQ(d.sequences[1], (std::vector<int64_t>{1, 3, 4}));
  // The CSV writer's file reads back to the same sequences.
  write_interactions_csv(dir.file("copy.csv"), d);
  const Interactions back = read_interactions(dir.file("copy.csv"));
  auto named = [](const Interactions& x) {  // item numbers follow the file: compare by name
    std::vector<std::vector<std::string>> out;
    for (const auto& seq : x.sequences) {
      out.emplace_back();
      for (int64_t i : seq) out.back().push_back(x.item_names[size_t(i)]);
    }
    return out;
  };
  EXPECT_EQ(named(back), named(d));
  EXPECT_EQ(back.user_names, d.user_names);
}

TEST(Interactions, MalformedLinesNameFileAndLine) {
  testing::TempDir dir;
  const std::string dat = dir.file("ratings.dat");
  const std::pair<std::string, std::string> cases[] = {
      {"1::10::5::30\n1::20::5\n", "ratings.dat:2: expected UserID::MovieID::Rating::Timestamp"},
      {"1::10::5::30\n\n1::x7::5::31\n", "ratings.dat:3: MovieID 'x7' is not an integer"},
      {"1::10::9::30\n", "ratings.dat:1: Rating 9 is not in 1..5"},
      {"1::10::5::3.5\n", "ratings.dat:1: Timestamp '3.5' is not an integer"}};
  for (const auto& [text, want] : cases) {
    write_text(dat, text);
    const std::string msg = message_of<FormatError>([&] { read_interactions(dat); });
    EXPECT_NE(msg.find(want), std::string::npos) << "got: " << msg;
  }
  const std::string csv = dir.file("log.csv");
  write_text(csv, "a,b,1\na,c\n");
  EXPECT_NE(message_of<FormatError>([&] { read_interactions(csv); }).find("log.csv:2: expected user,item,timestamp"),
            std::string::npos);
  write_text(csv, "a,b,1\na,,2\n");
  EXPECT_NE(message_of<FormatError>([&] { read_interactions(csv); }).find("log.csv:2: empty user or item id"),
            std::string::npos);
  write_text(csv, "a,b,1\na,c,soon\n");
  EXPECT_NE(message_of<FormatError>([&] { read_interactions(csv); }).find("log.csv:2: timestamp 'soon'"),
            std::string::npos);
  EXPECT_THROW(read_interactions(dir.file("missing.csv")), IOError);
}

TEST(Interactions, LeaveOneOutSplit) {
  const std::vector<int64_t> seq = {5, 6, 7, 8};
  const auto train = leave_one_out_history(seq, Fold::Train);
  const auto valid = leave_one_out_history(seq, Fold::Valid);
  const auto test = leave_one_out_history(seq, Fold::Test);
  EXPECT_EQ(std::vector<int64_t>(train.begin(), train.end()), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(std::vector<int64_t>(valid.begin(), valid.end()), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(std::vector<int64_t>(test.begin(), test.end()), (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(leave_one_out_target(seq, Fold::Valid), 7);
  EXPECT_EQ(leave_one_out_target(seq, Fold::Test), 8);
  EXPECT_THROW(leave_one_out_history({1, 2}, Fold::Test), ValueError);
  EXPECT_THROW(leave_one_out_target(seq, Fold::Train), ValueError);
}

TEST(RankingMetrics, HandComputedRanksAndScores) {
  // Items 1..5 (index 0 padding, whose score never counts).
  const std::vector<float> s = {100.f, 0.5f, 0.9f, 0.1f, 0.9f, 0.3f};
  EXPECT_EQ(rank_of_target(s, 2), 1);  // item 4 ties with it: ties count against the target
  EXPECT_EQ(rank_of_target(s, 4), 1);
  EXPECT_EQ(rank_of_target(s, 1), 2);
  EXPECT_EQ(rank_of_target(s, 3), 4);
  const std::vector<int64_t> cand = {3, 5};
  EXPECT_EQ(rank_of_target(s, 1, cand), 0);
  EXPECT_EQ(hit_at(9, 10), 1.0);
  EXPECT_EQ(hit_at(10, 10), 0.0);
  EXPECT_DOUBLE_EQ(ndcg_at(0, 10), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_at(2, 10), 0.5);  // 1 / log2(4)
  EXPECT_DOUBLE_EQ(ndcg_at(10, 10), 0.0);
  EXPECT_THROW(rank_of_target(s, 0), ValueError);
}

TEST(RankingMetrics, BaselinesOnHandMadeData) {
  Interactions d;
  d.item_names = {"<pad>", "a", "b", "c", "d"};
  d.user_names = {"u1", "u2", "u3"};
  // Training folds [1,1,1,2], [1,2,3,4], [2,3]; test histories end in a, c, c; test targets
  // b, d, a. Training counts: a 4, b 3, c 2, d 1.
  d.sequences = {{1, 1, 1, 2, 1, 2}, {1, 2, 3, 4, 3, 4}, {2, 3, 3, 1}};
  EXPECT_EQ(item_popularity(d), (std::vector<double>{0, 4, 3, 2, 1}));
  // Popularity ranks a > b > c > d for everyone: the targets' ranks are 1, 3, 0.
  const RankingReport p1 = evaluate_ranking(d, Fold::Test, popularity_scorer(d), 1, 3);
  EXPECT_DOUBLE_EQ(p1.full.hr, 1.0 / 3);
  const RankingReport p2 = evaluate_ranking(d, Fold::Test, popularity_scorer(d), 2, 3);
  EXPECT_DOUBLE_EQ(p2.full.hr, 2.0 / 3);
  EXPECT_DOUBLE_EQ(p2.full.ndcg, (1.0 / std::log2(3.0) + 1.0) / 3);
  // Markov: after a: a 2, b 2 (a first by popularity); after c: d 1. Ranks 1, 0, 1.
  const RankingReport m1 = evaluate_ranking(d, Fold::Test, markov_scorer(d), 1, 3);
  EXPECT_DOUBLE_EQ(m1.full.hr, 1.0 / 3);
  const RankingReport m2 = evaluate_ranking(d, Fold::Test, markov_scorer(d), 2, 3);
  EXPECT_DOUBLE_EQ(m2.full.hr, 1.0);
  EXPECT_DOUBLE_EQ(m2.full.ndcg, (2.0 / std::log2(3.0) + 1.0) / 3);
  // Sampled: the negatives are the unseen items (u1: c, d; u2: none; u3: d), all less popular
  // than the targets, so popularity's sampled HR@1 is 1 while its full HR@1 is 1/3.
  EXPECT_DOUBLE_EQ(p1.sampled.hr, 1.0);
}

TEST(Synthetic, DeterministicAndTheOracleBeatsTheBaselines) {
  SyntheticConfig c;
  c.users = 600;
  c.items = 200;
  c.seed = 3;
  const SyntheticInteractions a(c), b(c);
  EXPECT_EQ(a.data().sequences, b.data().sequences);
  EXPECT_EQ(a.data().num_items(), 201);
  for (int64_t u : {0, 5}) {
    const auto p = a.next_distribution(u, a.data().sequences[size_t(u)][0]);
    double s = 0;
    for (double x : p) s += x;
    EXPECT_NEAR(s, 1.0, 1e-12);
    EXPECT_EQ(p[0], 0.0);
  }
  const RankingMetrics oracle = a.oracle_expected(Fold::Test);
  const RankingReport pop = evaluate_ranking(a.data(), Fold::Test, popularity_scorer(a.data()));
  const RankingReport markov = evaluate_ranking(a.data(), Fold::Test, markov_scorer(a.data()));
  const RankingReport realised = evaluate_ranking(a.data(), Fold::Test, a.oracle_scorer());
  EXPECT_GT(oracle.hr, markov.full.hr + 0.05);
  EXPECT_GT(markov.full.hr, pop.full.hr);
  EXPECT_GT(oracle.ndcg, markov.full.ndcg);
  // The realised oracle hit rate matches its expectation within sampling noise (600 users: the
  // standard error of a mean of Bernoulli draws is below 0.021; 4 of them).
  EXPECT_NEAR(realised.full.hr, oracle.hr, 0.08);
  // Sampled metrics overstate: every ranker scores higher against 100 negatives.
  EXPECT_GT(pop.sampled.hr, pop.full.hr);
  EXPECT_THROW(SyntheticConfig::from_json(nlohmann::json{{"userz", 3}}), ValueError);
  EXPECT_THROW(SyntheticConfig::from_json(nlohmann::json{{"min_len", 2}}), ValueError);
}

}  // namespace
}  // namespace focus
