#include "accord/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace accord {
namespace {

TEST(Utf8Test, WellFormedSequencesAndTheirBounds) {
  const struct {
    std::string bytes;
    size_t length;  // of the first sequence; 0 when it is not well-formed
  } kCases[] = {
      {"a", 1},
      {std::string(1, '\0'), 1},
      {"\xc2\x80", 2},          // U+0080, the first two-byte
      {"\xdf\xbf", 2},          // U+07FF
      {"\xe0\xa0\x80", 3},      // U+0800
      {"\xed\x9f\xbf", 3},      // U+D7FF, before the surrogates
      {"\xef\xbf\xbd", 3},      // U+FFFD
      {"\xf0\x90\x80\x80", 4},  // U+10000
      {"\xf4\x8f\xbf\xbf", 4},  // U+10FFFF, the last
      {"", 0},                  // nothing
      {"\x80", 0},              // a continuation byte alone
      {"\xc0\x80", 0},          // overlong NUL
      {"\xc1\xbf", 0},          // overlong
      {"\xe0\x9f\xbf", 0},      // overlong three-byte
      {"\xed\xa0\x80", 0},      // U+D800, a surrogate
      {"\xf0\x8f\xbf\xbf", 0},  // overlong four-byte
      {"\xf4\x90\x80\x80", 0},  // past U+10FFFF
      {"\xf5\x80\x80\x80", 0},  // no such lead byte
      {"\xe2\x82", 0},          // cut short
      {"\xe2\x28\xa1", 0},      // a bad second byte
      {"\xf0\x90\x28\xbc", 0},  // a bad third byte
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(testing::PrintToString(c.bytes));
    EXPECT_EQ(Utf8SequenceLength(c.bytes), c.length);
    EXPECT_EQ(IsUtf8(c.bytes), c.length == c.bytes.size());
  }
}

TEST(Utf8Test, SanitizeReplacesEachBadByte) {
  EXPECT_EQ(SanitizeUtf8("k-1 極秘"), "k-1 極秘");
  EXPECT_EQ(SanitizeUtf8("a\xff"
                         "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(SanitizeUtf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_TRUE(IsUtf8(SanitizeUtf8("\xc0\x80\xed\xa0\x80\xf4\x90")));
}

// Ids a person reads hold no control, no bidirectional formatting character and no line
// separator, which would make one id show as another ("Trojan Source"); OneLine escapes them.
TEST(Utf8Test, PlainTextHasNoControlOrBidiFormatting) {
  for (std::string_view ok : {"k-2018", "", "군사II급비밀", "極秘", "a b", "\u00a0", "\u200d",
                              "\u2027", "\u202f", "\u2065", "\u206a", "\u061b", "\u061d"}) {
    EXPECT_TRUE(IsPlainText(ok)) << ok;
  }
  for (std::string_view bad :
       {std::string_view("a\0b", 3), std::string_view("a\nb"), std::string_view("\x1b[2J"),
        std::string_view("\x7f"), std::string_view("\u0085"), std::string_view("\u009f"),
        std::string_view("\u200e"), std::string_view("\u200f"), std::string_view("\u202a"),
        std::string_view("k-\u202e8102"), std::string_view("\u2066"), std::string_view("\u2069"),
        std::string_view("\u061c"), std::string_view("\u2028x"), std::string_view("\u2029"),
        std::string_view("\xff")}) {
    EXPECT_FALSE(IsPlainText(bad)) << OneLine(bad);
    // What IsPlainText refuses, OneLine shows as something it takes.
    EXPECT_TRUE(IsPlainText(OneLine(bad))) << OneLine(bad);
  }
  EXPECT_EQ(OneLine("k-\u202e8102"), "k-\\u202e8102");
  EXPECT_EQ(OneLine("\u061c\u2066\u2028"), "\\u061c\\u2066\\u2028");
}

// What another party wrote, made one line with nothing a terminal acts on: C0 and C1 controls
// escaped (ESC and CSI start the terminal's sequences), the rest kept, and cut without splitting
// a character or an escape.
TEST(Utf8Test, OneLineEscapesEveryControl) {
  EXPECT_EQ(OneLine("ok: fine 軍事"), "ok: fine 軍事");
  EXPECT_EQ(OneLine("a\nWITNESS: fork\r\t\x7f"), "a\\x0aWITNESS: fork\\x0d\\x09\\x7f");
  EXPECT_EQ(OneLine("\x1b[2J\x1b]0;title\x07"), "\\x1b[2J\\x1b]0;title\\x07");
  EXPECT_EQ(OneLine("\xc2\x9b"
                    "2J \xc2\x80 \xc2\xa0"),
            "\\u009b2J \\u0080 \xc2\xa0");  // C1; NBSP kept
  EXPECT_EQ(OneLine("a\xff\xc3"), "a\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(OneLine("abcdef", 4), "abcd\xe2\x80\xa6");
  EXPECT_EQ(OneLine("ab軍", 4), "ab\xe2\x80\xa6");
  EXPECT_EQ(OneLine("ab\n", 4), "ab\xe2\x80\xa6");
  EXPECT_EQ(OneLine("ab\xc2\x9b", 7), "ab\xe2\x80\xa6");
}

}  // namespace
}  // namespace accord
