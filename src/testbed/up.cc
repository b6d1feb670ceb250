#include "testbed/up.h"

#include <algorithm>
#include <chrono>
#include <mutex>
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

}  // namespace

std::vector<NetworkSpec> networks_with_reservations(const Testbed& tb) {
  std::vector<NetworkSpec> nets = tb.networks;
  for (const auto* groups : {&tb.goldens, &tb.guests})
    for (const auto& g : *groups)
      for (const auto& name : g.instances)
        for (size_t i = 0; i < g.networks.size(); ++i) {
          std::string ip = reserved(g, name, i);
          if (ip.empty()) continue;
          const std::string mac = nic_mac(tb.id, g, name, i);
          for (auto& n : nets)
            if (n.name == g.networks[i] &&
                std::none_of(n.hosts.begin(), n.hosts.end(), [&](const DhcpHost& h) { return h.mac == mac; }))
              n.hosts.push_back({mac, ip, name});
        }
  return nets;
}

namespace {

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


/// Where a guest's leases are read: MAC -> IPv4.
using Leases = std::function<Result<std::map<std::string, std::string>>(const GuestSpec&)>;

/// Each guest's leases as its own host's DHCP has them.
Leases guest_leases(const Virt& host, const Testbed& tb) {
  return [&host, &tb](const GuestSpec& p) -> Result<std::map<std::string, std::string>> {
    if (std::all_of(p.nics.begin(), p.nics.end(), [](const NicSpec& n) { return !n.address.empty(); }))
      return std::map<std::string, std::string>{};  // static addresses only: nothing to lease
    return leased_addresses(host, tb.id, p.name);
  };
}

/// Networks, the pool and this run's mark on it: what guests and goldens
/// need first. Each is an ensure.
Result<PoolPtr> prepare(const Virt& host, const Testbed& tb, UpReport& rep, const Progress& note,
                        const UploadFn& write) {
  // Goldens are made side by side, and each makes sure of the same
  // networks and pool: one at a time, or two would define one network.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  RW_TRY(clear_stale(host, tb, rep));
  if (!rep.replaced.empty()) note("testbed: replaced what an earlier run of " + tb.id + " left");
  for (const auto& n : networks_with_reservations(tb)) {
    RW_ASSIGN(EnsureResult r, ensure_network(host, tb.id, n, tb.run));
    if (r.created) rep.created.push_back("network " + n.name);
    note("testbed: network " + n.name + (r.created ? " created" : " present") + " (bridge " + r.bridge + ")");
  }
  RW_ASSIGN(PoolPtr pool, ensure_pool(host, tb.id, tb.images_dir));
  // The pool's ownership by this run: an empty volume named after it.
  if (!tb.run.empty()) RW_TRY(ensure_uploaded(host, pool.get(), run_marker(tb.run), std::string(512, '\0'), write));
  return pool;
}

/// Guest `name` of group `g`: its disk `vol_name` an overlay of `backing`,
/// its seed, its NICs. Volumes are ensured; the domain is not made here.
Result<GuestSpec> machine(const Virt& host, virStoragePoolPtr pool, const Testbed& tb, const GuestGroup& g,
                          const std::string& name, const std::string& vol_name, const std::string& backing,
                          const std::string& backing_format, const UploadFn& write, UpReport& rep) {
  RW_ASSIGN(EnsuredVolume disk, ensure_overlay(host, pool, vol_name, backing, backing_format, g.disk_bytes, write));
  if (disk.created) rep.created.push_back("volume " + vol_name);
  GuestSpec s;
  for (size_t i = 0; i < g.networks.size(); ++i) {
    const NetworkSpec* net = nullptr;
    for (const auto& n : tb.networks)
      if (n.name == g.networks[i]) net = &n;
    if (!net) return err("guest " + g.name + ": no network named " + g.networks[i]);
    NicSpec nic{libvirt_name({tb.id, net->name}), nic_mac(tb.id, g, name, i), net->mtu, ""};
    // No DHCP on an Open vSwitch network: the seed gives the address.
    if (net->ovs) {
      const std::string ip = reserved(g, name, i);
      if (ip.empty()) return err("guest " + name + ": no address on Open vSwitch network " + net->name);
      nic.address = ip + "/" + std::to_string(net->subnet.prefix);
      nic.full_checksums = true;  // the bridge may be on the userspace datapath
    }
    s.nics.push_back(std::move(nic));
  }
  auto hk = g.host_keys.find(name);
  auto files = nocloud_files(tb.id + "/" + name, name, g.ssh_keys, g.user_data,
                             hk == g.host_keys.end() ? nullptr : &hk->second);
  if (std::string nc = network_config(s.nics); !nc.empty()) files["network-config"] = nc;
  RW_ASSIGN(std::string seed_img, fat_seed_image(files));
  RW_ASSIGN(EnsuredVolume seed, ensure_uploaded(host, pool, name + ".seed", seed_img, write));
  s.name = name;
  s.vcpus = g.vcpus;
  s.memory_mib = g.memory_mib;
  s.kernel = g.kernel;
  s.initrd = g.initrd;
  s.cmdline = g.cmdline;
  s.disks.push_back({disk.path, "qcow2"});
  for (size_t d = 0; d < g.data_disks.size(); ++d) {
    const std::string data = data_volume(name, d);
    RW_ASSIGN(EnsuredVolume v, ensure_overlay(host, pool, data, "", "", g.data_disks[d], write));
    if (v.created) rep.created.push_back("volume " + data);
    s.disks.push_back({v.path, "qcow2"});
  }
  s.seed = seed.path;
  return s;
}

/// Waits until every NIC of every machine in `specs` has an address: one
/// with a NIC leased and another still asking is not reachable the way the
/// plan expects. `on_up(k, guest)` as the k-th one gets there.
Result<std::vector<GuestUp>> wait_for_addresses(const Leases& leases_of, const Testbed& tb,
                                                const std::vector<GuestSpec>& specs,
                                                const std::atomic<bool>* cancel,
                                                const std::function<void(size_t, const GuestUp&)>& on_up) {
  const auto deadline = std::chrono::steady_clock::now() + tb.up_timeout;
  std::vector<bool> done(specs.size(), false);
  std::vector<GuestUp> out(specs.size());
  size_t up_count = 0;
  for (;;) {
    for (size_t i = 0; i < specs.size(); ++i) {
      if (done[i]) continue;
      const auto& p = specs[i];
      RW_ASSIGN(auto leases, leases_of(p));
      std::vector<std::string> addrs;
      for (const auto& nic : p.nics)
        if (!nic.address.empty()) addrs.push_back(nic.address.substr(0, nic.address.find('/')));
        else if (auto it = leases.find(nic.mac); it != leases.end()) addrs.push_back(it->second);
      if (addrs.size() != p.nics.size()) continue;
      out[i] = {p.name, libvirt_name({tb.id, p.name}), addrs};
      done[i] = true;
      ++up_count;
      if (on_up) on_up(up_count, out[i]);
    }
    if (up_count == specs.size()) return out;
    if (cancel && cancel->load()) return err("testbed up cancelled");
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string missing;
      for (size_t i = 0; i < specs.size(); ++i)
        if (!done[i]) missing += (missing.empty() ? "" : ", ") + specs[i].name;
      return err("testbed: no address for every NIC of " + missing + " after " + format_duration(tb.up_timeout));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

/// fn(0) ... fn(n - 1) on up to `workers` threads; the first error, after
/// which no new index is started.
Status parallel_for(size_t n, size_t workers, const std::function<Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto work = [&] {
    for (size_t i; !failed && (i = next++) < n;) {
      Status s = fn(i);
      if (!s) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) first = s;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < std::min(workers, n); ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return first;
}

const GuestGroup* find_golden(const Testbed& tb, const std::string& name) {
  for (const auto& g : tb.goldens)
    if (g.name == name) return &g;
  return nullptr;
}

}  // namespace

std::string run_marker(const std::string& run) { return "run-" + run; }

std::string golden_volume(const std::string& name) { return kGoldenPrefix + name + ".qcow2"; }
std::string sealed_marker(const std::string& name) { return kGoldenPrefix + name + ".sealed"; }

Result<PoolPtr> prepare_host(const Virt& host, const Testbed& tb, UpReport& rep, const Progress& progress,
                             const UploadFn& write) {
  auto note = [&](const std::string& s) {
    if (progress) progress(s);
  };
  return prepare(host, tb, rep, note, write);
}

Result<std::vector<GuestSpec>> make_guests(const Virt& host, virStoragePoolPtr pool, const Testbed& tb,
                                           const std::atomic<bool>* cancel, UpReport& rep,
                                           const UploadFn& write_seed) {
  auto cancelled = [&] { return cancel && cancel->load(); };
  if (cancelled()) return err("testbed up cancelled");

  struct Job {
    const GuestGroup* group;
    std::string name, backing, format, type;
  };
  std::vector<Job> jobs;
  for (const auto& g : tb.guests) {
    std::string backing, format;
    if (!g.golden.empty()) {
      RW_ASSIGN(VolPtr sealed, find_volume(pool, sealed_marker(g.golden)));
      RW_ASSIGN(VolPtr golden, find_volume(pool, golden_volume(g.golden)));
      if (!sealed || !golden)
        return err("guest " + g.name + ": golden " + g.golden + " is not made yet (the testbed-golden stage makes it)");
      RW_ASSIGN(backing, volume_path(golden.get()));
      format = "qcow2";
    } else {
      const BaseImage* img = find_image(tb, g.image);
      if (!img) return err("guest " + g.name + ": no image named " + g.image);
      backing = img->path;
      format = img->format;
    }
    RW_ASSIGN(std::string type, domain_type(host, g.accel));
    for (const auto& name : g.instances) jobs.push_back({&g, name, backing, format, type});
  }
  // Clones, seeds and guests are made a few at a time: libvirtd runs
  // qemu-img and starts qemu per guest, and waits on each.
  std::vector<GuestSpec> specs(jobs.size());
  std::vector<UpReport> made(jobs.size());
  RW_TRY(parallel_for(jobs.size(), size_t(std::max(1, tb.parallel)), [&](size_t i) -> Status {
    if (cancelled()) return err("testbed up cancelled");
    const Job& j = jobs[i];
    RW_ASSIGN(specs[i], machine(host, pool, tb, *j.group, j.name, j.name + ".qcow2", j.backing, j.format,
                                write_seed, made[i]));
    return {};
  }));
  RW_TRY(parallel_for(jobs.size(), size_t(std::max(1, tb.parallel)), [&](size_t i) -> Status {
    if (cancelled()) return err("testbed up cancelled");
    RW_ASSIGN(EnsuredGuest r, ensure_guest(host, tb.id, specs[i], jobs[i].type, tb.run));
    if (r.created) made[i].created.push_back("guest " + jobs[i].name);
    return {};
  }));
  for (const auto& m : made) rep.created.insert(rep.created.end(), m.created.begin(), m.created.end());
  return specs;
}

namespace {

/// "testbed: 2/3 guests up (web-1 at 10.77.0.10)" as the k-th gets there.
std::function<void(size_t, const GuestUp&)> count_up(const Progress& progress, size_t total) {
  return [progress, total](size_t k, const GuestUp& g) {
    if (progress)
      progress("testbed: " + std::to_string(k) + "/" + std::to_string(total) + " guests up (" + g.name + " at " +
               (g.addresses.empty() ? std::string("no network") : g.addresses.front()) + ")");
  };
}

}  // namespace

Result<UpReport> up(const Virt& host, const Testbed& tb, const std::atomic<bool>* cancel, const Progress& progress,
                    const UploadFn& write_seed) {
  UpReport rep;
  RW_ASSIGN(PoolPtr pool, prepare_host(host, tb, rep, progress, write_seed));
  RW_ASSIGN(std::vector<GuestSpec> specs, make_guests(host, pool.get(), tb, cancel, rep, write_seed));
  RW_ASSIGN(rep.guests, wait_for_addresses(guest_leases(host, tb), tb, specs, cancel, count_up(progress, specs.size())));
  return rep;
}

Result<std::vector<GuestUp>> wait_for_leases(const Virt& home, const Testbed& tb, const std::vector<GuestSpec>& specs,
                                             const std::atomic<bool>* cancel, const Progress& progress) {
  // Every network's leases, on its home host, read once per round (a
  // round asks for each guest not up yet, every 250 ms).
  std::map<std::string, std::string> all;
  auto read_at = std::chrono::steady_clock::time_point{};
  auto leases = [&](const GuestSpec&) -> Result<std::map<std::string, std::string>> {
    const auto now = std::chrono::steady_clock::now();
    if (now - read_at < std::chrono::milliseconds(200)) return all;
    all.clear();
    for (const auto& n : tb.networks) {
      if (n.ovs) continue;  // static addresses: no leases
      RW_ASSIGN(auto l, network_leases(home, tb.id, n.name));
      all.insert(l.begin(), l.end());
    }
    read_at = now;
    return all;
  };
  return wait_for_addresses(leases, tb, specs, cancel, count_up(progress, specs.size()));
}

Result<GoldenBoot> boot_golden(const Virt& host, const Testbed& tb, const std::string& name,
                               const std::atomic<bool>* cancel, const Progress& progress,
                               const UploadFn& write_seed) {
  auto note = [&](const std::string& s) {
    if (progress) progress(s);
  };
  const GuestGroup* g = find_golden(tb, name);
  if (!g) return err("no golden named " + name);
  const BaseImage* img = find_image(tb, g->image);
  if (!img) return err("golden " + name + ": no image named " + g->image);
  UpReport rep;
  RW_ASSIGN(PoolPtr pool, prepare(host, tb, rep, note, write_seed));
  GoldenBoot out;
  RW_ASSIGN(VolPtr sealed, find_volume(pool.get(), sealed_marker(name)));
  if (sealed) {
    out.sealed = true;
    return out;
  }
  // Not sealed: a build cut short. Its disk holds half a setup; start over.
  RW_TRY(remove_guest(host, tb.id, name));
  RW_ASSIGN(bool stale, remove_volume(pool.get(), golden_volume(name)));
  if (stale) note("testbed: golden " + name + ": an unfinished build is started again");
  if (cancel && cancel->load()) return err("testbed golden cancelled");
  RW_ASSIGN(std::string type, domain_type(host, g->accel));
  RW_ASSIGN(GuestSpec spec,
            machine(host, pool.get(), tb, *g, name, golden_volume(name), img->path, img->format, write_seed, rep));
  RW_ASSIGN(out.dom, start_transient(host, tb.id, spec, type, tb.run));
  note("testbed: golden " + name + ": build VM started");
  const std::vector<GuestSpec> one{spec};
  RW_ASSIGN(auto vms, wait_for_addresses(guest_leases(host, tb), tb, one, cancel, nullptr));
  out.vm = vms.front();
  return out;
}

Status seal_golden(const Virt& host, const Testbed& tb, const std::string& name, Millis timeout,
                   const std::atomic<bool>* cancel, const UploadFn& write) {
  const auto start = std::chrono::steady_clock::now();
  bool asked = false;
  for (;;) {
    RW_ASSIGN(std::string state, guest_state(host, tb.id, name));
    if (state == "absent" || state == "shut off") break;
    const auto waited = std::chrono::steady_clock::now() - start;
    if (!asked && waited >= timeout / 4) {
      // The seal steps power it off; a guest that ignored that may still
      // listen to the ACPI button.
      RW_ASSIGN(DomainPtr dom, host.find_domain(libvirt_name(Owner{tb.id, name})));
      if (dom) (void)virDomainShutdown(dom.get());
      asked = true;
    }
    // Then it is destroyed below: its disks were synced by the seal steps.
    if (waited >= timeout || (cancel && cancel->load())) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  RW_TRY(remove_guest(host, tb.id, name));
  if (cancel && cancel->load()) return err("testbed golden cancelled");
  RW_ASSIGN(PoolPtr pool, host.find_pool(pool_name(tb.id)));
  if (!pool) return err("golden " + name + ": the testbed's pool " + pool_name(tb.id) + " is gone");
  RW_TRY(ensure_uploaded(host, pool.get(), sealed_marker(name), std::string(512, '\0'), write));
  return {};
}

Result<int> down(const Virt& host, const std::string& id) {
  RW_ASSIGN(std::vector<Object> objs, inventory(host, id));
  // Guests first, several at once (stopping qemu is most of the wait), then
  // networks and the pool in order.
  std::vector<const Object*> guests, rest;
  for (const auto& o : objs) (o.kind == Object::Kind::Guest ? guests : rest).push_back(&o);
  std::atomic<int> removed{0};
  RW_TRY(parallel_for(guests.size(), 4, [&](size_t i) -> Status {
    RW_ASSIGN(bool r, remove_object(host, *guests[i]));
    removed += r ? 1 : 0;
    return {};
  }));
  for (const auto* o : rest) {
    RW_ASSIGN(bool r, remove_object(host, *o));
    removed += r ? 1 : 0;
  }
  return removed.load();
}

}  // namespace rw::testbed
