#include "accord/utf8.h"

#include <algorithm>
#include <cstdio>

namespace accord {

size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) {
    return 1;
  }
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) {
    return 0;
  }
  for (size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) {
      return 0;
    }
  }
  return n;
}

bool IsUtf8(std::string_view s) {
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      return false;
    }
    s.remove_prefix(n);
  }
  return true;
}

namespace {

// Whether the well-formed sequence `seq` (of Utf8SequenceLength) is a character that changes how
// the text around it shows: a bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A to U+202E, U+2066 to U+2069) or a line or paragraph separator (U+2028, U+2029).
bool IsFormatting(std::string_view seq) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(seq[i]); };
  if (seq.size() == 2) return byte(0) == 0xd8 && byte(1) == 0x9c;  // U+061C
  if (seq.size() != 3 || byte(0) != 0xe2) return false;
  const unsigned char b1 = byte(1), b2 = byte(2);
  if (b1 == 0x80) return b2 == 0x8e || b2 == 0x8f || (b2 >= 0xa8 && b2 <= 0xae);
  return b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9;
}

// The code point of the well-formed two- or three-byte sequence `seq`.
uint32_t CodePoint(std::string_view seq) {
  const auto byte = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(seq[i]));
  };
  if (seq.size() == 2) return (byte(0) & 0x1f) << 6 | (byte(1) & 0x3f);
  return (byte(0) & 0x0f) << 12 | (byte(1) & 0x3f) << 6 | (byte(2) & 0x3f);
}

}  // namespace

bool IsPlainText(std::string_view s) {
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) return false;
    const auto c = static_cast<unsigned char>(s[0]);
    if (n == 1 && (c < 0x20 || c == 0x7f)) return false;
    if (n == 2 && c == 0xc2 && static_cast<unsigned char>(s[1]) < 0xa0) return false;  // C1
    if (IsFormatting(s.substr(0, n))) return false;
    s.remove_prefix(n);
  }
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
}

std::string OneLine(std::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes) + 3);
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    const auto c = static_cast<unsigned char>(s.front());
    std::string_view piece;
    char escaped[7];
    if (n == 0) {
      piece = "\xef\xbf\xbd";  // U+FFFD
    } else if (n == 1 && (c < 0x20 || c == 0x7f)) {
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      piece = std::string_view(escaped, 4);
    } else if ((n == 2 && c == 0xc2 && static_cast<unsigned char>(s[1]) < 0xa0) ||
               IsFormatting(s.substr(0, n))) {
      std::snprintf(escaped, sizeof escaped, "\\u%04x", CodePoint(s.substr(0, n)));
      piece = std::string_view(escaped, 6);
    } else {
      piece = s.substr(0, n);
    }
    if (out.size() + piece.size() > max_bytes) {
      out += "\xe2\x80\xa6";  // U+2026, the rest left out
      break;
    }
    out += piece;
    s.remove_prefix(std::max<size_t>(n, 1));
  }
  return out;
}

}  // namespace accord
