// L-BFGS (Nocedal & Wright, "Numerical Optimization", algorithm 7.4 with the two-loop recursion
// 7.5): the deterministic minimiser for smooth convex problems solved to convergence, where a
// stochastic optimizer's early stopping is the wrong tool (the text models' n-gram branch fitted
// as a regularised logistic regression, models/text_ngram.hpp). Double precision
// throughout; the caller's objective computes the value and writes the gradient.
// Line search: backtracking from step 1 (the first iteration from 1 / |g|) under the Armijo
// condition (c1 = 1e-4), halving; a pair (s, y) with s.y <= 1e-10 |s||y| is not stored (the
// curvature condition fails only off convexity or at rounding level), which keeps H positive
// definite. Stops when |g|_inf <= tol_grad * max(1, |x|_inf), when the value's relative decrease
// over an iteration falls under tol_value, after max_iter iterations, or when the line search
// cannot decrease the value (at rounding level: reported, not an error).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace focus {

struct LbfgsOptions {
  int64_t memory = 10;       // (s, y) pairs kept
  int64_t max_iter = 500;
  double tol_grad = 1e-6;    // on |g|_inf relative to max(1, |x|_inf)
  double tol_value = 1e-10;  // relative decrease of the value per iteration
  int64_t max_backtracks = 40;
};

struct LbfgsResult {
  double value = 0;
  double grad_inf = 0;    // |g|_inf at the returned x
  int64_t iterations = 0;
  int64_t evaluations = 0;
  std::string stop;       // "gradient", "value", "max_iter", "line_search"
};

// f(x, g) returns the objective at x and writes its gradient into g (g.size() == x.size()).
using LbfgsObjective = std::function<double(const std::vector<double>& x, std::vector<double>& g)>;

// Minimises f from x (updated in place). ValueError for bad options or a non-finite start value.
LbfgsResult lbfgs_minimize(const LbfgsObjective& f, std::vector<double>& x,
                           const LbfgsOptions& opt = {});

}  // namespace focus
