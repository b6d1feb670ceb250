#include "ssh/known_hosts.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace rw::ssh {
namespace {

TEST(KnownHostsLine, ParsesAPlainEntry) {
  auto r = parse_known_hosts_line("10.0.0.5,hv1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA comment here\n");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  const auto& l = **r;
  EXPECT_EQ(l.marker, "");
  EXPECT_EQ(l.hosts, "10.0.0.5,hv1");
  EXPECT_EQ(l.key_type, "ssh-ed25519");
  EXPECT_EQ(l.key_base64, "AAAAC3NzaC1lZDI1NTE5AAAAIA");
}

TEST(KnownHostsLine, ParsesMarkersAndHashedHosts) {
  auto r = parse_known_hosts_line("@revoked |1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAE2");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->marker, "@revoked");
  EXPECT_EQ((*r)->hosts, "|1|c2FsdA==|aGFzaA==");
  EXPECT_EQ((*r)->key_type, "ecdsa-sha2-nistp256");
}

TEST(KnownHostsLine, SkipsBlankLinesAndComments) {
  for (const char* line : {"", "   \t", "# a comment", "  # indented comment", "\r\n"}) {
    auto r = parse_known_hosts_line(line);
    ASSERT_TRUE(r.ok()) << line;
    EXPECT_FALSE(r->has_value()) << line;
  }
}

TEST(KnownHostsLine, RejectsTruncatedLinesAndUnknownMarkers) {
  EXPECT_FALSE(parse_known_hosts_line("hostonly").ok());
  EXPECT_FALSE(parse_known_hosts_line("host ssh-ed25519").ok());
  EXPECT_FALSE(parse_known_hosts_line("@bogus host ssh-ed25519 AAAA").ok());
}

TEST(KnownHostsFormat, UsesBracketsForNonStandardPorts) {
  EXPECT_EQ(known_hosts_host_field("10.0.0.5", 22), "10.0.0.5");
  EXPECT_EQ(known_hosts_host_field("10.0.0.5", 2222), "[10.0.0.5]:2222");
  EXPECT_EQ(format_known_hosts_line("h", 2201, "ssh-ed25519", "AAAA"), "[h]:2201 ssh-ed25519 AAAA\n");
  EXPECT_EQ(format_known_hosts_line("h", 22, "ssh-rsa", "BBBB"), "h ssh-rsa BBBB\n");
}

TEST(Base64, MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo", false), "Zm8");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Fingerprint, LooksLikeSshKeygenOutput) {
  std::string digest(32, '\0');
  auto fp = sha256_fingerprint(digest);
  EXPECT_EQ(fp, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");  // 43 chars, no padding
}

TEST(HostKeyPreference, PutsAlgorithmsKnownForTheHostFirst) {
  std::vector<std::string> supported = {"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                                        "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ssh-ed25519", "ssh-rsa",
                                        "ssh-dss"};
  EXPECT_EQ(hostkey_method_preference(supported, {"ecdsa-sha2-nistp256"}),
            "ecdsa-sha2-nistp256,ssh-ed25519,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa");
  EXPECT_EQ(hostkey_method_preference(supported, {}),
            "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa");
}

TEST(HostKeyPreference, LeavesOutWhatLibssh2DoesNotSupport) {
  EXPECT_EQ(hostkey_method_preference({"ssh-rsa"}, {"ssh-ed25519"}), "ssh-rsa");
}

TEST(KnownHostsFile, ForgetHostDropsOnlyThatHostsPlainEntries) {
  char dir[] = "/tmp/rw-kh-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/known_hosts";
  {
    std::ofstream f(file);
    f << "10.77.0.10 ssh-ed25519 AAAAold\n"
         "10.77.0.11 ssh-ed25519 AAAAkeep\n"
         "[10.77.0.10]:2222 ssh-ed25519 AAAAotherport\n"
         "web,10.77.0.10 ssh-rsa AAAAalias\n"
         "# a comment\n";
  }
  ASSERT_TRUE(forget_host(file, "10.77.0.10", 22).ok());
  std::stringstream got;
  got << std::ifstream(file).rdbuf();
  EXPECT_EQ(got.str(),
            "10.77.0.11 ssh-ed25519 AAAAkeep\n"
            "[10.77.0.10]:2222 ssh-ed25519 AAAAotherport\n"
            "# a comment\n");
  EXPECT_TRUE(forget_host(std::string(dir) + "/absent", "10.77.0.10", 22).ok()) << "no file: nothing to forget";
  std::system(("rm -rf " + std::string(dir)).c_str());
}

}  // namespace
}  // namespace rw::ssh
