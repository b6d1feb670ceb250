// Guests' SSH host keys made on the controller: ssh-keygen reads what we
// write, a run keeps its keys, and they reach the seed.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "ssh/known_hosts.h"
#include "testbed/hostkey.h"
#include "testbed/seed.h"

namespace rw::testbed {
namespace {

std::string run(const std::string& cmd) {
  std::unique_ptr<FILE, decltype(&pclose)> p(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 512> buf{};
  while (p && fgets(buf.data(), buf.size(), p.get())) out += buf.data();
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/rw-hk-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { (void)!std::system(("rm -rf " + path).c_str()); }
};

TEST(TestbedHostKey, SshKeygenReadsThePrivateKeyAndDerivesThePublicOne) {
  auto k = make_host_key("web-1");
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->public_key.rfind("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 0), 0u) << k->public_key;
  TempDir d;
  const std::string f = d.path + "/key";
  std::ofstream(f) << k->private_key;
  ::chmod(f.c_str(), 0600);
  std::string derived = run("ssh-keygen -y -f " + f + " 2>&1");
  EXPECT_EQ(derived.substr(0, k->public_key.size()), k->public_key) << derived;
  EXPECT_NE(run("ssh-keygen -l -f " + f + " 2>&1").find("web-1 (ED25519)"), std::string::npos)
      << "the comment is kept";
  auto other = make_host_key("web-2");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->public_key, k->public_key);
}

TEST(TestbedHostKey, ARunKeepsItsKeysAndTheSeedCarriesThem) {
  TempDir d;
  auto a = load_or_make_host_key(d.path + "/keys", "web-1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  struct stat st{};
  ASSERT_EQ(::stat((d.path + "/keys/web-1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "a private key";
  auto b = load_or_make_host_key(d.path + "/keys", "web-1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->public_key, b->public_key) << "a resumed runner reuses it";
  EXPECT_EQ(a->private_key, b->private_key);
  auto files = nocloud_files("tb/web-1", "web-1", {"ssh-ed25519 AAAA user"}, "", &*a);
  const std::string& ud = files["user-data"];
  EXPECT_NE(ud.find("ssh_genkeytypes: []\nssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n"),
            std::string::npos) << ud;
  EXPECT_NE(ud.find("  ed25519_public: \"" + a->public_key + "\"\n"), std::string::npos) << ud;
  EXPECT_EQ(nocloud_files("tb/web-1", "web-1", {}, "")["user-data"].find("ssh_keys"), std::string::npos);
}

TEST(TestbedHostKey, TrustHostMakesItTheOneEntryForThatAddress) {
  TempDir d;
  const std::string f = d.path + "/known_hosts";
  std::ofstream(f) << "10.77.0.10 ssh-ed25519 AAAAold\n10.77.0.11 ssh-ed25519 AAAAkeep\n";
  ASSERT_TRUE(ssh::trust_host(f, "10.77.0.10", 22, "ssh-ed25519 AAAAnew web-1").ok());
  std::ifstream in(f);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "10.77.0.11 ssh-ed25519 AAAAkeep\n10.77.0.10 ssh-ed25519 AAAAnew\n");
  ASSERT_TRUE(ssh::trust_host(d.path + "/new", "10.77.0.12", 2222, "ssh-ed25519 AAAAx").ok());
  std::ifstream in2(d.path + "/new");
  std::string fresh((std::istreambuf_iterator<char>(in2)), {});
  EXPECT_EQ(fresh, "[10.77.0.12]:2222 ssh-ed25519 AAAAx\n");
}

}  // namespace
}  // namespace rw::testbed
