// Every differentiable op, in one include for nn/ and above.
#pragma once
#include "focus/autograd/node.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/dropout.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/norm.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/softmax.hpp"
#include "focus/ops/unary.hpp"
#include "focus/ops/view.hpp"
