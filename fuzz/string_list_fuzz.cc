// libFuzzer target: the store's reader of string lists (an object's topics, compartments and
// rel_to, a subject's need-to-know: read back from a database that may have been damaged, or
// restored from a backup), against Boost.JSON on the same bytes, and the writer's round trip.
//   - Boost.JSON reads the bytes as the store does, taking strings that are not UTF-8 as they are
//     (the store's lists carry such bytes). Where it reads an array of strings, DecodeStringList
//     gives the same items; where it reads any other value, or fails, DecodeStringList refuses
//     them (kDataLoss).
//   - Whatever DecodeStringList reads, EncodeStringList writes as text that reads back the same.
//   - The input split at NUL bytes, as a list of items, round-trips through EncodeStringList and
//     DecodeStringList.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "accord/utf8.h"
#include "sqlite_util.h"

namespace {

namespace json = boost::json;
using accord::sqlite_internal::DecodeStringList;
using accord::sqlite_internal::EncodeStringList;

void CheckAgainstBoost(std::string_view text) {
  const auto ours = DecodeStringList(text);
  if (!ours && ours.error().code != accord::Code::kDataLoss) __builtin_trap();
  json::parse_options options;
  options.allow_invalid_utf8 = true;
  json::error_code ec;
  const json::value theirs = json::parse(text, ec, {}, options);
  if (ec) {
    if (ours) __builtin_trap();
  } else if (theirs.is_array() && [&] {
               for (const json::value& v : theirs.get_array()) {
                 if (!v.is_string()) return false;
               }
               return true;
             }()) {
    const json::array& items = theirs.get_array();
    if (!ours || ours->size() != items.size()) __builtin_trap();
    for (size_t i = 0; i < items.size(); ++i) {
      const json::string& s = items[i].get_string();
      if ((*ours)[i] != std::string_view(s.data(), s.size())) __builtin_trap();
    }
  } else if (ours) {
    __builtin_trap();
  }
  if (!ours) return;
  std::string written;
  EncodeStringList(*ours, written);
  const auto again = DecodeStringList(written);
  if (!again || *again != *ours) __builtin_trap();
}

void CheckRoundTrip(std::string_view bytes) {
  std::vector<std::string> items;
  if (!bytes.empty()) {
    size_t start = 0;
    for (size_t nul = bytes.find('\0'); nul != std::string_view::npos;
         nul = bytes.find('\0', start)) {
      items.emplace_back(bytes.substr(start, nul - start));
      start = nul + 1;
    }
    items.emplace_back(bytes.substr(start));
  }
  std::string written;
  EncodeStringList(items, written);
  const auto read = DecodeStringList(written);
  if (!read || *read != items) __builtin_trap();
  // Valid UTF-8 items are written as JSON that any reader takes.
  bool utf8 = true;
  for (const std::string& item : items) utf8 = utf8 && accord::IsUtf8(item);
  if (!utf8) return;
  json::error_code ec;
  const json::value theirs = json::parse(written, ec);
  if (ec || !theirs.is_array() || theirs.get_array().size() != items.size()) __builtin_trap();
  for (size_t i = 0; i < items.size(); ++i) {
    const json::value& v = theirs.get_array()[i];
    if (!v.is_string() ||
        std::string_view(v.get_string().data(), v.get_string().size()) != items[i]) {
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckAgainstBoost(bytes);
  CheckRoundTrip(bytes);
  return 0;
}
