// What the calibration-related commands share (cmd_calibrate.cpp): the validation split of a
// training run, rebuilt as `focus train` builds it, and the reliability diagram as SVG.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "focus/data/dataset.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI
#include "focus/infer/calibration.hpp"

namespace focus {

// The train-split options that decide a run's validation images (train/config.hpp's defaults).
struct SplitSpec {
  int64_t val_size = 5000;
  uint64_t seed = 1;
  int64_t limit_train = 0;
  std::string from;  // the config.json these came from ("" = defaults)
};

// The --val-size / --seed / --limit-train flags of a command that rebuilds a run's validation
// split (calibrate, quantize, promote): resolve() gives the run's SplitSpec (run_split_spec of the
// model file) with the flags that were given on top.
class SplitFlags {
 public:
  void add_to(CLI::App* sub);
  SplitSpec resolve(const std::string& model_path) const;

 private:
  SplitSpec given_;
  CLI::Option *val_ = nullptr, *seed_ = nullptr, *limit_ = nullptr;
};

// The run's validation indices into the Fashion-MNIST training set, as train/Trainer picks them:
// stratified and seeded over all images, or the first val_size of a --limit-train prefix.
// ValueError unless 1 <= val_size < the images used.
std::vector<int64_t> validation_indices(const ImageDataset& train, const SplitSpec& s);
// The SplitSpec of the run whose model file is `model_path` (its directory's config.json), or the
// defaults when there is none or it cannot be read.
SplitSpec run_split_spec(const std::string& model_path);
// Reliability diagram: bin accuracy against bin confidence before and after, and the diagonal;
// an <svg> for HTML pages (no xmlns: standalone_svg adds it for a .svg file).
std::string reliability_svg(const CalibrationReport& before, const CalibrationReport& after,
                            const std::string& title);
std::string standalone_svg(const std::string& svg);

}  // namespace focus
