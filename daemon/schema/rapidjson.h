#pragma once
// The only way kpipe includes RapidJSON: sets its macros before the first include.
//
// RAPIDJSON_ASSERT throws instead of aborting, so a malformed document or a misuse found by a
// RapidJSON check becomes an error value at our boundary rather than a crash. It is defined
// cheaply on purpose: valijson (with exceptions) would otherwise define it to build a
// std::string on every passing check (see ../shared/notes/valijson-1.0.md: ~4x slower).

#include <stdexcept>

namespace kpipe::schema {
struct RapidJsonAssertion : std::logic_error {
  using std::logic_error::logic_error;
};
[[noreturn]] void rapidJsonAssertFailed(const char* expression);
}  // namespace kpipe::schema

#ifdef RAPIDJSON_ASSERT
#error "include daemon/schema/rapidjson.h before any RapidJSON or valijson header"
#endif
#define RAPIDJSON_ASSERT(x) \
  ((x) ? static_cast<void>(0) : ::kpipe::schema::rapidJsonAssertFailed(#x))
#define RAPIDJSON_HAS_STDSTRING 1

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
