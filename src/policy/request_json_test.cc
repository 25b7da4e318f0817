#include "accord/request_json.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "accord/config.h"

namespace accord {
namespace {

using ::testing::HasSubstr;

Engine Example() {
  auto policy = LoadPolicyDir(std::filesystem::path(ACCORD_SOURCE_DIR) / "examples/gsomia");
  EXPECT_TRUE(policy.has_value());
  return std::move(*Engine::Compile(std::move(*policy)));
}

constexpr std::string_view kRelease =
    R"({"id":"q1","action":"release","at":"2018-01-01T00:00:00+09:00","object":{"id":"k","originator":"KOR","level":"II","topics":["dprk-missile"],"rel_to":["JPN"],"releases":[{"to":"USA","at":"2017-01-01T00:00:00Z","agreement":"usa-kor-gsomia"}]},"to":"JPN","extra":{"ignored":true}})";

TEST(RequestDecoderTest, DecodesARequest) {
  RequestDecoder decoder;
  auto r = decoder.Decode(kRelease);
  ASSERT_TRUE(r.has_value()) << r.error();
  const RequestView& v = **r;
  EXPECT_EQ(v.action, Action::kRelease);
  EXPECT_EQ(v.at, *ParseInstant("2017-12-31T15:00:00Z"));
  EXPECT_EQ(v.object.originator, "KOR");
  ASSERT_EQ(v.object.topics.size(), 1u);
  EXPECT_EQ(v.object.topics[0], "dprk-missile");
  ASSERT_EQ(v.object.releases.size(), 1u);
  EXPECT_EQ(v.object.releases[0].agreement, "usa-kor-gsomia");
  EXPECT_TRUE(v.object.forwards.empty());
  EXPECT_FALSE(v.object.destroyed_at.has_value());
  EXPECT_EQ(v.to, "JPN");
  EXPECT_EQ(decoder.id_json(), "\"q1\"");
}

TEST(RequestDecoderTest, NothingLeaksFromTheLineBefore) {
  RequestDecoder decoder;
  ASSERT_TRUE(decoder.Decode(kRelease).has_value());
  auto r = decoder.Decode(
      R"({"id":7,"action":"release","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[]},"to":"JPN"})");
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_TRUE((*r)->object.releases.empty());
  EXPECT_TRUE((*r)->object.topics.empty());
  EXPECT_EQ(decoder.id_json(), "7");
  EXPECT_FALSE(decoder.Decode("[]").has_value());
  EXPECT_EQ(decoder.id_json(), "null");
}

// An id is echoed as given, also with a refusal: an integer of 64 bits at either end; a number
// that would not come back as given is refused, and the answer's id is null.
TEST(RequestDecoderTest, EchoesIdsAsGiven) {
  RequestDecoder decoder;
  for (const char* id : {"18446744073709551615", "-9223372036854775808", "\"q1\"", "null"}) {
    EXPECT_FALSE(decoder.Decode(fmt::format(R"({{"id":{}}})", id)).has_value());
    EXPECT_EQ(decoder.id_json(), id);
  }
  EXPECT_FALSE(decoder.Decode(R"({"id":9007199254740993.0})").has_value());
  EXPECT_EQ(decoder.id_json(), "null");
}

// One decoder reads a whole stream. Each line's memory is released before the next, and a line
// that outgrows the first block must not make the next ones ask for more: Boost.JSON's
// monotonic_resource keeps doubling the size of its next block across release(), so that by the
// fortieth such line one asked for terabytes (request_fuzz found it as an out-of-memory).
TEST(RequestDecoderTest, ManyLargeLinesDecodeInBoundedMemory) {
  std::string topics;  // as many as a request may hold (kMaxLabelListItems), each long
  for (size_t i = 0; i < kMaxLabelListItems; ++i) {
    topics += (i == 0 ? "" : ",") + std::string("\"topic-") + std::string(64, 'x') +
              std::to_string(i) + "\"";
  }
  const std::string line =
      R"({"action":"read","at":"2018-01-01T00:00:00Z","subject":{"party":"JPN","clearance":"GOKUHI"},"object":{"id":"k","originator":"KOR","level":"II","topics":[)" +
      topics + "]}}";
  ASSERT_GT(line.size(), 16384u);
  RequestDecoder decoder;
  for (int i = 0; i < 64; ++i) {
    auto r = decoder.Decode(line);
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error();
    EXPECT_EQ((*r)->object.topics.size(), kMaxLabelListItems);
  }
}

