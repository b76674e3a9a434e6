// The image-classifier part of the report (see report.hpp): the run's model on the first `limit`
// Fashion-MNIST test images (one batched pass without a graph): confusion matrix, per-class
// scores, the most and least confident examples with an explanation overlay, and faithfulness
// (deletion / insertion areas per method vs random cell orders) on the first few images.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "focus/autograd/node.hpp"
#include "focus/data/dataset.hpp"
#include "focus/explain/image_explain.hpp"
#include "focus/explain/render.hpp"
#include "focus/explain/report_parts.hpp"
#include "focus/explain/svg_chart.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/ops/softmax.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/metrics.hpp"

namespace focus::report_detail {

namespace {

struct TestEval {
  int64_t n = 0, classes = 0;
  std::vector<float> probs;  // (n, classes) softmax
  std::vector<int64_t> pred;
  ConfusionMatrix cm{1};
  double loss = 0;  // mean cross-entropy
};

// The first n test images through the model, batched, no graph.
TestEval evaluate_test(ImageClassifier& model, const ImageDataset& ds, int64_t n,
                       const Normalization& norm, const std::string& model_path) {
  NoGradGuard no_grad;
  TestEval t;
  t.n = n;
  t.classes = ds.num_classes();
  t.cm = ConfusionMatrix(t.classes);
  constexpr int64_t kBatch = 256;
  for (int64_t b0 = 0; b0 < n; b0 += kBatch) {
    std::vector<int64_t> idx(static_cast<size_t>(std::min(kBatch, n - b0)));
    std::iota(idx.begin(), idx.end(), b0);
    const Batch bt = make_batch(ds, idx, norm);
    const Tensor logits = model.forward(bt.x);  // (B, K)
    FOCUS_CHECK(logits.size(1) == t.classes, FormatError,
                "report: '{}' predicts {} classes but the test set has {}", model_path,
                logits.size(1), t.classes);
    t.cm.add_batch(logits, bt.y);
    const std::vector<float> p = softmax(logits, 1).to_vector<float>();  // (B, K)
    t.probs.insert(t.probs.end(), p.begin(), p.end());
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* p = t.probs.data() + i * t.classes;
    t.pred.push_back(std::max_element(p, p + t.classes) - p);
    t.loss -= std::log(std::max(1e-12, static_cast<double>(p[ds.label(i)]))) / static_cast<double>(n);
  }
  return t;
}

std::string test_section(const TestEval& t, const std::vector<std::string>& names, Page& page) {
  const ClassificationReport r = classification_report(t.cm);
  page.facts.push_back({fmt::format("test accuracy (first {} images)", t.n), percent(r.accuracy)});
  std::string html = fmt::format(
      "<p>The model on the first {} Fashion-MNIST test images: accuracy <b>{}</b>, mean "
      "cross-entropy {:.4f}, macro F1 {:.4f}.</p><div class=\"charts\">",
      t.n, percent(r.accuracy), t.loss, r.macro_f1);
  html += figure(svg_confusion_matrix(t.cm.counts(), names, "Confusion matrix"),
                 "Rows: true class, columns: prediction; colour: share of the true class.");
  std::vector<BarSeries> bars{{"precision", {}}, {"recall", {}}, {"F1", {}}};
  std::vector<std::vector<std::string>> rows;
  for (size_t k = 0; k < r.per_class.size(); ++k) {
    const ClassScores& c = r.per_class[k];
    bars[0].values.push_back(c.precision);
    bars[1].values.push_back(c.recall);
    bars[2].values.push_back(c.f1);
    rows.push_back({esc(names[k]), fmt::format("{:.4f}", c.precision), fmt::format("{:.4f}", c.recall),
                    fmt::format("{:.4f}", c.f1), std::to_string(c.support), std::to_string(c.predicted)});
  }
  rows.push_back({"<b>macro average</b>", fmt::format("{:.4f}", r.macro_precision),
                  fmt::format("{:.4f}", r.macro_recall), fmt::format("{:.4f}", r.macro_f1),
                  std::to_string(r.total), std::to_string(r.total)});
  ChartOptions o;
  o.title = "Per-class scores";
  o.width = 560;
  o.height = 320;
  html += figure(svg_bar_chart(names, bars, o)) + "</div><h3>Per-class precision, recall, F1</h3>";
  html += html_table({"class", "precision", "recall", "F1", "support", "predicted"}, rows, "per-class");
  return html;
}

ImageMethod overlay_method(const std::vector<ImageMethod>& methods) {
  for (ImageMethod m : {ImageMethod::Rollout, ImageMethod::GradCam})
    if (std::find(methods.begin(), methods.end(), m) != methods.end()) return m;
  return methods.front();
}

Tensor one_image(const ImageDataset& ds, int64_t i, const Normalization& norm) {
  const std::vector<int64_t> idx{i};
  return make_batch(ds, idx, norm).x;  // (1, C, S, S)
}

// One example: the image with the explanation overlaid, the prediction and the runner-up.
std::string example_card(ImageClassifier& model, const ImageDataset& ds, const TestEval& t,
                         int64_t i, ImageMethod method, const Normalization& norm,
                         const std::vector<std::string>& names) {
  ImageExplainOptions eo;
  eo.method = method;
  const ImageExplanation e = explain_image(model, one_image(ds, i, norm), eo);
  const Image img = heatmap_overlay(ds.image_at(i), e.relevance, 4);
  const float* p = t.probs.data() + i * t.classes;
  std::vector<int64_t> order(static_cast<size_t>(t.classes));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  const int64_t truth = ds.label(i), pred = t.pred[i];
  const std::string alt = fmt::format("test image {}: true {}, predicted {}", i, names[truth], names[pred]);
  return fmt::format(
      "<figure class=\"example\"><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\"><figcaption>"
      "<b class=\"{}\">{}</b> {}<br>true: {}<br><span class=\"dim\">#{} &middot; next: {} {}"
      "</span></figcaption></figure>",
      png_data_uri(img), img.width, img.height, esc(alt), pred == truth ? "ok" : "bad",
      esc(names[pred]), percent(p[pred], 1), esc(names[truth]), i,
      esc(names[order.size() > 1 ? order[1] : order[0]]),
      percent(p[order.size() > 1 ? order[1] : order[0]], 1));
}

std::string examples_section(ImageClassifier& model, const ImageDataset& ds, const TestEval& t,
                             const std::vector<ImageMethod>& methods, const ReportOptions& opt,
                             const Normalization& norm, const std::vector<std::string>& names) {
  const ImageMethod m = overlay_method(methods);
  std::vector<int64_t> order(static_cast<size_t>(t.n));
  std::iota(order.begin(), order.end(), int64_t(0));
  auto conf = [&](int64_t i) { return t.probs[i * t.classes + t.pred[i]]; };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return conf(a) > conf(b); });
  const int64_t k = std::min<int64_t>(opt.examples, (t.n + 1) / 2);
  std::string most, least;
  for (int64_t j = 0; j < k; ++j) {
    most += example_card(model, ds, t, order[j], m, norm, names);
    least += example_card(model, ds, t, order[t.n - 1 - j], m, norm, names);
  }
  return fmt::format(
      "<p>Overlay: {} relevance (viridis, yellow = most relevant) of the predicted class; the "
      "probability is the model's softmax.</p><h3>Most confident</h3><div class=\"examples\">{}"
      "</div><h3>Least confident</h3><div class=\"examples\">{}</div>",
      image_method_name(m), most, least);
}

