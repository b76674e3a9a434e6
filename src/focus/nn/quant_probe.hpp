// Measuring int8 error layer by layer (infer/quantize.hpp): while a QuantProbeScope is alive on
// this thread, every Linear and Conv2d whose forward runs an int8 weight also runs its F32 weight
// on the same input and adds the squared difference and the squared F32 output to the probe's
// sums for that module. So each layer's error is measured on the inputs it really gets in the
// quantised model, and the F32 output is thrown away (the int8 one flows on).
#pragma once
#include <map>

#include "focus/tensor/tensor.hpp"

namespace focus {

class Module;

struct QuantProbe {
  struct Sums {
    double err2 = 0, ref2 = 0;  // sum (int8 - f32)^2, sum f32^2
    int64_t calls = 0;
  };
  std::map<const Module*, Sums> sums;
  void add(const Module* m, const Tensor& got, const Tensor& ref);  // same shapes, F32
};

QuantProbe* quant_probe();  // this thread's, or null

class QuantProbeScope {
 public:
  explicit QuantProbeScope(QuantProbe& p);
  ~QuantProbeScope();
  QuantProbeScope(const QuantProbeScope&) = delete;
  QuantProbeScope& operator=(const QuantProbeScope&) = delete;

 private:
  QuantProbe* prev_;
};

}  // namespace focus
