// The cluster key, tokens and handshake proofs (common/auth.cc).
#include "unipool/common/auth.h"

#include <sys/stat.h>

#include <filesystem>

#include "gtest/gtest.h"

namespace unipool {
namespace {

TEST(AuthTest, KeysAndTokensRoundTripThroughText) {
  auto key = NewClusterKey();
  ASSERT_TRUE(key.ok());
  auto parsed = ParseCredential(FormatCredential(*key));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->is_cluster_key);
  EXPECT_EQ(parsed->secret, key->secret);

  auto token = NewToken(*key, wire::Role::Client, std::string("tenant-a/\0x", 11));
  ASSERT_TRUE(token.ok());
  auto parsed_token = ParseCredential(FormatCredential(*token));
  ASSERT_TRUE(parsed_token.ok()) << parsed_token.status();
  EXPECT_FALSE(parsed_token->is_cluster_key);
  EXPECT_EQ(parsed_token->role, wire::Role::Client);
  EXPECT_EQ(parsed_token->prefix, std::string("tenant-a/\0x", 11));
  EXPECT_EQ(parsed_token->secret, TokenSecret(key->secret, wire::Role::Client, token->prefix));
  // A token is not a key, nor can one make tokens.
  EXPECT_NE(token->secret, key->secret);
  EXPECT_FALSE(NewToken(*token, wire::Role::Admin, "").ok());

  for (const char* bad : {"", "unipool-cluster-key-v1 abc", "unipool-token-v1 root - 00",
                          "something else entirely"}) {
    EXPECT_FALSE(ParseCredential(bad).ok()) << bad;
  }
}

TEST(AuthTest, SecretsDependOnRoleAndPrefix) {
  auto key = NewClusterKey();
  Secret client_a = TokenSecret(key->secret, wire::Role::Client, "a/");
  EXPECT_NE(client_a, TokenSecret(key->secret, wire::Role::Admin, "a/"));
  EXPECT_NE(client_a, TokenSecret(key->secret, wire::Role::Client, "b/"));
  EXPECT_NE(client_a, TokenSecret(NewClusterKey()->secret, wire::Role::Client, "a/"));
}

TEST(AuthTest, QuotasArePartOfATokensTextAndSecret) {
  auto key = NewClusterKey();
  ASSERT_TRUE(key.ok());
  const TenantQuota quota{200ull << 30, 50ull << 30, 1ull << 30};
  auto token = NewToken(*key, wire::Role::Client, "a/", quota);
  ASSERT_TRUE(token.ok()) << token.status();
  std::string text = FormatCredential(*token);
  EXPECT_EQ(text.rfind("unipool-token-v2 client ", 0), 0u) << text;
  auto parsed = ParseCredential(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->quota, quota);
  EXPECT_EQ(parsed->secret, TokenSecret(key->secret, wire::Role::Client, "a/", quota));
  // Other quotas, or none, make another secret; no quotas keep the first form.
  TenantQuota raised = quota;
  raised.storage_bytes *= 2;
  EXPECT_NE(token->secret, TokenSecret(key->secret, wire::Role::Client, "a/", raised));
  EXPECT_NE(token->secret, TokenSecret(key->secret, wire::Role::Client, "a/"));
  auto plain = NewToken(*key, wire::Role::Client, "a/");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(FormatCredential(*plain).rfind("unipool-token-v1 client ", 0), 0u);
  // Quotas need a tenant: a prefix, and not a node.
  EXPECT_EQ(NewToken(*key, wire::Role::Client, "", quota).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewToken(*key, wire::Role::Node, "a/", quota).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseCredential("unipool-token-v2 client - x 0 0 " + std::string(64, '0')).ok());
}

TEST(AuthTest, ProofsAreBoundToSideNoncesRoleAndPrefix) {
  Secret secret = NewClusterKey()->secret;
  Nonce cn = RandomNonce(), sn = RandomNonce();
  Secret proof = HandshakeProof(secret, ProofSide::kClient, wire::Role::Client, "p/", true, cn, sn);
  EXPECT_EQ(proof,
            HandshakeProof(secret, ProofSide::kClient, wire::Role::Client, "p/", true, cn, sn));
  EXPECT_NE(proof,
            HandshakeProof(secret, ProofSide::kServer, wire::Role::Client, "p/", true, cn, sn));
  EXPECT_NE(proof,
            HandshakeProof(secret, ProofSide::kClient, wire::Role::Admin, "p/", true, cn, sn));
  EXPECT_NE(proof,
            HandshakeProof(secret, ProofSide::kClient, wire::Role::Client, "q/", true, cn, sn));
  EXPECT_NE(proof,
            HandshakeProof(secret, ProofSide::kClient, wire::Role::Client, "p/", false, cn, sn));
  EXPECT_NE(proof, HandshakeProof(secret, ProofSide::kClient, wire::Role::Client, "p/", true, cn,
                                  RandomNonce()));
  EXPECT_NE(RandomNonce(), RandomNonce());
}

TEST(AuthTest, KeyFilesAreCreatedPrivateAndLooseOnesRefused) {
  std::string dir = ::testing::TempDir() + "/auth_test_keys";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path = dir + "/k";
  auto key = NewClusterKey();
  ASSERT_TRUE(WriteCredentialFile(path, *key).ok());
  EXPECT_FALSE(WriteCredentialFile(path, *key).ok());  // never overwritten
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = LoadCredentialFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->secret, key->secret);
  chmod(path.c_str(), 0640);
  auto loose = LoadCredentialFile(path);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos) << loose.status();
  EXPECT_FALSE(LoadCredentialFile(dir + "/missing").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace unipool
