// libFuzzer target: accord's JSON parser against Boost.JSON's on the same bytes, and against a
// reference that looks for repeated keys its own way. Where Boost.JSON fails, accord's fails
// too, with the same message; where it succeeds, accord's refuses exactly the documents in which
// the reference finds a repeated key, naming the one it finds first, and otherwise gives the same
// value.
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accord/json.h"

namespace {

namespace json = boost::json;

// Builds no value: keeps the keys of each open object in a vector and compares every new key
// with all of them.
struct ReferenceHandler {
  static constexpr size_t max_object_size = json::object::max_size();
  static constexpr size_t max_array_size = json::array::max_size();
  static constexpr size_t max_key_size = json::string::max_size();
  static constexpr size_t max_string_size = json::string::max_size();

  std::vector<std::vector<std::string>> objects;
  std::string key;
  std::optional<std::string> repeated;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    objects.emplace_back();
    return true;
  }
  bool on_object_end(size_t, json::error_code&) {
    objects.pop_back();
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, size_t, json::error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, size_t, json::error_code&) {
    key.append(s.data(), s.size());
    for (const std::string& k : objects.back()) {
      if (k == key && !repeated) repeated = key;
    }
    objects.back().push_back(key);
    key.clear();
    return true;
  }
  bool on_string_part(json::string_view, size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, size_t, json::error_code&) { return true; }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

// The first repeated key of a document Boost.JSON parses, as accord shows it.
std::optional<std::string> Repeated(std::string_view text) {
  json::basic_parser<ReferenceHandler> p(json::parse_options{});
  json::error_code ec;
  p.write_some(false, text.data(), text.size(), ec);
  if (!p.handler().repeated) return std::nullopt;
  std::string shown = p.handler().repeated->substr(0, 64);
  for (char& c : shown) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return shown;
}

}  // namespace

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
  const std::optional<std::string> repeated = Repeated(text);
  if (ours.has_value()) {
    if (repeated) __builtin_trap();  // a repeated key slipped through
    // Compared as text: Boost.JSON 1.81 reads `-0e333` as NaN, which equals no value, itself
    // included.
    if (json::serialize(*ours) != json::serialize(theirs)) __builtin_trap();
    return 0;
  }
  if (!repeated || ours.error() != "duplicate key `" + *repeated + "`") __builtin_trap();
  return 0;
}
