// `focus explain`: what a model looked at. Image models (a PNG or a Fashion-MNIST test image):
// the class token's attention per layer and head, rollout, gradient-weighted rollout (ViT) or
// Grad-CAM and the squeeze-and-excitation gates (cnn_se), as PNG overlays, JSON, or a Unicode
// heatmap on the terminal; optional deletion / insertion faithfulness. Seq2seq models (a word or
// sentence): the cross-attention alignment and self-attention maps as SVG, JSON or Unicode.
// Text classifiers (a sentence): pooling, rollout and gradient x input per token
// (cmd_explain_text.cpp).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/data/dataset.hpp"
#include "focus/data/png.hpp"
#include "focus/explain/image_explain.hpp"
#include "focus/explain/render.hpp"
#include "focus/explain/seq2seq_explain.hpp"
#include "focus/explain/svg_chart.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/infer/translator.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

struct ExplainOpts {
  std::string model, input, data_dir = kFashionMnistDir, method, out;
  int64_t index = -1, layer = -1, head = -1, target = -1, evaluate = 0;
  int beam = 1, threads = 0;
  bool json = false, all = false, faithfulness = false;
};

std::string stem_of(const ExplainOpts& o) {
  if (o.index >= 0) return "test" + std::to_string(o.index);
  std::string s = std::filesystem::path(o.input).stem().string();
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return s.empty() ? "input" : s;
}

std::string out_path(const ExplainOpts& o, const std::string& name) {
  return (std::filesystem::path(o.out) / (stem_of(o) + "_" + name)).string();
}

void print_heatmap(const Tensor& m, const std::vector<std::string>& rows,
                   const std::vector<std::string>& cols) {
  std::printf("%s", unicode_heatmap(m, rows, cols, isatty(1) != 0).c_str());
}

int explain_image_model(const ExplainOpts& o) {
  LoadedModel lm = load_model(o.model);
  ImageClassifier& model = *lm.model;
  Image img;
  if (o.index >= 0) {
    const ImageDataset ds = load_fashion_mnist(o.data_dir, Split::Test);
    FOCUS_CHECK(o.index < ds.size(), ValueError, "--index {} is outside the test set [0, {})",
                o.index, ds.size());
    img = ds.image_at(o.index);
  } else {
    img = read_png_gray(o.input, 28, 28);
  }
  const Tensor x = image_to_tensor(img, lm.info.norm);  // (1, 1, 28, 28)
  ImageExplainOptions opt;
  opt.method = !o.method.empty() ? parse_image_method(o.method)
               : model.name() == "cnn_se" ? ImageMethod::GradCam : ImageMethod::Rollout;
  opt.layer = o.layer;
  opt.head = o.head;
  opt.target = o.target;
  const ImageExplanation e = explain_image(model, x, opt);
  const auto& names = lm.info.class_names;
  auto name_of = [&](int64_t c) { return c < int64_t(names.size()) ? names[c] : std::to_string(c); };
  nlohmann::json j = explanation_to_json(e);
  j["class_names"] = names;
  if (o.faithfulness) {
    Rng rng(1);
    const float baseline = (0.f - lm.info.norm.mean) / lm.info.norm.std;  // black
    j["faithfulness"] =
        faithfulness_to_json(faithfulness(model, x, e.relevance, e.target, baseline, rng));
  }
  if (o.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s: predicted %s (p = %.3f); explaining %s with %s\n", o.model.c_str(),
                name_of(e.predicted).c_str(), e.probs[e.predicted], name_of(e.target).c_str(),
                image_method_name(e.method).c_str());
    if (o.faithfulness)
      std::printf("faithfulness: deletion area %.4f (random order %.4f; lower is better), "
                  "insertion area %.4f (random %.4f; higher is better)\n",
                  j["faithfulness"]["deletion_area"].get<double>(),
                  j["faithfulness"]["deletion_area_random"].get<double>(),
                  j["faithfulness"]["insertion_area"].get<double>(),
                  j["faithfulness"]["insertion_area_random"].get<double>());
    for (size_t b = 0; b < e.gates.size(); ++b) {  // the most excited channels per SE block
      const std::vector<float> g = e.gates[b].to_vector<float>();
      std::vector<int64_t> idx(g.size());
      for (size_t i = 0; i < g.size(); ++i) idx[i] = int64_t(i);
      std::partial_sort(idx.begin(), idx.begin() + std::min<size_t>(5, idx.size()), idx.end(),
                        [&](int64_t a, int64_t c) { return g[a] > g[c]; });
      std::printf("SE block %zu gates (%zu channels): top", b, g.size());
      for (size_t i = 0; i < std::min<size_t>(5, idx.size()); ++i)
        std::printf(" ch%lld=%.3f", (long long)idx[i], g[idx[i]]);
      std::printf("\n");
    }
    if (o.out.empty()) print_heatmap(e.relevance, {}, {});
  }
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    const std::string m = image_method_name(e.method);
    write_png(out_path(o, m + ".png"), heatmap_overlay(img, e.relevance));
    write_file_atomic(out_path(o, m + ".json"), j.dump());
    std::vector<std::string> written{out_path(o, m + ".png"), out_path(o, m + ".json")};
    if (o.all && !e.maps.empty()) {  // the attention method for every layer, head mean and heads
      for (int64_t l = 0; l < int64_t(e.maps.size()); ++l)
        for (int64_t h = -1; h < e.maps[l].size(0); ++h) {
          ImageExplainOptions a = opt;
          a.method = ImageMethod::Attention;
          a.layer = l;
          a.head = h;
          const ImageExplanation ea = explain_image(model, x, a);
          const std::string name = fmt::format("attention_l{}_{}.png", l,
                                               h < 0 ? std::string("mean") : "h" + std::to_string(h));
          write_png(out_path(o, name), heatmap_overlay(img, ea.relevance));
          written.push_back(out_path(o, name));
        }
    }
    if (!e.gates.empty()) {  // the SE gates of every block, each sorted from most excited
      std::vector<Series> lines;
      for (size_t b = 0; b < e.gates.size(); ++b) {
        std::vector<float> g = e.gates[b].to_vector<float>();
        std::sort(g.begin(), g.end(), std::greater<float>());
        Series s;
        s.name = fmt::format("block {} ({} channels)", b, g.size());
        for (size_t c = 0; c < g.size(); ++c) {
          s.x.push_back(static_cast<double>(c) / static_cast<double>(g.size() - 1));
          s.y.push_back(g[c]);
        }
        lines.push_back(std::move(s));
      }
      ChartOptions co;
      co.title = "Squeeze-and-excitation gates, sorted";
      co.x_label = "channel rank (fraction of the block's channels)";
      co.y_label = "gate";
      co.y_from_zero = true;
      std::string svg = svg_line_chart(lines, co);
      svg.insert(svg.find("<svg") + 4, " xmlns=\"http://www.w3.org/2000/svg\"");  // a file
      write_file_atomic(out_path(o, "se_gates.svg"), svg);
      written.push_back(out_path(o, "se_gates.svg"));
    }
    if (!o.json)
      for (const auto& w : written) std::printf("wrote %s\n", w.c_str());
  }
  return 0;
}