// A decision compares each forward with each release: a history is at most kMaxHistoryEntries
// long, so that one line cannot ask for billions of comparisons.
TEST(RequestDecoderTest, AHistoryHasAtMostItsLimitOfEntries) {
  auto line = [](std::string_view key, std::string_view entry, size_t n) {
    std::string list;
    for (size_t i = 0; i < n; ++i) list += (i == 0 ? "" : ",") + std::string(entry);
    return R"({"action":"read","at":"2018-01-01T00:00:00Z","subject":{"party":"JPN","clearance":"GOKUHI"},"object":{"id":"k","originator":"KOR","level":"II","topics":[],")" +
           std::string(key) + R"(":[)" + list + "]}}";
  };
  const std::string_view release =
      R"({"to":"JPN","at":"2017-01-01T00:00:00Z","agreement":"kor-jpn-gsomia"})";
  const std::string_view forward =
      R"({"from":"USA","to":"JPN","at":"2017-01-01T00:00:00Z","agreement":"usa-jpn-gsomia"})";
  const std::string_view consent = R"({"to":"JPN","at":"2017-01-01T00:00:00Z"})";
  RequestDecoder decoder;
  for (const auto& [key, entry] : {std::pair{"releases", release}, std::pair{"forwards", forward},
                                   std::pair{"consents", consent}}) {
    auto full = decoder.Decode(line(key, entry, kMaxHistoryEntries));
    ASSERT_TRUE(full.has_value()) << key << ": " << full.error();
    auto over = decoder.Decode(line(key, entry, kMaxHistoryEntries + 1));
    ASSERT_FALSE(over.has_value()) << key;
    EXPECT_THAT(over.error(), HasSubstr(std::string("object.") + key));
    EXPECT_THAT(over.error(), HasSubstr("at most 256 entries"));
  }
}

// A decision compares each of the object's topics with each of the subject's need-to-know, and
// compartments likewise: each list is at most kMaxLabelListItems long, as the node's labels are.
TEST(RequestDecoderTest, ALabelListHasAtMostItsLimitOfItems) {
  auto line = [](std::string_view in, std::string_view key, size_t n) {
    std::string list;
    for (size_t i = 0; i < n; ++i) list += (i == 0 ? "\"" : ",\"") + std::to_string(i) + "\"";
    const std::string field = fmt::format(R"("{}":[{}])", key, list);
    const std::string subject = in == "subject" ? "," + field : "";
    const std::string object = in == "object" ? "," + field : "";
    return fmt::format(
        R"({{"action":"read","at":"2018-01-01T00:00:00Z","subject":{{"party":"JPN","clearance":"GOKUHI"{}}},"object":{{"id":"k","originator":"KOR","level":"II"{}}}}})",
        subject, key == "topics" ? object : R"(,"topics":[])" + object);
  };
  RequestDecoder decoder;
  for (const auto& [in, key] : {std::pair{"object", "topics"}, std::pair{"object", "compartments"},
                                std::pair{"object", "rel_to"}, std::pair{"subject", "need_to_know"},
                                std::pair{"subject", "compartments"}}) {
    SCOPED_TRACE(std::string(in) + "." + key);
    auto full = decoder.Decode(line(in, key, kMaxLabelListItems));
    ASSERT_TRUE(full.has_value()) << full.error();
    auto over = decoder.Decode(line(in, key, kMaxLabelListItems + 1));
    ASSERT_FALSE(over.has_value());
    EXPECT_THAT(over.error(), HasSubstr(std::string(in) + "." + key));
    EXPECT_THAT(over.error(), HasSubstr("at most 256 items"));
  }
}

