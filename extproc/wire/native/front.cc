// The native transport front: the HTTP/2 listener and the ext_proc streams in C++ (the system
// gRPC library), the decisions in Python.
//
// One thread drives gRPC's completion queue. For each stream it opens a Python session
// (extproc/wire/session.py) with the stream's metadata, and for each message it parses the
// ProcessingRequest into plain values, takes the GIL for ONE call, session.message(...), and
// serializes the Reply tuple it returns (extproc/wire/plain.py: read by position here). Once the
// stream is over (finished, or reset by Envoy) it calls session.close(cancelled). Envoy's answer
// reports (a unary call of raw bytes) go to one Python callable. Health is gRPC's own service.
// The GIL is held only inside those calls: Python's own threads (the policy watcher, metrics,
// the asyncio loop) run while gRPC waits.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>

#include "extproc/wire/pb/external_processor.grpc.pb.h"

namespace py = pybind11;
namespace pb = envoy::service::ext_proc::v3;
namespace core = envoy::config::core::v3;

namespace {

constexpr const char* kAttributesKey = "envoy.filters.http.ext_proc";  // extproc/wire/messages.py
constexpr const char* kReportMethod = "/extproc.AnswerReports/Report";
// Reply tuple fields (extproc/wire/plain.py Reply) and what comes after a message (Outcome).
enum ReplyField { kPhase, kSetHeaders, kRemoveHeaders, kBody, kRequestBodyMode, kResponseHeaderMode,
                  kResponseBodyMode, kMetadata, kStatus, kDetails, kReplyFields };
enum Phase { kRequestHeaders, kResponseHeaders, kRequestBody, kResponseBody, kRequestTrailers,
             kResponseTrailers, kImmediate };
constexpr long kKeepReading = -1, kEndOk = 0, kEndProtocolError = 3, kEndInternalError = 13;

// ---- Python values ------------------------------------------------------------------------

// Text as Python sees client bytes: UTF-8, invalid bytes kept as surrogates (extproc/core/text.py).
PyObject* Text(const std::string& bytes) {
  return PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "surrogateescape");
}

// The bytes of a str (surrogates back to the bytes they stood for); false on a non-str.
bool Utf8(PyObject* text, std::string* out) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &size) : nullptr;
  if (data != nullptr) {
    out->assign(data, static_cast<size_t>(size));
    return true;
  }
  if (!PyUnicode_Check(text)) return false;
  PyErr_Clear();
  PyObject* encoded = PyUnicode_AsEncodedString(text, "utf-8", "surrogateescape");
  if (encoded == nullptr) return false;
  out->assign(PyBytes_AS_STRING(encoded), static_cast<size_t>(PyBytes_GET_SIZE(encoded)));
  Py_DECREF(encoded);
  return true;
}

// (name, value) pairs as extproc/wire/convert.py header_pairs reads them: raw_value, else value.
PyObject* HeaderPairs(const core::HeaderMap& map) {
  PyObject* pairs = PyTuple_New(map.headers_size());
  if (pairs == nullptr) return nullptr;
  for (int i = 0; i < map.headers_size(); ++i) {
    const core::HeaderValue& header = map.headers(i);
    PyObject* pair = Py_BuildValue("(NN)", Text(header.key()),
                                   Text(header.raw_value().empty() ? header.value() : header.raw_value()));
    if (pair == nullptr) {
      Py_DECREF(pairs);
      return nullptr;
    }
    PyTuple_SET_ITEM(pairs, i, pair);
  }
  return pairs;
}

