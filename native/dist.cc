// PyTorch's own distributed layer (c10d) for JS: a TCPStore rendezvous, a Gloo process group
// (NCCL when the libtorch has CUDA is for a later build), collectives that wait with a timeout, and
// DistributedDataParallel's gradient averaging: gradients flattened into buckets (25 MB, as DDP),
// every bucket's all-reduce in flight at once on Gloo's threads, then averaged back into .grad; or, with a
// GradSync, each bucket's all-reduce launched during backward as soon as its last gradient is computed
// (hooks on the parameters, buckets in reverse parameter order and launched strictly in order, as DDP's
// Reducer does), so communication overlaps the rest of backward.
// (c10d's own Reducer is not usable with Debian's headers: reducer.hpp needs the distributed-autograd
// headers that libtorch-dev does not ship.)
#include "common.h"
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
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout{60000};
};

static GroupBox* unwrapGroup(const Napi::Value& v) { return unwrapTagged<GroupBox>(v, Tag::Group, "process group"); }

static void waitFor(const c10::intrusive_ptr<c10d::Work>& work, std::chrono::milliseconds timeout, const char* what) {
  if (!work->wait(timeout)) throw std::runtime_error(std::string(what) + ": timed out");
}

// distInit(rank, worldSize, host, port, timeoutMs): rendezvous through a TCPStore (rank 0 serves it),
// then a Gloo process group. Blocks until every rank has joined or the timeout passes.
static Napi::Value distInit(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int rank = static_cast<int>(toInt(info[0], "rank"));
  int world = static_cast<int>(toInt(info[1], "worldSize"));
  auto host = info[2].As<Napi::String>().Utf8Value();
  auto port = static_cast<uint16_t>(toInt(info[3], "port"));
  auto timeout = std::chrono::milliseconds(toInt(info[4], "timeoutMs"));
  if (world < 1 || rank < 0 || rank >= world) throw Napi::RangeError::New(env, "distInit: need 0 <= rank < worldSize");
  c10d::TCPStoreOptions so;
  so.port = port;
  so.isServer = rank == 0;
  so.numWorkers = world;
  so.waitWorkers = true;
  so.timeout = timeout;
  auto* b = new GroupBox();
  try {
    b->store = c10::make_intrusive<c10d::TCPStore>(host, so);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1";
    opts->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname(host) : c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lsmseg", b->store);
    b->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world, opts);
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

// allReduceGrads(g, params, bucketCapMB): averages the parameters' gradients over the ranks.
// Parameters without a gradient contribute zeros (so every rank runs the same collectives).
static Napi::Value allReduceGrads(const Napi::CallbackInfo& info) {
  auto* g = unwrapGroup(info[0]);
  auto params = toTensorVec(info[1], "params");
  auto cap = static_cast<int64_t>(toDouble(info[2], "bucketCapMB") * 1024 * 1024);
  int world = g->pg->getSize();
  at::NoGradGuard noGrad;
  std::vector<std::vector<size_t>> buckets(1);
  int64_t bytes = 0;
  for (size_t i = 0; i < params.size(); i++) {
    auto& p = params[i];
    if (!p.mutable_grad().defined()) p.mutable_grad() = at::zeros_like(p);
    int64_t n = p.numel() * p.element_size();
    if (!buckets.back().empty() && (bytes + n > cap || params[buckets.back()[0]].scalar_type() != p.scalar_type())) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += n;
  }
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  c10d::AllreduceOptions o;
  o.timeout = g->timeout;
  for (auto& b : buckets) {
    std::vector<at::Tensor> parts;
    for (auto i : b) parts.push_back(params[i].grad().reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(parts)};
    works.push_back(g->pg->allreduce(flat, o));
    flats.push_back(flat[0]);
  }
  for (size_t k = 0; k < buckets.size(); k++) {
    waitFor(works[k], g->timeout, "allReduceGrads");
    flats[k].div_(world);
    int64_t off = 0;
    for (auto i : buckets[k]) {
      auto& grad = params[i].mutable_grad();
      int64_t n = grad.numel();
      grad.copy_(flats[k].narrow(0, off, n).view_as(grad));
      off += n;
    }
  }
  return Napi::Number::New(info.Env(), static_cast<double>(buckets.size()));
}

// ---- GradSync: the all-reduce overlapped with backward ----

struct SyncState {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
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
  void onGrad(size_t i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    if (seen[i]) throw std::runtime_error("GradSync: a parameter received two gradients in one backward (call finish() after each backward)");
    seen[i] = true;
    auto& b = buckets[bucketOf[i]];
    at::NoGradGuard noGrad;
    b.flat.narrow(0, b.offsets[slotOf[i]], grad.numel()).copy_(grad.reshape({-1}));
    b.pending--;
    if (b.pending == 0) launchReady();
  }
};

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

// gradSyncCreate(g, params, bucketCapMB): hooks on every parameter; buckets in reverse order of `params`.
static Napi::Value gradSyncCreate(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto* g = unwrapGroup(info[0]);
  auto st = std::make_shared<SyncState>();
  st->pg = g->pg;
  st->timeout = g->timeout;
  st->params = toTensorVec(info[1], "params");
  auto cap = static_cast<int64_t>(toDouble(info[2], "bucketCapMB") * 1024 * 1024);
  size_t n = st->params.size();
  st->bucketOf.assign(n, 0);
  st->slotOf.assign(n, 0);
  st->seen.assign(n, false);
  int64_t bytes = 0, elems = 0;
  for (size_t k = 0; k < n; k++) {
    size_t i = n - 1 - k;
    auto& p = st->params[i];
    if (!p.requires_grad()) throw Napi::TypeError::New(env, "gradSync: every parameter must require grad");
    int64_t b = p.numel() * p.element_size();
    if (st->buckets.empty() || (!st->buckets.back().members.empty() && (bytes + b > cap || st->params[st->buckets.back().members[0]].scalar_type() != p.scalar_type()))) {
      if (!st->buckets.empty()) st->buckets.back().flat = at::zeros({elems}, st->params[st->buckets.back().members[0]].options().requires_grad(false));
      st->buckets.emplace_back();
      bytes = 0;
      elems = 0;
    }
    auto& bk = st->buckets.back();
    st->bucketOf[i] = st->buckets.size() - 1;
    st->slotOf[i] = bk.members.size();
    bk.members.push_back(i);
    bk.offsets.push_back(elems);
    bytes += b;
    elems += p.numel();
  }
  if (!st->buckets.empty()) st->buckets.back().flat = at::zeros({elems}, st->params[st->buckets.back().members[0]].options().requires_grad(false));
  st->reset();
  auto* box = new GradSyncBox();
  box->state = st;
  std::weak_ptr<SyncState> weak = st;
  for (size_t i = 0; i < n; i++) {
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
  auto* box = unwrapSync(info[0]);
  auto& st = *box->state;
  std::lock_guard<std::mutex> lock(st.mu);
  at::NoGradGuard noGrad;
  int world = st.pg->getSize();
  size_t early = st.nextLaunch;  // buckets whose all-reduce started during backward
  for (size_t i = 0; i < st.params.size(); i++) {
    if (st.seen[i]) continue;
    auto& b = st.buckets[st.bucketOf[i]];
    b.flat.narrow(0, b.offsets[st.slotOf[i]], st.params[i].numel()).zero_();
    st.seen[i] = true;
    b.pending--;
  }
  st.launchReady();
  try {
    for (auto& b : st.buckets) {
      waitFor(b.work, st.timeout, "gradient all-reduce");
      b.flat.div_(world);
      for (size_t k = 0; k < b.members.size(); k++) {
        auto& p = st.params[b.members[k]];
        if (!p.mutable_grad().defined()) p.mutable_grad() = at::zeros_like(p);
        auto& grad = p.mutable_grad();
        grad.copy_(b.flat.narrow(0, b.offsets[k], grad.numel()).view_as(grad));
      }
    }
  } catch (...) {
    st.reset();
    throw;
  }
  st.reset();
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