TEST(RequestDecoderTest, ClearErrorsForMalformedLines) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"{\"action\":", "not valid JSON"},
      // Another reader might keep the first `action`: a request names each field once.
      {R"({"action":"read","action":"release"})", "not valid JSON: duplicate key `action`"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","level":"IV","topics":[]}})",
       "not valid JSON: duplicate key `level`"},
      {"[1,2]", "a request must be a JSON object"},
      {R"({"id":[1]})", "`id`: must be a string, an integer of at most 64 bits, or null"},
      // Echoed as Boost.JSON would write them back, these would not be the ids given.
      {R"({"id":1.5})", "`id`: must be a string, an integer of at most 64 bits, or null"},
      {R"({"id":1e2})", "`id`: must be a string, an integer of at most 64 bits, or null"},
      {R"({"id":123456789012345678901234})", "`id`: must be a string, an integer of at most"},
      {R"({"id":"a"})", "missing field `action`"},
      {R"({"action":"share","at":"2018-01-01T00:00:00Z"})", "`action`: unknown action `share`"},
      {R"({"action":"read"})", "missing field `at`"},
      {R"({"action":"read","at":"2018-01-01"})",
       "`at`: bad instant `2018-01-01`: a date-time with an offset is required"},
      {R"({"action":"read","at":"2018-01-01T00:00:00"})",
       "an offset such as `+09:00` or `Z` is required"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z"})", "missing field `object`"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":[]})",
       "`object`: must be an object"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR"}})",
       "missing field `object.level`"},
      // An object's topics are required: a missing one must not read as "no topics", which
      // would skip the need-to-know check; nor a misspelt one, which is not a field.
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II"}})",
       "missing field `object.topics`"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topic":["x"]}})",
       "`object.topic`: is not a field of an object"},
      // Nor a misspelt `destroyed_at` or `compartments`, whose absence also widens (decision 88).
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[],"destroyedAt":"2017-01-01T00:00:00Z"}})",
       "`object.destroyedAt`: is not a field of an object"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[],"compartment":["TALENT"]}})",
       "`object.compartment`: is not a field of an object"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":null}})",
       "`object.topics`: must be an array of strings"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":"x"}})",
       "`object.topics`: must be an array of strings"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[],"releases":[{"to":"JPN","at":"2018-01-01","agreement":"a"}]}})",
       "`object.releases[0].at`: bad instant"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[],"forwards":[7]}})",
       "`object.forwards[0]`: must be an object"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[]}})",
       "missing field `subject`"},
      {R"({"action":"read","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[]},"subject":{"party":"JPN"}})",
       "missing field `subject.clearance`"},
      {R"({"action":"release","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[]}})",
       "missing field `to`"},
      {R"({"action":"forward","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[]},"to":"JPN"})",
       "missing field `holder`"},
      {R"({"action":"release","at":"2018-01-01T00:00:00Z","object":{"id":"k","originator":"KOR","level":"II","topics":[],"destroyed_at":5},"to":"JPN"})",
       "`object.destroyed_at`: must be a string"},
  };
  RequestDecoder decoder;
  for (const auto& [line, message] : cases) {
    auto r = decoder.Decode(line);
    ASSERT_FALSE(r.has_value()) << line;
    EXPECT_THAT(r.error(), HasSubstr(message)) << line;
    EXPECT_EQ(r.error().find('\n'), std::string::npos);
  }
}