// The filter's attributes Struct as a dict of str, bool, float or None (convert.py _value).
PyObject* Attributes(const pb::ProcessingRequest& request) {
  auto found = request.attributes().find(kAttributesKey);
  if (found == request.attributes().end()) Py_RETURN_NONE;
  PyObject* out = PyDict_New();
  for (const auto& [name, value] : found->second.fields()) {
    PyObject* item;
    switch (value.kind_case()) {
      case google::protobuf::Value::kStringValue: item = Text(value.string_value()); break;
      case google::protobuf::Value::kBoolValue: item = PyBool_FromLong(value.bool_value()); break;
      case google::protobuf::Value::kNumberValue: item = PyFloat_FromDouble(value.number_value()); break;
      default: Py_INCREF(Py_None); item = Py_None;
    }
    PyObject* key = Text(name);
    if (item == nullptr || key == nullptr || PyDict_SetItem(out, key, item) < 0) {
      Py_XDECREF(item);
      Py_XDECREF(key);
      Py_DECREF(out);
      return nullptr;
    }
    Py_DECREF(item);
    Py_DECREF(key);
  }
  return out;
}

// Interned once: the request oneof's names, as Python's WhichOneof spells them.
PyObject* KindName(pb::ProcessingRequest::RequestCase kind) {
  static PyObject* names[8] = {};
  int index = static_cast<int>(kind);
  if (index < 2 || index > 7) Py_RETURN_NONE;
  if (names[index] == nullptr) {
    static const char* spelled[8] = {"", "", "request_headers", "response_headers", "request_body",
                                     "response_body", "request_trailers", "response_trailers"};
    names[index] = PyUnicode_InternFromString(spelled[index]);
  }
  Py_INCREF(names[index]);
  return names[index];
}

// session.message(kind, headers, body, end_of_stream, observability, body_mode, attributes)
PyObject* CallMessage(PyObject* session, const pb::ProcessingRequest& request) {
  static PyObject* method = PyUnicode_InternFromString("message");
  PyObject* headers = nullptr;
  const std::string* body = nullptr;
  bool end_of_stream = false;
  switch (request.request_case()) {
    case pb::ProcessingRequest::kRequestHeaders:
      headers = HeaderPairs(request.request_headers().headers());
      end_of_stream = request.request_headers().end_of_stream();
      break;
    case pb::ProcessingRequest::kResponseHeaders:
      headers = HeaderPairs(request.response_headers().headers());
      end_of_stream = request.response_headers().end_of_stream();
      break;
    case pb::ProcessingRequest::kRequestBody:
      body = &request.request_body().body();
      end_of_stream = request.request_body().end_of_stream();
      break;
    case pb::ProcessingRequest::kResponseBody:
      body = &request.response_body().body();
      end_of_stream = request.response_body().end_of_stream();
      break;
    default: break;
  }
  if (headers == nullptr) {
    if (PyErr_Occurred()) return nullptr;
    headers = PyTuple_New(0);
  }
  PyObject* body_bytes = body == nullptr ? PyBytes_FromStringAndSize("", 0)
                                         : PyBytes_FromStringAndSize(body->data(), static_cast<Py_ssize_t>(body->size()));
  PyObject* body_mode = request.has_protocol_config()
                            ? PyLong_FromLong(request.protocol_config().request_body_mode())
                            : (Py_INCREF(Py_None), Py_None);
  PyObject* attributes = request.request_case() == pb::ProcessingRequest::kRequestHeaders
                             ? Attributes(request) : (Py_INCREF(Py_None), Py_None);
  PyObject* result = nullptr;
  if (body_bytes != nullptr && body_mode != nullptr && attributes != nullptr) {
    PyObject* args[] = {session, KindName(request.request_case()), headers, body_bytes,
                        PyBool_FromLong(end_of_stream), PyBool_FromLong(request.observability_mode()),
                        body_mode, attributes};
    result = PyObject_VectorcallMethod(method, args, 8 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
    Py_DECREF(args[1]);
    Py_DECREF(args[4]);
    Py_DECREF(args[5]);
  }
  Py_XDECREF(headers);
  Py_XDECREF(body_bytes);
  Py_XDECREF(body_mode);
  Py_XDECREF(attributes);
  return result;
}

// ---- Reply -> ProcessingResponse ------------------------------------------------------------

bool SetHeaders(PyObject* pairs, google::protobuf::RepeatedPtrField<core::HeaderValueOption>* out) {
  if (!PyTuple_Check(pairs)) return false;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(pairs); ++i) {
    PyObject* pair = PyTuple_GET_ITEM(pairs, i);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) return false;
    // raw_value only, append unset: the one combination Envoy 1.40 applies as "overwrite".
    core::HeaderValue* header = out->Add()->mutable_header();
    if (!Utf8(PyTuple_GET_ITEM(pair, 0), header->mutable_key()) ||
        !Utf8(PyTuple_GET_ITEM(pair, 1), header->mutable_raw_value())) return false;
  }
  return true;
}

