// PyTorch's own distributed layer (c10d) for JS: a TCPStore rendezvous, a Gloo process group (or NCCL,
// nccl.cc, in a build against a CUDA libtorch), collectives that wait with a timeout, and
// DistributedDataParallel's gradient averaging: gradients flattened into buckets (25 MB, as DDP),
// every bucket's all-reduce in flight at once after backward, then averaged back into .grad; or, with a
// GradSync, each bucket's all-reduce launched during backward as soon as its last gradient is computed
// (hooks on the parameters, buckets in reverse parameter order and launched strictly in order, as DDP's
// Reducer does), so communication overlaps the rest of backward.
// (c10d's own Reducer is not usable with Debian's headers: reducer.hpp needs the distributed-autograd
// headers that libtorch-dev does not ship.)
#include "common.h"
#include "dist.h"
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <chrono>
#include <memory>
#include <mutex>

namespace lsm {

struct GroupBox {
  Tag tag = Tag::Group;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<GroupBase> pg;
  std::chrono::milliseconds timeout{60000};
};

static GroupBox* unwrapGroup(const Napi::Value& v) { return unwrapTagged<GroupBox>(v, Tag::Group, "process group"); }

static void waitFor(const c10::intrusive_ptr<c10d::Work>& work, std::chrono::milliseconds timeout, const char* what) {
  if (!work->wait(timeout)) throw std::runtime_error(std::string(what) + ": timed out");
}

// Since 2.4 a TCPStore asks for the libuv backend by default (TCPStoreOptions::useLibUV, added in 2.2), and fails
// where PyTorch was built without libuv (Debian's 2.6: "use_libuv was requested but PyTorch was build without libuv
// support"). The classic backend is in every build, so ask for it wherever the field exists (1.13 has neither).
template <typename Options>
static auto classicStoreBackend(Options& o, int) -> decltype(o.useLibUV = false, void()) { o.useLibUV = false; }
template <typename Options>
static void classicStoreBackend(Options&, long) {}

// distInit(rank, worldSize, host, port, timeoutMs, backend): rendezvous through a TCPStore (rank 0 serves it),
// then a Gloo or NCCL process group. Blocks until every rank has joined or the timeout passes.
static Napi::Value distInit(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int rank = static_cast<int>(toInt(info[0], "rank"));
  int world = static_cast<int>(toInt(info[1], "worldSize"));
  auto host = info[2].As<Napi::String>().Utf8Value();
  auto port = static_cast<uint16_t>(toInt(info[3], "port"));
  auto timeout = std::chrono::milliseconds(toInt(info[4], "timeoutMs"));
  auto backend = info.Length() > 5 && info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : std::string("gloo");
  if (backend != "gloo" && backend != "nccl") throw Napi::Error::New(env, "distInit: backend must be 'gloo' or 'nccl', got '" + backend + "'");
  if (backend == "nccl" && !hasNccl()) throw Napi::Error::New(env, "distInit: this build of the addon has no NCCL (it needs a CUDA libtorch and the CUDA and NCCL headers when it is built; see the README)");
  if (world < 1 || rank < 0 || rank >= world) throw Napi::RangeError::New(env, "distInit: need 0 <= rank < worldSize");
  c10d::TCPStoreOptions so;
  so.port = port;
  so.isServer = rank == 0;
  so.numWorkers = world;
  so.waitWorkers = true;
  so.timeout = timeout;
  classicStoreBackend(so, 0);
  auto* b = new GroupBox();
  try {
    b->store = c10::make_intrusive<c10d::TCPStore>(host, so);
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lsmseg", b->store);
    if (backend == "nccl") {
      b->pg = makeNcclGroup(prefixed, rank, world, timeout);
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1";
      opts->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname(host) : c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      b->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world, opts);
    }
    b->timeout = timeout;
  } catch (...) {
    delete b;
    throw;
  }
  return Napi::External<GroupBox>::New(env, b, [](Napi::Env, GroupBox* b) { delete b; });
}

