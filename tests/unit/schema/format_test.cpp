// The format checks (format.h) and RFC 3986 reference resolution (resolve.h), case by case.

#include "daemon/schema/format.h"

#include "daemon/schema/resolve.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace kpipe::schema::detail {
namespace {

struct Case {
  const char* format;
  std::string_view value;
  bool valid;
};

TEST(FormatTest, ChecksEachFormat) {
  const Case cases[] = {
      {"date", "2024-02-29", true},
      {"date", "2023-02-29", false},  // not a leap year
      {"date", "1900-02-29", false},
      {"date", "2000-02-29", true},
      {"date", "2023-04-31", false},
      {"date", "2023-4-01", false},
      {"time", "08:30:06Z", true},
      {"time", "08:30:06.123+05:30", true},
      {"time", "23:59:60Z", true},  // a leap second, at 23:59 UTC only
      {"time", "22:59:60Z", false},
      {"time", "01:29:60+01:30", true},
      {"time", "08:30:06", false},  // an offset is required
      {"time", "24:00:00Z", false},
      {"date-time", "1963-06-19T08:30:06.283185Z", true},
      {"date-time", "1963-06-19t08:30:06z", true},
      {"date-time", "2023-02-29T00:00:00Z", false},
      {"date-time", "1963-06-19 08:30:06Z", false},
      {"uuid", "2EB8AA08-AA98-11EA-B4AA-73B441D16380", true},
      {"uuid", "2eb8aa08aa9811eab4aa73b441d16380", false},
      {"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638", false},
      {"email", "joe.bloggs@example.com", true},
      {"email", "\"joe bloggs\"@example.com", true},
      {"email", "joe@[127.0.0.1]", true},
      {"email", "joe@[IPv6:::1]", true},
      {"email", "te..st@example.com", false},
      {"email", "joe@-example.com", false},
      {"email", "2962", false},
      {"hostname", "www.example.com", true},
      {"hostname", "-example.com", false},
      {"hostname", "example.", false},
      {"hostname", "host_name", false},
      {"ipv4", "192.168.0.1", true},
      {"ipv4", "087.10.0.1", false},
      {"ipv4", "1.2.3", false},
      {"ipv4", "256.0.0.1", false},
      {"ipv6", "::1", true},
      {"ipv6", "::", true},
      {"ipv6", "1:2:3:4:5:6:7:8", true},
      {"ipv6", "::ffff:192.168.0.1", true},
      {"ipv6", "1::2::3", false},
      {"ipv6", "12345::", false},
      {"ipv6", "1:2:3:4:5:6:7:8:9", false},
      {"ipv6", "fe80::1%eth0", false},
      {"uri", "http://example.com/a%20b?q=1#frag", true},
      {"uri", "urn:isbn:0451450523", true},
      {"uri", "http://[2001:db8::7]:8080/", true},
      {"uri", "//example.com/a", false},
      {"uri", "http://example.com/a b", false},
      {"uri", "http://example.com:port/", false},
      {"uri-reference", "../a/b?c", true},
      {"uri-reference", "a:b/c", true},
      {"uri-reference", "\\\\WINDOWS", false},
      {"json-pointer", "/a~1b/0", true},
      {"json-pointer", "/a~2", false},
      {"relative-json-pointer", "1/a", true},
      {"relative-json-pointer", "0#", true},
      {"relative-json-pointer", "01/a", false},
  };
  for (const Case& c : cases) {
    const FormatCheck check = formatCheck(c.format);
    ASSERT_NE(check, nullptr) << c.format;
    EXPECT_EQ(check(c.value), c.valid) << c.format << ": " << c.value;
  }
}

TEST(FormatTest, UnknownFormatsAreNotChecked) {
  EXPECT_EQ(formatCheck("idn-hostname"), nullptr);
  EXPECT_EQ(formatCheck("x-custom"), nullptr);
}

TEST(ResolveUriTest, Rfc3986Examples) {
  // RFC 3986 section 5.4
  const std::string_view base = "http://a/b/c/d;p?q";
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"g", "http://a/b/c/g"},
      {"./g", "http://a/b/c/g"},
      {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"},
      {"//g", "http://g"},
      {"?y", "http://a/b/c/d;p?y"},
      {"#s", "http://a/b/c/d;p?q#s"},
      {"", "http://a/b/c/d;p?q"},
      {"../g", "http://a/b/g"},
      {"../../../g", "http://a/g"},
      {"g/./h/../i", "http://a/b/c/g/i"},
      {"urn:x:y", "urn:x:y"},
  };
  for (const auto& [reference, expected] : cases) {
    EXPECT_EQ(resolveUri(base, reference), expected) << reference;
  }
  EXPECT_EQ(resolveUri("urn:uuid:deadbeef", "#/definitions/a"), "urn:uuid:deadbeef#/definitions/a");
  EXPECT_EQ(resolveUri("file:///schemas/event.json", "common/ids.json#/x"),
            "file:///schemas/common/ids.json#/x");
}

}  // namespace
}  // namespace kpipe::schema::detail
