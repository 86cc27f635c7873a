// EtcdClient against a real 1-member etcd on loopback, and against a hostile
// one (an HTTP server answering whatever the test wants).
#include "unipool/election/etcd_client.h"

#include <httplib.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "etcd_member.h"
#include "gtest/gtest.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

using testing::EtcdMember;

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto member = EtcdMember::Start(dir_.path());
    ASSERT_TRUE(member.ok()) << member.status();
    member_ = std::move(*member);
    auto client = EtcdClient::Create({.endpoints = {member_->url()}});
    ASSERT_TRUE(client.ok()) << client.status();
    etcd_ = std::move(*client);
  }
  testing::TestDir dir_{"etcd"};
  std::unique_ptr<EtcdMember> member_;
  std::unique_ptr<EtcdClient> etcd_;
};

TEST_F(EtcdClientTest, CreateIfAbsentGivesTheKeyToTheFirstAndNamesItsHolderToTheSecond) {
  auto lease = etcd_->GrantLease(absl::Seconds(5));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_GE(lease->ttl, absl::Seconds(5));
  auto first = etcd_->CreateIfAbsent("/unipool/p/leader", "a:7300", lease->id);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  EXPECT_GT(first->revision, 0);

  auto second = etcd_->CreateIfAbsent("/unipool/p/leader", "b:7300", lease->id);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->holder.value, "a:7300");
  EXPECT_EQ(second->holder.create_revision, first->revision);
  EXPECT_EQ(second->holder.lease, lease->id);

  auto got = etcd_->Get("/unipool/p/leader");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->kv.has_value());
  EXPECT_EQ(got->kv->value, "a:7300");
  EXPECT_GE(got->revision, first->revision);
}

TEST_F(EtcdClientTest, DeleteIfCreatedDeletesOnlyTheKeyOfThatRevision) {
  auto lease = etcd_->GrantLease(absl::Seconds(5));
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto created = etcd_->CreateIfAbsent("k", "v", lease->id);
  ASSERT_TRUE(created.ok() && created->created);
  auto wrong = etcd_->DeleteIfCreated("k", created->revision + 100);
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_FALSE(*wrong);
  EXPECT_TRUE(etcd_->Get("k")->kv.has_value());
  auto right = etcd_->DeleteIfCreated("k", created->revision);
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_TRUE(*right);
  EXPECT_FALSE(etcd_->Get("k")->kv.has_value());
  // A new key gets a newer create revision.
  auto again = etcd_->CreateIfAbsent("k", "w", lease->id);
  ASSERT_TRUE(again.ok() && again->created);
  EXPECT_GT(again->revision, created->revision);
  EXPECT_EQ(*etcd_->Delete("k"), 1);
  EXPECT_EQ(*etcd_->Delete("k"), 0);
}

TEST_F(EtcdClientTest, ARevokedOrExpiredLeaseTakesItsKeyAndCannotBeRenewed) {
  auto lease = etcd_->GrantLease(absl::Seconds(2));
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto renewed = etcd_->KeepAlive(lease->id);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(*renewed, lease->ttl);
  ASSERT_TRUE(etcd_->CreateIfAbsent("k", "v", lease->id)->created);
  ASSERT_TRUE(etcd_->RevokeLease(lease->id).ok());
  EXPECT_FALSE(etcd_->Get("k")->kv.has_value());
  EXPECT_TRUE(absl::IsNotFound(etcd_->KeepAlive(lease->id).status()));
  absl::Status revoked_again = etcd_->RevokeLease(lease->id);
  EXPECT_TRUE(absl::IsNotFound(revoked_again)) << revoked_again;

  // Left alone, a lease expires and its key goes with it.
  auto short_lease = etcd_->GrantLease(absl::Seconds(2));
  ASSERT_TRUE(short_lease.ok()) << short_lease.status();
  ASSERT_TRUE(etcd_->CreateIfAbsent("k2", "v", short_lease->id)->created);
  EXPECT_TRUE(
      testing::WaitUntil([&] { return !etcd_->Get("k2")->kv.has_value(); }, absl::Seconds(30)));
  EXPECT_TRUE(absl::IsNotFound(etcd_->KeepAlive(short_lease->id).status()));
}

TEST_F(EtcdClientTest, ADeadEndpointIsSkippedForALiveOne) {
  auto client = EtcdClient::Create({.endpoints = {"http://127.0.0.1:1", member_->url()}});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Get("x").ok());
  auto dead = EtcdClient::Create({.endpoints = {"127.0.0.1:1"}});
  ASSERT_TRUE(dead.ok());
  EXPECT_TRUE(absl::IsUnavailable((*dead)->Get("x").status()));
}

