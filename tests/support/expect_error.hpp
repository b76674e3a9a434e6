// expect_error<E>(f, {"needle", ...}): runs f and expects exception E whose message contains
// every needle (error messages must name the shapes and values involved).
#pragma once
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace focus::testing {

template <class E, class F>
void expect_error(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no exception thrown";
  } catch (const E& e) {
    for (const std::string& s : needles)
      EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what() << " lacks " << s;
  }
}

}  // namespace focus::testing
