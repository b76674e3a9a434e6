// The simulator's shifted stream and feedback run (issue 19, `focus simulate-review --stream
// shifted --feedback-every N`), joining review/ (routing) and train/ (fine-tuning) in the app
// layer.
//
// Shifts of the Fashion-MNIST test images (shift_images), deterministic (none: a copy):
//   invert    every pixel p -> 255 - p (light garments on a dark background become dark on
//             light: the first layers' features no longer fire where the model learnt them)
//   rotate90  a quarter turn clockwise
//   noise     Gaussian noise, sigma 0.35 of the range, seeded per image, clamped to [0, 255]
//
// The feedback run (run_feedback): the shifted test set in a seeded order is cut into a gate
// slice (its labels are the operator's held-out set for the new distribution: the gate decides on
// it, nothing trains on it), an evaluation slice (never trained on nor gated on: the accuracy
// "after N labels" is measured on it) and the stream (the rest). The stream arrives at --rate an
// hour; the capacity controller (review/capacity.hpp, least-confidence on the served model's
// calibrated probabilities) defers items to a bounded queue answered by simulated reviewers at
// budget x rate an hour (right with the given probability, drawn once per item; a wrong answer is
// another class, also drawn once). With feedback, every `every` labels the served model is
// fine-tuned (train/fine_tune.hpp) on all labels so far mixed with a replay of its Fashion-MNIST
// training split, and the candidate (the last epoch's model) replaces it only when its accuracy on the gate slice is at
// least the served one's (the `focus promote` rule, here on shifted data). Without feedback the
// same stream, reviewers and routing run with the starting model throughout. Reported: the
// accuracy over windows of the stream (the model's answer at arrival; the system's final answer
// with reviewers), the evaluation-slice accuracy after each round, and both after `target` labels.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "focus/data/dataset.hpp"

namespace focus {

// ValueError for an unknown kind (names the kinds).
ImageDataset shift_images(const ImageDataset& ds, const std::string& kind, uint64_t seed);
inline constexpr const char* kShiftKinds = "invert | rotate90 | noise";

struct FeedbackOptions {
  std::string model, data_dir, shift = "invert", work_dir;
  double budget = 0.2;            // reviewed share of the stream (capacity = budget x rate)
  double rate = 1000;             // arrivals an hour
  int64_t queue = 50;             // review queue cap
  double reviewer_accuracy = 1.0;
  int64_t every = 250;            // labels between fine-tuning rounds
  int64_t target = 1000;          // the headline: accuracies after this many labels
  int64_t gate_items = 1000, eval_items = 2000;
  int64_t window = 500;           // stream items per reported window
  int64_t limit = 0;              // use only N shifted test items (0 = all)
  double replay_share = 0.5, lr = 3e-4;
  int epochs = 2, batch = 64;
  uint64_t seed = 0;
  bool quiet = false;             // no progress lines on stderr
};

// The run with and without feedback as JSON (see the header comment). ValueError when the slices
// leave fewer than 10 stream items or an option is out of range.
nlohmann::json run_feedback(const FeedbackOptions& o);

}  // namespace focus
