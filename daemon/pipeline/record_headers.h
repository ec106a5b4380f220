#pragma once
// The headers kpipe adds to the error and audit records it writes (README: "What happens to a
// message"), in one place for the worker that writes them and `kpipe replay` that reads them.

#include <string_view>

namespace kpipe::pipeline::header {

inline constexpr std::string_view kPrefix = "kpipe.";  // every header kpipe adds starts so
inline constexpr std::string_view kErrorStage = "kpipe.error.stage";
inline constexpr std::string_view kErrorReason = "kpipe.error.reason";
inline constexpr std::string_view kErrorClass = "kpipe.error.class";
inline constexpr std::string_view kErrorValueOmitted = "kpipe.error.value_omitted";
inline constexpr std::string_view kAuditStage = "kpipe.audit.stage";
inline constexpr std::string_view kAuditReason = "kpipe.audit.reason";
inline constexpr std::string_view kOriginTopic = "kpipe.origin.topic";
inline constexpr std::string_view kOriginPartition = "kpipe.origin.partition";
inline constexpr std::string_view kOriginOffset = "kpipe.origin.offset";
inline constexpr std::string_view kOriginTimestamp = "kpipe.origin.timestamp";
inline constexpr std::string_view kPipeline = "kpipe.pipeline";
inline constexpr std::string_view kReplayOrigin = "kpipe.replay.origin";  // by kpipe replay

}  // namespace kpipe::pipeline::header