// Mean deletion / insertion areas over the first n test images, for every method the model has.
int evaluate_faithfulness(const ExplainOpts& o) {
  LoadedModel lm = load_model(o.model);
  ImageClassifier& model = *lm.model;
  const ImageDataset ds = load_fashion_mnist(o.data_dir, Split::Test);
  const int64_t n = std::min<int64_t>(o.evaluate, ds.size());
  const float baseline = (0.f - lm.info.norm.mean) / lm.info.norm.std;  // black
  const std::vector<ImageMethod> methods =
      image_methods_for(model, image_to_tensor(ds.image_at(0), lm.info.norm));
  std::vector<Tensor> images;
  for (int64_t i = 0; i < n; ++i) images.push_back(image_to_tensor(ds.image_at(i), lm.info.norm));
  Rng rng(1);
  std::vector<Faithfulness> means;
  for (ImageMethod m : methods)
    means.push_back(mean_faithfulness(model, images, m, baseline, rng, 3));
  nlohmann::json j = {{"model", o.model}, {"images", n}};
  if (!o.json)
    std::printf("%s: faithfulness over the first %lld test images (cells set to black; areas "
                "under the predicted class's probability)\n\n| method | deletion area (lower is "
                "better) | random order | insertion area (higher is better) | random order |\n"
                "|---|---:|---:|---:|---:|\n",
                o.model.c_str(), (long long)n);
  for (size_t k = 0; k < methods.size(); ++k) {
    const std::string m = image_method_name(methods[k]);
    const Faithfulness& f = means[k];
    j["methods"][m] = faithfulness_to_json(f);
    if (!o.json)
      std::printf("| %s | %.4f | %.4f | %.4f | %.4f |\n", m.c_str(), f.deletion.area,
                  f.deletion_random.area, f.insertion.area, f.insertion_random.area);
  }
  if (o.json) std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

int explain_seq2seq_model(const ExplainOpts& o) {
  FOCUS_CHECK(!o.input.empty(), ValueError, "--input: give the source text (e.g. a word)");
  FOCUS_CHECK(o.method.empty() || o.method == "attention", ValueError,
              "--method {}: seq2seq models explain with attention alignments only", o.method);
  const Translator tr(o.model);
  SearchOptions search;
  search.beam = o.beam;
  const std::string src = tr.normalize(o.input);
  const AlignmentExplanation e = explain_translation(tr, o.input, search);
  const Tensor cross = pick_map(e.cross, o.layer, o.head);  // (T, S)
  nlohmann::json j = alignment_to_json(e);
  if (o.faithfulness) {
    Rng rng(1);
    j["faithfulness"] = faithfulness_to_json(alignment_faithfulness(tr.model(), e, rng));
  }
  if (o.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s -> %s (log p = %.4f)\ncross-attention, decoder layer %s, %s:\n", src.c_str(),
                e.output.c_str(), e.log_prob,
                o.layer < 0 ? "last" : std::to_string(o.layer).c_str(),
                o.head < 0 ? "head mean" : ("head " + std::to_string(o.head)).c_str());
    print_heatmap(cross, e.target_tokens, e.source_tokens);
    if (o.faithfulness)
      std::printf("faithfulness (source tokens -> <unk> by attention received): deletion area "
                  "%.4f (random order %.4f; lower is better), insertion area %.4f (random %.4f; "
                  "higher is better)\n",
                  j["faithfulness"]["deletion_area"].get<double>(),
                  j["faithfulness"]["deletion_area_random"].get<double>(),
                  j["faithfulness"]["insertion_area"].get<double>(),
                  j["faithfulness"]["insertion_area_random"].get<double>());
  }
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    std::vector<std::string> written;
    auto svg = [&](const std::string& name, const Tensor& m, const std::vector<std::string>& rows,
                   const std::vector<std::string>& cols, const std::string& title) {
      write_file_atomic(out_path(o, name), svg_heatmap(m, rows, cols, title));
      written.push_back(out_path(o, name));
    };
    const int64_t L = int64_t(e.cross.size());
    for (int64_t l = 0; l < L; ++l) {
      svg(fmt::format("cross_l{}.svg", l), pick_map(e.cross, l, -1), e.target_tokens,
          e.source_tokens, fmt::format("{} -> {}: cross-attention, layer {}, head mean", src,
                                       e.output, l));
      for (int64_t h = 0; o.all && h < e.cross[l].size(0); ++h)
        svg(fmt::format("cross_l{}_h{}.svg", l, h), pick_map(e.cross, l, h), e.target_tokens,
            e.source_tokens, fmt::format("cross-attention, layer {}, head {}", l, h));
    }
    svg("decoder_self.svg", pick_map(e.decoder_self, o.layer, o.head), e.target_tokens,
        e.target_tokens, "decoder self-attention");
    svg("encoder_self.svg", pick_map(e.encoder_self, o.layer, o.head), e.source_tokens,
        e.source_tokens, "encoder self-attention");
    write_file_atomic(out_path(o, "alignment.json"), j.dump());
    written.push_back(out_path(o, "alignment.json"));
    if (!o.json)
      for (const auto& w : written) std::printf("wrote %s\n", w.c_str());
  }
  return 0;
}

}  // namespace

