// libFuzzer target: accord's JSON parser against Boost.JSON's on the same bytes. Where Boost.JSON
// fails, accord's fails too, with the same message; where it succeeds, accord's gives the same
// value, or refuses a repeated key and names it.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "accord/json.h"

namespace json = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static accord::JsonParser parser;  // reused, as the request decoder reuses its parser
  const auto ours = parser.Parse(text);
  json::error_code ec;
  const json::value theirs = json::parse(text, ec);
  if (ec) {
    if (ours.has_value() || ours.error() != ec.message()) __builtin_trap();
    return 0;
  }
  if (ours.has_value()) {
    // Compared as text: Boost.JSON 1.81 reads `-0e333` as NaN, which equals no value, itself
    // included.
    if (json::serialize(*ours) != json::serialize(theirs)) __builtin_trap();
    return 0;
  }
  // Refused although Boost.JSON parsed it: only for a repeated key, which a fresh parser names
  // the same way.
  if (!ours.error().starts_with("duplicate key `")) __builtin_trap();
  if (accord::ParseJson(text).error() != ours.error()) __builtin_trap();
  return 0;
}