Series curve_series(const std::string& name, const std::vector<double>& prob, bool dashed) {
  Series s;
  s.name = name;
  s.dashed = dashed;
  const double P = static_cast<double>(prob.size()) - 1;
  for (size_t k = 0; k < prob.size(); ++k) {
    s.x.push_back(static_cast<double>(k) / P);
    s.y.push_back(prob[k]);
  }
  return s;
}

std::string faithfulness_section(ImageClassifier& model, const ImageDataset& ds, const TestEval& t,
                                 const std::vector<ImageMethod>& methods, const ReportOptions& opt,
                                 const Normalization& norm) {
  const int64_t n = std::min(opt.faithfulness_images, t.n);
  const float baseline = (0.f - norm.mean) / norm.std;  // black, the Fashion-MNIST background
  Rng rng(opt.seed);
  std::vector<Tensor> images;
  for (int64_t i = 0; i < n; ++i) images.push_back(one_image(ds, i, norm));
  std::vector<Faithfulness> means;
  for (ImageMethod m : methods) means.push_back(mean_faithfulness(model, images, m, baseline, rng));
  std::vector<std::string> groups;
  std::vector<BarSeries> bars{{"deletion", {}}, {"deletion, random order", {}},
                              {"insertion", {}}, {"insertion, random order", {}}};
  std::vector<std::vector<std::string>> rows;
  std::vector<Series> del_lines, ins_lines;
  for (size_t m = 0; m < methods.size(); ++m) {
    const Faithfulness& f = means[m];
    groups.push_back(image_method_name(methods[m]));
    const double vals[4] = {f.deletion.area, f.deletion_random.area, f.insertion.area,
                            f.insertion_random.area};
    for (int j = 0; j < 4; ++j) bars[j].values.push_back(vals[j]);
    rows.push_back({esc(groups.back()), fmt::format("{:.4f}", vals[0]), fmt::format("{:.4f}", vals[1]),
                    fmt::format("{:.4f}", vals[2]), fmt::format("{:.4f}", vals[3])});
    del_lines.push_back(curve_series(groups.back(), f.deletion.prob, false));
    ins_lines.push_back(curve_series(groups.back(), f.insertion.prob, false));
  }
  del_lines.push_back(curve_series("random order", means[0].deletion_random.prob, true));
  ins_lines.push_back(curve_series("random order", means[0].insertion_random.prob, true));
  ChartOptions o;
  o.title = "Faithfulness areas";
  o.y_label = "area";
  o.width = 440;
  std::string html = fmt::format(
      "<p>Deletion / insertion (Petsiuk et al. 2018) on the first {} test images: cells of the "
      "relevance grid are removed (set to black) or revealed, most relevant first, and the "
      "predicted class's probability is tracked; the area under that curve summarises it. A "
      "faithful explanation has a <b>lower deletion area</b> and a <b>higher insertion area</b> "
      "than a random order (one per image and method).</p>"
      "<div class=\"charts\">",
      n);
  html += figure(svg_bar_chart(groups, bars, o));
  o = ChartOptions{};
  o.width = 340;
  o.x_label = "fraction of cells removed";
  o.y_label = "probability";
  o.title = "Deletion curves (mean)";
  o.y_from_zero = true;
  html += figure(svg_line_chart(del_lines, o));
  o.x_label = "fraction of cells revealed";
  o.title = "Insertion curves (mean)";
  html += figure(svg_line_chart(ins_lines, o)) + "</div>";
  return html + html_table({"method", "deletion area &darr;", "random", "insertion area &uarr;", "random"},
                           rows, "faithfulness");
}

}  // namespace

