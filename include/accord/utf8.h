// accord/utf8.h — well-formed UTF-8 (RFC 3629) for ids and messages that reach JSON text.
//
// JSON text is UTF-8, so an id, a query parameter or a message echoed into an answer must be
// well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
//
//   if (!accord::IsUtf8(id)) return Fail(Code::kInvalidArgument, "the id is not UTF-8");
//   out += accord::SanitizeUtf8(client_bytes);  // bad bytes become U+FFFD
#ifndef ACCORD_UTF8_H_
#define ACCORD_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace accord {

// The length of the well-formed UTF-8 sequence at the start of `s`, or 0 (also for empty `s`).
[[nodiscard]] size_t Utf8SequenceLength(std::string_view s);

// Whether all of `s` is well-formed UTF-8.
[[nodiscard]] bool IsUtf8(std::string_view s);

// Whether `s` is well-formed UTF-8 with nothing that changes how text around it shows: no C0
// control or DEL, no C1 control (U+0080 to U+009F), no bidirectional formatting character
// (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069), no line or paragraph separator
// (U+2028, U+2029). For ids a person reads.
[[nodiscard]] bool IsPlainText(std::string_view s);

// `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD.
[[nodiscard]] std::string SanitizeUtf8(std::string_view s);

// `s`, written by another party, made safe for one line of a log or a terminal: C0 controls and
// DEL as \xNN, C1 controls (U+0080 to U+009F) and the characters IsPlainText refuses beyond
// them (bidirectional formatting, line and paragraph separators) as \uNNNN, bytes that are not
// UTF-8 as U+FFFD, cut to `max_bytes` with "…". So no line break, no escape sequence a terminal
// would act on, and no text shown in another order than it is.
[[nodiscard]] std::string OneLine(std::string_view s, size_t max_bytes = SIZE_MAX);

}  // namespace accord

#endif  // ACCORD_UTF8_H_
