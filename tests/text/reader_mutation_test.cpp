// Seeded mutations of the text layer's outside files (tests/support/mutate.hpp): tokenizer JSON
// (char, word, BPE; read as the model-file loaders read it: a JSON parse error becomes a
// FormatError naming the file), `source<TAB>target` TSVs and CMUdict. Bit flips, overwrites,
// truncations, appended garbage, plus targeted edits (tokenizer fields of the wrong type,
// specials and duplicates among the symbols, merges naming no symbol, values nested 100,000 deep;
// TSV lines cut at each tab). Loaded results must be consistent: a tokenizer round-trips through
// JSON and encodes into its vocabulary; TSV pairs have two non-blank tab-free UTF-8 sides; every
// CMUdict line is counted once (kept, duplicate, invalid or other spelling) and kept entries
// match ^[A-Z']+$ with phones ^[A-Z]+$. CMUdict skips what it cannot parse, so it never rejects.
// Mail messages (GMime + libxml2) and ARFF texts: a mutant is read into valid UTF-8 or refused
// with a focus error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "data/temp_dir.hpp"
#include "focus/text/arff.hpp"
#include "focus/text/cmudict.hpp"
#include "focus/text/mail.hpp"
#include "focus/text/parallel.hpp"
#include "focus/text/strings.hpp"
#include "focus/text/tokenizer.hpp"
#include "support/mutate.hpp"

FOCUS_TESTING_DEFINE_ALLOC_WATCH();

using namespace focus;
using namespace focus::testing;

namespace {

std::string check_tokenizer(const Tokenizer& t) {
  const nlohmann::json j = t.to_json();
  if (tokenizer_from_json(j)->to_json() != j) return "JSON round trip differs";
  if (t.vocab().size() < Vocab::kNumSpecial) return "vocabulary without the specials";
  const std::vector<int64_t> ids = t.encode("hello world\t\xc3\xa9t\xc3\xa9 'x' <unk> \xff");
  for (int64_t id : ids)
    if (id < 0 || id >= t.vocab().size()) return fmt::format("id {} outside the vocabulary", id);
  t.decode(ids);
  return "";
}

// Parses the file as load_seq2seq does (a JSON error is a FormatError naming the file).
std::string load_tokenizer(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("'{}': corrupt tokenizer JSON ({})", path, e.what()));
  }
  return check_tokenizer(*tokenizer_from_json(j));
}

TEST(ReaderMutation, TokenizerJson) {
  TempDir dir;
  const std::vector<std::string> texts = {"hello world", "low lower lowest", "new newer wider",
                                          "\xc3\xa9t\xc3\xa9 caf\xc3\xa9", "hello hello low"};
  TokenizerOptions opt;
  opt.bpe_merges = 12;
  Tally tally{"tokenizer JSON"};
  const std::string path = dir.file("mutant.json");
  for (const char* kind : {"char", "word", "bpe"}) {
    const nlohmann::json good = train_tokenizer(kind, texts, opt)->to_json();
    const std::string valid = good.dump();
    write_file(path, valid);
    ASSERT_EQ(load_tokenizer(path), "") << kind;
    ++tally.files;
    MutationPlan plan;
    plan.boundaries = {1, valid.find("symbols"), valid.size() - 1};
    plan.reject_all_truncations = true;  // JSON cut anywhere is malformed
    const uint64_t seed = kMutationSeed + static_cast<uint64_t>(tally.files);
    const std::vector<Mutant> mutants = Mutator(seed).mutate(valid, plan);
    EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, seed));
    for (const Mutant& m : mutants) feed(tally, path, m, load_tokenizer);

    // Field edits, every one refused.
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    // (field, JSON text): every one refused.
    std::vector<std::pair<std::string, std::string>> edits = {
        {"kind", "7"},     {"kind", "\"bytes\""},         {"kind", "null"},
        {"kind", deep},    {"symbols", "\"abc\""},        {"symbols", "[1, 2]"},
        {"symbols", deep}, {"symbols", "[\"a\", \"a\"]"}, {"symbols", "[\"<unk>\"]"}};
    if (std::string(kind) == "bpe")
      edits.insert(edits.end(), {{"end_of_word", "\"_\""},
                                 {"end_of_word", deep},
                                 {"merges", "\"x\""},
                                 {"merges", "[[\"q\", \"z\"]]"},
                                 {"merges", "[[\"l\", \"o\"], [\"l\", \"o\"]]"},
                                 {"merges", "[" + deep + "]"},
                                 {"merges", "[[\"l\"]]"},
                                 {"symbols", "[\"a\", \"b\"]"}});
    for (const auto& [field, raw] : edits)
      feed(tally, path,
           {fmt::format("{} = {}", field, raw.substr(0, 40)), dump_with(good, field, raw), true},
           load_tokenizer);
    for (const char* field : {"kind", "symbols", "merges", "end_of_word"}) {
      nlohmann::json j = good;
      if (!j.contains(field)) continue;
      j.erase(field);
      feed(tally, path, {fmt::format("no {}", field), j.dump(), true}, load_tokenizer);
    }
    feed(tally, path, {"a deep array", deep, true}, load_tokenizer);
  }
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);
  EXPECT_GT(tally.rejected, 0);
}

