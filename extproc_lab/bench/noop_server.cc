// A do-nothing ext_proc server in C++ on the system gRPC library: CONTINUE to every message.
// The measurement behind the choice of transport (docs/measured.md, "The transport"): the
// same role as extproc_lab/bench/noop.py, with gRPC's async API driven by one thread.
//
//   noop_server ADDRESS
//
// Built by hand (Debian: libgrpc++-dev, protobuf-compiler-grpc), from the repository's root:
//   mkdir -p /tmp/noop && protoc -Iproto --cpp_out=/tmp/noop --grpc_out=/tmp/noop \
//     --plugin=protoc-gen-grpc=$(which grpc_cpp_plugin) extproc/wire/pb/{external_processor,core,http_status,processing_mode}.proto
//   g++ -std=c++17 -O2 -I/tmp/noop extproc_lab/bench/noop_server.cc /tmp/noop/extproc/wire/pb/*.cc \
//     $(pkg-config --cflags --libs grpc++ protobuf) -o /tmp/noop/noop_server
#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "extproc/wire/pb/external_processor.grpc.pb.h"

namespace pb = envoy::service::ext_proc::v3;

namespace {

class Call {
 public:
  Call(pb::ExternalProcessor::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), stream_(&ctx_) {
    service_->RequestProcess(&ctx_, &stream_, cq_, cq_, this);
  }

  void Proceed(bool ok) {
    switch (step_) {
      case Step::kAccepted:
        new Call(service_, cq_);
        if (!ok) { delete this; return; }
        Read();
        return;
      case Step::kReading:
        if (!ok) {  // half-close by Envoy: the stream ends cleanly
          step_ = Step::kFinishing;
          stream_.Finish(grpc::Status::OK, this);
          return;
        }
        Answer();
        return;
      case Step::kWriting:
        if (!ok) { step_ = Step::kFinishing; stream_.Finish(grpc::Status::CANCELLED, this); return; }
        Read();
        return;
      case Step::kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum class Step { kAccepted, kReading, kWriting, kFinishing };

  void Read() {
    step_ = Step::kReading;
    stream_.Read(&request_, this);
  }

  void Answer() {
    reply_.Clear();
    switch (request_.request_case()) {
      case pb::ProcessingRequest::kRequestHeaders: reply_.mutable_request_headers(); break;
      case pb::ProcessingRequest::kResponseHeaders: reply_.mutable_response_headers(); break;
      case pb::ProcessingRequest::kRequestBody: reply_.mutable_request_body(); break;
      case pb::ProcessingRequest::kResponseBody: reply_.mutable_response_body(); break;
      case pb::ProcessingRequest::kRequestTrailers: reply_.mutable_request_trailers(); break;
      case pb::ProcessingRequest::kResponseTrailers: reply_.mutable_response_trailers(); break;
      default: break;
    }
    step_ = Step::kWriting;
    stream_.Write(reply_, this);
  }

  pb::ExternalProcessor::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<pb::ProcessingResponse, pb::ProcessingRequest> stream_;
  pb::ProcessingRequest request_;
  pb::ProcessingResponse reply_;
  Step step_ = Step::kAccepted;
};

volatile std::sig_atomic_t stopping = 0;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: noop_server ADDRESS\n";
    return 2;
  }
  grpc::EnableDefaultHealthCheckService(true);
  pb::ExternalProcessor::AsyncService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials());
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 1);
  builder.RegisterService(&service);
  auto cq = builder.AddCompletionQueue();
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  std::signal(SIGTERM, [](int) { stopping = 1; });
  std::signal(SIGINT, [](int) { stopping = 1; });
  std::thread watcher([&] {
    while (!stopping) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    cq->Shutdown();
  });
  new Call(&service, cq.get());
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) static_cast<Call*>(tag)->Proceed(ok);
  watcher.join();
  return 0;
}
