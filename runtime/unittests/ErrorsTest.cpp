//===- ErrorsTest.cpp - What the C API reports of exceptions --------------===//
//
// No exception may cross the C API: every entry point's `catch (...)` turns
// one into a status and a message (failFromException).
//
//===----------------------------------------------------------------------===//

#include "Model.h"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>

using namespace hybrid::rt;

namespace {
/// What failFromException makes of `thrown`, thrown in an entry point.
template <typename Exception>
hybrid_rt_status failWith(const Exception &thrown) {
  try {
    throw thrown;
  } catch (...) {
    return failFromException("hybrid_rt_session_append");
  }
}

TEST(ErrorsTest, OutOfHostMemoryIsOutOfMemory) {
  EXPECT_EQ(failWith(std::bad_alloc()), HYBRID_RT_OUT_OF_MEMORY);
  EXPECT_EQ(std::string(hybrid_rt_last_error()),
            "hybrid_rt_session_append: out of host memory");
}

TEST(ErrorsTest, OtherExceptionsAreInternalErrorsNamingThem) {
  // What a negative seq dim once threw out of hybrid_rt_session_append.
  EXPECT_EQ(failWith(std::length_error("vector::_M_default_append")),
            HYBRID_RT_INTERNAL_ERROR);
  EXPECT_EQ(std::string(hybrid_rt_last_error()),
            "hybrid_rt_session_append: internal error (a bug in the runtime; "
            "please report it): vector::_M_default_append");
  EXPECT_EQ(failWith(42), HYBRID_RT_INTERNAL_ERROR);
  EXPECT_EQ(std::string(hybrid_rt_last_error()),
            "hybrid_rt_session_append: internal error (a bug in the runtime; "
            "please report it): an unknown exception");
}
} // namespace
