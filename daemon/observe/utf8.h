#pragma once
// UTF-8 decoding for text kpipe shows people (reasons, reports, excerpts of message bytes):
// one definition of "valid" (RFC 3629) for every place that cleans such text.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kpipe::observe {

// How long the sequence that `lead` starts claims to be: 1 to 4, or 0 for a byte that cannot
// start one (a continuation byte, 0xF8 and above).
inline size_t utf8LeadLength(unsigned char lead) {
  return lead < 0x80           ? 1
         : (lead >> 5) == 0x6  ? 2
         : (lead >> 4) == 0xE  ? 3
         : (lead >> 3) == 0x1E ? 4
                               : 0;
}

// The length of the valid UTF-8 sequence at the start of `text`, with its code point in
// `code_point` when given; 0 when the bytes there are not one: truncated, a bad continuation,
// an overlong form, a surrogate or a code point past U+10FFFF.
inline size_t utf8Sequence(std::string_view text, uint32_t* code_point = nullptr) {
  if (text.empty()) return 0;
  const auto lead = static_cast<unsigned char>(text[0]);
  const size_t length = utf8LeadLength(lead);
  if (length == 0 || length > text.size()) return 0;
  uint32_t cp = length == 1   ? lead
                : length == 2 ? (lead & 0x1Fu)
                : length == 3 ? (lead & 0x0Fu)
                              : (lead & 0x07u);
  for (size_t k = 1; k < length; ++k) {
    const auto continuation = static_cast<unsigned char>(text[k]);
    if ((continuation >> 6) != 0x2) return 0;
    cp = (cp << 6) | (continuation & 0x3Fu);
  }
  static constexpr uint32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kShortest[length] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  if (code_point != nullptr) *code_point = cp;
  return length;
}

}  // namespace kpipe::observe
