// Every layer, in one include for models and above.
#pragma once
#include "focus/nn/attention.hpp"
#include "focus/nn/conv.hpp"
#include "focus/nn/dropout.hpp"
#include "focus/nn/linear.hpp"
#include "focus/nn/module.hpp"
#include "focus/nn/norm.hpp"
#include "focus/nn/positional.hpp"
#include "focus/nn/squeeze_excitation.hpp"
#include "focus/nn/transformer.hpp"