static c10d::ReduceOp reduceOp(const std::string& s) {
  if (s == "sum") return c10d::ReduceOp::SUM;
  if (s == "max") return c10d::ReduceOp::MAX;
  if (s == "min") return c10d::ReduceOp::MIN;
  if (s == "product") return c10d::ReduceOp::PRODUCT;
  throw std::runtime_error("unknown reduce op '" + s + "' (sum, max, min, product)");
}

// allReduce(g, tensors, op): in place, waits.
static Napi::Value allReduce(const Napi::CallbackInfo& info) {
  auto* g = unwrapGroup(info[0]);
  auto ts = toTensorVec(info[1], "tensors");
  c10d::AllreduceOptions o;
  o.reduceOp = reduceOp(info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "sum");
  o.timeout = g->timeout;
  for (auto& t : ts) {
    std::vector<at::Tensor> one{t};
    waitFor(g->pg->allreduce(one, o), g->timeout, "allReduce");
  }
  return info.Env().Undefined();
}

// broadcast(g, tensors, root): in place, waits.
static Napi::Value broadcast(const Napi::CallbackInfo& info) {
  auto* g = unwrapGroup(info[0]);
  auto ts = toTensorVec(info[1], "tensors");
  c10d::BroadcastOptions o;
  o.rootRank = toInt(info[2], "root");
  o.timeout = g->timeout;
  for (auto& t : ts) {
    std::vector<at::Tensor> one{t};
    waitFor(g->pg->broadcast(one, o), g->timeout, "broadcast");
  }
  return info.Env().Undefined();
}

// allGather(g, tensor): one tensor per rank.
static Napi::Value allGather(const Napi::CallbackInfo& info) {
  auto* g = unwrapGroup(info[0]);
  auto& t = unwrap(info[1]);
  std::vector<std::vector<at::Tensor>> out(1);
  for (int i = 0; i < g->pg->getSize(); i++) out[0].push_back(at::empty_like(t));
  std::vector<at::Tensor> in{t};
  c10d::AllgatherOptions o;
  o.timeout = g->timeout;
  waitFor(g->pg->allgather(out, in, o), g->timeout, "allGather");
  return wrapList(info.Env(), out[0]);
}

// barrier(group, timeoutMs?): the group's timeout unless given (a rank waiting for slower peers' long work).
static Napi::Value barrier(const Napi::CallbackInfo& info) {
  auto* g = unwrapGroup(info[0]);
  c10d::BarrierOptions o;
  o.timeout = info.Length() > 1 && info[1].IsNumber() ? std::chrono::milliseconds(toInt(info[1], "timeoutMs")) : g->timeout;
  waitFor(g->pg->barrier(o), o.timeout, "barrier");
  return info.Env().Undefined();
}

static Napi::Value groupInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto* g = unwrapGroup(info[0]);
  auto o = Napi::Object::New(env);
  o.Set("rank", Napi::Number::New(env, g->pg->getRank()));
  o.Set("worldSize", Napi::Number::New(env, g->pg->getSize()));
  o.Set("backend", Napi::String::New(env, g->pg->getBackendName()));
  return o;
}

// ---- DDP's gradient averaging: buckets filled from the gradients, one all-reduce per bucket ----

struct SyncState {
  c10::intrusive_ptr<GroupBase> pg;
  std::chrono::milliseconds timeout{60000};
  std::vector<at::Tensor> params;
  struct Bucket {
    std::vector<size_t> members;  // parameter indices
    std::vector<int64_t> offsets;  // element offset of each member in flat
    at::Tensor flat;
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  std::vector<size_t> bucketOf, slotOf;
  std::vector<bool> seen;
  size_t nextLaunch = 0;
  std::mutex mu;