TEST(ResponseWriterTest, WritesTheWireFormat) {
  const Engine engine = Example();
  RequestDecoder decoder;
  auto r = decoder.Decode(kRelease);
  ASSERT_TRUE(r.has_value());
  std::string out;
  ResponseWriter(engine, ResponseOptions{false})
      .Write(out, decoder.id_json(), **r, engine.Decide(**r));
  EXPECT_EQ(out,
            "{\"id\":\"q1\",\"decision\":\"allow\",\"reason\":\"releasable\",\"agreement\":\"kor-"
            "jpn-gsomia\","
            "\"marking\":{\"party\":\"JPN\",\"level\":\"GOKUHI\",\"originator\":\"KOR\"}}\n");
}

// An invalid-request the engine finds (here a release to the originator) says what is wrong in
// "error", as one the decoder finds does, with or without the explanation (decision #130).
TEST(ResponseWriterTest, AnInvalidRequestTheEngineFindsHasAnError) {
  const Engine engine = Example();
  RequestDecoder decoder;
  auto r = decoder.Decode(
      R"({"id":"q2","action":"release","at":"2018-01-01T00:00:00Z","object":{"id":"k",)"
      R"("originator":"KOR","level":"II","topics":[],"rel_to":["KOR"]},"to":"KOR"})");
  ASSERT_TRUE(r.has_value()) << r.error();
  const Decision d = engine.Decide(**r);
  ASSERT_EQ(d.reason, Reason::kInvalidRequest);
  const std::string error = "`KOR` is the originator; it cannot release to itself";
  std::string out;
  ResponseWriter(engine, ResponseOptions{false}).Write(out, decoder.id_json(), **r, d);
  EXPECT_EQ(out,
            "{\"id\":\"q2\",\"decision\":\"deny\",\"reason\":\"invalid-request\","
            "\"agreement\":null,\"marking\":null,\"error\":\"" +
                error + "\"}\n");
  out.clear();
  ResponseWriter(engine).Write(out, decoder.id_json(), **r, d);
  EXPECT_THAT(out, HasSubstr("\"error\":\"" + error + "\",\"explain\":[\"" + error + "\"]}"));
}

TEST(ResponseWriterTest, EscapesUserText) {
  const Engine engine = Example();
  std::string out;
  ResponseWriter(engine).WriteInvalid(out, "\"a\\\"b\"", "`x`: \"quoted\"\n\x01 극비");
  EXPECT_EQ(
      out,
      "{\"id\":\"a\\\"b\",\"decision\":\"deny\",\"reason\":\"invalid-request\",\"agreement\":null,"
      "\"marking\":null,\"error\":\"`x`: \\\"quoted\\\"\\n\\u0001 극비\"}\n");
}

// The loop of `accord decide` and `POST /v1/decide`: an answer per line that has more than spaces
// and tabs, in order, a final CR dropped, a last line without its newline answered, and a line
// over the bound answered as too long, not decoded.
TEST(DecideLinesTest, AnswersEachLineInOrder) {
  const Engine engine = Example();
  RequestDecoder decoder;
  ResponseWriter writer(engine, ResponseOptions{false});
  const size_t bound = kRelease.size();  // the release is answered, one byte more is too long
  std::string out;
  DecideLines(fmt::format("{}\r\n\n \t\r\n{}\n{{\"id\":3}}", kRelease, std::string(bound + 1, 'x')),
              engine, decoder, writer, out, bound);
  EXPECT_EQ(
      out,
      fmt::format(
          R"({{"id":"q1","decision":"allow","reason":"releasable","agreement":"kor-jpn-gsomia","marking":{{"party":"JPN","level":"GOKUHI","originator":"KOR"}}}})"
          "\n"
          R"({{"id":null,"decision":"deny","reason":"invalid-request","agreement":null,"marking":null,"error":"line longer than {} bytes"}})"
          "\n"
          R"({{"id":3,"decision":"deny","reason":"invalid-request","agreement":null,"marking":null,"error":"missing field `action`"}})"
          "\n",
          bound));
  out.clear();
  DecideLines("\n \n\t", engine, decoder, writer, out);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace accord
