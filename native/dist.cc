// PyTorch's own distributed layer (c10d) for JS: a TCPStore rendezvous, a Gloo process group
// (NCCL when the libtorch has CUDA is for a later build), collectives that wait with a timeout, and
// DistributedDataParallel's gradient averaging: gradients flattened into buckets (25 MB, as DDP),
// every bucket's all-reduce in flight at once on Gloo's threads, then averaged back into .grad.
// (c10d's own Reducer is not usable with Debian's headers: reducer.hpp needs the distributed-autograd
// headers that libtorch-dev does not ship.)
#include "common.h"
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <chrono>

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
}

}  // namespace lsm