Command add_explain_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "explain", "show what a model attends to: attention maps, rollout, Grad-CAM (images); "
                 "cross-attention alignments (seq2seq)");
  auto o = std::make_shared<ExplainOpts>();
  sub->add_option("--model", o->model, "model file (.safetensors)")->required();
  sub->add_option("--input", o->input, "image models: a PNG; seq2seq and text models: the text");
  sub->add_option("--index", o->index, "image models: explain this Fashion-MNIST test image")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  sub->add_option("--method", o->method,
                  "attention | rollout | grad-rollout | grad-cam (default: rollout for "
                  "attention models, grad-cam for cnn_se)")
      ->check(CLI::IsMember({"attention", "rollout", "grad-rollout", "grad-cam"}));
  sub->add_option("--layer", o->layer, "layer (-1 = last; rollout: up to this layer)");
  sub->add_option("--head", o->head, "head (-1 = mean over heads)");
  sub->add_option("--target", o->target, "image and text models: class to explain (-1 = predicted)");
  sub->add_option("--beam", o->beam, "seq2seq: beam size for the hypothesis")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--out", o->out, "write PNG / SVG heatmaps and JSON into this directory");
  sub->add_flag("--all", o->all, "with --out: every layer and head");
  sub->add_flag("--faithfulness", o->faithfulness,
                "deletion / insertion curves (image cells / source or text tokens) vs random order");
  sub->add_option("--evaluate", o->evaluate,
                  "image models: mean deletion / insertion areas of every method over the first "
                  "N test images (instead of one explanation)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", o->json, "print the explanation (raw maps included) as JSON");
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    if (model_file_format(o->model).rfind("focus-seq2seq", 0) == 0)
      return explain_seq2seq_model(*o);
    if (is_text_model_file(o->model))
      return explain_text_model(o->model, o->input, o->target, o->out, o->faithfulness, o->json);
    if (o->evaluate > 0) return evaluate_faithfulness(*o);
    FOCUS_CHECK((o->index >= 0) != !o->input.empty(), ValueError,
                "image models: give exactly one of --input PNG and --index N");
    return explain_image_model(*o);
  };
}

}  // namespace focus