void add_image_sections(const RunFiles& run, const ReportOptions& opt, Page& page) {
  LoadedModel lm = load_model(run.model_path);
  ImageClassifier& model = *lm.model;
  page.facts.push_back({"model", esc(model.name())});
  page.facts.push_back({"parameters", thousands(model.num_parameters())});
  page.model_config = model.config();
  const std::string dir = opt.data_dir.empty() ? run.cfg.data_dir : opt.data_dir;
  ImageDataset test;
  try {
    test = load_fashion_mnist(dir, Split::Test);
  } catch (const IOError& e) {
    page.missing.push_back(fmt::format("the Fashion-MNIST test set (no evaluation, examples or "
                                       "faithfulness): {}", e.what()));
    return;
  }
  std::vector<std::string> names = lm.info.class_names;
  if (static_cast<int64_t>(names.size()) != test.num_classes()) names = test.class_names();
  const int64_t n = opt.limit > 0 ? std::min(opt.limit, test.size()) : test.size();
  const TestEval t = evaluate_test(model, test, n, lm.info.norm, run.model_path);
  page.sections.push_back({"test", "Test set", test_section(t, names, page)});
  const std::vector<ImageMethod> methods = image_methods_for(model, one_image(test, 0, lm.info.norm));
  if (methods.empty()) {
    page.missing.push_back("explanations: the model records nothing an explanation method can use");
    return;
  }
  if (opt.examples > 0)
    page.sections.push_back({"examples", "Most and least confident test images",
                             examples_section(model, test, t, methods, opt, lm.info.norm, names)});
  if (opt.faithfulness_images > 0)
    page.sections.push_back({"faithfulness", "Faithfulness of the explanations",
                             faithfulness_section(model, test, t, methods, opt, lm.info.norm)});
}

}  // namespace focus::report_detail