  // Buckets of at most `capBytes` in reverse order of `params` (backward computes the last layers' gradients
  // first), one dtype each, as DDP's Reducer plans them.
  SyncState(const GroupBox& g, std::vector<at::Tensor> ps, int64_t capBytes) : pg(g.pg), timeout(g.timeout), params(std::move(ps)) {
    size_t n = params.size();
    bucketOf.assign(n, 0);
    slotOf.assign(n, 0);
    seen.assign(n, false);
    int64_t bytes = 0, elems = 0;
    auto close = [&] {
      if (!buckets.empty()) buckets.back().flat = at::zeros({elems}, params[buckets.back().members[0]].options().requires_grad(false));
    };
    for (size_t k = 0; k < n; k++) {
      size_t i = n - 1 - k;
      auto& p = params[i];
      int64_t b = p.numel() * p.element_size();
      if (buckets.empty() || bytes + b > capBytes || params[buckets.back().members[0]].scalar_type() != p.scalar_type()) {
        close();
        buckets.emplace_back();
        bytes = 0;
        elems = 0;
      }
      auto& bk = buckets.back();
      bucketOf[i] = buckets.size() - 1;
      slotOf[i] = bk.members.size();
      bk.members.push_back(i);
      bk.offsets.push_back(elems);
      bytes += b;
      elems += p.numel();
    }
    close();
    reset();
  }