bool HeaderMutation(PyObject* reply, pb::HeaderMutation* mutation) {
  PyObject* remove = PyTuple_GET_ITEM(reply, kRemoveHeaders);
  if (!PyTuple_Check(remove)) return false;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(remove); ++i) {
    if (!Utf8(PyTuple_GET_ITEM(remove, i), mutation->add_remove_headers())) return false;
  }
  return SetHeaders(PyTuple_GET_ITEM(reply, kSetHeaders), mutation->mutable_set_headers());
}

bool HasMutation(PyObject* reply) {
  return PyTuple_GET_SIZE(PyTuple_GET_ITEM(reply, kSetHeaders)) > 0 ||
         PyTuple_GET_SIZE(PyTuple_GET_ITEM(reply, kRemoveHeaders)) > 0 ||
         PyTuple_GET_ITEM(reply, kBody) != Py_None;
}

bool Common(PyObject* reply, pb::CommonResponse* common) {
  PyObject* body = PyTuple_GET_ITEM(reply, kBody);
  if (body != Py_None) {
    if (!PyBytes_Check(body)) return false;
    if (PyBytes_GET_SIZE(body) > 0) {
      common->mutable_body_mutation()->set_body(PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body));
    } else {
      common->mutable_body_mutation()->set_clear_body(true);
    }
  }
  PyObject* set = PyTuple_GET_ITEM(reply, kSetHeaders);
  PyObject* remove = PyTuple_GET_ITEM(reply, kRemoveHeaders);
  if (PyTuple_GET_SIZE(set) == 0 && PyTuple_GET_SIZE(remove) == 0) return true;
  return HeaderMutation(reply, common->mutable_header_mutation());
}

bool Immediate(PyObject* reply, pb::ImmediateResponse* immediate) {
  long status = PyLong_AsLong(PyTuple_GET_ITEM(reply, kStatus));
  if (status == -1 && PyErr_Occurred()) return false;
  immediate->mutable_status()->set_code(static_cast<envoy::type::v3::StatusCode>(status));
  PyObject* body = PyTuple_GET_ITEM(reply, kBody);
  if (body != Py_None) {
    if (!PyBytes_Check(body)) return false;
    immediate->set_body(PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body));
  }
  return SetHeaders(PyTuple_GET_ITEM(reply, kSetHeaders), immediate->mutable_headers()->mutable_set_headers()) &&
         Utf8(PyTuple_GET_ITEM(reply, kDetails), immediate->mutable_details());
}

bool Modes(PyObject* reply, pb::ProcessingResponse* out) {
  long modes[3];
  for (int i = 0; i < 3; ++i) {
    modes[i] = PyLong_AsLong(PyTuple_GET_ITEM(reply, kRequestBodyMode + i));
    if (modes[i] == -1 && PyErr_Occurred()) return false;
  }
  if (modes[0] == 0 && modes[1] == 0 && modes[2] == 0) return true;
  auto* mode = out->mutable_mode_override();
  mode->set_request_body_mode(static_cast<envoy::extensions::filters::http::ext_proc::v3::ProcessingMode_BodySendMode>(modes[0]));
  mode->set_response_header_mode(static_cast<envoy::extensions::filters::http::ext_proc::v3::ProcessingMode_HeaderSendMode>(modes[1]));
  mode->set_response_body_mode(static_cast<envoy::extensions::filters::http::ext_proc::v3::ProcessingMode_BodySendMode>(modes[2]));
  return true;
}

