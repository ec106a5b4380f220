#include "daemon/observe/utf8.h"

#include <gtest/gtest.h>

namespace kpipe::observe {
namespace {

TEST(Utf8Test, ValidSequencesOfEveryLength) {
  uint32_t cp = 0;
  EXPECT_EQ(utf8Sequence("a", &cp), 1u);
  EXPECT_EQ(cp, 0x61u);
  EXPECT_EQ(utf8Sequence("\xC3\xA9x", &cp), 2u);  // é
  EXPECT_EQ(cp, 0xE9u);
  EXPECT_EQ(utf8Sequence("\xE2\x82\xAC", &cp), 3u);  // €
  EXPECT_EQ(cp, 0x20ACu);
  EXPECT_EQ(utf8Sequence("\xF4\x8F\xBF\xBF", &cp), 4u);  // U+10FFFF
  EXPECT_EQ(cp, 0x10FFFFu);
}

TEST(Utf8Test, InvalidSequencesAreZero) {
  EXPECT_EQ(utf8Sequence(""), 0u);
  EXPECT_EQ(utf8Sequence("\x80"), 0u);              // a continuation byte first
  EXPECT_EQ(utf8Sequence("\xFF"), 0u);              // never in UTF-8
  EXPECT_EQ(utf8Sequence("\xE2\x82"), 0u);          // truncated
  EXPECT_EQ(utf8Sequence("\xC3\x41"), 0u);          // bad continuation
  EXPECT_EQ(utf8Sequence("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(utf8Sequence("\xC1\xBF"), 0u);          // overlong
  EXPECT_EQ(utf8Sequence("\xE0\x9F\xBF"), 0u);      // overlong 3-byte
  EXPECT_EQ(utf8Sequence("\xED\xA0\x80"), 0u);      // surrogate U+D800
  EXPECT_EQ(utf8Sequence("\xF0\x8F\xBF\xBF"), 0u);  // overlong 4-byte
  EXPECT_EQ(utf8Sequence("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(utf8Sequence("\xF5\x80\x80\x80"), 0u);
}

TEST(Utf8Test, LeadLength) {
  EXPECT_EQ(utf8LeadLength(0x41), 1u);
  EXPECT_EQ(utf8LeadLength(0xC3), 2u);
  EXPECT_EQ(utf8LeadLength(0xE2), 3u);
  EXPECT_EQ(utf8LeadLength(0xF0), 4u);
  EXPECT_EQ(utf8LeadLength(0x80), 0u);
  EXPECT_EQ(utf8LeadLength(0xF8), 0u);
}

}  // namespace
}  // namespace kpipe::observe