std::string check_pairs(const std::vector<TextPair>& pairs) {
  for (const TextPair& p : pairs)
    for (const std::string* s : {&p.source, &p.target}) {
      if (normalize_whitespace(*s).empty()) return "a blank side";
      if (s->find('\t') != std::string::npos || s->find('\n') != std::string::npos)
        return "a tab or newline inside a side";
      if (!is_valid_utf8(*s)) return "invalid UTF-8";
    }
  if (!pairs.empty() && !pairs.back().target.empty() && pairs.back().target.back() == '\r')
    return "a CR kept";
  return "";
}

TEST(ReaderMutation, TsvParallelText) {
  TempDir dir;
  const std::string valid =
      "hello\tbonjour\n\nthe cat\tle chat\r\n  \t \n\xc3\xa9t\xc3\xa9\tsummer\nlast\tdernier";
  Tally tally{"tsv"};
  const std::string path = dir.file("mutant.tsv");
  const auto load = [](const std::string& p) { return check_pairs(load_tsv(p)); };
  write_file(path, valid);
  ASSERT_EQ(load(path), "");
  ++tally.files;
  MutationPlan plan;
  for (size_t i = 0; i < valid.size(); ++i)
    if (valid[i] == '\n') plan.boundaries.push_back(i);
  const std::vector<Mutant> mutants = Mutator(kMutationSeed).mutate(valid, plan);
  EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, kMutationSeed));
  for (const Mutant& m : mutants) feed(tally, path, m, load);
  // Cut at each tab (a source without its tab) and just after it (an empty target): refused.
  for (size_t i = 0; i < valid.size(); ++i)
    if (valid[i] == '\t' && i > 0 && valid[i - 1] != ' ')
      for (size_t len : {i, i + 1})
        feed(tally, path, {fmt::format("cut to {} at a tab", len), valid.substr(0, len), true},
             load);
  for (const char* line : {"a\tb\tc", "\tb", "a\t", "no tab", "a\t\xff", "a\t\xed\xa0\x80"})
    feed(tally, path, {std::string("line ") + line, valid + "\n" + line + "\n", true}, load);
  // Long lines and NUL bytes load: fields are kept as written.
  feed(tally, path, {"a 1 MB line", std::string(1 << 20, 'x') + "\ty\n"}, load);
  feed(tally, path, {"NUL bytes", std::string("a\0b\tc\0", 6) + "\n"}, load);
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);
  EXPECT_GT(tally.rejected, 0);
  EXPECT_EQ(tally.rejected_naming_file, tally.rejected);
}