bool Metadata(PyObject* reply, pb::ProcessingResponse* out) {
  PyObject* entries = PyTuple_GET_ITEM(reply, kMetadata);
  if (!PyTuple_Check(entries)) return false;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(entries); ++i) {
    PyObject* entry = PyTuple_GET_ITEM(entries, i);
    std::string space, key, value;
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3 || !Utf8(PyTuple_GET_ITEM(entry, 0), &space) ||
        !Utf8(PyTuple_GET_ITEM(entry, 1), &key) || !Utf8(PyTuple_GET_ITEM(entry, 2), &value)) return false;
    auto& fields = *(*out->mutable_dynamic_metadata()->mutable_fields())[space].mutable_struct_value()->mutable_fields();
    fields[key].set_string_value(value);
  }
  return true;
}

// The ProcessingResponse of a Reply tuple; false (a Python error may be set) if it is not one.
bool Serialize(PyObject* reply, pb::ProcessingResponse* out) {
  out->Clear();
  if (!PyTuple_Check(reply) || PyTuple_GET_SIZE(reply) != kReplyFields) return false;
  long phase = PyLong_AsLong(PyTuple_GET_ITEM(reply, kPhase));
  switch (phase) {
    case kImmediate: return Immediate(reply, out->mutable_immediate_response());
    case kRequestHeaders:
    case kResponseHeaders: {
      pb::HeadersResponse* headers = phase == kRequestHeaders ? out->mutable_request_headers() : out->mutable_response_headers();
      if (HasMutation(reply) && !Common(reply, headers->mutable_response())) return false;
      break;
    }
    case kRequestBody:
    case kResponseBody: {
      pb::BodyResponse* body = phase == kRequestBody ? out->mutable_request_body() : out->mutable_response_body();
      if (HasMutation(reply) && !Common(reply, body->mutable_response())) return false;
      break;
    }
    case kRequestTrailers: out->mutable_request_trailers(); break;
    case kResponseTrailers: out->mutable_response_trailers(); break;
    default: return false;
  }
  return Modes(reply, out) && Metadata(reply, out);
}

// ---- the GIL ------------------------------------------------------------------------------

// The completion-queue thread's Python thread state, made once: each call only swaps it in.
class Gil {
 public:
  explicit Gil(PyThreadState* state) : state_(state) { PyEval_RestoreThread(state_); }
  ~Gil() { PyEval_SaveThread(); }

 private:
  PyThreadState* state_;
};

void LogPythonError(const char* where) {
  if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, where);
  PyErr_WriteUnraisable(nullptr);
}

// ---- calls --------------------------------------------------------------------------------

struct Tag {
  virtual void Proceed(bool ok) = 0;
  virtual ~Tag() = default;
};

struct Shared {
  pb::ExternalProcessor::AsyncService process;
  grpc::AsyncGenericService generic;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  PyThreadState* thread_state = nullptr;
  PyObject* open_stream = nullptr;  // metadata -> session
  PyObject* on_report = nullptr;    // bytes -> None
};

class ProcessCall {
 public:
  explicit ProcessCall(Shared* shared) : shared_(shared), stream_(&ctx_), op_(this), done_(this) {
    ctx_.AsyncNotifyWhenDone(&done_);
    shared_->process.RequestProcess(&ctx_, &stream_, shared_->cq.get(), shared_->cq.get(), &op_);
  }

 private:
  enum class Step { kAccepting, kReading, kWriting, kFinishing };
  struct Op : Tag {
    explicit Op(ProcessCall* call) : call(call) {}
    void Proceed(bool ok) override { call->OnOp(ok); }
    ProcessCall* call;
  };
  struct Done : Tag {
    explicit Done(ProcessCall* call) : call(call) {}
    void Proceed(bool) override { call->OnDone(); }
    ProcessCall* call;
  };

