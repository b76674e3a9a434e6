// The seq2seq part of the report (see report.hpp): the test metrics training recorded
// (test_metrics.json), greedy decoding of the first `limit` test sources (the dev split when the
// run has no test split) with the worst errors, and alignments: the last decoder layer's
// cross-attention (head mean) while teacher-forcing the greedy output, for a few samples, with
// their token faithfulness (explain/seq2seq_explain.hpp).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "focus/explain/render.hpp"
#include "focus/explain/report_parts.hpp"
#include "focus/explain/seq2seq_explain.hpp"
#include "focus/infer/translator.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/metrics.hpp"
#include "focus/text/strings.hpp"
#include "focus/train/seq2seq_data.hpp"

namespace focus::report_detail {

namespace {

namespace fs = std::filesystem;

// test_metrics.json (written by training when the task has a test split) as a table.
void recorded_metrics(const RunFiles& run, const std::string& task, std::string& html) {
  const std::string path = (fs::path(run.dir) / "test_metrics.json").string();
  if (!fs::exists(path)) return;
  std::ifstream f(path);
  std::ostringstream ss;
  ss << f.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("report: '{}' is not valid JSON: {}", path, e.what()));
  }
  FOCUS_CHECK(j.is_object(), FormatError, "report: '{}' is not a JSON object", path);
  const bool g2p = task == "g2p";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [search, m] : j.items()) {
    if (!m.is_object()) continue;  // e.g. train_minutes
    auto val = [&](const char* k) {
      return m.contains(k) && m[k].is_number() ? fmt::format("{:.2f}", m[k].get<double>()) : "";
    };
    rows.push_back({esc(search), val(g2p ? "wer" : "bleu"), val(g2p ? "per" : "chrf"), val("sentences"),
                    val("sentences_per_s")});
  }
  html += "<h3>Recorded at the end of training (the whole test split, best model)</h3>" +
          html_table({"search", g2p ? "WER (%)" : "BLEU", g2p ? "PER (%)" : "chrF",
                      g2p ? "words" : "sentences", "per second"},
                     rows, "metrics");
}

std::string join_refs(const std::vector<std::string>& refs) {
  std::string s;
  for (const std::string& r : refs) s += (s.empty() ? "" : " | ") + r;
  return s;
}

std::string token_label(const std::string& t) {
  return t == " " ? "\xe2\x90\xa3" : t;  // U+2423 OPEN BOX for a space
}

// Token faithfulness of the alignments, summed over the samples drawn.
struct FaithSum {
  double del = 0, rdel = 0, ins = 0, rins = 0;
  int64_t n = 0;
};

// One alignment (explain_translation: greedy output, then one teacher-forced pass): the last
// decoder layer's cross-attention, head mean. Rows: output tokens and </s>; columns: source.
// Empty when the source cannot be explained (symbols the model does not know, too long).
std::string alignment(const Translator& tr, const RefGroup& g, Rng& rng, FaithSum& faith) {
  AlignmentExplanation e;
  try {
    e = explain_translation(tr, g.source);
  } catch (const InputError&) {
    return "";
  }
  const TokenFaithfulness tf = alignment_faithfulness(tr.model(), e, rng, 1);
  faith.del += tf.deletion.area;
  faith.rdel += tf.deletion_random.area;
  faith.ins += tf.insertion.area;
  faith.rins += tf.insertion_random.area;
  ++faith.n;
  const Tensor m = pick_map(e.cross, -1, -1);  // (T, S)
  std::vector<std::string> rows, cols;
  for (const std::string& t : e.target_tokens) rows.push_back(token_label(t));
  for (const std::string& t : e.source_tokens) cols.push_back(token_label(t));
  const bool correct = std::find(g.refs.begin(), g.refs.end(), e.output) != g.refs.end();
  const std::string& source = g.source;
  size_t cut = std::min<size_t>(source.size(), 40);  // at a UTF-8 character boundary
  while (cut < source.size() && (static_cast<unsigned char>(source[cut]) & 0xC0) == 0x80) --cut;
  const std::string title = cut < source.size() ? source.substr(0, cut) + "..." : source;
  const int64_t cell = std::max(m.size(0), m.size(1)) > 30 ? 14 : 22;
  return figure(inline_svg(svg_heatmap(m, rows, cols, title, cell)),
                fmt::format("output <b class=\"{}\">{}</b>; reference{} {}", correct ? "ok" : "bad",
                            esc(e.output), g.refs.size() > 1 ? "s" : "", esc(join_refs(g.refs))));
}

}  // namespace

