#include "daemon/schema/rapidjson.h"

namespace kpipe::schema {
void rapidJsonAssertFailed(const char* expression) {
  throw RapidJsonAssertion(std::string("RapidJSON check failed: ") + expression);
}
}  // namespace kpipe::schema
