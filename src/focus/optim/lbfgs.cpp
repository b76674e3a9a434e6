// L-BFGS: the two-loop recursion and a backtracking Armijo line search (see lbfgs.hpp).
#include "focus/optim/lbfgs.hpp"

#include <algorithm>
#include <cmath>
#include <deque>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
double inf_norm(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}
struct Pair {
  std::vector<double> s, y;
  double rho;
};
}  // namespace

LbfgsResult lbfgs_minimize(const LbfgsObjective& f, std::vector<double>& x, const LbfgsOptions& opt) {
  FOCUS_CHECK(opt.memory >= 1 && opt.max_iter >= 0 && opt.tol_grad >= 0 && opt.tol_value >= 0 &&
                  opt.max_backtracks >= 1,
              ValueError, "lbfgs: memory {} (>= 1), max_iter {} (>= 0), tol_grad {} / tol_value {} "
              "(>= 0), max_backtracks {} (>= 1)", opt.memory, opt.max_iter, opt.tol_grad,
              opt.tol_value, opt.max_backtracks);
  const size_t n = x.size();
  std::vector<double> g(n), d(n), xn(n), gn(n);
  LbfgsResult r;
  double fx = f(x, g);
  r.evaluations = 1;
  FOCUS_CHECK(std::isfinite(fx), ValueError, "lbfgs: the objective is {} at the start", fx);
  std::deque<Pair> hist;
  std::vector<double> alpha(size_t(opt.memory));
  r.stop = "max_iter";
  for (;;) {
    r.value = fx;
    r.grad_inf = inf_norm(g);
    if (r.grad_inf <= opt.tol_grad * std::max(1.0, inf_norm(x))) {
      r.stop = "gradient";
      break;
    }
    if (r.iterations >= opt.max_iter) break;
    // d = -H g by the two-loop recursion; H0 = (s.y / y.y) I from the newest pair.
    for (size_t i = 0; i < n; ++i) d[i] = -g[i];
    for (size_t j = hist.size(); j-- > 0;) {
      alpha[j] = hist[j].rho * dot(hist[j].s, d);
      for (size_t i = 0; i < n; ++i) d[i] -= alpha[j] * hist[j].y[i];
    }
    double step = 1;
    if (!hist.empty()) {
      const Pair& p = hist.back();
      const double gamma = 1.0 / (p.rho * dot(p.y, p.y));
      for (double& v : d) v *= gamma;
    } else {
      step = 1.0 / std::max(std::sqrt(dot(g, g)), 1e-300);
    }
    for (size_t j = 0; j < hist.size(); ++j) {
      const double beta = hist[j].rho * dot(hist[j].y, d);
      for (size_t i = 0; i < n; ++i) d[i] += (alpha[j] - beta) * hist[j].s[i];
    }
    double slope = dot(g, d);
    if (!(slope < 0)) {  // not a descent direction (rounding): restart from steepest descent
      hist.clear();
      for (size_t i = 0; i < n; ++i) d[i] = -g[i];
      slope = -dot(g, g);
      step = 1.0 / std::max(std::sqrt(-slope), 1e-300);
    }
    double fn = 0;
    bool accepted = false;
    for (int64_t b = 0; b < opt.max_backtracks; ++b, step *= 0.5) {
      for (size_t i = 0; i < n; ++i) xn[i] = x[i] + step * d[i];
      fn = f(xn, gn);
      ++r.evaluations;
      if (std::isfinite(fn) && fn <= fx + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
    }
    if (!accepted) {
      r.stop = "line_search";
      break;
    }
    ++r.iterations;
    Pair p{std::vector<double>(n), std::vector<double>(n), 0};
    for (size_t i = 0; i < n; ++i) p.s[i] = xn[i] - x[i], p.y[i] = gn[i] - g[i];
    const double sy = dot(p.s, p.y);
    if (sy > 1e-10 * std::sqrt(dot(p.s, p.s) * dot(p.y, p.y))) {
      p.rho = 1.0 / sy;
      hist.push_back(std::move(p));
      if (int64_t(hist.size()) > opt.memory) hist.pop_front();
    }
    const double decrease = fx - fn;
    x.swap(xn);
    g.swap(gn);
    fx = fn;
    if (decrease <= opt.tol_value * std::max(1.0, std::abs(fx))) {
      r.value = fx;
      r.grad_inf = inf_norm(g);
      r.stop = "value";
      break;
    }
  }
  return r;
}

}  // namespace focus
