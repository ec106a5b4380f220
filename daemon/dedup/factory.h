#pragma once
// Opens the dedup store a StoreSpec describes (memory, redis or lmdb).

#include "daemon/config/spec.h"
#include "daemon/dedup/store.h"
#include "daemon/observe/metrics.h"

#include <memory>
#include <string>
#include <variant>

namespace kpipe::dedup {

// The reason when it cannot be opened (an lmdb path that cannot be created, say). A Redis that
// is down is not such a reason: it is a blocking failure of each operation until it is back.
std::variant<std::unique_ptr<Store>, std::string> makeStore(const config::StoreSpec& spec,
                                                            observe::Metrics* metrics);

}  // namespace kpipe::dedup
