#include "daemon/app/status_page.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <limits>

namespace kpipe::app {
namespace {

pipeline::PipelineStatus stuck() {
  pipeline::PipelineStatus p;
  p.name = "user-events";
  p.state = "running";
  p.status = "error";
  p.input_topic = "user-events";
  p.group = "g";
  p.output = "users";
  p.store = "ids";
  p.ok = 12;
  p.blocked = 1;
  p.oldest_blocked_seconds = 95;
  p.last_error = "output: Broker: Not enough in-sync replicas (partition 2 offset 7)";
  pipeline::PartitionStatus part;
  part.partition = 2;
  part.status = "stop";
  part.committed = 7;
  part.lag_messages = 40;
  part.lag_seconds = 95.5;
  part.retention_headroom_seconds = 3600 - 95.5;
  part.pending = 40;
  part.paused = true;
  p.partitions.push_back(part);
  part.partition = 3;
  part.status = "ok";
  part.retention_headroom_seconds = std::numeric_limits<double>::infinity();  // kept forever
  p.partitions.push_back(part);
  return p;
}

TEST(StatusPageTest, JsonHasPerPipelineAndPartitionFactsAndTheLastError) {
  rapidjson::Document doc;
  doc.Parse(statusJson({stuck()}).c_str());
  ASSERT_FALSE(doc.HasParseError());
  const auto& p = doc["pipelines"][0];
  EXPECT_STREQ(p["name"].GetString(), "user-events");
  EXPECT_STREQ(p["status"].GetString(), "error");
  EXPECT_EQ(p["messages"]["ok"].GetUint64(), 12u);
  EXPECT_EQ(p["blocked"].GetUint64(), 1u);
  EXPECT_NE(std::string(p["last_error"].GetString()).find("offset 7"), std::string::npos);
  const auto& part = p["partitions"][0];
  EXPECT_EQ(part["partition"].GetInt(), 2);
  EXPECT_STREQ(part["status"].GetString(), "stop");
  EXPECT_EQ(part["lag_messages"].GetInt64(), 40);
  EXPECT_DOUBLE_EQ(part["retention_headroom_seconds"].GetDouble(), 3504.5);
  EXPECT_TRUE(part["paused"].GetBool());
  EXPECT_TRUE(p["partitions"][1]["retention_headroom_seconds"].IsNull());  // no infinity in JSON
}

TEST(StatusPageTest, HtmlEscapesEverythingFromConfigAndData) {
  auto p = stuck();
  p.name = "<script>alert(1)</script>";
  p.last_error = "schema: at /name: \"<b>\" is not allowed";
  std::string html = statusHtml({p}, "0.1.0");
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("&quot;&lt;b&gt;&quot;"), std::string::npos);
  EXPECT_NE(html.find("forever"), std::string::npos);
  EXPECT_NE(html.find("oldest 95.0 s"), std::string::npos) << html;
}

}  // namespace
}  // namespace kpipe::app
