#include "accord/status.h"

#include <gtest/gtest.h>

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

namespace accord {
namespace {

TEST(ExceptionTextTest, AnAllocationFailureSaysOutOfMemoryRatherThanItsType) {
  EXPECT_EQ(ExceptionText(std::bad_alloc()), "out of memory");
  EXPECT_EQ(ExceptionText(std::bad_array_new_length()), "out of memory");
}

TEST(ExceptionTextTest, BoostsSourceLocationIsCutFromASystemError) {
  static constexpr boost::source_location kHere = BOOST_CURRENT_LOCATION;
  const boost::system::error_code ec(ECONNREFUSED, boost::system::system_category(), &kHere);
  const boost::system::system_error e(ec, "connect");
  const std::string what = e.what();
  ASSERT_NE(what.find(" at "), std::string::npos) << what;  // Boost does append the location
  const std::string text = ExceptionText(e);
  EXPECT_EQ(text, "connect: " + ec.message());
  EXPECT_EQ(text.find("status_test"), std::string::npos) << text;
}

TEST(ExceptionTextTest, OtherTextIsKeptWhole) {
  EXPECT_EQ(ExceptionText(std::runtime_error("the queue is full")), "the queue is full");
  EXPECT_EQ(ExceptionText(std::runtime_error("a list [a, b]")), "a list [a, b]");
  EXPECT_EQ(ExceptionText(std::runtime_error("met [them at noon]")), "met [them at noon]");
  EXPECT_EQ(ExceptionText(std::runtime_error("")), "");
  const std::system_error e(std::make_error_code(std::errc::resource_unavailable_try_again),
                            "thread");
  EXPECT_EQ(ExceptionText(e), e.what());
}

}  // namespace
}  // namespace accord
