// `focus eval` (accuracy, per-class precision/recall/F1, confusion matrix on the test set; for
// image models also the calibration: ECE over 15 bins and NLL at T = 1 and at the file's
// temperature, and optionally the reliability diagram as JSON + SVG) and `focus predict` (top-k
// classes of one PNG image).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "focus/kernels/precision.hpp"
#include "focus/apps/calibration_cli.hpp"

#include "focus/apps/commands.hpp"
#include "focus/data/dataset.hpp"
#include "focus/data/png.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

Command add_eval_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "eval", "evaluate a model: image models on the Fashion-MNIST test set; g2p models on the "
              "CMUdict test split (WER, PER, worst errors); translation models on --input TSV");
  struct Opts {
    std::string model, data_dir = kFashionMnistDir, split = "test", task, input, cmudict,
        weights = "auto", reliability, precision = "f32";
    bool json = false;
    int threads = 0, beam = 5, worst = 20;
    double length_penalty = 1.0;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "model file (.safetensors)")->required();
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  sub->add_option("--split", o->split, "test | train (images), test | dev (g2p)")
      ->check(CLI::IsMember({"test", "train", "dev"}))->capture_default_str();
  sub->add_option("--task", o->task, "expected task of the model (g2p, translate, fashion-mnist)");
  sub->add_option("--input", o->input,
                  "seq2seq: evaluate on this source<TAB>target TSV; text models: on this "
                  "label<TAB>text TSV or JSON lines (.jsonl)");
  sub->add_option("--cmudict", o->cmudict, "g2p: CMUdict dict.txt (default: the data cache)");
  sub->add_option("--beam", o->beam, "seq2seq: beam size (greedy is reported too)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--length-penalty", o->length_penalty, "seq2seq: score = log p / length^alpha")
      ->capture_default_str();
  sub->add_option("--worst", o->worst, "g2p: errors to list")->capture_default_str();
  sub->add_option("--reliability", o->reliability,
                  "image models: write the reliability diagram data to this JSON file and the "
                  "chart beside it (.svg)");
  sub->add_flag("--json", o->json, "print the metrics as JSON");
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  add_weights_option(sub, o->weights);
  sub->add_option("--precision", o->precision,
                  "image and text models: f32 | bf16, the layers' GEMMs and convolutions at bf16 "
                  "with F32 accumulation (needs AVX512-BF16 or AMX)")
      ->capture_default_str();
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    const Precision precision = supported_precision(o->precision);
    const ScopedPrecision scoped(precision);
    const bool seq2seq = model_file_format(o->model).rfind("focus-seq2seq", 0) == 0;
    FOCUS_CHECK(!seq2seq || precision == Precision::F32, ValueError,
                "--precision bf16 is for image and text models: seq2seq decoding runs on packed "
                "weight panels (use --weights bf16)");
    if (seq2seq)
      return eval_seq2seq(o->model, o->task, o->split, o->input, o->cmudict, o->beam,
                          o->length_penalty, o->worst, o->json, o->weights);
    if (is_text_model_file(o->model)) return eval_text(o->model, o->input, o->json);
    FOCUS_CHECK(o->split != "dev", ValueError, "--split dev is for g2p models");
    FOCUS_CHECK(o->weights != "bf16", ValueError,
                "--weights bf16 is for seq2seq models (an image model's batches widen them "
                "anyway); image models run f32 or int8");
    const ImagePredictor predictor(o->model, {.weights = o->weights});
    const ModelInfo& info = predictor.info();
    const ImageDataset ds = load_fashion_mnist(o->data_dir, parse_split(o->split));
    std::vector<int64_t> idx(size_t(ds.size()));
    std::iota(idx.begin(), idx.end(), int64_t(0));
    const EvalResult r = evaluate(predictor.model(), ds, idx, info.norm);
    // Calibration: the raw logits at T = 1 and at the file's temperature.
    const std::vector<double> z = dataset_logits(predictor, ds, idx);
    const std::vector<int64_t> y = dataset_labels(ds, idx);
    const CalibrationReport before = calibration_report(z, y, predictor.num_classes(), 1.0);
    const CalibrationReport after = calibration_report(z, y, predictor.num_classes(), info.temperature);
    const nlohmann::json cal = {{"bins", 15}, {"before", to_json(before)}, {"after", to_json(after)}};
    if (!o->reliability.empty()) {
      write_file_atomic(o->reliability, cal.dump(2) + "\n");
      const std::string svg = std::filesystem::path(o->reliability).replace_extension(".svg").string();
      write_file_atomic(svg, standalone_svg(reliability_svg(before, after, fmt::format("reliability: {} ({} split)", o->model, o->split))) + "\n");
    }
    if (o->json) {
      nlohmann::json j = metrics_to_json(r.cm, info.class_names);
      j["loss"] = r.loss;
      j["weights"] = predictor.weights();
      j["calibration"] = cal;
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("%s: %s split, %lld images, %s weights\naccuracy %.2f%%  loss %.4f\n"
                "calibration (15 bins): T = 1: ECE %.2f%% NLL %.4f; T = %.4f: ECE %.2f%% NLL %.4f\n\n%s\n%s",
                o->model.c_str(), o->split.c_str(), (long long)ds.size(), predictor.weights().c_str(),
                100 * r.accuracy(), r.loss,
                100 * before.ece, before.nll, info.temperature, 100 * after.ece, after.nll,
                format_report(classification_report(r.cm), info.class_names).c_str(),
                format_confusion(r.cm, info.class_names).c_str());
    return 0;
  };
}

Command add_predict_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "predict", "classify a PNG image (converted to 28x28 gray), or texts with a text model");
  struct Opts {
    std::string model, input, weights = "auto";
    std::vector<std::string> texts;
    int top = 3;
    bool uncalibrated = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "model file (.safetensors)")->required();
  sub->add_option("--input", o->input, "PNG image; text models: a file of texts, one a line");
  sub->add_option("--text", o->texts, "text models: a text to classify (repeatable)");
  sub->add_option("--top", o->top, "classes to show")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_flag("--uncalibrated", o->uncalibrated, "the raw softmax, without the file's temperature");
  sub->add_option("--weights", o->weights,
                  "f32; bf16 (cnn_se's convolutions in bfloat16 on AVX512-BF16 / AMX CPUs, vit's "
                  "Linear weights in bfloat16); int8 (int8 weights per output channel, "
                  "activations per row, for the layers of the file's plan from `focus quantize`, "
                  "else every Linear and Conv2d); auto (int8 for a file `focus quantize` wrote, "
                  "else f32)")
      ->check(CLI::IsMember({"f32", "bf16", "int8", "auto"}))
      ->capture_default_str();
  return [o] {
    if (is_text_model_file(o->model)) return predict_text(o->model, o->texts, o->input, o->top, o->uncalibrated);
    FOCUS_CHECK(!o->input.empty(), ValueError, "focus predict: --input PNG is required for an image model");
    ImagePredictorOptions opt;
    opt.calibrated = !o->uncalibrated;
    opt.weights = o->weights;
    const ImagePredictor predictor(o->model, opt);
    const ImagePrediction r = predictor.predict({read_png(o->input)}, o->top)[0];
    for (const ClassScore& c : r.top) std::printf("%-12s %6.2f%%\n", c.name.c_str(), 100.0 * c.prob);
    return 0;
  };
}

}  // namespace focus