  void OnOp(bool ok) {
    switch (step_) {
      case Step::kAccepting:
        if (!ok) {  // shutting down: never started, so no done tag comes either
          delete this;
          return;
        }
        new ProcessCall(shared_);  // the next stream's
        Open();
        return;
      case Step::kReading:
        if (!ok) return Ending(grpc::Status::OK);  // half-closed by Envoy, or reset (done tells)
        return Answer();
      case Step::kWriting:
        if (!ok) return Ending(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
        return Read();
      case Step::kFinishing:
        return Release();
    }
  }

  void OnDone() {
    cancelled_ = ctx_.IsCancelled();
    Release();
  }

  void Open() {
    bool opened;
    {
      Gil gil(shared_->thread_state);
      PyObject* metadata = Metadata();
      session_ = metadata == nullptr ? nullptr : PyObject_CallOneArg(shared_->open_stream, metadata);
      Py_XDECREF(metadata);
      opened = session_ != nullptr;
      if (!opened) LogPythonError("opening a stream failed");
    }
    if (!opened) return Finish(grpc::Status(grpc::StatusCode::INTERNAL, "internal error"));  // no session to close
    Read();
  }

  PyObject* Metadata() {
    const auto& metadata = ctx_.client_metadata();
    PyObject* pairs = PyTuple_New(static_cast<Py_ssize_t>(metadata.size()));
    Py_ssize_t i = 0;
    for (const auto& [key, value] : metadata) {
      std::string name(key.data(), key.size());
      bool binary = name.size() > 4 && name.compare(name.size() - 4, 4, "-bin") == 0;
      PyObject* text = binary ? PyBytes_FromStringAndSize(value.data(), static_cast<Py_ssize_t>(value.size()))
                              : Text(std::string(value.data(), value.size()));
      PyTuple_SET_ITEM(pairs, i++, Py_BuildValue("(NN)", Text(name), text));
    }
    return pairs;
  }

  void Read() {
    step_ = Step::kReading;
    stream_.Read(&request_, &op_);
  }

  void Answer() {
    long end = kEndInternalError;
    bool reply = false;
    {
      Gil gil(shared_->thread_state);
      PyObject* result = CallMessage(session_, request_);
      if (result != nullptr && PyTuple_Check(result) && PyTuple_GET_SIZE(result) == 2) {
        end = PyLong_AsLong(PyTuple_GET_ITEM(result, 1));
        PyObject* answer = PyTuple_GET_ITEM(result, 0);
        reply = answer != Py_None;
        if (PyErr_Occurred() || (reply && !Serialize(answer, &reply_))) {
          LogPythonError("the session's reply is not a Reply");
          end = kEndInternalError;
          reply = false;
        }
      } else {
        LogPythonError("session.message failed");
      }
      Py_XDECREF(result);
      if (end != kKeepReading) CloseSession(false);
    }
    if (end == kEndProtocolError) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ext_proc protocol error"));
    if (end != kKeepReading && end != kEndOk) return Finish(grpc::Status(grpc::StatusCode::INTERNAL, "internal error"));
    if (!reply) return end == kEndOk ? Finish(grpc::Status::OK) : Read();
    if (end == kEndOk) {  // allowed, nothing more wanted: the reply ends the RPC
      step_ = Step::kFinishing;
      stream_.WriteAndFinish(reply_, grpc::WriteOptions(), grpc::Status::OK, &op_);
      return;
    }
    step_ = Step::kWriting;
    stream_.Write(reply_, &op_);
  }

  void Finish(const grpc::Status& status) {
    step_ = Step::kFinishing;
    stream_.Finish(status, &op_);
  }

  // The stream ends without a last message from Python: its bookkeeping runs before the status
  // goes out, as in the grpc.aio transport.
  void Ending(const grpc::Status& status) {
    if (session_ != nullptr) {
      Gil gil(shared_->thread_state);
      CloseSession(false);
    }
    Finish(status);
  }

  // session.close(cancelled), with the GIL held. Once when the stream ends, and once more if
  // gRPC then says Envoy had reset it (the session counts the cancel).
  void CloseSession(bool cancelled) {
    static PyObject* close = PyUnicode_InternFromString("close");
    PyObject* args[] = {session_, cancelled ? Py_True : Py_False};
    PyObject* result = PyObject_VectorcallMethod(close, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
    if (result == nullptr) LogPythonError("session.close failed");
    Py_XDECREF(result);
  }

  // Two owners: the chain of operations and the done notification; the last one frees.
  void Release() {
    if (--owners_ > 0) return;
    if (session_ != nullptr) {
      Gil gil(shared_->thread_state);
      if (cancelled_) CloseSession(true);
      Py_CLEAR(session_);
    }
    delete this;
  }

  Shared* shared_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<pb::ProcessingResponse, pb::ProcessingRequest> stream_;
  Op op_;
  Done done_;
  pb::ProcessingRequest request_;
  pb::ProcessingResponse reply_;
  PyObject* session_ = nullptr;
  Step step_ = Step::kAccepting;
  int owners_ = 2;
  bool cancelled_ = false;
};

// Any other method: Envoy's answer reports (raw bytes in, empty reply), else UNIMPLEMENTED.
class GenericCall : public Tag {
 public:
  explicit GenericCall(Shared* shared) : shared_(shared), stream_(&ctx_) {
    shared_->generic.RequestCall(&ctx_, &stream_, shared_->cq.get(), shared_->cq.get(), this);
  }

  void Proceed(bool ok) override {
    switch (step_) {
      case Step::kAccepting:
        if (!ok) {
          delete this;
          return;
        }
        new GenericCall(shared_);
        if (ctx_.method() != kReportMethod || shared_->on_report == nullptr) {
          return Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""));
        }
        step_ = Step::kReading;
        stream_.Read(&payload_, this);
        return;
      case Step::kReading:
        if (!ok) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no report"));
        Report();
        step_ = Step::kFinishing;
        stream_.WriteAndFinish(EmptyMessage(), grpc::WriteOptions(), grpc::Status::OK, this);
        return;
      case Step::kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum class Step { kAccepting, kReading, kFinishing };

  void Report() {
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (payload_.Dump(&slices).ok()) {
      for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    Gil gil(shared_->thread_state);
    PyObject* result = PyObject_CallFunction(shared_->on_report, "y#", bytes.data(), static_cast<Py_ssize_t>(bytes.size()));
    if (result == nullptr) LogPythonError("the answer report handler failed");
    Py_XDECREF(result);
  }

  void Finish(const grpc::Status& status) {
    step_ = Step::kFinishing;
    stream_.Finish(status, this);
  }

  // A message of no bytes (a ByteBuffer without a slice would be no message at all).
  static grpc::ByteBuffer EmptyMessage() {
    grpc::Slice empty("", 0);
    return grpc::ByteBuffer(&empty, 1);
  }

  Shared* shared_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ByteBuffer payload_;
  Step step_ = Step::kAccepting;
};

// ---- the server ---------------------------------------------------------------------------

struct Tls {
  std::string cert, key, client_ca;
};

class Front {
 public:
  // open_stream: metadata -> session, or None for a server of health alone; on_report: bytes -> None.
  Front(py::object open_stream, py::object on_report) {
    if (!open_stream.is_none()) shared_.open_stream = open_stream.release().ptr();
    if (!on_report.is_none()) shared_.on_report = on_report.release().ptr();
  }

  ~Front() {
    Stop(0);  // never left serving: the thread calls into Python
    Py_XDECREF(shared_.open_stream);
    Py_XDECREF(shared_.on_report);
  }

  void AddPort(const std::string& address, std::optional<Tls> tls) {
    addresses_.push_back({address, std::move(tls)});
  }

  // Listen and serve; the ports bound (0 for a Unix socket). RuntimeError if it cannot listen.
  std::vector<int> Start() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    ports_.assign(addresses_.size(), 0);
    for (size_t i = 0; i < addresses_.size(); ++i) {
      builder.AddListeningPort(addresses_[i].first, Credentials(addresses_[i].second), &ports_[i]);
    }
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 1);  // --workers N share the port
    if (shared_.open_stream != nullptr) {
      builder.RegisterService(&shared_.process);
      builder.RegisterAsyncGenericService(&shared_.generic);
    }
    shared_.cq = builder.AddCompletionQueue();
    {
      py::gil_scoped_release released;
      server_ = builder.BuildAndStart();
    }
    if (!server_) throw std::runtime_error("cannot listen on " + Names());
    server_->GetHealthCheckService()->SetServingStatus("", false);  // readiness is the caller's to give
    for (size_t i = 0; i < ports_.size(); ++i) {
      bool unix_socket = addresses_[i].first.rfind("unix:", 0) == 0;
      if (!unix_socket && ports_[i] == 0) {
        Abandon();
        throw std::runtime_error("cannot listen on " + addresses_[i].first);
      }
    }
    // The thread's Python state is made here, with the GIL held, and swapped in per call.
    shared_.thread_state = PyThreadState_New(PyThreadState_Get()->interp);
    if (shared_.open_stream != nullptr) {
      new ProcessCall(&shared_);
      new GenericCall(&shared_);
    }
    thread_ = std::thread([this] { Poll(); });
    return ports_;
  }

  void SetServing(const std::string& service, bool serving) {
    if (server_) server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }

  // Every service NOT_SERVING from now on (gRPC's health service takes no change after this).
  void HealthShutdown() {
    if (server_) server_->GetHealthCheckService()->Shutdown();
  }

  // Stop accepting streams, let those in flight finish for grace seconds, then cancel the rest.
  void Stop(double grace_seconds) {
    if (!server_ || stopped_ || shared_.thread_state == nullptr) return;
    stopped_ = true;
    {
      py::gil_scoped_release released;
      auto deadline = std::chrono::system_clock::now() +
                      std::chrono::microseconds(static_cast<int64_t>(grace_seconds * 1e6));
      server_->Shutdown(deadline);
      shared_.cq->Shutdown();
      thread_.join();
    }
    PyThreadState_Clear(shared_.thread_state);
    PyThreadState_Delete(shared_.thread_state);
    shared_.thread_state = nullptr;
  }

 private:
  // Started, but not every address could be bound: stop before anything was served.
  void Abandon() {
    py::gil_scoped_release released;
    server_->Shutdown(std::chrono::system_clock::now());
    shared_.cq->Shutdown();
    void* tag;
    bool ok;
    while (shared_.cq->Next(&tag, &ok)) {
    }
    server_.reset();
  }

  void Poll() {
    void* tag;
    bool ok;
    while (shared_.cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
  }

  std::shared_ptr<grpc::ServerCredentials> Credentials(const std::optional<Tls>& tls) {
    if (!tls) return grpc::InsecureServerCredentials();
    grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = tls->client_ca;
    options.pem_key_cert_pairs.push_back({tls->key, tls->cert});
    return grpc::SslServerCredentials(options);
  }

  std::string Names() const {
    std::string names;
    for (const auto& [address, _tls] : addresses_) names += (names.empty() ? "" : ", ") + address;
    return names;
  }

  Shared shared_;
  std::vector<std::pair<std::string, std::optional<Tls>>> addresses_;
  std::vector<int> ports_;
  std::unique_ptr<grpc::Server> server_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace

PYBIND11_MODULE(_front, module) {
  module.doc() = "The native ext_proc transport front (extproc/wire/native/front.cc).";
  py::class_<Front>(module, "Front")
      .def(py::init<py::object, py::object>(), py::arg("open_stream"), py::arg("on_report"))
      .def("add_port",
           [](Front& front, const std::string& address, std::optional<std::tuple<py::bytes, py::bytes, py::bytes>> tls) {
             std::optional<Tls> files;
             if (tls) files = Tls{std::get<0>(*tls), std::get<1>(*tls), std::get<2>(*tls)};
             front.AddPort(address, std::move(files));
           },
           py::arg("address"), py::arg("tls") = py::none(), "tls: (cert, key, client CA) PEM: mutual TLS")
      .def("start", &Front::Start)
      .def("set_serving", &Front::SetServing)
      .def("health_shutdown", &Front::HealthShutdown)
      .def("stop", &Front::Stop, py::arg("grace_seconds"));
}
