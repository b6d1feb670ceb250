#include "testbed/up.h"

#include <chrono>
#include <thread>

#include "testbed/domain.h"
#include "testbed/inventory.h"
#include "testbed/network.h"
#include "testbed/seed.h"
#include "testbed/volume.h"

namespace rw::testbed {
namespace {

const BaseImage* find_image(const Testbed& tb, const std::string& name) {
  for (const auto& i : tb.images)
    if (i.name == name) return &i;
  return nullptr;
}

/// The address reserved for NIC `nic` of guest `name`, or "".
std::string reserved(const GuestGroup& g, const std::string& name, size_t nic) {
  auto it = g.addresses.find(name);
  return it != g.addresses.end() && nic < it->second.size() ? it->second[nic] : "";
}

/// The networks with the DHCP reservations the guests ask for.
std::vector<NetworkSpec> networks_with_reservations(const Testbed& tb) {
  std::vector<NetworkSpec> nets = tb.networks;
  for (const auto& g : tb.guests)
    for (const auto& name : g.instances)
      for (size_t i = 0; i < g.networks.size(); ++i) {
        std::string ip = reserved(g, name, i);
        if (ip.empty()) continue;
        for (auto& n : nets)
          if (n.name == g.networks[i]) n.hosts.push_back({mac_for({tb.id, name}, int(i)), ip, name});
      }
  return nets;
}

/// Removes what an earlier run of the same build name left (guests and
/// networks tagged with another run, a pool without this run's marker), so
/// a new run starts from clean clones instead of reusing old ones.
Status clear_stale(const Virt& host, const Testbed& tb, UpReport& rep) {
  if (tb.run.empty()) return {};
  RW_ASSIGN(std::vector<Owner> guests, owned_guests(host, tb.id));
  for (const auto& g : guests)
    if (g.run != tb.run) {
      RW_TRY(remove_guest(host, tb.id, g.object));
      rep.replaced.push_back("guest " + g.object);
    }
  RW_ASSIGN(std::vector<Owner> nets, owned_networks(host, tb.id));
  for (const auto& n : nets)
    if (n.run != tb.run) {
      RW_TRY(remove_network(host, tb.id, n.object));
      rep.replaced.push_back("network " + n.object);
    }
  RW_ASSIGN(PoolPtr pool, host.find_pool(pool_name(tb.id)));
  if (pool) {
    if (virStoragePoolIsActive(pool.get()) != 1) (void)virStoragePoolCreate(pool.get(), 0);
    RW_ASSIGN(VolPtr marker, find_volume(pool.get(), run_marker(tb.run)));
    if (!marker) {
      RW_TRY(remove_pool(host, tb.id));
      rep.replaced.push_back("pool " + pool_name(tb.id));
    }
  }
  return {};
}

}  // namespace

std::string run_marker(const std::string& run) { return "run-" + run; }

Result<UpReport> up(const Virt& host, const Testbed& tb, const std::atomic<bool>* cancel, const Progress& progress,
                    const UploadFn& write_seed) {
  UpReport rep;
  auto cancelled = [&] { return cancel && cancel->load(); };
  auto note = [&](const std::string& s) {
    if (progress) progress(s);
  };
  RW_TRY(clear_stale(host, tb, rep));
  if (!rep.replaced.empty()) note("testbed: replaced what an earlier run of " + tb.id + " left");
  for (const auto& n : networks_with_reservations(tb)) {
    RW_ASSIGN(EnsureResult r, ensure_network(host, tb.id, n, tb.run));
    if (r.created) rep.created.push_back("network " + n.name);
    note("testbed: network " + n.name + (r.created ? " created" : " present") + " (bridge " + r.bridge + ")");
  }
  if (cancelled()) return err("testbed up cancelled");
  RW_ASSIGN(PoolPtr pool, ensure_pool(host, tb.id, tb.images_dir));
  // The pool's ownership by this run: an empty volume named after it.
  if (!tb.run.empty()) RW_TRY(ensure_uploaded(host, pool.get(), run_marker(tb.run), std::string(512, '\0'), write_seed));

  struct Planned {
    const GuestGroup* group;
    std::string name;
    GuestSpec spec;
    std::string type;
  };
  std::vector<Planned> planned;
  for (const auto& g : tb.guests) {
    const BaseImage* img = find_image(tb, g.image);
    if (!img) return err("guest " + g.name + ": no image named " + g.image);
    RW_ASSIGN(std::string type, domain_type(host, g.accel));
    for (const auto& name : g.instances) {
      if (cancelled()) return err("testbed up cancelled");
      RW_ASSIGN(EnsuredVolume disk,
                ensure_overlay(host, pool.get(), name + ".qcow2", img->path, img->format, g.disk_bytes));
      if (disk.created) rep.created.push_back("volume " + name + ".qcow2");
      auto files = nocloud_files(tb.id + "/" + name, name, g.ssh_keys, g.user_data);
      RW_ASSIGN(std::string seed_img, fat_seed_image(files));
      RW_ASSIGN(EnsuredVolume seed, ensure_uploaded(host, pool.get(), name + ".seed", seed_img, write_seed));
      GuestSpec s;
      s.name = name;
      s.vcpus = g.vcpus;
      s.memory_mib = g.memory_mib;
      s.kernel = g.kernel;
      s.initrd = g.initrd;
      s.cmdline = g.cmdline;
      s.disks.push_back({disk.path, "qcow2"});
      s.seed = seed.path;
      for (size_t i = 0; i < g.networks.size(); ++i) {
        const NetworkSpec* net = nullptr;
        for (const auto& n : tb.networks)
          if (n.name == g.networks[i]) net = &n;
        if (!net) return err("guest " + g.name + ": no network named " + g.networks[i]);
        s.nics.push_back({libvirt_name({tb.id, net->name}), mac_for({tb.id, name}, int(i)), net->mtu});
      }
      planned.push_back({&g, name, std::move(s), type});
    }
  }
  for (const auto& p : planned) {
    if (cancelled()) return err("testbed up cancelled");
    RW_ASSIGN(EnsuredGuest r, ensure_guest(host, tb.id, p.spec, p.type, tb.run));
    if (r.created) rep.created.push_back("guest " + p.name);
  }

  // Up means every NIC has an address: a guest with one NIC leased and
  // another still asking is not reachable the way the plan expects.
  const auto deadline = std::chrono::steady_clock::now() + tb.up_timeout;
  std::vector<bool> done(planned.size(), false);
  size_t up_count = 0;
  rep.guests.resize(planned.size());
  for (;;) {
    for (size_t i = 0; i < planned.size(); ++i) {
      if (done[i]) continue;
      const auto& p = planned[i];
      RW_ASSIGN(auto leases, leased_addresses(host, tb.id, p.name));
      std::vector<std::string> addrs;
      for (const auto& nic : p.spec.nics)
        if (auto it = leases.find(nic.mac); it != leases.end()) addrs.push_back(it->second);
      if (addrs.size() != p.spec.nics.size()) continue;
      rep.guests[i] = {p.name, libvirt_name({tb.id, p.name}), addrs};
      done[i] = true;
      ++up_count;
      note("testbed: " + std::to_string(up_count) + "/" + std::to_string(planned.size()) + " guests up (" + p.name +
           " at " + (addrs.empty() ? std::string("no network") : addrs.front()) + ")");
    }
    if (up_count == planned.size()) return rep;
    if (cancelled()) return err("testbed up cancelled");
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string missing;
      for (size_t i = 0; i < planned.size(); ++i)
        if (!done[i]) missing += (missing.empty() ? "" : ", ") + planned[i].name;
      return err("testbed: no address for every NIC of " + missing + " after " + format_duration(tb.up_timeout));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Result<int> down(const Virt& host, const std::string& id) {
  RW_ASSIGN(std::vector<Object> objs, inventory(host, id));
  int removed = 0;
  for (const auto& o : objs) {
    RW_ASSIGN(bool r, remove_object(host, o));
    removed += r ? 1 : 0;
  }
  return removed;
}

}  // namespace rw::testbed