std::string check_cmudict(const std::string& path, const std::vector<DictEntry>& d,
                          const CmudictStats& st) {
  // Every non-empty line is kept, a duplicate, invalid or another spelling; nothing else.
  int64_t lines = 0, nonempty = 0;
  {
    std::istringstream in(read_file(path));
    for (std::string line; std::getline(in, line); ++lines) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      nonempty += !line.empty();
    }
  }
  int64_t kept = 0;
  for (const DictEntry& e : d) {
    if (e.word.empty() ||
        e.word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ'") != std::string::npos)
      return "spelling '" + e.word + "'";
    if (e.prons.empty()) return "no pronunciation for " + e.word;
    for (const std::string& p : e.prons)
      for (const std::string& ph : split_whitespace(p))
        if (ph.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
          return "phone '" + ph + "'";
    kept += static_cast<int64_t>(e.prons.size());
  }
  if (st.lines != lines) return fmt::format("{} lines counted of {}", st.lines, lines);
  if (kept + st.duplicates + st.invalid + st.other_spelling != nonempty)
    return fmt::format("{} kept + {} duplicates + {} invalid + {} other != {} lines", kept,
                       st.duplicates, st.invalid, st.other_spelling, nonempty);
  return "";
}

TEST(ReaderMutation, Cmudict) {
  TempDir dir;
  const std::string valid =
      ";;; comment\nHELLO  HH AH0 L OW1\nHELLO(1)  HH EH0 L OW1\nWORLD  W ER1 L D\n"
      "DON'T  D OW1 N T\n!EXCLAMATION  EH2 K S\nBROKEN LINE\nA  AH0\r\nA(2)  EY1\n";
  Tally tally{"cmudict"};
  const std::string path = dir.file("dict.txt");
  const auto load = [](const std::string& p) {
    CmudictStats st;
    const auto d = load_cmudict(p, false, &st);
    return check_cmudict(p, d, st);
  };
  write_file(path, valid);
  ASSERT_EQ(load(path), "");
  ++tally.files;
  MutationPlan plan;
  for (size_t i = 0; i < valid.size(); ++i)
    if (valid[i] == '\n' || valid[i] == '(') plan.boundaries.push_back(i);
  const std::vector<Mutant> mutants = Mutator(kMutationSeed).mutate(valid, plan);
  EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, kMutationSeed));
  for (const Mutant& m : mutants) feed(tally, path, m, load);
  for (const char* line :
       {"X()  AH0", "(1)  AH0", "X(1  AH0", "X(a)  AH0", "X  ", "X  1", "X  AH3", "X  ah0", "  AH0",
        "X(99999999999999999999)  AH0", "X\xef\xbf\xbd  AH0", "X  AH0\xff"})
    feed(tally, path, {std::string("line ") + line, valid + line + "\n"}, load);
  tally.expect_clean();
  EXPECT_EQ(tally.loaded, tally.mutations);  // malformed lines are skipped and counted
}

}  // namespace

TEST(ReaderMutation, MailMessage) {
  TempDir dir;
  const std::string valid =
      "From someone Thu Aug 22 13:17:22 2002\n"
      "Subject: =?iso-8859-1?q?Caf=E9?=\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"B\"\n"
      "\n"
      "--B\n"
      "Content-Type: text/plain; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "caf=E9 au lait\n"
      "--B\n"
      "Content-Type: text/html\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "PHA+aGVsbG8gJmFtcDsgPGI+d29ybGQ8L2I+PC9wPjxzY3JpcHQ+eCgpPC9zY3JpcHQ+\n"
      "--B--\n";
  Tally tally{"mail"};
  const std::string path = dir.file("mutant.eml");
  const auto load = [](const std::string& p) {
    const MailText m = read_mail_file(p);
    if (!is_valid_utf8(m.subject) || !is_valid_utf8(m.body)) return std::string("invalid UTF-8");
    if (m.skipped_parts < 0 || m.charset_fallbacks < 0) return std::string("negative counts");
    return std::string();
  };
  write_file(path, valid);
  ASSERT_EQ(load(path), "");
  ASSERT_EQ(read_mail_file(path).body, "caf\xc3\xa9 au lait\nhello & world");
  ++tally.files;
  MutationPlan plan;
  for (size_t i = 0; i < valid.size(); ++i)
    if (valid[i] == '\n') plan.boundaries.push_back(i);
  const std::vector<Mutant> mutants = Mutator(kMutationSeed).mutate(valid, plan);
  EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, kMutationSeed));
  for (const Mutant& m : mutants) feed(tally, path, m, load);
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);
  EXPECT_GT(tally.rejected, 0);  // cut before the first header line ends: not a mail message
}

TEST(ReaderMutation, ArffTexts) {
  TempDir dir;
  const std::string valid =
      "@relation 'r'\n@attribute Text string\n@attribute class-att {0,1}\n@data\n"
      "'CORN\\nUP \\'a\\' b',1\n'other news',0\n";
  Tally tally{"arff"};
  const std::string path = dir.file("mutant.arff");
  const auto load = [](const std::string& p) {
    const LabelledFile f = read_arff_texts(p);
    for (const LabelledText& r : f.rows)
      if (r.text.empty() || r.label.empty() || !is_valid_utf8(r.text) || !is_valid_utf8(r.label))
        return std::string("an empty or invalid row");
    return std::string();
  };
  write_file(path, valid);
  ASSERT_EQ(load(path), "");
  ++tally.files;
  MutationPlan plan;
  for (size_t i = 0; i < valid.size(); ++i)
    if (valid[i] == '\n') plan.boundaries.push_back(i);
  plan.reject_below = valid.find("@data");  // no @data yet: refused
  const std::vector<Mutant> mutants = Mutator(kMutationSeed).mutate(valid, plan);
  EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, kMutationSeed));
  for (const Mutant& m : mutants) feed(tally, path, m, load);
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);
  EXPECT_GT(tally.rejected, 0);
  EXPECT_EQ(tally.rejected, tally.rejected_naming_file);
}
