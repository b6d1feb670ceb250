#include "testbed/hostkey.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <memory>

#include "common/files.h"
#include "common/text.h"
#include "ssh/known_hosts.h"
#include "ssh/load_error.h"

namespace rw::testbed {
namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(char((v >> s) & 0xff));
}

void put_string(std::string& out, std::string_view s) {
  put_u32(out, uint32_t(s.size()));
  out.append(s);
}

}  // namespace

Result<HostKey> make_host_key(const std::string& comment) {
  // EVP_PKEY_Q_keygen's steps, without its variable arguments (runwarden
  // forwards each OpenSSL call to the library it loads on first use).
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "ED25519", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* made = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 || EVP_PKEY_generate(ctx.get(), &made) <= 0)
    return err(ssh::with_load_error("cannot make an Ed25519 host key (OpenSSL)", ssh::libcrypto_load_error()));
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(made, EVP_PKEY_free);
  unsigned char pub[32], seed[32];
  size_t pub_len = sizeof pub, seed_len = sizeof seed;
  if (EVP_PKEY_get_raw_public_key(key.get(), pub, &pub_len) != 1 ||
      EVP_PKEY_get_raw_private_key(key.get(), seed, &seed_len) != 1 || pub_len != 32 || seed_len != 32)
    return err("cannot read the Ed25519 host key (OpenSSL)");
  const std::string_view type = "ssh-ed25519";
  const std::string_view pub_raw(reinterpret_cast<const char*>(pub), 32);
  std::string blob;
  put_string(blob, type);
  put_string(blob, pub_raw);

  // openssh-key-v1, unencrypted: the format ssh-keygen writes.
  uint32_t check = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&check), sizeof check) != 1)
    return err("no random bytes for the host key (OpenSSL)");
  std::string priv;
  put_u32(priv, check);
  put_u32(priv, check);
  put_string(priv, type);
  put_string(priv, pub_raw);
  std::string secret(reinterpret_cast<const char*>(seed), 32);
  secret.append(pub_raw);
  put_string(priv, secret);
  put_string(priv, comment);
  for (char pad = 1; priv.size() % 8; ++pad) priv.push_back(pad);
  std::string file = "openssh-key-v1";
  file.push_back('\0');
  put_string(file, "none");
  put_string(file, "none");
  put_string(file, "");
  put_u32(file, 1);
  put_string(file, blob);
  put_string(file, priv);
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(secret.data(), secret.size());

  HostKey out;
  const std::string b64 = ssh::base64_encode(file);
  out.private_key = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 70) out.private_key += b64.substr(i, 70) + "\n";
  out.private_key += "-----END OPENSSH PRIVATE KEY-----\n";
  OPENSSL_cleanse(file.data(), file.size());
  OPENSSL_cleanse(priv.data(), priv.size());
  out.public_key = std::string(type) + " " + ssh::base64_encode(blob);
  return out;
}

Result<HostKey> load_or_make_host_key(const std::string& dir, const std::string& name) {
  const std::string priv = dir + "/" + name, pub = priv + ".pub";
  if (::access(priv.c_str(), F_OK) == 0 && ::access(pub.c_str(), F_OK) == 0) {
    HostKey k;
    RW_ASSIGN(k.private_key, read_file(priv));
    RW_ASSIGN(std::string p, read_file(pub));
    k.public_key = std::string(trim(p));
    return k;
  }
  RW_TRY(make_dirs(dir, 0700));
  RW_ASSIGN(HostKey k, make_host_key(name));
  RW_TRY(write_file_atomic(priv, k.private_key, 0600));
  RW_TRY(write_file_atomic(pub, k.public_key + "\n", 0644));
  return k;
}

}  // namespace rw::testbed