TEST(EtcdEndpointsTest, BadEndpointsAreRefusedUpFront) {
  EXPECT_FALSE(EtcdClient::Create({.endpoints = {}}).ok());
  EXPECT_FALSE(EtcdClient::Create({.endpoints = {"https://a:2379"}}).ok());
  EXPECT_FALSE(EtcdClient::Create({.endpoints = {"http://no-port"}}).ok());
  EXPECT_TRUE(EtcdClient::Create({.endpoints = {"http://a:2379/", "b:2379"}}).ok());
  EXPECT_FALSE(ParseEtcdEndpoints("a:1,,b:2").ok());
  EXPECT_EQ(ParseEtcdEndpoints("a:1,b:2")->size(), 2u);
}

// An "etcd" that answers every request with the body the test sets.
class HostileEtcd {
 public:
  HostileEtcd() {
    server_.Post(".*", [this](const httplib::Request&, httplib::Response& res) {
      absl::MutexLock lock(&mutex_);
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    testing::WaitUntil([this] { return server_.is_running(); }, absl::Seconds(10),
                       absl::Milliseconds(1));
  }
  ~HostileEtcd() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void Answer(std::string body) {
    absl::MutexLock lock(&mutex_);
    body_ = std::move(body);
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  absl::Mutex mutex_;
  std::string body_ ABSL_GUARDED_BY(mutex_);
  std::thread thread_;
};

TEST(HostileEtcdTest, MalformedRepliesAreErrorsNeverGuesses) {
  HostileEtcd hostile;
  auto etcd = EtcdClient::Create({.endpoints = {hostile.url()}});
  ASSERT_TRUE(etcd.ok());
  // A Range reply with one key (base64), its create revision (JSON) and its
  // value (base64).
  auto kv = [](const std::string& key, const std::string& revision, const std::string& value) {
    return absl::StrCat(R"({"header":{"revision":"5"},"kvs":[{"key":")", key,
                        R"(","create_revision":)", revision, R"(,"value":")", value, R"("}]})");
  };
  struct Case {
    std::string body;
    const char* why;
  } cases[] = {
      {"not json", "not JSON"},
      {"[1,2]", "not an object"},
      {R"({"header":{"revision":"-3"}})", "a negative revision"},
      {R"({"header":{"revision":"12abc"}})", "a revision that is not a number"},
      {R"({"header":{"revision":"99999999999999999999"}})", "a revision over int64"},
      {R"({"header":"x"})", "a header that is not an object"},
      {kv("aw==", "\"3\"", "@@@"), "a value that is not base64"},
      {kv("b3RoZXI=", "\"3\"", "dg=="), "another key than asked"},
      {kv("aw==", "\"0\"", "dg=="), "a key without a create revision"},
      {R"({"kvs":[{"key":"aw=="},{"key":"aw=="}]})", "two keys for one"},
      {R"({"kvs":"x"})", "kvs not a list"},
      {std::string(2 << 20, ' '), "a reply over 1 MiB"},
  };
  for (const Case& c : cases) {
    hostile.Answer(c.body);
    auto got = (*etcd)->Get("k");
    EXPECT_FALSE(got.ok()) << c.why;
    EXPECT_FALSE(absl::IsUnavailable(got.status())) << c.why << ": " << got.status();
  }
  hostile.Answer(kv("aw==", "\"3\"", "dg=="));
  auto good = (*etcd)->Get("k");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->kv->value, "v");

  hostile.Answer(R"({"succeeded":"yes"})");
  EXPECT_FALSE((*etcd)->CreateIfAbsent("k", "v", 1).ok());
  hostile.Answer(R"({"header":{"revision":"9"}})");  // failed, but names no holder
  EXPECT_FALSE((*etcd)->CreateIfAbsent("k", "v", 1).ok());
  hostile.Answer(R"({"result":{"ID":"8","TTL":"5"}})");  // another lease than asked
  EXPECT_FALSE((*etcd)->KeepAlive(7).ok());
  hostile.Answer(R"({"ID":"0","TTL":"5"})");
  EXPECT_FALSE((*etcd)->GrantLease(absl::Seconds(5)).ok());
  hostile.Answer(R"({"error":"boom","code":9,"message":"boom"})");
  EXPECT_TRUE(absl::IsFailedPrecondition((*etcd)->Get("k").status()));
}

}  // namespace
}  // namespace unipool