  void reset() {
    for (auto& b : buckets) { b.pending = b.members.size(); b.work.reset(); }
    std::fill(seen.begin(), seen.end(), false);
    nextLaunch = 0;
  }
  // launches the ready buckets in order (every rank launches the same collectives in the same order)
  void launchReady() {
    c10d::AllreduceOptions o;
    o.timeout = timeout;
    while (nextLaunch < buckets.size() && buckets[nextLaunch].pending == 0) {
      std::vector<at::Tensor> one{buckets[nextLaunch].flat};
      buckets[nextLaunch].work = pg->allreduce(one, o);
      nextLaunch++;
    }
  }
  // parameter i's gradient (undefined: none, counted as zeros) goes into its bucket; full buckets launch
  void put(size_t i, const at::Tensor& grad) {
    if (seen[i]) throw std::runtime_error("GradSync: a parameter received two gradients in one backward (call finish() after each backward)");
    seen[i] = true;
    auto& b = buckets[bucketOf[i]];
    at::NoGradGuard noGrad;
    auto slice = b.flat.narrow(0, b.offsets[slotOf[i]], params[i].numel());
    if (grad.defined()) slice.copy_(grad.reshape({-1})); else slice.zero_();
    b.pending--;
    if (b.pending == 0) launchReady();
  }
  void onGrad(size_t i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    put(i, grad);
  }
  // The rest of the parameters count as zeros; waits for every bucket and writes the means into .grad.
  // Returns how many buckets had started before this call. Ready for the next round afterwards.
  size_t finish(const char* what) {
    std::lock_guard<std::mutex> lock(mu);
    at::NoGradGuard noGrad;
    int world = pg->getSize();
    size_t early = nextLaunch;
    for (size_t i = 0; i < params.size(); i++) if (!seen[i]) put(i, at::Tensor());
    try {
      for (auto& b : buckets) {
        waitFor(b.work, timeout, what);
        b.flat.div_(world);
        for (size_t k = 0; k < b.members.size(); k++) {
          auto& p = params[b.members[k]];
          if (!p.requires_grad()) continue;  // frozen (fine-tuning's first steps): it takes no gradient, no update
          if (!p.mutable_grad().defined()) p.mutable_grad() = at::zeros_like(p);
          auto& grad = p.mutable_grad();
          grad.copy_(b.flat.narrow(0, b.offsets[k], grad.numel()).view_as(grad));
        }
      }
    } catch (...) {
      reset();
      throw;
    }
    reset();
    return early;
  }
};

static int64_t capBytes(const Napi::Value& v) { return static_cast<int64_t>(toDouble(v, "bucketCapMB") * 1024 * 1024); }

// allReduceGrads(g, params, bucketCapMB): after backward, averages the parameters' gradients over the ranks
// (every bucket's all-reduce in flight at once). Parameters without a gradient contribute zeros, so every
// rank runs the same collectives. Returns the number of buckets.
static Napi::Value allReduceGrads(const Napi::CallbackInfo& info) {
  auto* g = unwrapGroup(info[0]);
  SyncState st(*g, toTensorVec(info[1], "params"), capBytes(info[2]));
  for (size_t i = 0; i < st.params.size(); i++) st.put(i, st.params[i].grad());
  st.finish("allReduceGrads");
  return Napi::Number::New(info.Env(), static_cast<double>(st.buckets.size()));
}

// ---- GradSync: the all-reduce overlapped with backward ----

struct GradSyncBox {
  Tag tag = Tag::GradSync;
  std::shared_ptr<SyncState> state;
  std::vector<std::pair<size_t, unsigned>> hooks;
  void removeHooks() {
    if (!state) return;
    for (auto& [i, h] : hooks) state->params[i].remove_hook(h);
    hooks.clear();
  }
};

static GradSyncBox* unwrapSync(const Napi::Value& v) { return unwrapTagged<GradSyncBox>(v, Tag::GradSync, "gradient sync"); }

// gradSyncCreate(g, params, bucketCapMB): a hook on every parameter puts its gradient into its bucket as
// backward computes it.
static Napi::Value gradSyncCreate(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto* g = unwrapGroup(info[0]);
  auto params = toTensorVec(info[1], "params");
  for (auto& p : params) if (!p.requires_grad()) throw Napi::TypeError::New(env, "gradSync: every parameter must require grad");
  auto st = std::make_shared<SyncState>(*g, std::move(params), capBytes(info[2]));
  auto* box = new GradSyncBox();
  box->state = st;
  std::weak_ptr<SyncState> weak = st;
  for (size_t i = 0; i < st->params.size(); i++) {
    unsigned h = st->params[i].register_hook([weak, i](const at::Tensor& grad) {
      if (auto s = weak.lock()) s->onGrad(i, grad);
    });
    box->hooks.emplace_back(i, h);
  }
  return Napi::External<GradSyncBox>::New(env, box, [](Napi::Env, GradSyncBox* b) { b->removeHooks(); delete b; });
}

// gradSyncFinish(s): after backward, launches what is left (parameters without a gradient count as zeros),
// waits for every bucket, and writes the averages into .grad; then ready for the next backward. Returns
// { buckets, duringBackward }: how many all-reduces there were, and how many had started before this call.
static Napi::Value gradSyncFinish(const Napi::CallbackInfo& info) {
  auto& st = *unwrapSync(info[0])->state;
  size_t early = st.finish("gradient all-reduce");
  auto out = Napi::Object::New(info.Env());
  out.Set("buckets", Napi::Number::New(info.Env(), static_cast<double>(st.buckets.size())));
  out.Set("duringBackward", Napi::Number::New(info.Env(), static_cast<double>(early)));
  return out;
}

static Napi::Value gradSyncDestroy(const Napi::CallbackInfo& info) {
  unwrapSync(info[0])->removeHooks();
  return info.Env().Undefined();
}

static Napi::Value distDestroy(const Napi::CallbackInfo& info) {
  auto* g = unwrapGroup(info[0]);
  g->pg.reset();
  g->store.reset();
  return info.Env().Undefined();
}

void initDist(Napi::Env env, Napi::Object exports) {
  LSM_EXPORT(exports, "distInit", distInit);
  LSM_EXPORT(exports, "allReduce", allReduce);
  LSM_EXPORT(exports, "broadcast", broadcast);
  LSM_EXPORT(exports, "allGather", allGather);
  LSM_EXPORT(exports, "barrier", barrier);
  LSM_EXPORT(exports, "groupInfo", groupInfo);
  LSM_EXPORT(exports, "allReduceGrads", allReduceGrads);
  LSM_EXPORT(exports, "distDestroy", distDestroy);
  LSM_EXPORT(exports, "gradSyncCreate", gradSyncCreate);
  LSM_EXPORT(exports, "gradSyncFinish", gradSyncFinish);
  LSM_EXPORT(exports, "gradSyncDestroy", gradSyncDestroy);
}

}  // namespace lsm