void add_seq2seq_sections(const RunFiles& run, const ReportOptions& opt, Page& page) {
  const Translator tr(run.model_path);
  const Seq2SeqConfig& mc = tr.model().config();
  page.facts.push_back({"model", fmt::format("transformer: d_model {}, {} + {} layers, {} heads",
                                             mc.d_model, mc.n_enc_layers, mc.n_dec_layers, mc.n_heads)});
  page.facts.push_back({"parameters", thousands(tr.model().num_parameters())});
  page.facts.push_back({"vocabularies", fmt::format("source {} ({}), target {} ({})", tr.source_tokenizer().vocab().size(),
                                                    esc(tr.source_tokenizer().kind()), tr.target_tokenizer().vocab().size(),
                                                    esc(tr.target_tokenizer().kind()))});
  page.model_config = to_json(mc);
  const bool g2p = tr.task() == "g2p";
  std::string html;
  recorded_metrics(run, tr.task(), html);
  TrainConfig cfg = run.cfg;
  if (!opt.cmudict.empty()) cfg.cmudict = opt.cmudict;
  Seq2SeqTaskData data;
  try {
    data = load_seq2seq_data(cfg);
  } catch (const IOError& e) {
    page.missing.push_back(fmt::format("the {} data (no decoding, errors or alignments): {}", tr.task(), e.what()));
    if (!html.empty()) page.sections.push_back({"test", "Test metrics", html});
    return;
  }
  const bool has_test = !data.test.groups.empty();
  const std::vector<RefGroup>& groups = has_test ? data.test.groups : data.dev.groups;
  if (groups.empty()) {
    page.missing.push_back("decoding: the run's test and validation splits are empty");
    if (!html.empty()) page.sections.push_back({"test", "Test metrics", html});
    return;
  }
  const char* split = has_test ? "test" : "validation";
  const int64_t n = opt.limit > 0 ? std::min<int64_t>(opt.limit, static_cast<int64_t>(groups.size()))
                                  : static_cast<int64_t>(groups.size());
  const CorpusScore s = tr.score(groups, SearchOptions{}, n);
  const std::string score = g2p ? fmt::format("WER <b>{:.2f}%</b>, PER <b>{:.2f}%</b>", s.wer, s.per)
                                : fmt::format("BLEU <b>{:.2f}</b>, chrF <b>{:.2f}</b>", s.bleu, s.chrf);
  page.facts.push_back({fmt::format("{} {} (greedy, first {})", split, g2p ? "WER / PER" : "BLEU / chrF", n),
                        g2p ? fmt::format("{:.2f}% / {:.2f}%", s.wer, s.per)
                            : fmt::format("{:.2f} / {:.2f}", s.bleu, s.chrf)});
  html += fmt::format("<h3>Greedy decoding of the first {} {} {}</h3><p>{} ({:.1f} s).</p>", n, split,
                      g2p ? "words" : "sentences", score, s.seconds);
  // The worst errors: most edits (whitespace tokens) to the closest reference.
  const auto errs = worst_errors(s.hyps, groups, static_cast<size_t>(std::max<int64_t>(0, opt.worst)));
  std::vector<std::vector<std::string>> rows;
  for (const auto& [edits, i] : errs)
    rows.push_back({esc(groups[i].source), "<span class=\"bad\">" + esc(s.hyps[i]) + "</span>",
                    esc(join_refs(groups[i].refs)), std::to_string(edits)});
  if (opt.worst > 0)
    html += "<h3>Worst errors</h3>" +
            (rows.empty() ? std::string("<p>No errors.</p>")
                          : html_table({"source", "output", "references", "edits"}, rows, "errors"));
  page.sections.push_back({"test", "Test set", html});
  const int64_t a = std::min(opt.alignments, n);
  if (a == 0) return;
  std::string figs = "<p>Cross-attention of the last decoder layer (mean over heads) while the "
                     "greedy output is teacher-forced: row = output token, column = source token.</p>"
                     "<div class=\"charts scroll\">";
  Rng rng(opt.seed);
  FaithSum faith;
  for (int64_t k = 0; k < a; ++k) {
    const size_t i = static_cast<size_t>(k * n / a);  // spread over the decoded samples
    figs += alignment(tr, groups[i], rng, faith);
  }
  figs += "</div>";
  if (faith.n > 0) {
    const double k = static_cast<double>(faith.n);
    figs += fmt::format(
        "<h3>Token faithfulness of these alignments</h3><p>Source tokens replaced by &lt;unk&gt; "
        "(deletion) or revealed (insertion) in order of the cross-attention they receive, vs a "
        "random order; the output's per-token probability is tracked (mean over the {} samples). "
        "Faithful: lower deletion and higher insertion area than random.</p>",
        faith.n);
    figs += html_table({"method", "deletion area &darr;", "random", "insertion area &uarr;", "random"},
                       {{"cross-attention (last layer, head mean)", fmt::format("{:.4f}", faith.del / k),
                         fmt::format("{:.4f}", faith.rdel / k), fmt::format("{:.4f}", faith.ins / k),
                         fmt::format("{:.4f}", faith.rins / k)}},
                       "faithfulness");
  }
  page.sections.push_back({"alignments", "Sample alignments", figs});
}

}  // namespace focus::report_detail
