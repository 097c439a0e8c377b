// Helpers of client.cpp: arguments, files, printing, the proxy's TLS setup, and small
// accessors of the generated types.
#ifndef VBIOS_GSOAP_SUPPORT_H
#define VBIOS_GSOAP_SUPPORT_H

#include "soapVbiosServiceProxy.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

// Only client.cpp includes this file: everything here is its own.
namespace {

std::map<std::string, std::string> args;
std::string first_request;  // the first request's bytes (HTTP header and envelope)
int (*original_fsend)(struct soap*, const char*, size_t) = nullptr;

const std::string& arg(const char* name) {
  auto it = args.find(name);
  if (it == args.end()) {
    std::fprintf(stderr, "missing argument %s=...\n", name);
    std::exit(2);
  }
  return it->second;
}

int recording_fsend(struct soap* soap, const char* data, size_t n) {
  if (first_request.size() < 4096) first_request.append(data, n);
  return original_fsend(soap, data, n);
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& name, const xsd__base64Binary& data) {
  std::ofstream out(arg("out") + "/" + name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.__ptr), data.__size);
}

std::string hex(const xsd__base64Binary& data) {
  static const char digits[] = "0123456789abcdef";
  std::string text;
  for (int i = 0; i < data.__size; ++i) {
    text += digits[data.__ptr[i] >> 4];
    text += digits[data.__ptr[i] & 15];
  }
  return text;
}

// SHA-256 of n bytes at data, lowercase hex.
std::string sha256_hex(const unsigned char* data, size_t n) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!EVP_Digest(data, n, digest, &length, EVP_sha256(), nullptr)) {
    std::fprintf(stderr, "SHA-256 failed\n");
    std::exit(1);
  }
  xsd__base64Binary bytes;
  bytes.__ptr = digest;
  bytes.__size = static_cast<int>(length);
  return hex(bytes);
}

std::vector<unsigned char> unhex(const std::string& text) {
  std::vector<unsigned char> bytes;
  for (size_t i = 0; i + 1 < text.size(); i += 2)
    bytes.push_back(static_cast<unsigned char>(std::stoi(text.substr(i, 2), nullptr, 16)));
  return bytes;
}

template <typename T>
void value(const std::string& key, const T& v) {
  std::ostringstream text;
  text << std::boolalpha << v;
  std::printf("VALUE %s=%s\n", key.c_str(), text.str().c_str());
}

// The answer or, for anything but SOAP_OK, the fault (with its typed detail) and exit 1.
void answered(VbiosServiceProxy& proxy, int rc, const char* operation) {
  if (rc != SOAP_OK) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s failed:\n", operation);
    proxy.soap_stream_fault(std::cerr);
    SOAP_ENV__Fault* fault = proxy.soap_fault();
    if (fault && fault->detail && fault->detail->ns1__VbiosFaultDetail_)
      std::fprintf(stderr, "detail Code=%s\n",
                   fault->detail->ns1__VbiosFaultDetail_->Code.c_str());
    std::exit(1);
  }
  std::printf("CALLED %s\n", operation);
  std::fflush(stdout);
}

void connect(VbiosServiceProxy& proxy, const std::string& pem) {
  proxy.soap_endpoint = arg("url").c_str();
  proxy.soap->connect_timeout = 10;
  proxy.soap->send_timeout = proxy.soap->recv_timeout = 60;
  if (soap_ssl_client_context(proxy.soap, SOAP_SSL_DEFAULT, pem.c_str(), nullptr,
                              arg("ca").c_str(), nullptr, nullptr)) {
    proxy.soap_stream_fault(std::cerr);
    std::exit(1);
  }
}

// -- the generated types ------------------------------------------------------------

ns1__AttributeValue* attribute(struct soap* soap, const char* name) {
  ns1__AttributeValue* v = soap_new_ns1__AttributeValue(soap);
  v->Name = name;
  return v;
}

const ns1__AttributeDefinition* definition(const ns1__GetAttributeRegistryResponse& registry,
                                           const std::string& name) {
  for (const ns1__AttributeDefinition* d : registry.Attributes->AttributeDefinition)
    if (d->Name == name) return d;
  std::fprintf(stderr, "the registry has no attribute %s\n", name.c_str());
  std::exit(1);
}

// "name=value" of an AttributeValue, whichever typed member it carries.
void print_attributes(const std::string& prefix, const ns1__AttributeValueList* list) {
  for (const ns1__AttributeValue* v : list->AttributeValue) {
    if (v->BooleanValue) value(prefix + v->Name, *v->BooleanValue);
    else if (v->IntegerValue) value(prefix + v->Name, *v->IntegerValue);
    else value(prefix + v->Name, v->StringValue ? *v->StringValue : std::string());
  }
}

const ns1__AttributeValue* find(const ns1__AttributeValueList* list, const std::string& name) {
  for (const ns1__AttributeValue* v : list->AttributeValue)
    if (v->Name == name) return v;
  return nullptr;
}

void print_pcrs(const std::string& prefix, const ns1__PcrValueList* pcrs) {
  for (const ns1__PcrValue* pcr : pcrs->PcrValue)
    value(prefix + std::to_string(pcr->Index), hex(pcr->Value));
}

}  // namespace

#endif
