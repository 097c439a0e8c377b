// A gSOAP 2.8 client of the vBIOS service, built on the proxy class soapcpp2 generates
// from the committed WSDL (see README.md). It calls every guest operation of the WSDL
// with the guest's certificate and the admin operations with the admin's, over mutual
// TLS trusting only the bundle's CA, and prints:
//   CALLED <Operation>          after each answered call
//   VALUE <key>=<value>         what it read, for the pytest test to compare
//   FAULT <key>=<value>         the typed fault's detail (VersionConflict expected)
// Binary answers (the quote's evidence, the renewed certificate) go to files in out=DIR.
// Arguments, key=value: url ca guest admin domain sbcert csr nonce capsule chunk_size out
// (guest and admin: PEM files holding the key and the certificate; capsule: a signed
// firmware capsule, uploaded in chunks of at most chunk_size bytes).
#include "soapVbiosServiceProxy.h"
#include "VbiosService.nsmap"
#include "support.h"

#include <algorithm>
#include <ctime>

namespace {

void print_db(VbiosServiceProxy& guest, const std::string& key) {
  ns1__GetSecureBootDatabases ask;
  ns1__GetSecureBootDatabasesResponse dbs;
  answered(guest, guest.GetSecureBootDatabases(&ask, dbs), "GetSecureBootDatabases");
  for (const ns1__SecureBootDatabase* db : dbs.Databases->Database) {
    std::string shas;
    for (const ns1__SecureBootCertificate* c : db->Certificates->Certificate)
      shas += (shas.empty() ? "" : ",") + c->Sha256;
    value(key + soap_ns1__SecureBootDatabaseName2s(guest.soap, db->Name), shas);
  }
}

// What the calls share: the two identities, the domain's version, the Setup password.
struct Session {
  VbiosServiceProxy& guest;
  VbiosServiceProxy& admin;
  struct soap* soap;  // the guest's context: allocates the request objects
  LONG64 version;
  std::string password;
};

// -- attributes ----------------------------------------------------------------------
void attributes(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  struct soap* soap = s.soap;
  ns1__GetAttributeRegistry registry_req;
  ns1__GetAttributeRegistryResponse registry;
  answered(guest, guest.GetAttributeRegistry(&registry_req, registry), "GetAttributeRegistry");
  guest.soap->fsend = original_fsend;
  std::string request = first_request;
  size_t at = request.find("xmlns:SOAP-ENV=\"");
  value("request.envelope_ns", at == std::string::npos ? std::string("?")
        : request.substr(at + 16, request.find('"', at + 16) - at - 16));
  at = request.find("Content-Type: ");
  value("request.content_type", request.substr(at + 14, request.find('\r', at) - at - 14));
  value("registry.version", registry.RegistryVersion);
  value("registry.count", registry.Attributes->AttributeDefinition.size());
  const ns1__AttributeDefinition* timeout = definition(registry, "BootTimeout");
  value("registry.BootTimeout.type", soap_ns1__AttributeType2s(soap, timeout->Type));
  value("registry.BootTimeout.default", *timeout->Default->IntegerValue);
  const ns1__AttributeDefinition* boot_mode = definition(registry, "BootMode");

  ns1__GetAttributes all;
  ns1__GetAttributesResponse start;
  answered(guest, guest.GetAttributes(&all, start), "GetAttributes");
  value("start.version", start.Version);
  s.version = start.Version;
  LONG64 stale = start.Version;

  ns1__SetAttributes set;
  set.Attributes = soap_new_ns1__AttributeValueList(soap);
  // A BootTimeout the registry allows (its bounds and steps) other than the current one.
  LONG64 step = timeout->ScalarIncrement ? *timeout->ScalarIncrement : 1;
  LONG64 new_timeout = (timeout->LowerBound ? *timeout->LowerBound : 0) + 2 * step;
  const ns1__AttributeValue* timeout_now = find(start.Attributes, "BootTimeout");
  if (timeout_now && timeout_now->IntegerValue && *timeout_now->IntegerValue == new_timeout)
    new_timeout += step;
  bool num_lock = false;
  std::string tag = "gsoap-interop";
  ns1__AttributeValue* v = attribute(soap, "BootTimeout");
  v->IntegerValue = &new_timeout;
  set.Attributes->AttributeValue.push_back(v);
  v = attribute(soap, "NumLock");
  v->BooleanValue = &num_lock;
  set.Attributes->AttributeValue.push_back(v);
  v = attribute(soap, "AssetTag");
  v->StringValue = &tag;
  set.Attributes->AttributeValue.push_back(v);
  set.ApplyTime = ns1__ApplyTime__Immediate;
  set.ExpectedVersion = &s.version;
  ns1__SetAttributesResponse set_done;
  answered(guest, guest.SetAttributes(&set, set_done), "SetAttributes");
  s.version = set_done.Version;
  value("set.version", s.version);

  // The typed fault: the same write again with the version it was made against.
  set.ExpectedVersion = &stale;
  if (guest.SetAttributes(&set, set_done) == SOAP_OK) {
    std::fprintf(stderr, "a stale ExpectedVersion was accepted\n");
    std::exit(1);
  }
  SOAP_ENV__Fault* fault = guest.soap_fault();
  if (!fault || !fault->detail || !fault->detail->ns1__VbiosFaultDetail_) {
    guest.soap_stream_fault(std::cerr);
    std::exit(1);
  }
  const ns1__VbiosFaultDetail& detail = *fault->detail->ns1__VbiosFaultDetail_;
  std::printf("FAULT faultcode=%s\n", fault->faultcode ? fault->faultcode : "");
  std::printf("FAULT Code=%s\nFAULT Message=%s\n", detail.Code.c_str(), detail.Message.c_str());

  ns1__GetAttributes some;
  some.Names = soap_new_ns1__NameList(soap);
  some.Names->Name = {"BootTimeout", "NumLock", "AssetTag", "BootMode"};
  ns1__GetAttributesResponse after_set;
  answered(guest, guest.GetAttributes(&some, after_set), "GetAttributes");
  print_attributes("after_set.", after_set.Attributes);

  // A pending change: the first allowed BootMode that is not the current one.
  const ns1__AttributeValue* mode_now = find(after_set.Attributes, "BootMode");
  std::string new_mode;
  for (const std::string& allowed : boot_mode->AllowedValues->Value)
    if (!mode_now || !mode_now->StringValue || allowed != *mode_now->StringValue) {
      new_mode = allowed;
      break;
    }
  ns1__SetAttributes pending_set;
  pending_set.Attributes = soap_new_ns1__AttributeValueList(soap);
  v = attribute(soap, "BootMode");
  v->StringValue = &new_mode;
  pending_set.Attributes->AttributeValue.push_back(v);
  pending_set.ApplyTime = ns1__ApplyTime__OnReset;
  pending_set.ExpectedVersion = &s.version;
  answered(guest, guest.SetAttributes(&pending_set, set_done), "SetAttributes");
  s.version = set_done.Version;
  ns1__GetPendingAttributes pending_req;
  ns1__GetPendingAttributesResponse pending;
  answered(guest, guest.GetPendingAttributes(&pending_req, pending), "GetPendingAttributes");
  print_attributes("pending.", pending.Attributes);

  ns1__ResetAttributesToDefaults defaults;
  defaults.ExpectedVersion = &s.version;
  ns1__ResetAttributesToDefaultsResponse defaults_done;
  answered(guest, guest.ResetAttributesToDefaults(&defaults, defaults_done),
           "ResetAttributesToDefaults");
  s.version = defaults_done.Version;
  answered(guest, guest.GetPendingAttributes(&pending_req, pending), "GetPendingAttributes");
  print_attributes("defaults_pending.", pending.Attributes);

  ns1__ChangePassword change;
  change.PasswordName = "SetupPassword";
  change.NewPassword = s.password;
  change.ExpectedVersion = &s.version;
  ns1__ChangePasswordResponse changed;
  answered(guest, guest.ChangePassword(&change, changed), "ChangePassword");
  s.version = changed.Version;

  ns1__CancelPendingAttributes cancel;
  cancel.ExpectedVersion = &s.version;
  cancel.Password = &s.password;
  ns1__CancelPendingAttributesResponse cancelled;
  answered(guest, guest.CancelPendingAttributes(&cancel, cancelled), "CancelPendingAttributes");
  s.version = cancelled.Version;
  answered(guest, guest.GetPendingAttributes(&pending_req, pending), "GetPendingAttributes");
  value("cancelled.pending_count", pending.Attributes->AttributeValue.size());
}

// -- boot order (the Setup password still set: every write carries it) ---------------
void boot_order(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  struct soap* soap = s.soap;
  ns1__GetBootOrder boot_req;
  ns1__GetBootOrderResponse boot;
  answered(guest, guest.GetBootOrder(&boot_req, boot), "GetBootOrder");
  ns1__SetBootOrder order;
  order.Order = soap_new_ns1__BootOrder(soap);
  order.Order->OptionId.assign(boot.Order->OptionId.rbegin(), boot.Order->OptionId.rend());
  order.ExpectedVersion = &s.version;
  order.Password = &s.password;
  ns1__SetBootOrderResponse ordered;
  answered(guest, guest.SetBootOrder(&order, ordered), "SetBootOrder");
  s.version = ordered.Version;
  ns1__SetBootNext next;
  std::string next_id = order.Order->OptionId.front();
  next.BootNext = &next_id;
  next.ExpectedVersion = &s.version;
  next.Password = &s.password;
  ns1__SetBootNextResponse nexted;
  answered(guest, guest.SetBootNext(&next, nexted), "SetBootNext");
  s.version = nexted.Version;

  ns1__ChangePassword change;
  change.PasswordName = "SetupPassword";
  change.OldPassword = &s.password;
  change.NewPassword = "";
  change.ExpectedVersion = &s.version;
  change.Password = &s.password;
  ns1__ChangePasswordResponse changed;
  answered(guest, guest.ChangePassword(&change, changed), "ChangePassword");
  s.version = changed.Version;
}

// -- events: what the Reset published, from the Subscribe's cursor; Renew, Unsubscribe --
void events(Session& s, const std::string& subscription, const std::string& expires,
            LONG64 cursor) {
  VbiosServiceProxy& guest = s.guest;
  struct soap* soap = s.soap;
  int wait = std::stoi(arg("events_wait"));
  ns1__GetEvents get;
  get.SubscriptionId = subscription;
  get.Cursor = &cursor;  // LONG64*: optional
  get.Wait = &wait;
  get.MaxEvents = nullptr;
  ns1__GetEventsResponse read;
  answered(guest, guest.GetEvents(&get, read), "GetEvents");
  std::string ids, types, domains;
  if (read.Events) {
    for (const ns1__Event* event : read.Events->Event) {
      const char* sep = ids.empty() ? "" : ",";
      ids += sep + std::to_string(event->EventId);
      types += sep + std::string(soap_ns1__EventType2s(soap, event->EventType));
      domains += sep + (event->Domain ? *event->Domain : std::string());  // optional
    }
  }
  value("events.subscription_id", subscription);
  value("events.cursor", cursor);
  value("events.expires", expires);
  value("events.event_ids", ids);
  value("events.event_types", types);
  value("events.event_domains", domains);
  value("events.next_cursor", read.NextCursor);
  value("events.events_lost", read.EventsLost);

  int renew_in = std::stoi(arg("events_renew_in"));
  ns1__Renew renew;
  renew.SubscriptionId = subscription;
  renew.ExpiresIn = &renew_in;
  ns1__RenewResponse renewed;
  answered(guest, guest.Renew(&renew, renewed), "Renew");
  value("events.renewed_expires", renewed.Expires);
  ns1__Unsubscribe unsubscribe;
  unsubscribe.SubscriptionId = subscription;
  ns1__UnsubscribeResponse ended;
  answered(guest, guest.Unsubscribe(&unsubscribe, ended), "Unsubscribe");
  value("events.unsubscribed", ended.SubscriptionId);
}

// -- power: the guest's own, then the admin's view of the domain ---------------------
void power(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  VbiosServiceProxy& admin = s.admin;
  struct soap* soap = s.soap;
  ns1__GetPowerState power_req;
  ns1__GetPowerStateResponse power;
  answered(guest, guest.GetPowerState(&power_req, power), "GetPowerState");
  value("power.before", soap_ns1__PowerState2s(soap, power.PowerState));
  // events: subscribed (every type: EventTypes null) before the Reset, read after it;
  // the optional elements are pointers (null leaves the element out)
  int expires_in = std::stoi(arg("events_expires_in"));
  ns1__Subscribe subscribe;
  subscribe.EventTypes = nullptr;
  subscribe.ExpiresIn = &expires_in;
  subscribe.Domain = nullptr;
  ns1__SubscribeResponse subscribed;
  answered(guest, guest.Subscribe(&subscribe, subscribed), "Subscribe");
  ns1__Reset reset;
  reset.ResetType = ns1__ResetType__On;
  ns1__ResetResponse reset_done;
  answered(guest, guest.Reset(&reset, reset_done), "Reset");
  value("reset.power_state", soap_ns1__PowerState2s(soap, reset_done.PowerState));
  value("reset.message", reset_done.Message);
  ns1__GetDomainPowerState domain_power_req;
  domain_power_req.Domain = arg("domain");
  ns1__GetDomainPowerStateResponse domain_power;
  answered(admin, admin.GetDomainPowerState(&domain_power_req, domain_power),
           "GetDomainPowerState");
  value("admin.machine", soap_ns1__MachineKind2s(admin.soap, domain_power.Machine));
  value("admin.power_state", soap_ns1__PowerState2s(admin.soap, domain_power.PowerState));
  events(s, subscribed.SubscriptionId, subscribed.Expires, subscribed.Cursor);
}

// -- Secure Boot (after the reset: the switch stays pending) -------------------------
void secure_boot(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  VbiosServiceProxy& admin = s.admin;
  struct soap* soap = s.soap;
  ns1__GetSecureBoot sb_req;
  ns1__GetSecureBootResponse sb;
  answered(guest, guest.GetSecureBoot(&sb_req, sb), "GetSecureBoot");
  value("secureboot.enabled", sb.Enabled);
  ns1__ResetSecureBootKeys keys;
  keys.ResetKeysType = ns1__ResetKeysType__ResetAllKeysToDefault;
  ns1__ResetSecureBootKeysResponse keys_done;
  answered(guest, guest.ResetSecureBootKeys(&keys, keys_done), "ResetSecureBootKeys");
  ns1__SetSecureBoot sb_set;
  sb_set.Enabled = !sb.Enabled;
  ns1__SetSecureBootResponse sb_done;
  answered(guest, guest.SetSecureBoot(&sb_set, sb_done), "SetSecureBoot");

  std::vector<unsigned char> pem = read_file(arg("sbcert"));
  ns1__AddSecureBootCertificate add;
  add.Domain = arg("domain");
  add.Database = ns1__SecureBootDatabaseName__db;
  add.Certificate.assign(pem.begin(), pem.end());
  ns1__AddSecureBootCertificateResponse added;
  answered(admin, admin.AddSecureBootCertificate(&add, added), "AddSecureBootCertificate");
  print_db(guest, "added.");
  ns1__RemoveSecureBootCertificate remove;
  remove.Domain = arg("domain");
  remove.Database = ns1__SecureBootDatabaseName__db;
  remove.Sha256 = arg("sbcert_sha256");
  ns1__RemoveSecureBootCertificateResponse removed;
  answered(admin, admin.RemoveSecureBootCertificate(&remove, removed),
           "RemoveSecureBootCertificate");
  print_db(guest, "final.db.");
  answered(guest, guest.GetSecureBoot(&sb_req, sb), "GetSecureBoot");
  value("final.secureboot.enabled", sb.Enabled);
  value("final.secureboot.mode", soap_ns1__SecureBootMode2s(soap, sb.Mode));
  value("final.secureboot.pending", sb.PendingEnabled ? (*sb.PendingEnabled ? "true" : "false")
                                                      : "none");
}

// -- attestation ---------------------------------------------------------------------
void attestation(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  struct soap* soap = s.soap;
  std::string bank = "sha256";
  ns1__GetBootMeasurements measurements_req;
  measurements_req.Bank = &bank;
  ns1__GetBootMeasurementsResponse measurements;
  answered(guest, guest.GetBootMeasurements(&measurements_req, measurements),
           "GetBootMeasurements");
  value("measurements.bank", measurements.Bank);
  value("measurements.events", measurements.Events->MeasuredEvent.size());
  value("measurements.event_log_bytes", measurements.EventLog.__size);
  print_pcrs("measurements.pcr.", measurements.Pcrs);

  std::vector<unsigned char> nonce = unhex(arg("nonce"));
  ns1__GetQuote quote_req;
  quote_req.Nonce.__ptr = nonce.data();
  quote_req.Nonce.__size = static_cast<int>(nonce.size());
  quote_req.Bank = &bank;
  quote_req.PcrSelection = soap_new_ns1__PcrIndexList(soap);
  quote_req.PcrSelection->Index = {0, 1, 2, 3, 4, 5, 6, 7};
  ns1__GetQuoteResponse quote;
  answered(guest, guest.GetQuote(&quote_req, quote), "GetQuote");
  value("quote.bank", quote.Bank);
  print_pcrs("quote.pcr.", quote.Pcrs);
  write_file("quote.attest", quote.Attest);
  write_file("quote.signature", quote.Signature);
  write_file("quote.ak.der", quote.AkCertificate);
  write_file("quote.eventlog", quote.EventLog);

  ns1__GetIntegrityStatus integrity_req;
  ns1__GetIntegrityStatusResponse integrity;
  answered(guest, guest.GetIntegrityStatus(&integrity_req, integrity), "GetIntegrityStatus");
  value("integrity.state", soap_ns1__IntegrityState2s(soap, integrity.Status->State));
  value("integrity.restricted", integrity.Status->Restricted);
  value("integrity.bank", integrity.Status->Bank);
  ns1__GetReferenceMeasurements reference_req;
  ns1__GetReferenceMeasurementsResponse reference;
  answered(guest, guest.GetReferenceMeasurements(&reference_req, reference),
           "GetReferenceMeasurements");
  value("reference.digest", reference.ReferenceDigest ? *reference.ReferenceDigest : "none");
  ns1__CollectDiagnostics diagnostics_req;
  ns1__CollectDiagnosticsResponse diagnostics;
  answered(guest, guest.CollectDiagnostics(&diagnostics_req, diagnostics),
           "CollectDiagnostics");
  value("diagnostics.state", soap_ns1__IntegrityState2s(soap, diagnostics.Status->State));
  value("diagnostics.audit_entries", diagnostics.AuditEntries->AuditEntry.size());
}

// -- system management and thermal (after the reset: the log holds its power entries;
// before the final state: the watchdog's OsWatchdogTimer moves the attributes' version)
void system_management(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  ns1__GetSmbios smbios_req;
  ns1__GetSmbiosResponse smbios;
  answered(guest, guest.GetSmbios(&smbios_req, smbios), "GetSmbios");
  value("system.bios_vendor", smbios.Bios->Vendor);
  value("system.bios_version", smbios.Bios->Version);
  value("system.system_serial", smbios.System->SerialNumber);
  value("system.system_uuid", smbios.System->Uuid);

  ns1__GetThermal thermal_req;
  ns1__GetThermalResponse thermal;
  answered(guest, guest.GetThermal(&thermal_req, thermal), "GetThermal");
  const ns1__TemperatureSensor* cpu = nullptr;
  for (const ns1__TemperatureSensor* sensor : thermal.Temperatures->Sensor)
    if (sensor->PhysicalContext == "CPU") cpu = sensor;
  if (cpu == nullptr || cpu->Thresholds == nullptr) {  // Thresholds: an optional element
    std::fprintf(stderr, "GetThermal answered no CPU sensor with thresholds\n");
    std::exit(1);
  }
  char reading[32];  // xs:double: a double, printed with every digit it has
  std::snprintf(reading, sizeof reading, "%.17g", cpu->Reading);
  value("system.cpu_reading", reading);
  std::snprintf(reading, sizeof reading, "%.17g", cpu->Thresholds->UpperCritical->Reading);
  value("system.cpu_upper_critical", reading);

  // RFC 3339 in UTC, whole seconds (WakeTime is an xs:string in the WSDL)
  std::time_t at = std::time(nullptr) + 600;
  std::tm utc{};
  gmtime_r(&at, &utc);
  char wake[32];
  std::strftime(wake, sizeof wake, "%Y-%m-%dT%H:%M:%SZ", &utc);
  ns1__SetWakeAlarm set_alarm;
  set_alarm.WakeTime = wake;
  ns1__SetWakeAlarmResponse alarm_set;
  answered(guest, guest.SetWakeAlarm(&set_alarm, alarm_set), "SetWakeAlarm");
  value("system.wake_set", set_alarm.WakeTime);
  ns1__GetWakeAlarm get_alarm;
  ns1__GetWakeAlarmResponse alarm;
  answered(guest, guest.GetWakeAlarm(&get_alarm, alarm), "GetWakeAlarm");
  value("system.wake_read", alarm.Alarm ? alarm.Alarm->WakeTime : std::string("none"));
  ns1__ClearWakeAlarm clear_alarm;
  ns1__ClearWakeAlarmResponse alarm_cleared;
  answered(guest, guest.ClearWakeAlarm(&clear_alarm, alarm_cleared), "ClearWakeAlarm");
  value("system.wake_cleared", alarm_cleared.Cleared);

  // TimeoutSeconds is optional: a pointer (null leaves the element out)
  int timeout = std::stoi(arg("watchdog_seconds"));
  ns1__SetWatchdog arm;
  arm.Enabled = true;
  arm.TimeoutSeconds = &timeout;
  ns1__SetWatchdogResponse armed;
  answered(guest, guest.SetWatchdog(&arm, armed), "SetWatchdog");
  value("system.watchdog_armed", armed.Watchdog->TimeoutSeconds);
  ns1__PetWatchdog pet;
  ns1__PetWatchdogResponse petted;
  answered(guest, guest.PetWatchdog(&pet, petted), "PetWatchdog");
  value("system.watchdog_pet_deadline",
        petted.Watchdog->Deadline ? *petted.Watchdog->Deadline : std::string("none"));
  ns1__GetWatchdog get_watchdog;
  ns1__GetWatchdogResponse watchdog;
  answered(guest, guest.GetWatchdog(&get_watchdog, watchdog), "GetWatchdog");
  value("system.watchdog_enabled", watchdog.Watchdog->Enabled);
  ns1__SetWatchdog disarm;
  disarm.Enabled = false;
  disarm.TimeoutSeconds = nullptr;
  ns1__SetWatchdogResponse disarmed;
  answered(guest, guest.SetWatchdog(&disarm, disarmed), "SetWatchdog");
  value("system.watchdog_disarmed", disarmed.Watchdog->Enabled);

  ns1__GetSystemEventLog log_req;
  ns1__GetSystemEventLogResponse log;
  answered(guest, guest.GetSystemEventLog(&log_req, log), "GetSystemEventLog");
  std::string ids;
  LONG64 last_id = 0;
  for (const ns1__SelEntry* entry : log.Entries->Entry) {
    ids += (ids.empty() ? "" : ",") + entry->MessageId;
    last_id = std::max(last_id, entry->Id);
  }
  value("system.sel_entries", log.Entries->Entry.size());
  value("system.sel_last_id", last_id);
  value("system.sel_message_ids", ids);
  ns1__ClearSystemEventLog clear_log;
  ns1__ClearSystemEventLogResponse cleared;
  answered(guest, guest.ClearSystemEventLog(&clear_log, cleared), "ClearSystemEventLog");
  value("system.sel_removed", cleared.Removed);
}

// -- the final state the test compares with the Python library's reading -------------
void final_state(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  ns1__GetAttributes all;
  ns1__GetAttributesResponse final_attrs;
  answered(guest, guest.GetAttributes(&all, final_attrs), "GetAttributes");
  value("final.version", final_attrs.Version);
  value("final.setup_password_set", final_attrs.SetupPasswordSet);
  print_attributes("final.attr.", final_attrs.Attributes);
  ns1__GetPendingAttributes pending_req;
  ns1__GetPendingAttributesResponse pending;
  answered(guest, guest.GetPendingAttributes(&pending_req, pending), "GetPendingAttributes");
  print_attributes("final.pending.", pending.Attributes);
  ns1__GetBootOrder boot_req;
  ns1__GetBootOrderResponse boot;
  answered(guest, guest.GetBootOrder(&boot_req, boot), "GetBootOrder");
  std::string ids;
  for (const std::string& id : boot.Order->OptionId) ids += (ids.empty() ? "" : ",") + id;
  value("final.boot.order", ids);
  value("final.boot.next", boot.BootNext ? *boot.BootNext : "none");
  value("final.boot.version", boot.Version);
}

// -- firmware update (after the reset: the job waits for the next one) ---------------
void firmware(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  struct soap* soap = s.soap;
  ns1__GetFirmwareInventory inventory_req;
  ns1__GetFirmwareInventoryResponse inventory;
  answered(guest, guest.GetFirmwareInventory(&inventory_req, inventory), "GetFirmwareInventory");
  for (const ns1__FirmwareEntry* entry : inventory.Firmware->Entry) {
    value("firmware.fw_version", entry->FwVersion);
    value("firmware.active_slot", soap_ns1__FirmwareSlot2s(soap, entry->ActiveSlot));
  }

  std::vector<unsigned char> capsule = read_file(arg("capsule"));
  ns1__BeginFirmwareUpload begin;
  begin.Size = static_cast<LONG64>(capsule.size());
  begin.Sha256 = sha256_hex(capsule.data(), capsule.size());
  ns1__BeginFirmwareUploadResponse opened;
  answered(guest, guest.BeginFirmwareUpload(&begin, opened), "BeginFirmwareUpload");
  LONG64 chunk_size = std::min<LONG64>(std::stoll(arg("chunk_size")), opened.MaxChunkSize);
  LONG64 offset = opened.NextOffset;
  int chunks = 0;
  while (offset < begin.Size) {  // each chunk starts where the server says
    ns1__UploadFirmwareChunk chunk;
    chunk.UploadId = opened.UploadId;
    chunk.Offset = offset;
    chunk.Data.__ptr = capsule.data() + offset;
    chunk.Data.__size = static_cast<int>(std::min(chunk_size, begin.Size - offset));
    chunk.Sha256 = sha256_hex(chunk.Data.__ptr, static_cast<size_t>(chunk.Data.__size));
    ns1__UploadFirmwareChunkResponse taken;
    answered(guest, guest.UploadFirmwareChunk(&chunk, taken), "UploadFirmwareChunk");
    if (taken.NextOffset <= offset) {
      std::fprintf(stderr, "the upload did not move past offset %lld\n",
                   static_cast<long long>(offset));
      std::exit(1);
    }
    offset = taken.NextOffset;
    ++chunks;
  }
  value("firmware.chunks", chunks);
  ns1__GetFirmwareUpload status_req;
  status_req.UploadId = opened.UploadId;
  ns1__GetFirmwareUploadResponse status;
  answered(guest, guest.GetFirmwareUpload(&status_req, status), "GetFirmwareUpload");
  value("firmware.next_offset", status.NextOffset);

  ns1__CommitFirmwareUpload commit;
  commit.UploadId = opened.UploadId;
  enum ns1__ApplyTime on_reset = ns1__ApplyTime__OnReset;
  commit.ApplyTime = &on_reset;
  ns1__CommitFirmwareUploadResponse committed;
  answered(guest, guest.CommitFirmwareUpload(&commit, committed), "CommitFirmwareUpload");
  const ns1__FirmwareJob* job = committed.Job;
  std::string job_id = job->JobId;
  value("firmware.job_id", job_id);
  value("firmware.state", soap_ns1__FirmwareJobState2s(soap, job->State));
  value("firmware.slot", job->Slot ? soap_ns1__FirmwareSlot2s(soap, *job->Slot) : "none");
  // xs:unsignedLong: ULONG64 (unsigned long long), printed in decimal
  value("firmware.monotonic_count",
        job->MonotonicCount ? std::to_string(*job->MonotonicCount) : std::string("none"));

  ns1__GetFirmwareJob job_req;
  job_req.JobId = &job_id;
  ns1__GetFirmwareJobResponse job_read;
  answered(guest, guest.GetFirmwareJob(&job_req, job_read), "GetFirmwareJob");
  value("firmware.job_state", soap_ns1__FirmwareJobState2s(soap, job_read.Job->State));
  ns1__GetFirmwareHistory history_req;
  ns1__GetFirmwareHistoryResponse history;
  answered(guest, guest.GetFirmwareHistory(&history_req, history), "GetFirmwareHistory");
  std::string ids;
  for (const ns1__FirmwareJob* j : history.Jobs->Job) ids += (ids.empty() ? "" : ",") + j->JobId;
  value("firmware.history", ids);
}

// -- credential, last: using the renewed certificate revokes this one ----------------
void credential(Session& s) {
  VbiosServiceProxy& guest = s.guest;
  struct soap* soap = s.soap;
  ns1__GetProvisioningState provisioning_req;
  ns1__GetProvisioningStateResponse provisioning;
  answered(guest, guest.GetProvisioningState(&provisioning_req, provisioning),
           "GetProvisioningState");
  value("provisioning.state", soap_ns1__ProvisioningState2s(soap, provisioning.State));
  value("provisioning.next_step", provisioning.NextStep);
  std::vector<unsigned char> csr = read_file(arg("csr"));
  ns1__RenewCertificate renew;
  renew.CertificateRequest.__ptr = csr.data();
  renew.CertificateRequest.__size = static_cast<int>(csr.size());
  ns1__RenewCertificateResponse renewed;
  answered(guest, guest.RenewCertificate(&renew, renewed), "RenewCertificate");
  value("renewed.serial", renewed.Serial);
  value("renewed.not_after", renewed.NotAfter);
  write_file("renewed.der", renewed.Certificate);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* eq = std::strchr(argv[i], '=');
    if (eq) args[std::string(argv[i], static_cast<size_t>(eq - argv[i]))] = eq + 1;
  }
  soap_ssl_init();
  VbiosServiceProxy guest, admin;
  connect(guest, arg("guest"));
  connect(admin, arg("admin"));
  original_fsend = guest.soap->fsend;
  guest.soap->fsend = recording_fsend;
  Session s{guest, admin, guest.soap, 0, "gsoap-setup-pw"};
  attributes(s);
  boot_order(s);
  power(s);
  secure_boot(s);
  attestation(s);
  system_management(s);
  final_state(s);
  firmware(s);
  credential(s);
  return 0;
}
