#include "accord/json.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

namespace accord {
namespace {

namespace json = boost::json;

struct DuplicateCase {
  const char* name;
  const char* text;
  const char* key;  // the key the message names
};

TEST(JsonParserTest, RefusesEveryObjectThatNamesAKeyTwice) {
  const DuplicateCase cases[] = {
      {"top level", R"({"level":"SECRET","level":"TOP SECRET"})", "level"},
      {"not adjacent", R"({"a":1,"b":2,"a":3})", "a"},
      {"nested", R"({"object":{"id":"x","topics":[],"id":"y"}})", "id"},
      {"in an array", R"([{"to":"JPN"},{"to":"USA","to":"KOR"}])", "to"},
      {"same value", R"({"a":true,"a":true})", "a"},
      {"escaped", R"({"level":1,"\u006cevel":2})", "level"},
      {"empty key", R"({"":1,"":2})", ""},
      {"after a nested object", R"({"x":{"x":1},"x":2})", "x"},
      {"unprintable shown as ?", "{\"a\\nb\":1,\"a\\nb\":2}", "a?b"},
  };
  JsonParser parser;
  for (const DuplicateCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto v = parser.Parse(c.text);
    ASSERT_FALSE(v.has_value()) << json::serialize(*v);
    EXPECT_EQ(v.error(), std::string("duplicate key `") + c.key + "`");
  }
}

TEST(JsonParserTest, AcceptsTheSameKeyInDifferentObjects) {
  JsonParser parser;
  auto v = parser.Parse(R"({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}],"c":{"b":1}})");
  ASSERT_TRUE(v.has_value()) << v.error();
  EXPECT_EQ(v->at("b").at(1).at("a").as_int64(), 2);
}

TEST(JsonParserTest, FindsADuplicateAmongManyKeys) {
  // Boost.JSON's object indexes its keys beyond 18 of them; a later key may repeat any earlier.
  for (int repeated : {0, 15, 16, 17, 18, 19, 999}) {
    SCOPED_TRACE(repeated);
    std::string text = "{";
    for (int i = 0; i < 1000; ++i)
      text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    text += "\"k" + std::to_string(repeated) + "\":0}";
    JsonParser parser;
    auto v = parser.Parse(text);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error(), "duplicate key `k" + std::to_string(repeated) + "`");
    text.replace(text.rfind("\"k"), 2, "\"x");  // now every key is distinct
    auto distinct = parser.Parse(text);
    ASSERT_TRUE(distinct.has_value()) << distinct.error();
    EXPECT_EQ(distinct->as_object().size(), 1001u);
  }
}

TEST(JsonParserTest, NamesALongKeyCutAndLongEscapedKeys) {
  const std::string long_key(100, 'k');
  JsonParser parser;
  auto cut = parser.Parse("{\"" + long_key + "\":1,\"" + long_key + "\":2}");
  ASSERT_FALSE(cut.has_value());
  EXPECT_EQ(cut.error(), "duplicate key `" + long_key.substr(0, 64) + "`");
  // A key with escapes longer than Boost.JSON's buffer comes to the handler in parts: written
  // once with escapes, once without, it is still the same key.
  std::string escaped, plain;
  for (int i = 0; i < 3000; ++i) {
    escaped += "\\u0061b";
    plain += "ab";
  }
  auto parts = parser.Parse("{\"" + escaped + "\":1,\"x\":{},\"" + plain + "\":2}");
  ASSERT_FALSE(parts.has_value());
  EXPECT_EQ(parts.error(), "duplicate key `" + plain.substr(0, 64) + "`");
  auto distinct = parser.Parse("{\"" + escaped + "\":1,\"" + plain + "c\":2}");
  ASSERT_TRUE(distinct.has_value()) << distinct.error();
}

TEST(JsonParserTest, ReportsBoostJsonErrorsAndHonoursTheOptions) {
  JsonParser parser;
  EXPECT_FALSE(parser.Parse("").has_value());
  EXPECT_FALSE(parser.Parse("{").has_value());
  EXPECT_FALSE(parser.Parse("{} {}").has_value());
  EXPECT_FALSE(parser.Parse(R"({"a":1,})").has_value());
  EXPECT_EQ(parser.Parse("{} x").error(), json::make_error_code(json::error::extra_data).message());
  ASSERT_TRUE(parser.Parse("  {\"a\":1}\n").has_value());

  json::parse_options shallow;
  shallow.max_depth = 2;
  JsonParser limited(shallow);
  EXPECT_TRUE(limited.Parse("[[1]]").has_value());
  EXPECT_FALSE(limited.Parse("[[[1]]]").has_value());

  // A failed document leaves the parser ready for the next.
  EXPECT_FALSE(parser.Parse(R"({"a":{"b":1,"b":2)").has_value());
  auto after = parser.Parse(R"({"b":1})");
  ASSERT_TRUE(after.has_value()) << after.error();
  EXPECT_EQ(json::serialize(*after), R"({"b":1})");
}

TEST(JsonParserTest, TakesTheValuesMemoryFromTheGivenStorage) {
  json::monotonic_resource arena;
  json::storage_ptr storage(&arena);
  JsonParser parser;
  auto v = parser.Parse(
      R"({"long enough to leave the small buffer":"and a long string value too"})", storage);
  ASSERT_TRUE(v.has_value()) << v.error();
  EXPECT_EQ(v->storage().get(), storage.get());
}

// A document holding a secret, in memory that is wiped when freed: it parses to the same value,
// all of it in that memory. (That the memory is wiped cannot be read back once freed without
// undefined behaviour; SecureWipe is OpenSSL's OPENSSL_cleanse.)
TEST(JsonParserTest, ParsesIntoMemoryThatIsWipedWhenFreed) {
  const std::string text =
      R"({"id":"k-1","payload_base64":")" + std::string(4000, 'Q') + R"(","topics":["a","b"]})";
  WipingJsonResource wiping;
  {
    auto v = ParseJson(text, {}, json::storage_ptr(&wiping));
    ASSERT_TRUE(v.has_value()) << v.error();
    EXPECT_EQ(v->storage().get(), &wiping);
    EXPECT_EQ(v->at("payload_base64").get_string().storage().get(), &wiping);
    EXPECT_EQ(*v, json::parse(text));
  }
  EXPECT_TRUE(json::storage_ptr(&wiping).get()->is_equal(wiping));
  WipingJsonResource other;
  EXPECT_FALSE(wiping.is_equal(other));
}

// Strings of ASCII, control characters included (they come out escaped). Arbitrary bytes would
// be invalid UTF-8, which both parsers refuse.
rc::Gen<std::string> AsciiString() {
  return rc::gen::container<std::string>(
      rc::gen::map(rc::gen::inRange(0, 128), [](int c) { return static_cast<char>(c); }));
}

// Any JSON text without a repeated key parses to what Boost.JSON's own parser gives.
rc::Gen<json::value> ArbitraryValue(int depth) {
  auto scalar = rc::gen::oneOf(
      rc::gen::map(rc::gen::arbitrary<int64_t>(), [](int64_t i) { return json::value(i); }),
      rc::gen::map(rc::gen::arbitrary<bool>(), [](bool b) { return json::value(b); }),
      rc::gen::map(AsciiString(),
                   [](const std::string& s) { return json::value(json::string(s)); }),
      rc::gen::just(json::value(nullptr)));
  if (depth == 0) return scalar;
  auto array = rc::gen::map(rc::gen::container<std::vector<json::value>>(ArbitraryValue(depth - 1)),
                            [](const std::vector<json::value>& items) {
                              return json::value(json::array(items.begin(), items.end()));
                            });
  auto object = rc::gen::map(rc::gen::container<std::vector<std::pair<std::string, json::value>>>(
                                 rc::gen::pair(AsciiString(), ArbitraryValue(depth - 1))),
                             [](const std::vector<std::pair<std::string, json::value>>& members) {
                               json::object o;
                               for (const auto& [k, v] : members)
                                 o[k] = v;  // distinct keys, as a JSON object has
                               return json::value(std::move(o));
                             });
  return rc::gen::oneOf(scalar, array, object);
}

RC_GTEST_PROP(JsonParserProperty, AgreesWithBoostJsonWhenNoKeyRepeats, ()) {
  const json::value value = *ArbitraryValue(2);
  const std::string text = json::serialize(value);
  auto parsed = ParseJson(text);
  RC_ASSERT(parsed.has_value());
  RC_ASSERT(*parsed == json::parse(text));
}

// Any object with one member repeated, at any depth inside any document, is refused, and the
// message names that member's key.
RC_GTEST_PROP(JsonParserProperty, RefusesAnObjectWithOneMemberRepeated, ()) {
  json::object object = *rc::gen::map(ArbitraryValue(2), [](json::value v) {
    json::object o;
    o["first"] = std::move(v);
    return o;
  });
  const std::string key = *AsciiString();
  object[key] = *ArbitraryValue(1);
  std::string text = json::serialize(object);
  // Repeat the member `key` at the end of the object...
  text.pop_back();
  text += "," + json::serialize(json::value(json::string(key))) + ":0}";
  // ...and put the object somewhere inside a document without repeated keys.
  const json::value outer = *ArbitraryValue(2);
  const std::string outer_text = json::serialize(outer);
  if (*rc::gen::arbitrary<bool>()) {
    text = "[" + (outer_text + ",") + text + "]";
  } else {
    text = R"({"a":)" + outer_text + R"(,"b":{"c":)" + text + "}}";
  }
  std::string shown = key.substr(0, 64);
  for (char& c : shown) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  auto parsed = ParseJson(text);
  RC_ASSERT(!parsed.has_value());
  RC_ASSERT(parsed.error() == "duplicate key `" + shown + "`");
}

}  // namespace
}  // namespace accord
